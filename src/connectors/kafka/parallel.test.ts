import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import type { Batch, RecordMeta } from '../../core/message.ts';
import { type PartitionStateAccess, runScope, type StageContext } from '../../core/stage.ts';
import { Assignment } from './assignment.ts';
import { encodeDone } from './offsets.ts';
import { describeUnfinished, InPartitionParallel, type KafkaParallelMode } from './parallel.ts';
import type { KafkaMessage } from './records.ts';

/** A step whose calls settle when the test says so. */
function controlled() {
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const started: number[] = [];
  const step = (record: unknown) =>
    new Promise((resolve, reject) => {
      const { id } = record as { id: number };
      started.push(id);
      calls.set(id, { resolve, reject });
    });
  return { step, calls, started };
}

const tick = () => new Promise((r) => setImmediate(r));

function setup(mode: KafkaParallelMode, concurrency = 16, scope?: PartitionStateAccess) {
  const c = controlled();
  const deadLetters: unknown[] = [];
  const clock = new ManualClock(0);
  const ctx: StageContext = {
    name: 'in',
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    clock,
    log: { info() {}, warn() {}, error() {} },
    checkpointing: false,
    runScoped: runScope(),
    deadLetter: (record) => deadLetters.push(record),
  };
  const assignment = new Assignment(
    () => scope,
    () => {},
  );
  const parallel = new InPartitionParallel(
    { mode, concurrency, step: c.step },
    assignment,
    () => ctx,
    () => {},
  );
  const emitted: unknown[] = [];
  const out = {
    emit: async (b: Batch<unknown>) => {
      emitted.push(...b.records);
    },
    signal: async () => {},
  };
  /** Reads the record `id` at offset `id` of partition `t:0` with `key`, as the read loop does. */
  const read = (id: number, key?: string) => {
    const name = assignment.nameOf('t', 0);
    const m = { topic: 't', partition: 0, offset: BigInt(id), leaderEpoch: 0 } as unknown as KafkaMessage;
    const t = assignment.trackerOf(name, m);
    assert.ok(t.offsets.admit(id));
    const meta: RecordMeta = {
      source: 'in',
      position: { topic: 't', partition: 0, offset: id },
      ...(key ? { key } : {}),
    };
    parallel.dispatch(name, id, { id }, meta);
  };
  return { ...c, assignment, parallel, out, emitted, read, deadLetters, ctx, clock };
}

describe('kafka in-partition parallel', () => {
  it('emits in completion order and never commits past an unfinished record (the low watermark)', async () => {
    const s = setup('unordered');
    for (let id = 0; id < 5; id++) s.read(id);
    assert.deepEqual(s.started, [0, 1, 2, 3, 4]);
    for (const id of [4, 1, 2]) s.calls.get(id)?.resolve({ id });
    await tick();
    await s.parallel.emitFinished(s.out);
    assert.deepEqual(s.emitted, [{ id: 4 }, { id: 1 }, { id: 2 }]);
    // 0 is stuck: the commit stays at 0, with 1, 2 and 4 done beyond it.
    assert.deepEqual(s.assignment.position(), { 't:0': 0, 't:0#done': encodeDone(0, [1, 2, 4]) });
    s.calls.get(0)?.resolve({ id: 0 });
    await tick();
    await s.parallel.emitFinished(s.out);
    assert.deepEqual(s.assignment.position(), { 't:0': 3, 't:0#done': encodeDone(3, [4]) });
    s.calls.get(3)?.reject(new Error('lookup failed'));
    await tick();
    await s.parallel.emitFinished(s.out);
    assert.deepEqual(s.deadLetters, [{ id: 3 }], 'a failed record is dead-lettered and counts as done');
    assert.deepEqual(s.assignment.position(), { 't:0': 5 });
    assert.equal(s.parallel.busy, false);
  });

  it('`key` mode: records of one key never overlap and finish in offset order; other keys run meanwhile', async () => {
    const s = setup('key');
    s.read(0, 'a');
    s.read(1, 'a');
    s.read(2, 'b');
    assert.deepEqual(s.started, [0, 2], 'the second `a` waits for the first');
    assert.equal(s.parallel.inFlight, 3);
    s.calls.get(2)?.resolve({ id: 2 });
    s.calls.get(0)?.resolve({ id: 0 });
    await tick();
    assert.deepEqual(s.started, [0, 2, 1]);
    s.calls.get(1)?.resolve({ id: 1 });
    await tick();
    await s.parallel.emitFinished(s.out);
    assert.deepEqual(s.emitted, [{ id: 2 }, { id: 0 }, { id: 1 }]);
    assert.deepEqual(s.assignment.position(), { 't:0': 3 });
  });

  it('takes no more records than `concurrency`, and treats arrays, null and undefined like a module step', async () => {
    const s = setup('unordered', 2);
    s.read(0);
    assert.ok(s.parallel.hasRoom());
    s.read(1);
    assert.ok(!s.parallel.hasRoom());
    s.calls.get(0)?.resolve([
      { id: 0, n: 1 },
      { id: 0, n: 2 },
    ]);
    s.calls.get(1)?.resolve(null);
    await tick();
    assert.ok(s.parallel.hasRoom());
    const done = await s.parallel.emitFinished(s.out);
    assert.deepEqual(done, { finished: 2, emitted: 2 });
    assert.deepEqual(s.emitted, [
      { id: 0, n: 1 },
      { id: 0, n: 2 },
    ]);
    assert.deepEqual(s.assignment.position(), { 't:0': 2 });
  });

  it('before partitions are given up, lets the records in the step finish and emits them', async () => {
    const s = setup('unordered');
    s.assignment.update(new Set(['t:0']));
    for (let id = 0; id < 4; id++) s.read(id);
    s.calls.get(2)?.resolve({ id: 2 });
    const finishing = s.parallel.finishInFlight(s.out, 4000, s.clock, s.ctx.signal);
    await tick();
    assert.deepEqual(s.emitted, [{ id: 2 }], 'what finished is emitted at once');
    for (const id of [3, 0, 1]) s.calls.get(id)?.resolve({ id });
    const { emitted, unfinished } = await finishing;
    assert.equal(emitted, 4);
    assert.equal(unfinished.size, 0);
    assert.deepEqual(s.assignment.position(), { 't:0': 4 }, 'the hand-over commit covers every record');
    assert.equal(s.parallel.busy, false);
  });

  for (const scoped of [false, true]) {
    it(`gives up after the timeout, names the records left, and drops their results once the partition is gone${scoped ? ' (partition scope)' : ''}`, async () => {
      // Under partition scope a revoked partition keeps its tracker until a checkpoint releases it.
      const scope = scoped ? ({ assign() {} } as unknown as PartitionStateAccess) : undefined;
      const s = setup('unordered', 16, scope);
      s.assignment.update(new Set(['t:0']));
      for (let id = 0; id < 3; id++) s.read(id);
      s.calls.get(1)?.resolve({ id: 1 });
      const finishing = s.parallel.finishInFlight(s.out, 4000, s.clock, s.ctx.signal);
      await tick();
      s.clock.advance(4000);
      const { emitted, unfinished } = await finishing;
      assert.equal(emitted, 1);
      assert.deepEqual([...unfinished], [['t:0', [0, 2]]]);
      assert.equal(describeUnfinished(unfinished), '`t:0` offsets 0, 2');
      s.assignment.update(new Set()); // the rebalance goes on: t:0 is given up
      s.calls.get(0)?.resolve({ id: 0 });
      s.calls.get(2)?.resolve({ id: 2 });
      await tick();
      await s.parallel.emitFinished(s.out);
      assert.deepEqual(
        s.emitted,
        [{ id: 1 }],
        'results after the hand-over are dropped (the next owner redoes them)',
      );
    });
  }

  it('describes many unfinished records briefly', () => {
    assert.equal(
      describeUnfinished(
        new Map([
          ['t:0', [1, 2, 3, 4, 5, 6, 7]],
          ['t:3', [9]],
        ]),
      ),
      '`t:0` offsets 1, 2, 3, 4, 5 and 2 more; `t:3` offset 9',
    );
  });

  it('whenSettled resolves when a step settles, at once when a result waits, or after the time given', async () => {
    const s = setup('unordered');
    s.assignment.update(new Set(['t:0']));
    s.read(0);
    s.read(1);
    let woke = false;
    const waiting = s.parallel.whenSettled(1000, s.clock, s.ctx.signal).then(() => {
      woke = true;
    });
    await tick();
    assert.equal(woke, false);
    s.calls.get(0)?.resolve({ id: 0 });
    await waiting;
    await s.parallel.whenSettled(1000, s.clock, s.ctx.signal); // a result waits: at once
    await s.parallel.emitFinished(s.out);
    const timed = s.parallel.whenSettled(1000, s.clock, s.ctx.signal);
    await tick();
    s.clock.advance(1000);
    await timed;
    assert.equal(s.parallel.inFlight, 1, 'record 1 is still in the step');
  });
});
