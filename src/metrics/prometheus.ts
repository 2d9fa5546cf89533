/**
 * A `prom-client` registry that reads a running pipeline at scrape time: every metric of the
 * catalog (`catalog.ts`) is computed from one `handle.metrics()` snapshot (counters the runtime
 * bumps per batch), and Kafka lag from `handle.lag()`, asked at most every two seconds (`lag-cache.ts`).
 * Nothing is done per record and nothing runs between scrapes.
 */
import type { Metric, Registry } from 'prom-client';
import type { HistogramSnapshot, MetricsSnapshot, SourceLag } from '../core/metrics.ts';
import { METRICS, type MetricDef, type MetricKey } from './catalog.ts';
import { cachedLag, type LagBySource } from './lag-cache.ts';

/** What the exporter reads: a `RunHandle` (or anything with the same two methods). */
export interface MetricsSource {
  metrics(): MetricsSnapshot;
  lag?(): Promise<Readonly<Record<string, SourceLag>>>;
}

/** A registry bound to one run; see {@link prometheusRegistry}. */
export interface PrometheusExporter {
  /** The `prom-client` registry; add your own metrics to it or merge it with others. */
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric, read now. */
  scrape(): Promise<string>;
  /** The `Content-Type` of {@link scrape}'s text. */
  readonly contentType: string;
}

type Values = { labels: Record<string, string>; value: number }[];

/**
 * Builds the registry for a run. Each scrape takes one snapshot of the run (shared by every
 * metric of that scrape) and, when due, refreshes the Kafka lag. `prom-client` is loaded here,
 * on first use (about 0.1 s), not when `sluice` is imported.
 *
 * @example
 * const handle = pipeline.run();
 * const exporter = await prometheusRegistry(handle);
 * http.createServer(async (_req, res) => res.end(await exporter.scrape())).listen(9464);
 */
export async function prometheusRegistry(source: MetricsSource): Promise<PrometheusExporter> {
  const { Counter, Gauge, Registry } = await import('prom-client');
  const registry = new Registry();
  let snap: MetricsSnapshot | undefined;
  let lag: LagBySource = {};
  const readLag = cachedLag(
    source.lag === undefined ? undefined : () => (source.lag as () => Promise<LagBySource>)(),
  );
  const refresh = async (): Promise<void> => {
    snap = source.metrics();
    lag = await readLag();
  };
  const values: Record<MetricKey, (s: MetricsSnapshot) => Values> = metricValues(() => lag);

  for (const [key, def] of Object.entries(METRICS) as [MetricKey, MetricDef][]) {
    const read = values[key];
    const common = {
      name: def.name,
      help: def.help,
      labelNames: def.labels as string[],
      registers: [registry],
    };
    if (def.type === 'histogram') {
      registry.registerMetric(
        snapshotHistogram(def, () => (snap === undefined ? [] : histogramValues(key, snap))),
      );
    } else if (def.type === 'counter') {
      new Counter({
        ...common,
        collect() {
          this.reset();
          if (snap !== undefined) for (const v of read(snap)) if (v.value > 0) this.inc(v.labels, v.value);
        },
      });
    } else {
      new Gauge({
        ...common,
        collect() {
          this.reset();
          if (snap !== undefined) for (const v of read(snap)) this.set(v.labels, v.value);
        },
      });
    }
  }
  return {
    registry,
    contentType: registry.contentType,
    async scrape() {
      await refresh();
      return registry.metrics();
    },
  };
}

/** How each gauge and counter of the catalog is read from a snapshot. */
function metricValues(
  lag: () => Readonly<Record<string, SourceLag>>,
): Record<MetricKey, (s: MetricsSnapshot) => Values> {
  const perStage =
    (f: (st: MetricsSnapshot['stages'][number]) => number | undefined) => (s: MetricsSnapshot) => {
      const out: Values = [];
      for (const st of s.stages) {
        const v = f(st);
        if (v !== undefined) out.push({ labels: { pipeline: s.pipeline, stage: st.name }, value: v });
      }
      return out;
    };
  const perChannel =
    (f: (c: NonNullable<MetricsSnapshot['channels']>[number]) => number) => (s: MetricsSnapshot) =>
      (s.channels ?? []).map((c) => ({
        labels: { pipeline: s.pipeline, from: c.from, port: c.port, to: c.to },
        value: f(c),
      }));
  const run = (f: (s: MetricsSnapshot) => number | undefined) => (s: MetricsSnapshot) => {
    const v = f(s);
    return v === undefined ? [] : [{ labels: { pipeline: s.pipeline }, value: v }];
  };
  const none = () => [];
  return {
    recordsIn: perStage((st) => (st.kind === 'source' ? st.recordsOut : st.recordsIn)),
    recordsOut: perStage((st) => st.recordsOut),
    deadLetters: (s) =>
      s.stages.flatMap((st) =>
        Object.entries(st.deadLettersByCode ?? {}).map(([code, n]) => ({
          labels: { pipeline: s.pipeline, stage: st.name, code },
          value: n,
        })),
      ),
    dropped: perStage((st) => st.droppedRecords),
    batchDuration: none,
    backpressure: perStage((st) => st.blockedMs / 1000),
    channelQueued: perChannel((c) => c.queued),
    channelCapacity: perChannel((c) => c.capacity),
    watermark: perStage((st) => (st.watermark === undefined ? undefined : st.watermark / 1000)),
    eventTimeLag: perStage((st) =>
      st.watermark === undefined ? undefined : (Date.now() - st.watermark) / 1000,
    ),
    lateEvents: perStage((st) => st.custom?.lateEvents),
    sinkFlush: none,
    checkpoints: run((s) => s.checkpoint?.completed),
    checkpointFailures: run((s) => s.checkpoint?.failed),
    checkpointDuration: run((s) =>
      s.checkpoint === undefined || s.checkpoint.completed === 0
        ? undefined
        : s.checkpoint.lastDurationMs / 1000,
    ),
    checkpointSize: run((s) =>
      s.checkpoint === undefined || s.checkpoint.completed === 0 ? undefined : s.checkpoint.lastStateBytes,
    ),
    checkpointAge: run((s) => (s.checkpoint?.ageMs === undefined ? undefined : s.checkpoint.ageMs / 1000)),
    kafkaLag: (s) =>
      Object.entries(lag()).flatMap(([stage, l]) =>
        l.partitions.map((p) => ({
          labels: { pipeline: s.pipeline, stage, partition: p.partition },
          value: p.lag,
        })),
      ),
    kafkaCommitAge: (s) =>
      Object.entries(lag()).flatMap(([stage, l]) =>
        l.commitAgeMs === undefined
          ? []
          : [{ labels: { pipeline: s.pipeline, stage }, value: l.commitAgeMs / 1000 }],
      ),
    reconnects: (s) =>
      s.stages.flatMap((st) =>
        st.custom?.reconnects === undefined
          ? []
          : [
              {
                labels: { pipeline: s.pipeline, stage: st.name, component: st.component },
                value: st.custom.reconnects,
              },
            ],
      ),
    ready: run((s) => (s.state === 'running' ? 1 : 0)),
    memory: run(() => process.memoryUsage.rss()),
    heap: run(() => process.memoryUsage().heapUsed),
  };
}

/** The histogram of `key` per stage, from a snapshot. */
function histogramValues(
  key: MetricKey,
  s: MetricsSnapshot,
): { stage: string; h: HistogramSnapshot; pipeline: string }[] {
  const out: { stage: string; h: HistogramSnapshot; pipeline: string }[] = [];
  for (const st of s.stages) {
    const h = key === 'batchDuration' ? st.batchLatency : st.flushLatency;
    if (h !== undefined) out.push({ stage: st.name, h, pipeline: s.pipeline });
  }
  return out;
}

/**
 * A histogram whose buckets come whole from a snapshot (the runtime's fixed-bucket
 * `LatencyHistogram`), in seconds: `prom-client`'s own `Histogram` can only `observe` one value
 * at a time, which would mean work per batch in the exporter. It implements the `get()` the
 * registry formats, like any `prom-client` metric.
 */
function snapshotHistogram(
  def: MetricDef,
  read: () => { stage: string; h: HistogramSnapshot; pipeline: string }[],
): Metric {
  const metric = {
    name: def.name,
    help: def.help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const { stage, h, pipeline } of read()) {
        const labels = { pipeline, stage };
        let cumulative = 0;
        h.buckets.forEach((ms, i) => {
          cumulative += h.counts[i] ?? 0;
          values.push({
            labels: { ...labels, le: ms / 1000 },
            value: cumulative,
            metricName: `${def.name}_bucket`,
          });
        });
        values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${def.name}_bucket` });
        values.push({ labels, value: h.sum / 1000, metricName: `${def.name}_sum` });
        values.push({ labels, value: h.count, metricName: `${def.name}_count` });
      }
      return { name: def.name, help: def.help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  return metric as unknown as Metric;
}
