import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dedupe } from './dedupe.ts';
import { OperatorHarness } from './harness.ts';

test('dedupe by count: repeats within the last maxIds ids are dropped, and the ids survive a snapshot', async () => {
  const op = dedupe<{ id: string }>({ key: 'id', maxIds: 3 });
  const h = new OperatorHarness(op);
  await h.open();
  await h.process(['a', 'b', 'a', 'c', 'b'].map((id) => ({ id })));
  assert.deepEqual(
    h.records().map((r) => r.id),
    ['a', 'b', 'c'],
  );
  const saved = structuredClone(op.snapshot?.(1));
  const again = dedupe<{ id: string }>({ key: 'id', maxIds: 3 });
  const h2 = new OperatorHarness(again);
  await h2.open();
  await again.restore?.(saved);
  await h2.process(['c', 'd', 'e', 'a', 'd'].map((id) => ({ id })));
  // a was forgotten once d and e pushed it out of the last 3.
  assert.deepEqual(
    h2.records().map((r) => r.id),
    ['d', 'e', 'a'],
  );
});

test('dedupe by event time: ids kept for `horizon` behind the newest, older records dead-lettered', async () => {
  const h = new OperatorHarness(
    dedupe<{ id: string; ts: number | string }>({ key: 'id', time: 'ts', horizon: 100 }),
  );
  await h.open();
  await h.process([
    { id: 'a', ts: 0 },
    { id: 'a', ts: 50 },
    { id: 'b', ts: '1970-01-01T00:00:00.150Z' },
    { id: 'a', ts: 160 }, // a (ts 0) is 150 behind: forgotten
    { id: 'x', ts: 10 }, // older than 160 - 100
  ]);
  assert.deepEqual(
    h.records().map((r) => `${r.id}@${r.ts}`),
    ['a@0', 'b@1970-01-01T00:00:00.150Z', 'a@160'],
  );
  assert.equal(h.deadLetters.length, 1);
  assert.match(String(h.deadLetters[0]?.error), /older than `horizon`/);
});

test('dedupe by ttl on the run clock', async () => {
  const h = new OperatorHarness(dedupe<{ id: string }>({ key: 'id', ttl: 1000 }));
  await h.open();
  await h.process([{ id: 'a' }, { id: 'a' }]);
  h.clock.advance(999);
  await h.process([{ id: 'a' }]);
  h.clock.advance(1);
  await h.process([{ id: 'a' }]);
  assert.equal(h.records().length, 2);
});

test('dedupe needs a horizon', () => {
  assert.throws(() => dedupe({ key: 'id' }), /give a horizon/);
});
