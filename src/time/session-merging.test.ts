import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MergingSessions, type Session } from './session-merging.ts';

interface S extends Session {
  id: string;
}

const session = (id: string, ck: string, start: number, end: number): S => ({
  id,
  ck,
  start,
  end,
  alive: true,
});

test('overlapping finds the sessions of one key that a range overlaps, oldest first', () => {
  const set = new MergingSessions<S>();
  set.insert(session('b', 'k', 20, 30));
  set.insert(session('a', 'k', 0, 10));
  set.insert(session('x', 'other', 0, 100));
  assert.equal(set.overlapping('k', 10, 20), undefined); // half-open: touching is not overlapping
  assert.equal(set.overlapping('none', 0, 100), undefined);
  assert.deepEqual(
    set.overlapping('k', 5, 25)?.map((s) => s.id),
    ['a', 'b'],
  );
});

test('merge calls the merge function once, before any change, then folds into the oldest', () => {
  const set = new MergingSessions<S>();
  const a = session('a', 'k', 0, 10);
  const b = session('b', 'k', 12, 22);
  set.insert(b);
  set.insert(a);
  const hits = set.overlapping('k', 8, 14) as S[];
  const calls: unknown[] = [];
  const grew = set.merge(hits, 8, 14, (h, start, end) => {
    calls.push([h.map((s) => [s.id, s.start, s.end, s.alive]), start, end]);
  });
  assert.deepEqual(calls, [
    [
      [
        ['a', 0, 10, true],
        ['b', 12, 22, true],
      ],
      0,
      22,
    ],
  ]);
  assert.equal(grew, true);
  assert.deepEqual([a.start, a.end, a.alive, b.alive], [0, 22, true, false]);
  assert.deepEqual([...set.lists()].flat(), [a]);
});

test('merge reports whether the target changed: an event inside a session does not grow it', () => {
  const set = new MergingSessions<S>();
  const a = session('a', 'k', 0, 10);
  set.insert(a);
  const inside = set.overlapping('k', 2, 6) as S[];
  assert.equal(
    set.merge(inside, 2, 6, () => {}),
    false,
  );
  assert.deepEqual([a.start, a.end], [0, 10]);
  const extends_ = set.overlapping('k', 5, 15) as S[];
  assert.equal(
    set.merge(extends_, 5, 15, () => {}),
    true,
  );
  assert.deepEqual([a.start, a.end], [0, 15]);
});

test('retire removes a session and forgets a key without sessions', () => {
  const set = new MergingSessions<S>();
  const a = session('a', 'k', 0, 10);
  const b = session('b', 'k', 20, 30);
  set.insert(a);
  set.insert(b);
  set.retire(a);
  assert.equal(a.alive, false);
  assert.deepEqual([...set.lists()].flat(), [b]);
  set.retire(b);
  assert.deepEqual([...set.lists()], []);
  set.insert(session('c', 'k', 0, 1));
  set.clear();
  assert.deepEqual([...set.lists()], []);
});
