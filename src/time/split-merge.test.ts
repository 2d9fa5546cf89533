import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Aggregate } from '../aggregate/aggregate.ts';
import { compileAggregate } from '../aggregate/parse.ts';
import { WindowMerger, WindowPacker } from './split-merge.ts';
import type { SavedWindow } from './window-core.ts';

const AGGS = [compileAggregate('count()'), compileAggregate('sum(amount)')] as Aggregate[];

/** A saved window of key `k` in bucket `[start, start + 60)` holding `values` (saved as one accumulator). */
function saved(k: string, start: number, values: readonly string[]): SavedWindow {
  const accs = AGGS.map((g) => {
    let acc = g.create();
    for (const v of values) acc = g.add(acc, g.prepare(v), start);
    return g.save(acc);
  });
  return { ck: k, key: { k }, start, end: start + 60, accs, revision: 0, dirty: true, closed: false, n: 0 };
}

/** What `merger` holds: per bucket in start order, its keys in order with their results. */
function contents(merger: WindowMerger): [number, [string, string[]][]][] {
  return merger
    .buckets()
    .map((b) => [
      b.start,
      [...b.wins.values()].map((w) => [w.ck, w.accs.map((a, j) => String((AGGS[j] as Aggregate).result(a)))]),
    ]);
}

describe('WindowPacker', () => {
  it('sends each key once per range and the windows as columns', () => {
    const packer = new WindowPacker();
    const a = packer.pack([saved('x', 0, ['1.50']), saved('y', 0, ['2']), saved('x', 60, ['3'])]);
    assert.deepEqual(a.keys, ['x', 'y']);
    assert.deepEqual([...a.key], [0, 1, 0]);
    assert.deepEqual([...a.start], [0, 0, 60]);
    assert.deepEqual([...a.end], [60, 60, 120]);
    assert.equal(a.accs.length, 3 * AGGS.length);
    const b = packer.pack([saved('y', 120, ['1']), saved('z', 120, ['1'])]);
    assert.deepEqual(b.keys, ['z'], 'a key sent before is not sent again');
    assert.deepEqual([...b.key], [1, 2]);
    assert.deepEqual(
      WindowPacker.transfers(b).map((t) => t.byteLength),
      [8, 16, 16],
    );
  });
});

describe('WindowMerger', () => {
  it('merges packed and saved windows alike, in the order of the ranges whatever order they come in', () => {
    const merger = new WindowMerger(AGGS, 3);
    const p1 = new WindowPacker();
    const p2 = new WindowPacker();
    // Range 2 and range 1 report before range 0 is done: their windows wait for it.
    merger.add(2, p2.pack([saved('c', 0, ['5']), saved('a', 60, ['1'])]));
    merger.add(1, p1.pack([saved('b', 0, ['0.25']), saved('a', 0, ['1'])]));
    merger.add(0, [saved('a', 0, ['1.25', '2'])]);
    merger.done(2);
    merger.add(1, p1.pack([saved('b', 60, ['7'])]));
    assert.throws(() => merger.buckets(), /not done/);
    merger.done(0);
    merger.done(1);
    assert.deepEqual(contents(merger), [
      [
        0,
        [
          ['a', ['3', '4.25']],
          ['b', ['1', '0.25']],
          ['c', ['1', '5']],
        ],
      ],
      [
        60,
        [
          ['b', ['1', '7']],
          ['a', ['1', '1']],
        ],
      ],
    ]);
  });
});
