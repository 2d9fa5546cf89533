/** The partitions of a `kafka` source (`assignment.ts`): what a rebalance changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Assignment } from './assignment.ts';

describe('Assignment', () => {
  it('counts changes of the owned partitions, not repeated reports of the same ones', () => {
    const forgotten: string[] = [];
    const a = new Assignment(
      () => undefined,
      (name) => forgotten.push(name),
    );
    assert.equal(a.changes, 0);
    a.update(new Set(['t:0', 't:1', 't:2']));
    assert.equal(a.changes, 1, 'the first assignment');
    a.update(new Set(['t:2', 't:1', 't:0']));
    assert.equal(a.changes, 1, 'the same partitions again (a rebalance event that changed nothing)');
    a.update(new Set(['t:0']));
    assert.equal(a.changes, 2, 'partitions revoked');
    assert.deepEqual(forgotten.sort(), ['t:1', 't:2']);
    a.update(new Set(['t:0', 't:1']));
    assert.equal(a.changes, 3, 'a partition handed over by a member that left');
    a.lost();
    a.update(new Set(['t:0', 't:1']));
    assert.equal(a.changes, 4, 'the first assignment after a lost connection');
  });
});
