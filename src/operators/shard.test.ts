import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { keyGroupOf, keyGroupRange, shardOfKeyGroup } from '../core/keygroups.ts';
import { OperatorHarness } from './harness.ts';
import { keyBy, keyFunction, shard, shardPort } from './shard.ts';

interface Ev {
  user: string;
  n: number;
}

test('shard sends every record of a key to the shard owning its key group', async () => {
  const h = new OperatorHarness(shard<Ev>({ key: 'user', shards: 4, maxKeyGroups: 64 }));
  await h.open();
  const records = Array.from({ length: 400 }, (_, n) => ({ user: `u${n % 37}`, n }));
  await h.process(records);
  let total = 0;
  for (let s = 0; s < 4; s++) {
    const got = h.records(shardPort(s));
    total += got.length;
    for (const r of got) assert.equal(shardOfKeyGroup(keyGroupOf(r.user, 64), 4, 64), s);
    // Order inside a shard is input order.
    assert.deepEqual(
      got.map((r) => r.n),
      [...got.map((r) => r.n)].sort((a, b) => a - b),
    );
  }
  assert.equal(total, 400);
});

test('changing the shard count 4→3 moves whole key groups, in contiguous ranges, and never splits a key', () => {
  const max = 256;
  const keys = Array.from({ length: 5000 }, (_, i) => `key-${i}`);
  for (const shards of [4, 3]) {
    // Key group → shard is monotone: each shard owns one contiguous range.
    let prev = 0;
    for (let kg = 0; kg < max; kg++) {
      const s = shardOfKeyGroup(kg, shards, max);
      assert.ok(s === prev || s === prev + 1, `key group ${kg} jumps from shard ${prev} to ${s}`);
      prev = s;
      const r = keyGroupRange(s, shards, max);
      assert.ok(kg >= r.start && kg < r.end);
    }
    assert.equal(prev, shards - 1);
  }
  // Every key of one key group lands in the same shard, before and after rescaling.
  const groupShard = new Map<number, [number, number]>();
  for (const k of keys) {
    const kg = keyGroupOf(k, max);
    const pair: [number, number] = [shardOfKeyGroup(kg, 4, max), shardOfKeyGroup(kg, 3, max)];
    const seen = groupShard.get(kg);
    if (seen) assert.deepEqual(pair, seen, `key ${k} split from its key group ${kg}`);
    else groupShard.set(kg, pair);
  }
});

test('key selectors: a field, several fields, a function', () => {
  const one = keyFunction<Record<string, unknown>>('a');
  assert.equal(one({ a: 'x' }), 'x');
  assert.equal(one({ a: 5 }), '5');
  assert.equal(one({}), '');
  const bytes = new Uint8Array([1, 2]);
  assert.equal(one({ a: bytes }), bytes);
  const two = keyFunction<Record<string, unknown>>(['a', 'b']);
  assert.equal(two({ a: 'x', b: 1 }), 'x\u001f1');
  assert.notEqual(two({ a: 'a b', b: 'c' }), two({ a: 'a', b: 'b c' }));
  assert.equal(keyFunction<{ id: number }>((r) => r.id)({ id: 3 }), 3);
  assert.throws(() => keyFunction([]), /at least one field/);
  fc.assert(
    fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (a, b, c, d) => {
      // Composite keys of separator-free parts collide only when the parts are equal.
      fc.pre(![a, b, c, d].some((s) => s.includes('\u001f')));
      const same = two({ a, b }) === two({ a: c, b: d });
      return same === (a === c && b === d);
    }),
  );
});

test('shard dead-letters a record whose key function throws', async () => {
  const h = new OperatorHarness(
    shard<{ id?: string }>({
      key: (r) => {
        if (r.id === undefined) throw new Error('no id');
        return r.id;
      },
      shards: 2,
    }),
  );
  await h.open();
  await h.process([{ id: 'a' }, {}, { id: 'b' }]);
  assert.equal(h.records(shardPort(0)).length + h.records(shardPort(1)).length, 2);
  assert.deepEqual(
    h.deadLetters.map((d) => (d.error as Error).message),
    ['no id'],
  );
});

test('shard rejects a shard count outside 1..maxKeyGroups', () => {
  assert.throws(
    () => shard({ key: 'a', shards: 0 }),
    /shards must be a whole number from 1 to maxKeyGroups \(256\)/,
  );
  assert.throws(() => shard({ key: 'a', shards: 9, maxKeyGroups: 8 }), /raise maxKeyGroups/);
});

test('keyBy stamps the key into meta and keeps the rest of the meta', async () => {
  const h = new OperatorHarness(keyBy<Ev>({ key: ['user', 'n'] }), { name: 'kb' });
  await h.open();
  await h.process([{ user: 'a', n: 1 }], [{ source: 'in', position: { line: 4 } }]);
  await h.process([{ user: 'b', n: 2 }]);
  assert.deepEqual(h.metas(), [
    { source: 'in', position: { line: 4 }, key: 'a\u001f1' },
    { source: 'kb', key: 'b\u001f2' },
  ]);
});
