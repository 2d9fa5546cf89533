/**
 * The `core` benchmark: the engine's per-record overhead on a plain, CPU-bound pipeline.
 *
 *   generate → map → filter → batch(size 1000) → blackhole sink
 *
 * over 10 million records, run three ways, for two kinds of record:
 *
 * - small records `{ id, value }` (the headline `ratio core sluice/…` lines): so cheap to make
 *   that what is measured is each engine's per-record overhead;
 * - the `generate` connector's events (`sluice-events`, …): seven fields with strings, where
 *   making the record costs more than moving it, so every engine comes closer to the loop.
 *
 * The three ways:
 *
 * - `sluice`: the real `generate` source, `Stream.map`/`filter`/`batch` operators and the
 *   `blackhole` sink, through the runtime's bounded channels.
 * - `node-streams`: the same stages with Node's `stream.pipeline` in object mode
 *   (`Readable.from` a generator → Transform map → Transform filter → Transform batching →
 *   Writable that discards).
 * - `plain-loop`: a plain `for` loop over arrays of generated records doing the same work
 *   (the floor: no engine at all).
 *
 * - `sluice-metrics`: `sluice` with `/metrics` and the dashboard served (`serveRun`, what
 *   `sluice run --http` does) and `/metrics` scraped every second by another process; `ratio core
 *   sluice-metrics/sluice` is the cost of being observed (target: 0.97 or more).
 *
 * All three use the same records (a {@link Workload}), map, filter and batch size.
 * `bench/run.ts` runs each contender in a fresh child process (`--contender NAME`) so peak
 * RSS does not mix, and reads one JSON line back.
 */
import { spawn } from 'node:child_process';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { serveRun } from '../src/cli/http.ts';
import { blackholeSink } from '../src/connectors/blackhole/sink.ts';
import { EventGenerator, type GeneratedEvent, generateSource } from '../src/connectors/generate/source.ts';
import type { Source } from '../src/core/stage.ts';
import { Pipeline } from '../src/pipeline.ts';
import { peakRssKiB } from './rss.ts';
import type { BenchmarkDefinition, ContenderResult } from './run.ts';

const SEED = 7;
const SOURCE_BATCH = 1024;
const BATCH = 1000;

/**
 * What one kind of record needs for all three contenders: a Sluice source, the same records
 * one at a time (Node streams) or a chunk at a time (plain loop), and the map and filter steps.
 */
interface Workload<R, M> {
  source(count: number): Source<R>;
  /** A generator of the `count` records, in the same order as the source. */
  one(count: number): Iterable<R>;
  /** A function that returns the next `n` records each call. */
  chunks(): (n: number) => R[];
  map(r: R): M;
  filter(m: M): boolean;
}

// Small records `{ id, value }`: as cheap to make as a record can be, so the numbers show the
// engines' per-record overhead rather than the cost of building realistic events.
interface Small {
  id: number;
  value: number;
}
const small = (i: number): Small => ({ id: i, value: i % 1000 });

const smallWorkload: Workload<Small, Small & { double: number }> = {
  source: (count) => ({
    async run(out, ctx) {
      for (let done = 0; done < count && !ctx.stopSignal.aborted; ) {
        const n = Math.min(SOURCE_BATCH, count - done);
        const records = new Array<Small>(n);
        for (let i = 0; i < n; i++) records[i] = small(done + i);
        done += n;
        await out.emit({ kind: 'batch', records });
      }
    },
  }),
  *one(count) {
    for (let i = 0; i < count; i++) yield small(i);
  },
  chunks() {
    let next = 0;
    return (n) => {
      const chunk = new Array<Small>(n);
      for (let i = 0; i < n; i++) chunk[i] = small(next + i);
      next += n;
      return chunk;
    };
  },
  map: (r) => ({ id: r.id, value: r.value, double: r.value * 2 }),
  filter: (r) => r.value % 3 !== 0,
};

// The `generate` connector's events: seven fields with strings.
const eventWorkload: Workload<GeneratedEvent, GeneratedEvent & { high: boolean }> = {
  source: (count) => generateSource({ count, seed: SEED, batchSize: SOURCE_BATCH }) as Source<GeneratedEvent>,
  *one(count) {
    const gen = new EventGenerator({ seed: SEED });
    for (let i = 0; i < count; i++) yield gen.next();
  },
  chunks() {
    const gen = new EventGenerator({ seed: SEED });
    return (n) => gen.take(n);
  },
  map: (r) => ({
    id: r.id,
    ts: r.ts,
    user: r.user,
    country: r.country,
    event_type: r.event_type,
    risk: r.risk,
    amount: r.amount,
    high: r.risk > 50,
  }),
  filter: (r) => r.event_type !== 'view',
};

/**
 * Scrapes `url` every second from a child process, as a Prometheus server would from outside:
 * the scrape's client side (fetch, parsing) does not run in the measured process. Prints the
 * number of successful scrapes on stderr when it is killed.
 */
const SCRAPER = `
let n = 0;
process.on('SIGTERM', () => { process.stderr.write('    sluice-metrics: ' + n + ' scrapes\\n'); process.exit(0); });
const scrape = () => fetch(process.argv[1]).then((r) => r.text()).then(() => n++, () => {});
scrape();
setInterval(scrape, 1000);
`;

/**
 * The Sluice contender; with `observed`, the run also serves `/metrics` and the dashboard
 * (`serveRun`, as `sluice run --http` does) and a separate process scrapes `/metrics` every second.
 */
async function runSluice<R, M>(w: Workload<R, M>, count: number, observed = false): Promise<number> {
  const sink = blackholeSink();
  const handle = new Pipeline('bench-core')
    .from(w.source(count))
    .map(w.map)
    .filter(w.filter)
    .batch({ size: BATCH, maxWait: '1s' })
    .to(sink)
    .run();
  if (!observed) {
    await handle.done;
    return sink.records;
  }
  const server = await serveRun(handle, { address: '127.0.0.1:0' });
  const scraper = spawn(process.execPath, ['-e', SCRAPER, `${server.url}metrics`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await handle.done;
  } finally {
    const exited = new Promise((resolve) => scraper.once('exit', resolve));
    scraper.kill('SIGTERM');
    await exited;
    await server.close();
  }
  return sink.records;
}

async function runNodeStreams<R, M>(w: Workload<R, M>, count: number): Promise<number> {
  let records = 0;
  let pending: M[] = [];
  await pipeline(
    Readable.from(w.one(count)),
    new Transform({
      objectMode: true,
      transform(r: R, _enc, cb) {
        cb(null, w.map(r));
      },
    }),
    new Transform({
      objectMode: true,
      transform(m: M, _enc, cb) {
        if (w.filter(m)) cb(null, m);
        else cb();
      },
    }),
    new Transform({
      objectMode: true,
      transform(m: M, _enc, cb) {
        pending.push(m);
        if (pending.length >= BATCH) {
          const full = pending;
          pending = [];
          cb(null, full);
        } else cb();
      },
      flush(cb) {
        if (pending.length > 0) this.push(pending);
        pending = [];
        cb();
      },
    }),
    new Writable({
      objectMode: true,
      write(batch: M[], _enc, cb) {
        records += batch.length;
        cb();
      },
    }),
  );
  return records;
}

async function runPlainLoop<R, M>(w: Workload<R, M>, count: number): Promise<number> {
  const take = w.chunks();
  let records = 0;
  let batch: M[] = [];
  for (let done = 0; done < count; ) {
    const n = Math.min(SOURCE_BATCH, count - done);
    const chunk = take(n);
    done += n;
    for (let i = 0; i < chunk.length; i++) {
      const m = w.map(chunk[i] as R);
      if (!w.filter(m)) continue;
      batch.push(m);
      if (batch.length === BATCH) {
        records += batch.length;
        batch = [];
      }
    }
  }
  return records + batch.length;
}

const contenders: Record<string, (count: number) => Promise<number>> = {
  sluice: (n) => runSluice(smallWorkload, n),
  'node-streams': (n) => runNodeStreams(smallWorkload, n),
  'plain-loop': (n) => runPlainLoop(smallWorkload, n),
  'sluice-metrics': (n) => runSluice(smallWorkload, n, true),
  'sluice-events': (n) => runSluice(eventWorkload, n),
  'node-streams-events': (n) => runNodeStreams(eventWorkload, n),
  'plain-loop-events': (n) => runPlainLoop(eventWorkload, n),
};

/** The `core` benchmark as `bench/run.ts` drives it. */
export const benchmark: BenchmarkDefinition = {
  name: 'core',
  summary: 'source → map → filter → batch(1000) → blackhole: Sluice vs Node streams vs a plain loop',
  script: new URL(import.meta.url).pathname,
  contenders: Object.keys(contenders),
  defaultRecords: 10_000_000,
  ratios: [
    ['sluice', 'node-streams'],
    ['sluice', 'plain-loop'],
    // Served and scraped every second vs not: 0.97 or more is the target (≤ 3 % slower).
    ['sluice-metrics', 'sluice'],
    ['sluice-events', 'node-streams-events'],
    ['sluice-events', 'plain-loop-events'],
  ],
};

/**
 * One-time work a contender does before the clock starts. `sluice-metrics` loads `prom-client`
 * (~0.2 s, once per process, whatever the job's length): the ratio is the cost of being served
 * and scraped while records flow, not of loading the exporter, which a 1-second run would overweigh.
 */
const prepare: Record<string, () => Promise<unknown>> = {
  'sluice-metrics': () => import('prom-client'),
};

/** Runs one contender in this process and returns its measurement. */
export async function runContender(
  name: string,
  count: number,
): Promise<ContenderResult & { readonly cpuMs: number }> {
  const fn = contenders[name];
  if (fn === undefined)
    throw new Error(`unknown contender \`${name}\`; use one of ${Object.keys(contenders).join(', ')}`);
  await prepare[name]?.();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const records = await fn(count);
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  return {
    contender: name,
    input: count,
    records,
    ms,
    recordsPerSec: count / (ms / 1000),
    maxRssKiB: peakRssKiB(),
    // This process's CPU time over the run (user + system; not the scraper's): steadier than the
    // wall clock on a shared machine. Not in the table; read it from the JSON line.
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const arg = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const name = arg('--contender') ?? 'sluice';
  const count = Number(arg('--records') ?? benchmark.defaultRecords);
  const result = await runContender(name, count);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
