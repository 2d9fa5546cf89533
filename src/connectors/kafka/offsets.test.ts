/**
 * Property tests of the per-partition offset tracker: completions in random orders, a stuck
 * record, and a restart from the commit point that must process exactly the records not done.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DONE_SUFFIX, partitionName, splitPartitionName } from '../../core/partitions.ts';
import {
  byTopic,
  decodeDone,
  encodeDone,
  MAX_METADATA_CHARS,
  MAX_SPAN,
  PartitionOffsets,
  parsePosition,
} from './offsets.ts';

/** Offsets a partition delivers: increasing from `start`, with holes (compaction, markers). */
const deliveries = fc
  .tuple(fc.nat(1000), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 200 }))
  .map(([start, steps]) => {
    const offsets: number[] = [];
    let o = start;
    for (const s of steps) {
      offsets.push(o);
      o += s;
    }
    return offsets;
  });

/** A permutation of `0..n-1` and how many of its completions happen. */
function completionOrder(n: number) {
  return fc.tuple(fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }), fc.nat(n));
}

describe('PartitionOffsets', () => {
  test('the commit point is the first offset not done, whatever the completion order', () => {
    fc.assert(
      fc.property(
        deliveries.chain((offsets) => fc.tuple(fc.constant(offsets), completionOrder(offsets.length))),
        ([offsets, [order, count]]) => {
          const p = new PartitionOffsets(offsets[0] as number);
          for (const o of offsets) assert.equal(p.admit(o), true);
          const done = new Set<number>();
          for (const i of order.slice(0, count)) {
            assert.equal(p.complete(offsets[i] as number), true);
            done.add(offsets[i] as number);
          }
          const firstPending = offsets.find((o) => !done.has(o));
          const expected = firstPending ?? (offsets.at(-1) as number) + 1;
          const point = p.commitPoint();
          assert.equal(point.offset, expected);
          assert.equal(p.pending, offsets.length - done.size);
          // The metadata names exactly the done records beyond the commit point.
          const beyond = [...done].filter((o) => o > expected).sort((a, b) => a - b);
          assert.deepEqual(
            [...decodeDone(point.metadata, point.offset)].sort((a, b) => a - b),
            beyond,
          );
        },
      ),
    );
  });

  test('a stuck record holds the commit point while every later record finishes', () => {
    fc.assert(
      fc.property(
        deliveries.filter((o) => o.length >= 2),
        fc.nat(),
        (offsets, pick) => {
          const stuck = offsets[pick % offsets.length] as number;
          const p = new PartitionOffsets(offsets[0] as number);
          for (const o of offsets) p.admit(o);
          for (const o of offsets) if (o !== stuck) p.complete(o);
          assert.equal(p.commitPoint().offset, stuck, 'nothing past the stuck record is committed');
          assert.equal(p.pending, 1);
          p.complete(stuck);
          assert.deepEqual(p.commitPoint(), { offset: (offsets.at(-1) as number) + 1, metadata: undefined });
        },
      ),
    );
  });

  test('a restart from the commit point processes exactly the records that were not done', () => {
    fc.assert(
      fc.property(
        deliveries.chain((offsets) => fc.tuple(fc.constant(offsets), completionOrder(offsets.length))),
        ([offsets, [order, count]]) => {
          const first = new PartitionOffsets(offsets[0] as number);
          for (const o of offsets) first.admit(o);
          const done = new Set(order.slice(0, count).map((i) => offsets[i] as number));
          for (const o of done) first.complete(o);
          const point = first.commitPoint();

          // The restarted consumer reads from the committed offset on (re-deliveries included).
          const second = new PartitionOffsets(point.offset, decodeDone(point.metadata, point.offset));
          const processed: number[] = [];
          for (const o of offsets) if (o >= point.offset && second.admit(o)) processed.push(o);
          assert.deepEqual(
            processed,
            offsets.filter((o) => !done.has(o)),
          );
          for (const o of processed) second.complete(o);
          assert.equal(second.commitPoint().offset, (offsets.at(-1) as number) + 1);
        },
      ),
    );
  });

  test('re-deliveries after a rejoin are skipped, not processed twice', () => {
    const p = new PartitionOffsets(5);
    assert.deepEqual(
      [5, 6, 7].map((o) => p.admit(o)),
      [true, true, true],
    );
    p.complete(5);
    // The group rewound to its committed offset 5: 5..7 come again.
    assert.deepEqual(
      [5, 6, 7, 8].map((o) => p.admit(o)),
      [false, false, false, true],
    );
    assert.equal(p.pending, 3);
  });

  test('completing an unknown or finished offset is refused', () => {
    const p = new PartitionOffsets(0);
    p.admit(0);
    assert.equal(p.complete(3), false);
    assert.equal(p.complete(0), true);
    assert.equal(p.complete(0), false);
  });

  test('the widest span a source allows still fits in Kafka commit metadata', () => {
    const all = Array.from({ length: MAX_SPAN - 1 }, (_, i) => i + 1);
    const meta = encodeDone(0, all) as string;
    assert.ok(meta.length <= MAX_METADATA_CHARS, `${meta.length} chars`);
    assert.equal(decodeDone(meta, 0).size, all.length);
  });

  test('metadata for another offset or from another writer is ignored', () => {
    const meta = encodeDone(10, [12, 13]);
    assert.equal(meta, 's1:10:Bg');
    assert.deepEqual(decodeDone(meta, 11), new Set());
    assert.deepEqual(decodeDone('{"app":"other"}', 10), new Set());
    assert.deepEqual(decodeDone(null, 10), new Set());
  });
});

describe('positions', () => {
  test('a position parses back into resume points', () => {
    const key = partitionName('orders.v1', 3);
    const points = parsePosition({ [key]: 42, [`${key}${DONE_SUFFIX}`]: encodeDone(42, [44]) as string });
    assert.deepEqual(points, [{ topic: 'orders.v1', partition: 3, offset: 42, done: new Set([44]) }]);
  });

  test('a position from another source is refused with its entry named', () => {
    assert.throws(() => parsePosition({ line: 7, byte: 100 }), /`line` = 7 is not a Kafka/);
  });

  test('a position key splits back into its topic and partition, and keys group by topic', () => {
    assert.deepEqual(splitPartitionName(partitionName('a:b', 7)), { topic: 'a:b', partition: 7 });
    assert.deepEqual(byTopic(['x:0', 'y:2', 'x:1']), [
      { topic: 'x', partitions: [0, 1] },
      { topic: 'y', partitions: [2] },
    ]);
  });
});

describe('PartitionOffsets.pass', () => {
  test('reads in order, done at once: the same commit points as admit + complete', () => {
    fc.assert(
      fc.property(deliveries, fc.array(fc.nat(), { maxLength: 20 }), (offsets, redelivered) => {
        const a = new PartitionOffsets(offsets[0] as number, [offsets.at(-1) as number]);
        const b = new PartitionOffsets(offsets[0] as number, [offsets.at(-1) as number]);
        const stream = [...offsets, ...redelivered.map((i) => offsets[i % offsets.length] as number)];
        for (const o of stream) {
          const admitted = a.admit(o);
          if (admitted) a.complete(o);
          assert.equal(b.pass(o), admitted);
          assert.deepEqual(b.commitPoint(), a.commitPoint());
        }
      }),
    );
  });
});
