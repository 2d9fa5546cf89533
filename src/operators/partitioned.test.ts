import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { PartitionSlices, PartitionStates, serializeSlices } from '../checkpoint/partitions.ts';
import type { Position, RecordMeta } from '../core/message.ts';
import type { Operator } from '../core/stage.ts';
import { memoryBackend, type StateBackend } from '../state/backend.ts';
import { windowOperator } from '../time/window.ts';
import { OperatorHarness } from './harness.ts';
import { partitionScoped } from './partitioned.ts';

const quiet = { info() {}, warn() {}, error() {} };

interface Event {
  key: string;
  ts: number;
}

/** A count per key and 1-second tumbling window, monotonous event time. */
const makeWindow = (): Operator =>
  windowOperator<Event>({
    key: 'key',
    time: 'ts',
    tumbling: 1000,
    watermark: { maxOutOfOrder: 0 },
    aggregate: { n: 'count()' },
  }) as Operator;

function meta(partition: number, offset: number): RecordMeta {
  return { source: 'input', position: { topic: 't', partition, offset } };
}

/** A harness around `partitionScoped(makeWindow)` with partition state `states`, and positions to report. */
function harness(states: PartitionStates, positions: () => Position) {
  const op = partitionScoped(makeWindow) as Operator<Event, Record<string, unknown>>;
  const h = new OperatorHarness<Event, Record<string, unknown>>(op, { name: 'win' });
  Object.assign(h.ctx, { partitionState: states, checkpointPositions: () => ({ input: positions() }) });
  return Object.assign(h, { scoped: op });
}

/** Events `from..to` (exclusive) of partition `p`: key `k<p>`, one every 100 ms, offset = index. */
function events(p: number, from: number, to: number): { records: Event[]; meta: RecordMeta[] } {
  const records: Event[] = [];
  const metas: RecordMeta[] = [];
  for (let i = from; i < to; i++) {
    records.push({ key: `k${p}`, ts: i * 100 });
    metas.push(meta(p, i));
  }
  return { records, meta: metas };
}

function results(h: OperatorHarness<Event, Record<string, unknown>>): string[] {
  return h.records().map((r) => `${r.key}@${r.windowStart}=${r.n}`);
}

describe('partitionScoped', () => {
  test('each partition keeps its own state and watermark, and no watermark leaves the step', async () => {
    const states = new PartitionStates(memoryBackend(), quiet);
    const h = harness(states, () => ({}));
    await h.open();
    states.assign(['t:0', 't:1']);
    const a = events(0, 0, 25); // up to 2.4 s: windows 0 and 1 fire
    const b = events(1, 0, 5); // up to 0.4 s: nothing fires
    await h.process([...a.records, ...b.records], [...a.meta, ...b.meta]);
    assert.deepEqual(results(h), ['k0@1970-01-01T00:00:00.000Z=10', 'k0@1970-01-01T00:00:01.000Z=10']);
    assert.ok(!h.outputs.some((o) => 'signal' in o), 'no watermark forwarded');
    await h.finish();
    assert.deepEqual(results(h).slice(2).sort(), [
      'k0@1970-01-01T00:00:02.000Z=5',
      'k1@1970-01-01T00:00:00.000Z=5',
    ]);
  });

  test('a partition moves with its state through the store, and finishes even without new records', async () => {
    const backend: StateBackend = memoryBackend();
    // Member A reads partition 0 up to offset 15 and partition 1 up to 8, then checkpoints.
    const statesA = new PartitionStates(backend, quiet);
    const pos: Position = { 't:0': 15, 't:1': 8 };
    const a = harness(statesA, () => pos);
    await a.open();
    assert.equal((await statesA.load('g', ['t:0', 't:1'])).size, 0, 'nothing stored yet');
    const e0 = events(0, 0, 15);
    const e1 = events(1, 0, 8);
    await a.process(e0.records, e0.meta);
    await a.process(e1.records, e1.meta);
    const slices = a.scoped.snapshot?.(1);
    assert.ok(slices instanceof PartitionSlices);
    assert.deepEqual([...slices.slices.keys()].sort(), ['t:0', 't:1']);
    await statesA.save(1, new Map([['input', pos]]), new Map([['win', serializeSlices(slices)]]));

    // Member B is assigned both: resumes partition 0 at 15 with its state; partition 1 gets no record.
    const statesB = new PartitionStates(backend, quiet);
    const b = harness(statesB, () => ({ 't:0': 25, 't:1': 8 }));
    await b.open();
    statesB.assign(['t:0', 't:1']);
    const resume = await statesB.load('g', ['t:0', 't:1']);
    assert.deepEqual(Object.fromEntries(resume), { 't:0': { offset: 15 }, 't:1': { offset: 8 } });
    const rest = events(0, 15, 25);
    await b.process(rest.records, rest.meta);
    await b.finish();

    // One uninterrupted instance per partition gives the same results.
    const wholeStates = new PartitionStates(memoryBackend(), quiet);
    const whole = harness(wholeStates, () => ({}));
    await whole.open();
    wholeStates.assign(['t:0', 't:1']);
    const all0 = events(0, 0, 25);
    await whole.process(all0.records, all0.meta);
    await whole.process(e1.records, e1.meta);
    await whole.finish();
    const before = results(a);
    assert.deepEqual([...before, ...results(b)].sort(), results(whole).sort());
    assert.ok(
      results(b).includes('k1@1970-01-01T00:00:00.000Z=8'),
      'partition 1, loaded without new records, still fires its window at the end',
    );
  });

  test('a revoked partition is not finished here, and its slice is released at the next checkpoint', async () => {
    const states = new PartitionStates(memoryBackend(), quiet);
    let pos: Position = { 't:0': 5, 't:1': 5 };
    const h = harness(states, () => pos);
    await h.open();
    states.assign(['t:0', 't:1']);
    await states.load('g', ['t:0', 't:1']);
    const e0 = events(0, 0, 5);
    const e1 = events(1, 0, 5);
    await h.process([...e0.records, ...e1.records], [...e0.meta, ...e1.meta]);
    states.assign(['t:0']); // partition 1 revoked
    const first = h.scoped.snapshot?.(1) as PartitionSlices;
    assert.deepEqual(
      [...first.slices.keys()].sort(),
      ['t:0', 't:1'],
      'still in the position: stored once more',
    );
    pos = { 't:0': 5 };
    const second = h.scoped.snapshot?.(2) as PartitionSlices;
    assert.deepEqual([...second.slices.keys()], ['t:0'], 'released');
    await h.finish();
    assert.deepEqual(results(h), ['k0@1970-01-01T00:00:00.000Z=5']);
  });
});

describe('partitionScoped under pipeline-scoped checkpoints', () => {
  test('its snapshot, serialised as one state, restores every slice', async () => {
    const first = partitionScoped(makeWindow) as Operator<Event, Record<string, unknown>>;
    const a = new OperatorHarness<Event, Record<string, unknown>>(first);
    await a.open();
    const e0 = events(0, 0, 15);
    const e1 = events(1, 0, 8);
    await a.process([...e0.records, ...e1.records], [...e0.meta, ...e1.meta]);
    const op = partitionScoped(makeWindow) as Operator<Event, Record<string, unknown>>;
    const saved = deserialize(serialize(first.snapshot?.(1)));
    const b = new OperatorHarness<Event, Record<string, unknown>>(op);
    await b.open();
    await op.restore?.(saved);
    const rest = events(0, 15, 25);
    await b.process(rest.records, rest.meta);
    await b.finish();
    assert.deepEqual([...results(a), ...results(b)].sort(), [
      'k0@1970-01-01T00:00:00.000Z=10',
      'k0@1970-01-01T00:00:01.000Z=10',
      'k0@1970-01-01T00:00:02.000Z=5',
      'k1@1970-01-01T00:00:00.000Z=8',
    ]);
  });
});

describe('PartitionStates', () => {
  test('an entry is not replaced by one with a smaller offset, and an unchanged offset is not written again', async () => {
    const backend = memoryBackend();
    const a = new PartitionStates(backend, quiet);
    const b = new PartitionStates(backend, quiet);
    await a.load('g', ['t:0']);
    await b.load('g', ['t:0']);
    await b.save(1, new Map([['input', { 't:0': 50 }]]), new Map());
    await a.save(1, new Map([['input', { 't:0': 30 }]]), new Map());
    assert.deepEqual(Object.fromEntries(await new PartitionStates(backend, quiet).load('g', ['t:0'])), {
      't:0': { offset: 50 },
    });
    assert.equal(a.stats.stale, 1);
    await b.save(2, new Map([['input', { 't:0': 50 }]]), new Map());
    assert.equal(b.stats.written, 1, 'unchanged offset: no write');
    assert.deepEqual(await backend.keys('partitions/'), ['partitions/g/t/0']);
  });
});
