import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordMeta } from '../core/message.ts';
import { OperatorHarness, settle } from './harness.ts';
import { throttle } from './throttle.ts';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Runs `steps` of `ms` each and returns how many records had passed after each step. */
async function passedPerStep(
  h: OperatorHarness<number, number>,
  steps: number,
  ms: number,
): Promise<number[]> {
  const seen: number[] = [];
  for (let s = 0; s < steps; s++) {
    h.clock.advance(ms);
    await settle();
    seen.push(h.records().length);
  }
  return seen;
}

test('bucket: a burst passes at once, then exactly `rate` per second', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 2, burst: 3 }));
  await h.open();
  const done = h.process(range(10));
  await settle();
  assert.equal(h.records().length, 3, 'the burst');
  // 2 per second = one every 500 ms.
  assert.deepEqual(await passedPerStep(h, 8, 250), [3, 4, 4, 5, 5, 6, 6, 7]);
  h.clock.advance(1500);
  await settle();
  assert.equal(h.records().length, 10);
  await done;
  assert.deepEqual(h.records(), range(10));
});

test('bucket: tokens refill up to `burst` while idle, never beyond', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 10, burst: 5 }));
  await h.open();
  await h.process(range(5));
  assert.equal(h.records().length, 5);
  h.clock.advance(60_000); // a long idle time still only refills `burst` tokens
  const done = h.process(range(8));
  await settle();
  assert.equal(h.records().length, 10);
  assert.deepEqual(await passedPerStep(h, 3, 100), [11, 12, 13]);
  await done;
});

test('bucket: default burst is one second of records', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 4 }));
  await h.open();
  const done = h.process(range(6));
  await settle();
  assert.equal(h.records().length, 4);
  assert.deepEqual(await passedPerStep(h, 2, 250), [5, 6]);
  await done;
});

test('pace: evenly spaced, no burst even after an idle time', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 10, mode: 'pace', burst: 50 }));
  await h.open();
  h.clock.advance(10_000);
  const done = h.process(range(5));
  await settle();
  assert.equal(h.records().length, 1);
  assert.deepEqual(await passedPerStep(h, 8, 50), [1, 2, 2, 3, 3, 4, 4, 5]);
  await done;
  // One record per emitted batch: pacing splits the batch.
  assert.equal(h.batches().length, 5);
});

test('throttle splits a batch keeping meta aligned, and forwards a batch that fits whole', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 1, burst: 2 }));
  await h.open();
  const meta: RecordMeta[] = range(3).map((i) => ({ source: 's', position: { i } }));
  const done = h.process(range(3), meta);
  await settle();
  h.clock.advance(1000);
  await done;
  assert.deepEqual(
    h.batches().map((b) => [b.records, b.meta?.map((m) => m?.position?.i)]),
    [
      [
        [0, 1],
        [0, 1],
      ],
      [[2], [2]],
    ],
  );
  h.clock.advance(5000);
  await h.process([7]);
  assert.equal(h.batches().length, 3);
});

test('throttle stops waiting when the run is cancelled', async () => {
  const h = new OperatorHarness(throttle<number>({ rate: 1, burst: 1 }));
  await h.open();
  const done = h.process(range(3));
  await settle();
  assert.equal(h.clock.pendingSleeps, 1);
  h.controller.abort(new Error('cancelled by test'));
  await assert.rejects(done, /cancelled by test/);
  assert.equal(h.clock.pendingSleeps, 0);
  assert.equal(h.records().length, 1);
});

test('throttle rejects a bad rate, burst or mode', () => {
  assert.throws(() => throttle({ rate: 0 }), /rate must be a number of records per second > 0, got 0/);
  assert.throws(() => throttle({ rate: Number.NaN }), /rate must be/);
  assert.throws(() => throttle({ rate: 1, burst: 0 }), /burst must be a whole number ≥ 1, got 0/);
  assert.throws(() => throttle({ rate: 1, burst: 1.5 }), /burst must be/);
  assert.throws(
    () => throttle({ rate: 1, mode: 'fast' as 'pace' }),
    /mode must be `bucket` or `pace`, got `fast`/,
  );
});
