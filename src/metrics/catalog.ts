/**
 * The fixed names, types, labels and meanings of every metric Sluice exports, defined once:
 * the Prometheus registry (`prometheus.ts`) is built from this list and `docs/metrics.md` is
 * generated from it (`npm run docs`; `npm run docs:check` fails when the copy drifts).
 *
 * Labels are bounded: pipeline, stage, component, error code, edge ends, Kafka partition —
 * never a record key or value.
 */

/** A Prometheus metric type. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** One metric of the catalog. */
export interface MetricDef {
  /** Full Prometheus name, `sluice_…`. */
  readonly name: string;
  readonly type: MetricType;
  /** One sentence: what it counts or measures, with its unit. */
  readonly help: string;
  /** Label names, in order. */
  readonly labels: readonly string[];
}

function def(name: string, type: MetricType, labels: readonly string[], help: string): MetricDef {
  return { name: `sluice_${name}`, type, help, labels };
}

const STAGE = ['pipeline', 'stage'] as const;

/** Every metric, by a short key used in code. */
export const METRICS = {
  recordsIn: def('records_in_total', 'counter', STAGE, 'Records a stage received (sources: records read).'),
  recordsOut: def(
    'records_out_total',
    'counter',
    STAGE,
    'Records a stage emitted on any output (sinks: records written).',
  ),
  deadLetters: def(
    'dead_letters_total',
    'counter',
    [...STAGE, 'code'],
    'Records a stage sent to the dead-letter output, by error code.',
  ),
  dropped: def(
    'dropped_total',
    'counter',
    STAGE,
    'Records discarded from the input buffer of a stage by its `dropOldest` overflow policy.',
  ),
  batchDuration: def(
    'batch_duration_seconds',
    'histogram',
    STAGE,
    'Time an operator or sink took per input batch, downstream waits included.',
  ),
  backpressure: def(
    'backpressure_seconds_total',
    'counter',
    STAGE,
    'Time a stage spent blocked sending to full downstream channels.',
  ),
  channelQueued: def(
    'channel_queued_messages',
    'gauge',
    ['pipeline', 'from', 'port', 'to'],
    'Messages (batches and signals) queued in the channel of one edge.',
  ),
  channelCapacity: def(
    'channel_capacity_messages',
    'gauge',
    ['pipeline', 'from', 'port', 'to'],
    'Messages the channel of one edge holds at most (fill = queued / capacity).',
  ),
  watermark: def(
    'watermark_seconds',
    'gauge',
    STAGE,
    'Latest event-time watermark a stage emitted (sinks: received), Unix seconds.',
  ),
  eventTimeLag: def(
    'event_time_lag_seconds',
    'gauge',
    STAGE,
    'Wall-clock time now minus the watermark of the stage.',
  ),
  lateEvents: def(
    'late_events_total',
    'counter',
    STAGE,
    'Events a window received after the watermark and allowed lateness (sent to its `late` output or dropped).',
  ),
  sinkFlush: def(
    'sink_flush_duration_seconds',
    'histogram',
    STAGE,
    'Time a sink took to make its writes durable at a checkpoint barrier.',
  ),
  checkpoints: def('checkpoints_total', 'counter', ['pipeline'], 'Checkpoints completed.'),
  checkpointFailures: def(
    'checkpoint_failures_total',
    'counter',
    ['pipeline'],
    'Checkpoints that failed to be stored.',
  ),
  checkpointDuration: def(
    'checkpoint_duration_seconds',
    'gauge',
    ['pipeline'],
    'Trigger to durable, of the last completed checkpoint.',
  ),
  checkpointSize: def(
    'checkpoint_size_bytes',
    'gauge',
    ['pipeline'],
    'Serialised operator state of the last completed checkpoint.',
  ),
  checkpointAge: def(
    'checkpoint_age_seconds',
    'gauge',
    ['pipeline'],
    'Time since the last checkpoint completed.',
  ),
  kafkaLag: def(
    'kafka_consumer_lag',
    'gauge',
    [...STAGE, 'partition'],
    'Records between a Kafka source position and the end of a partition (`topic:partition`).',
  ),
  kafkaCommitAge: def(
    'kafka_commit_age_seconds',
    'gauge',
    STAGE,
    'Time since a Kafka source last committed its offsets to the group.',
  ),
  reconnects: def(
    'reconnects_total',
    'counter',
    [...STAGE, 'component'],
    'Connections a PostgreSQL, Redis, Kafka or Pulsar stage lost and opened again.',
  ),
  ready: def(
    'ready',
    'gauge',
    ['pipeline'],
    '1 once every stage is open and the checkpoint restored, while running.',
  ),
  memory: def('process_resident_memory_bytes', 'gauge', ['pipeline'], 'Resident memory of the process.'),
  heap: def('process_heap_used_bytes', 'gauge', ['pipeline'], 'V8 heap in use.'),
} as const satisfies Record<string, MetricDef>;

/** The key of a metric in {@link METRICS}. */
export type MetricKey = keyof typeof METRICS;

/** `docs/metrics.md`: the catalog as a Markdown table (generated; do not edit the file by hand). */
export function metricsMarkdown(): string {
  const rows = Object.values(METRICS).map(
    (m) => `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(', ')} | ${m.help} |`,
  );
  return `# Metrics

<!-- Generated from src/metrics/catalog.ts by \`npm run docs\`; \`npm run docs:check\` fails when it drifts. -->

\`sluice run FILE --http 127.0.0.1:9464\` (or \`http: { address: 127.0.0.1:9464 }\` in the pipeline file)
serves these at \`/metrics\` in the Prometheus text format, \`/health\` (200 while the process
runs), \`/ready\` (200 once every stage is open and the checkpoint restored, 503 before and after),
and a live dashboard at \`/\`. Counters are bumped once per batch by the runtime and read at
scrape time; labels are bounded (no record keys). The same numbers come from the TypeScript API:
\`handle.metrics()\`, \`handle.lag()\`, \`watchRun(handle)\`, \`await prometheusRegistry(handle)\` and
\`serveRun(handle, { address })\`.

| name | type | labels | meaning |
|---|---|---|---|
${rows.join('\n')}

Histograms use the buckets (seconds) ${'`0.001 … 10`'} of \`LATENCY_BUCKETS_MS\` in \`src/core/metrics.ts\`.
Kafka lag is asked of the broker at most every two seconds, whatever the scrape rate.
`;
}
