/**
 * The `core` benchmark: the engine's per-record overhead on a plain, CPU-bound pipeline.
 *
 *   generate → map → filter → batch(size 1000) → null sink
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
 *   `null` sink, through the runtime's bounded channels.
 * - `node-streams`: the same stages with Node's `stream.pipeline` in object mode
 *   (`Readable.from` a generator → Transform map → Transform filter → Transform batching →
 *   Writable that discards).
 * - `plain-loop`: a plain `for` loop over arrays of generated records doing the same work
 *   (the floor: no engine at all).
 *
 * All three use the same {@link EventGenerator} and the same map, filter and batch size.
 * `bench/run.ts` runs each contender in a fresh child process (`--contender NAME`) so peak
 * RSS does not mix, and reads one JSON line back.
 */
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { blackholeSink } from '../src/connectors/blackhole/sink.ts';
import { EventGenerator, type GeneratedEvent, generateSource } from '../src/connectors/generate/source.ts';
import { Pipeline } from '../src/core/pipeline.ts';
import type { Source } from '../src/core/stage.ts';
import type { BenchmarkDefinition, ContenderResult } from './run.ts';

/** What the map step produces: the event plus a derived field. */
interface Scored extends GeneratedEvent {
  high: boolean;
}

const SEED = 7;
const SOURCE_BATCH = 1024;
const BATCH = 1000;

// The same three steps for every contender.
const mapFn = (r: GeneratedEvent): Scored => ({
  id: r.id,
  ts: r.ts,
  user: r.user,
  country: r.country,
  event_type: r.event_type,
  risk: r.risk,
  amount: r.amount,
  high: r.risk > 50,
});
const filterFn = (r: Scored): boolean => r.event_type !== 'view';

async function runSluice(count: number): Promise<number> {
  const sink = blackholeSink();
  await new Pipeline('bench-core')
    // Without `fields`, every generated record is a whole GeneratedEvent.
    .from(generateSource({ count, seed: SEED, batchSize: SOURCE_BATCH }) as Source<GeneratedEvent>)
    .map(mapFn)
    .filter(filterFn)
    .batch({ size: BATCH, maxWait: '1s' })
    .to(sink)
    .run().done;
  return sink.records;
}

async function runNodeStreams(count: number): Promise<number> {
  const gen = new EventGenerator({ seed: SEED });
  let records = 0;
  function* events(): Generator<GeneratedEvent> {
    for (let i = 0; i < count; i++) yield gen.next();
  }
  let pending: Scored[] = [];
  await pipeline(
    Readable.from(events()),
    new Transform({
      objectMode: true,
      transform(r: GeneratedEvent, _enc, cb) {
        cb(null, mapFn(r));
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: Scored, _enc, cb) {
        if (filterFn(r)) cb(null, r);
        else cb();
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: Scored, _enc, cb) {
        pending.push(r);
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
      write(batch: Scored[], _enc, cb) {
        records += batch.length;
        cb();
      },
    }),
  );
  return records;
}

async function runPlainLoop(count: number): Promise<number> {
  const gen = new EventGenerator({ seed: SEED });
  let records = 0;
  let batch: Scored[] = [];
  const sink = (b: Scored[]) => {
    records += b.length;
  };
  for (let done = 0; done < count; ) {
    const n = Math.min(SOURCE_BATCH, count - done);
    const chunk = gen.take(n);
    done += n;
    for (let i = 0; i < chunk.length; i++) {
      const m = mapFn(chunk[i] as GeneratedEvent);
      if (!filterFn(m)) continue;
      batch.push(m);
      if (batch.length === BATCH) {
        sink(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) sink(batch);
  return records;
}

// --- Small records: `{ id, value }`, as cheap to make as a record can be, so the numbers show
// the engines' per-record overhead rather than the cost of building realistic events. ---

/** The small record of the headline comparison. */
interface Small {
  id: number;
  value: number;
}
/** The small record after the map step. */
interface SmallScored extends Small {
  double: number;
}
const smallMap = (r: Small): SmallScored => ({ id: r.id, value: r.value, double: r.value * 2 });
const smallFilter = (r: SmallScored): boolean => r.value % 3 !== 0;
const small = (i: number): Small => ({ id: i, value: i % 1000 });

/** A Sluice source of small records: one array per batch, one await per batch. */
function smallSource(count: number): Source<Small> {
  return {
    async run(out, ctx) {
      for (let done = 0; done < count && !ctx.stopSignal.aborted; ) {
        const n = Math.min(SOURCE_BATCH, count - done);
        const records = new Array<Small>(n);
        for (let i = 0; i < n; i++) records[i] = small(done + i);
        done += n;
        await out.emit({ kind: 'batch', records });
      }
    },
  };
}

async function runSluiceSmall(count: number): Promise<number> {
  const sink = blackholeSink();
  await new Pipeline('bench-core-small')
    .from(smallSource(count))
    .map(smallMap)
    .filter(smallFilter)
    .batch({ size: BATCH, maxWait: '1s' })
    .to(sink)
    .run().done;
  return sink.records;
}

async function runNodeStreamsSmall(count: number): Promise<number> {
  let records = 0;
  function* items(): Generator<Small> {
    for (let i = 0; i < count; i++) yield small(i);
  }
  let pending: SmallScored[] = [];
  await pipeline(
    Readable.from(items()),
    new Transform({
      objectMode: true,
      transform(r: Small, _enc, cb) {
        cb(null, smallMap(r));
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: SmallScored, _enc, cb) {
        if (smallFilter(r)) cb(null, r);
        else cb();
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: SmallScored, _enc, cb) {
        pending.push(r);
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
      write(batch: SmallScored[], _enc, cb) {
        records += batch.length;
        cb();
      },
    }),
  );
  return records;
}

async function runPlainLoopSmall(count: number): Promise<number> {
  let records = 0;
  let batch: SmallScored[] = [];
  for (let done = 0; done < count; ) {
    const n = Math.min(SOURCE_BATCH, count - done);
    const chunk = new Array<Small>(n);
    for (let i = 0; i < n; i++) chunk[i] = small(done + i);
    done += n;
    for (let i = 0; i < chunk.length; i++) {
      const m = smallMap(chunk[i] as Small);
      if (!smallFilter(m)) continue;
      batch.push(m);
      if (batch.length === BATCH) {
        records += batch.length;
        batch = [];
      }
    }
  }
  records += batch.length;
  return records;
}

const contenders: Record<string, (count: number) => Promise<number>> = {
  sluice: runSluiceSmall,
  'node-streams': runNodeStreamsSmall,
  'plain-loop': runPlainLoopSmall,
  'sluice-events': runSluice,
  'node-streams-events': runNodeStreams,
  'plain-loop-events': runPlainLoop,
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
    ['sluice-events', 'node-streams-events'],
    ['sluice-events', 'plain-loop-events'],
  ],
};

/** Runs one contender in this process and returns its measurement. */
export async function runContender(name: string, count: number): Promise<ContenderResult> {
  const fn = contenders[name];
  if (fn === undefined)
    throw new Error(`unknown contender \`${name}\`; use one of ${Object.keys(contenders).join(', ')}`);
  const t0 = performance.now();
  const records = await fn(count);
  const ms = performance.now() - t0;
  return {
    contender: name,
    input: count,
    records,
    ms,
    recordsPerSec: count / (ms / 1000),
    maxRssKiB: process.resourceUsage().maxRSS,
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
