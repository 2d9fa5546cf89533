import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barrier, type RecordMeta, watermark } from '../core/message.ts';
import { batch } from './batch.ts';
import { OperatorHarness } from './harness.ts';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

test('batch re-chunks into batches of exactly `size` and keeps the rest', async () => {
  const h = new OperatorHarness(batch<number>({ size: 3, maxWait: '1s' }));
  await h.open();
  await h.process(range(0, 2));
  assert.equal(h.outputs.length, 0);
  await h.process(range(2, 9));
  assert.deepEqual(
    h.batches().map((b) => b.records),
    [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8],
    ],
  );
  await h.process([9]);
  await h.finish();
  assert.deepEqual(h.batches()[3]?.records, [9]);
});

test('batch flushes a partial batch `maxWait` after its first record, not before', async () => {
  const h = new OperatorHarness(batch<number>({ size: 100, maxWait: '500ms' }));
  await h.open();
  h.clock.advance(1000);
  await h.process([1]);
  h.clock.advance(300);
  await h.process([2]);
  assert.equal(h.outputs.length, 0);
  assert.equal(await h.fireTimerIfDue(), false);
  h.clock.advance(199);
  assert.equal(await h.fireTimerIfDue(), false);
  h.clock.advance(1);
  assert.equal(await h.fireTimerIfDue(), true);
  assert.deepEqual(h.records(), [1, 2]);
  // An empty buffer asks for no timer.
  assert.equal(await h.fireTimerIfDue(), false);
  // The next partial batch starts its own wait.
  h.clock.advance(10);
  await h.process([3]);
  h.clock.advance(499);
  assert.equal(await h.fireTimerIfDue(), false);
  h.clock.advance(1);
  assert.equal(await h.fireTimerIfDue(), true);
  assert.deepEqual(h.records(), [1, 2, 3]);
});

test('batch flushes an overdue partial batch on the next input even if no timer ran (steady load)', async () => {
  const h = new OperatorHarness(batch<number>({ size: 100, maxWait: 100 }));
  await h.open();
  await h.process([1]);
  h.clock.advance(150);
  await h.process([2]);
  assert.deepEqual(
    h.batches().map((b) => b.records),
    [[1, 2]],
  );
});

test('a sink holding an emitted batch never sees it change', async () => {
  const h = new OperatorHarness(batch<number>({ size: 2, maxWait: '1s' }));
  await h.open();
  await h.process([1, 2, 3]);
  const held = h.batches()[0];
  assert.ok(held);
  const copy = [...held.records];
  await h.process([4, 5, 6, 7]);
  h.clock.advance(1000);
  await h.fireTimerIfDue();
  await h.finish();
  assert.deepEqual(held.records, copy);
  // Every emitted batch is its own array.
  const arrays = new Set(h.batches().map((b) => b.records));
  assert.equal(arrays.size, h.batches().length);
  assert.deepEqual(h.records(), [1, 2, 3, 4, 5, 6, 7]);
});

test('batch flushes before forwarding a barrier', async () => {
  const h = new OperatorHarness(batch<number>({ size: 10, maxWait: '1s' }));
  await h.open();
  await h.process([1, 2]);
  await h.signal(barrier(7));
  assert.deepEqual(h.outputs, [
    { port: 'out', batch: { kind: 'batch', records: [1, 2] } },
    { signal: barrier(7) },
  ]);
  // With nothing buffered the barrier goes straight through.
  await h.signal(barrier(8));
  assert.deepEqual(h.outputs.at(-1), { signal: barrier(8) });
});

test('batch holds a watermark back until the records before it have left', async () => {
  const h = new OperatorHarness(batch<number>({ size: 3, maxWait: '1s' }));
  await h.open();
  await h.signal(watermark(5));
  assert.deepEqual(h.outputs, [{ signal: watermark(5) }]);
  await h.process([1, 2]);
  await h.signal(watermark(10));
  assert.equal(h.outputs.length, 1, 'the watermark must not overtake buffered records');
  await h.process([3, 4]);
  assert.deepEqual(h.outputs.slice(1), [
    { port: 'out', batch: { kind: 'batch', records: [1, 2, 3] } },
    { signal: watermark(10) },
  ]);
  await h.finish();
  assert.deepEqual(h.records(), [1, 2, 3, 4]);
});

test('batch keeps meta aligned, filling undefined for input batches without meta', async () => {
  const h = new OperatorHarness(batch<number>({ size: 4, maxWait: '1s' }));
  await h.open();
  const m = (i: number): RecordMeta => ({ source: 's', position: { i } });
  await h.process([1, 2]);
  await h.process([3, 4, 5], [m(3), m(4), m(5)]);
  await h.finish();
  const [b1, b2] = h.batches();
  assert.deepEqual(b1?.records, [1, 2, 3, 4]);
  assert.deepEqual(b1?.meta, [undefined, undefined, m(3), m(4)]);
  assert.deepEqual(b2?.records, [5]);
  assert.deepEqual(b2?.meta, [m(5)]);
  // No meta at all in: no meta out.
  const h2 = new OperatorHarness(batch<number>({ size: 2, maxWait: '1s' }));
  await h2.open();
  await h2.process([1, 2]);
  assert.equal(h2.batches()[0]?.meta, undefined);
});

test('batch rejects a bad size or maxWait', () => {
  assert.throws(() => batch({ size: 0, maxWait: '1s' }), /batch size must be a whole number ≥ 1, got 0/);
  assert.throws(() => batch({ size: 2.5, maxWait: '1s' }), /batch size/);
  assert.throws(() => batch({ size: 2, maxWait: '5 minutes' }), /`5 minutes` is not a duration/);
});
