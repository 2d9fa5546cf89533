/**
 * End-to-end runs through `Pipeline`: source → operators (as `Stream` methods) → collecting
 * sinks, with the real runtime, channels and dead-letter output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from './core/clock.ts';
import { ErrorCode, SluiceError } from './core/errors.ts';
import { keyGroupOf, shardOfKeyGroup } from './core/keygroups.ts';
import type { Batch, RecordMeta } from './core/message.ts';
import type { DeadLetter, Sink, Source, StageContext } from './core/stage.ts';
import { settle } from './operators/harness.ts';
import { Pipeline } from './pipeline.ts';

/** Emits each inner array as one batch, with meta `{source: 'mem', position: {n}}`; waits on `gates[i]` before batch i. */
function memSource<T>(batches: T[][], gates: Map<number, Promise<void>> = new Map()): Source<T> {
  return {
    async run(out) {
      let n = 0;
      for (let i = 0; i < batches.length; i++) {
        await gates.get(i);
        const records = batches[i] as T[];
        const meta: RecordMeta[] = records.map(() => ({ source: 'mem', position: { n: n++ } }));
        await out.emit({ kind: 'batch', records, meta });
      }
    },
  };
}

/** Collects what it is given; `gate` (if any) holds every write until it resolves or the run aborts. */
class CollectSink<T> implements Sink<T> {
  batches: Batch<T>[] = [];
  finished = false;
  private ctx!: StageContext;
  private readonly gate: Promise<void> | undefined;
  constructor(gate?: Promise<void>) {
    this.gate = gate;
  }
  open(ctx: StageContext) {
    this.ctx = ctx;
  }
  async write(batch: Batch<T>) {
    if (this.gate) {
      const signal = this.ctx.signal;
      await Promise.race([
        this.gate,
        new Promise<void>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        ),
      ]);
    }
    this.batches.push(batch);
  }
  finish() {
    this.finished = true;
  }
  get records(): T[] {
    return this.batches.flatMap((b) => b.records);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

const quiet = { info() {}, warn() {}, error() {} };

test('map → filter → flatMap run end to end', async () => {
  const p = new Pipeline('e2e');
  const sink = new CollectSink<string>();
  p.from(
    memSource([
      [1, 2, 3],
      [4, 5],
    ]),
  )
    .map((x) => x * 10)
    .filter((x) => x !== 30)
    .flatMap((x) => [`${x}a`, `${x}b`])
    .to(sink);
  const summary = await p.run().done;
  assert.deepEqual(sink.records, ['10a', '10b', '20a', '20b', '40a', '40b', '50a', '50b']);
  assert.equal(summary.state, 'succeeded');
  assert.deepEqual(
    summary.stages.map((s) => s.name),
    // map and filter run fused as one stage (src/core/fuse.ts).
    ['source', 'map+filter', 'flatMap', 'sink'],
  );
  assert.ok(sink.finished);
});

test('records an operator throws on reach the dlq sink with stage name, source and position; the rest flow on', async () => {
  const p = new Pipeline('dlq');
  const sink = new CollectSink<number>();
  const dead = new CollectSink<DeadLetter>();
  p.dlq(dead);
  p.from(
    memSource([
      [1, 2, 3, 4],
      [5, 6],
    ]),
  )
    .map(
      (x) => {
        if (x % 3 === 0) throw new Error(`no multiples of 3: ${x}`);
        return x;
      },
      { name: 'no-threes' },
    )
    .to(sink);
  const summary = await p.run({ log: quiet }).done;
  assert.deepEqual(sink.records, [1, 2, 4, 5]);
  assert.deepEqual(
    dead.records.map((d) => ({
      stage: d.stage,
      source: d.source,
      position: d.position,
      record: d.record,
      error: d.error,
    })),
    [
      {
        stage: 'no-threes',
        source: 'mem',
        position: { n: 2 },
        record: 3,
        error: { code: ErrorCode.RECORD, message: 'no multiples of 3: 3' },
      },
      {
        stage: 'no-threes',
        source: 'mem',
        position: { n: 5 },
        record: 6,
        error: { code: ErrorCode.RECORD, message: 'no multiples of 3: 6' },
      },
    ],
  );
  assert.equal(summary.deadLetters, 2);
  assert.equal(summary.recordsWritten, 4);
});

test('without a dlq, a throwing record fails the run and says how to keep going', async () => {
  const p = new Pipeline('nodlq');
  p.from(memSource([[1, 2]]))
    .mapAsync(async (x) => {
      if (x === 2) throw new Error('bad two');
      return x;
    })
    .to(new CollectSink());
  await assert.rejects(
    p.run({ log: quiet }).done,
    (err: unknown) =>
      err instanceof SluiceError &&
      err.code === ErrorCode.NO_DLQ &&
      /bad two\. Configure a `dlq` output/.test(err.message),
  );
});

test('route returns one stream per port; unmatched records go to the dlq', async () => {
  const p = new Pipeline('route');
  const big = new CollectSink<number>();
  const small = new CollectSink<number>();
  const dead = new CollectSink<DeadLetter>();
  p.dlq(dead);
  const ports = p.from(memSource([[1, 50, -3, 7, 200]])).route([
    { when: (x) => x >= 10, port: 'big' },
    { when: (x) => x >= 0, port: 'small' },
  ]);
  ports.big.to(big);
  ports.small.to(small);
  await p.run({ log: quiet }).done;
  assert.deepEqual(big.records, [50, 200]);
  assert.deepEqual(small.records, [1, 7]);
  assert.deepEqual(
    dead.records.map((d) => [d.record, d.stage, d.error.code]),
    [[-3, 'route', ErrorCode.RECORD]],
  );
});

test('route with a default port', async () => {
  const p = new Pipeline('route-default');
  const even = new CollectSink<number>();
  const other = new CollectSink<number>();
  const { even: e, other: o } = p
    .from(memSource([[1, 2, 3, 4]]))
    .route([{ when: (x) => x % 2 === 0, port: 'even' }], {
      default: 'other',
    });
  e.to(even);
  o.to(other);
  await p.run().done;
  assert.deepEqual(even.records, [2, 4]);
  assert.deepEqual(other.records, [1, 3]);
});

/** A deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('shard: per-key order survives 4 shards of an async stage with random delays', async () => {
  const random = rng(42);
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  const batches: { key: string; seq: number }[][] = [];
  const seq = new Map<string, number>();
  for (let b = 0; b < 30; b++) {
    const batch = [];
    for (let i = 0; i < 25; i++) {
      const key = keys[Math.floor(random() * keys.length)] as string;
      const s = seq.get(key) ?? 0;
      seq.set(key, s + 1);
      batch.push({ key, seq: s });
    }
    batches.push(batch);
  }
  const p = new Pipeline('shard');
  const sink = new CollectSink<{ key: string; seq: number; shard: number }>();
  p.from(memSource(batches))
    .shard({ key: 'key', shards: 4 }, (s, i) =>
      s.mapAsync(
        async (r) => {
          // A random number of event-loop turns: later records often finish first.
          const turns = Math.floor(random() * 5);
          for (let t = 0; t < turns; t++) await new Promise<void>((res) => setImmediate(res));
          return { ...r, shard: i };
        },
        { concurrency: 8, ordered: true },
      ),
    )
    .to(sink);
  await p.run().done;
  const out = sink.records;
  assert.equal(out.length, 30 * 25);
  const next = new Map<string, number>();
  const usedShards = new Set<number>();
  for (const r of out) {
    assert.equal(r.seq, next.get(r.key) ?? 0, `key ${r.key} out of order`);
    next.set(r.key, r.seq + 1);
    assert.equal(r.shard, shardOfKeyGroup(keyGroupOf(r.key, 256), 4, 256));
    usedShards.add(r.shard);
  }
  assert.equal(usedShards.size, 4, 'the test keys should spread over all shards');
});

test('fanOut: a slow branch with dropOldest loses old batches but does not slow the other branch', {
  timeout: 10_000,
}, async () => {
  const release = gate();
  const fast = new CollectSink<number>();
  const slow = new CollectSink<number>(release.promise);
  const batches = Array.from({ length: 50 }, (_, i) => [i]);
  const p = new Pipeline('fan');
  p.from(memSource(batches)).fanOut([
    (s) => s.to(fast),
    { branch: (s) => s.to(slow), buffer: { size: 2, overflow: 'dropOldest' } },
  ]);
  const run = p.run({ channelCapacity: 1 });
  // The fast branch gets everything while the slow one is still stuck on its first write.
  while (fast.records.length < 50) await settle(1);
  assert.equal(slow.records.length, 0);
  release.open();
  const summary = await run.done;
  assert.deepEqual(
    fast.records,
    batches.map((b) => b[0]),
  );
  assert.ok(slow.records.length < 50, `slow branch got ${slow.records.length} of 50; nothing was dropped`);
  assert.equal(slow.records.at(-1), 49, 'dropOldest keeps the newest');
  // What was dropped is counted, not silently lost: the slow sink's stage says how many.
  const dropped = 50 - slow.records.length;
  assert.equal(summary.droppedRecords, dropped);
  assert.equal(
    summary.stages.reduce((n, st) => n + st.droppedRecords, 0),
    dropped,
    'the stage behind the full buffer counts them',
  );
});

test('fanOut: a full branch with overflow `error` fails the run with a clear message', {
  timeout: 10_000,
}, async () => {
  const stuck = gate();
  const p = new Pipeline('fan-error');
  const batches = Array.from({ length: 20 }, (_, i) => [i]);
  p.from(memSource(batches)).fanOut(
    [
      (s) => s.to(new CollectSink<number>()),
      { branch: (s) => s.to(new CollectSink<number>(stuck.promise)), buffer: { size: 4, overflow: 'error' } },
    ],
    { name: 'tee' },
  );
  await assert.rejects(
    p.run({ channelCapacity: 1, log: quiet }).done,
    (err: unknown) =>
      err instanceof SluiceError &&
      err.code === ErrorCode.OVERFLOW &&
      err.message.includes('buffer `source.out→tee.1` is full (4 items) and its overflow policy is `error`'),
  );
});

test('fanOut with the default block policy delivers everything to every branch', async () => {
  const a = new CollectSink<number>();
  const b = new CollectSink<number>();
  const p = new Pipeline('fan-block');
  p.from(memSource([[1, 2], [3]])).fanOut([(s) => s.map((x) => x * 2).to(a), (s) => s.to(b)]);
  await p.run().done;
  assert.deepEqual(a.records, [2, 4, 6]);
  assert.deepEqual(b.records, [1, 2, 3]);
});

test('batch flushes a partial batch on the runtime timer of an injected clock', {
  timeout: 10_000,
}, async () => {
  const clock = new ManualClock(0);
  const second = gate();
  const sink = new CollectSink<number>();
  const p = new Pipeline('batch');
  p.from(memSource([[1, 2, 3], [4]], new Map([[1, second.promise]])))
    .batch({ size: 2, maxWait: '1s' })
    .to(sink);
  const run = p.run({ clock });
  while (clock.pendingSleeps === 0) await settle(1);
  assert.deepEqual(
    sink.batches.map((b) => b.records),
    [[1, 2]],
  );
  clock.advance(999);
  await settle();
  assert.equal(sink.batches.length, 1, 'flushed before maxWait');
  clock.advance(1);
  while (sink.batches.length < 2) await settle(1);
  assert.deepEqual(sink.batches[1]?.records, [3]);
  assert.deepEqual(
    sink.batches[1]?.meta?.map((m) => m?.position),
    [{ n: 2 }],
  );
  second.open();
  await run.done;
  assert.deepEqual(
    sink.batches.map((b) => b.records),
    [[1, 2], [3], [4]],
  );
});

test('throttle through the runtime paces records on the injected clock', { timeout: 10_000 }, async () => {
  const clock = new ManualClock(0);
  const sink = new CollectSink<number>();
  const p = new Pipeline('throttle');
  p.from(memSource([[1, 2, 3, 4, 5]]))
    .throttle({ rate: 1, burst: 2 })
    .to(sink);
  const run = p.run({ clock });
  const passed: number[] = [];
  for (let step = 0; step < 4; step++) {
    while (clock.pendingSleeps === 0 && sink.records.length < 5) await settle(1);
    await settle();
    passed.push(sink.records.length);
    clock.advance(1000);
  }
  await run.done;
  assert.deepEqual(passed, [2, 3, 4, 5]);
});
