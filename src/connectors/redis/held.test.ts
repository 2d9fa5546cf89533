import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldEntries } from './held.ts';

test('held entries: FIFO drop, grouping by stream, membership after pushes and drops, compaction', () => {
  const h = new HeldEntries();
  const ids: [string, string][] = [];
  for (let i = 0; i < 5000; i++) ids.push([i % 3 === 0 ? 'b' : 'a', `${i}-0`]);
  for (const [s, id] of ids.slice(0, 10)) h.push(s, id);
  assert.equal(h.has('a', '1-0'), true);
  assert.equal(h.has('b', '1-0'), false, 'membership is per stream');
  // Pushes after the index was built are indexed too.
  for (const [s, id] of ids.slice(10)) h.push(s, id);
  assert.equal(h.size, 5000);
  assert.equal(h.has('b', '4998-0'), true);
  const first = h.firstByStream(6);
  assert.deepEqual(first.get('a'), ['1-0', '2-0', '4-0', '5-0']);
  assert.deepEqual(first.get('b'), ['0-0', '3-0']);
  h.drop(6);
  assert.equal(h.has('a', '1-0'), false, 'dropped entries are no longer held');
  assert.equal(h.has('b', '6-0'), true);
  // Past the compaction threshold the order and contents stay the same.
  h.drop(3000);
  assert.equal(h.size, 1994);
  assert.deepEqual([...h.firstByStream(2).values()].flat().sort(), ['3006-0', '3007-0']);
  h.drop(10_000);
  assert.equal(h.size, 0);
  assert.equal(h.firstByStream(5).size, 0);
});
