import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldEntries, parseHeldText } from './held.ts';

test('held entries: FIFO drop, grouping by stream, membership after pushes and drops, compaction', () => {
  const h = new HeldEntries(['a', 'b']);
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
  // The text lists exactly the held ids, by stream.
  const listed = parseHeldText(h.text() as string, ['a', 'b']);
  assert.equal((listed.get('a')?.size ?? 0) + (listed.get('b')?.size ?? 0), 1994);
  assert.equal(listed.get('b')?.has('3006-0'), true);
  assert.equal(listed.get('a')?.has('3005-0'), false, 'dropped ids are not listed');
  h.drop(10_000);
  assert.equal(h.text(), '');
  assert.equal(h.size, 0);
  assert.equal(h.firstByStream(5).size, 0);
});
