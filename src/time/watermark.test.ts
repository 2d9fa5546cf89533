import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputPartitions, inputPartitionKey } from '../core/input-partitions.ts';
import { WatermarkGenerator } from './watermark.ts';

const meta = (partition: number) => ({ source: 'in', position: { topic: 't', partition, offset: 0 } });
const key = (partition: number) => inputPartitionKey('in', partition);

test('an owned partition not seen yet holds the watermark until its first record', () => {
  const inputs = new InputPartitions();
  const g = new WatermarkGenerator({ maxOutOfOrder: 5000 });
  g.attach(inputs);
  inputs.assign('in', [key(0), key(1)], 0);
  g.observeMeta(120_000, meta(0), 0); // the first fetch of partition 0: two minutes of event time
  assert.equal(g.current(0), Number.NEGATIVE_INFINITY, 'partition 1 has delivered nothing yet');
  g.observeMeta(1_000, meta(1), 0);
  assert.equal(g.current(0), 1_000 - 5000 - 1);
  g.observeMeta(130_000, meta(1), 0);
  assert.equal(g.current(0), 120_000 - 5000 - 1);
});

test('a partition assigned mid-run holds the watermark where it stood until it delivers', () => {
  const inputs = new InputPartitions();
  const g = new WatermarkGenerator({ maxOutOfOrder: 0 });
  g.attach(inputs);
  inputs.assign('in', [key(0)], 0);
  g.observeMeta(10_000, meta(0), 0);
  assert.equal(g.current(0), 9_999);
  inputs.assign('in', [key(0), key(1)], 5); // a rebalance gives this member partition 1
  g.observeMeta(60_000, meta(0), 6);
  assert.equal(g.current(6), 9_999, 'partition 0 alone cannot move it while partition 1 is due');
  g.observeMeta(10_500, meta(1), 7); // not late: the watermark waited
  assert.equal(g.current(7), 10_499);
});

test('a revoked partition stops counting; a caught-up or idle one stops holding', () => {
  const inputs = new InputPartitions();
  const g = new WatermarkGenerator({ maxOutOfOrder: 0, idleTimeout: 1000 });
  g.attach(inputs);
  inputs.assign('in', [key(0), key(1), key(2), key(3)], 0);
  g.observeMeta(5_000, meta(0), 0);
  g.observeMeta(9_000, meta(1), 0);
  assert.equal(g.current(0), Number.NEGATIVE_INFINITY);
  inputs.caughtUp('in', key(2)); // read to its end without a record
  assert.equal(g.nextIdleCheck(0), 1000, 'partition 3 stops holding 1 s after its assignment');
  assert.equal(g.current(10), Number.NEGATIVE_INFINITY, 'partition 3 still holds');
  g.observeMeta(5_500, meta(0), 999);
  g.observeMeta(9_500, meta(1), 999);
  assert.equal(g.current(1000), 5_499, 'partition 3 is idle since its assignment');
  inputs.assign('in', [key(1), key(2), key(3)], 1001); // partition 0 went to another member
  assert.equal(g.current(1001), 9_499);
});

test('without attach the generator ignores ownership (as before)', () => {
  const g = new WatermarkGenerator({ maxOutOfOrder: 0 });
  g.observeMeta(10_000, meta(0), 0);
  assert.equal(g.current(0), 9_999);
});
