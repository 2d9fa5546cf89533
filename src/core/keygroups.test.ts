import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SluiceError } from './errors.ts';
import { hashKey, keyGroupOf, keyGroupRange, murmur3, shardOfKeyGroup } from './keygroups.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

test('murmur3 matches the reference vectors of MurmurHash3_x86_32', () => {
  assert.equal(murmur3(utf8(''), 0), 0);
  assert.equal(murmur3(utf8(''), 1), 0x514e28b7);
  assert.equal(murmur3(utf8(''), 0xffffffff), 0x81f16f39);
  assert.equal(murmur3(utf8('hello'), 0), 0x248bfa47);
  assert.equal(murmur3(utf8('test'), 0), 0xba6bd213);
  assert.equal(murmur3(utf8('a'), 0x9747b28c), 0x7fa09ea6);
  assert.equal(murmur3(utf8('abc'), 0x9747b28c), 0xc84a62dd);
  assert.equal(murmur3(utf8('aaaa'), 0x9747b28c), 0x5a97808a);
  assert.equal(murmur3(utf8('Hello, world!'), 0x9747b28c), 0x24884cba);
  assert.equal(murmur3(utf8('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd);
});

test('hashKey hashes strings as UTF-8 bytes, numbers as decimal strings', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => hashKey(s) === murmur3(utf8(s))),
  );
  assert.equal(hashKey(42), hashKey('42'));
  assert.equal(hashKey(42n), hashKey('42'));
  assert.equal(hashKey(utf8('é€😀')), hashKey('é€😀'));
  // A long key after short ones must not reuse a stale part of the scratch buffer.
  const long = 'x'.repeat(5000);
  assert.equal(hashKey(long), murmur3(utf8(long)));
  assert.equal(hashKey('ab'), murmur3(utf8('ab')));
});

test('keyGroupOf is in range and stable', () => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 1, max: 1 << 15 }), (key, max) => {
      const kg = keyGroupOf(key, max);
      return Number.isInteger(kg) && kg >= 0 && kg < max && kg === keyGroupOf(key, max);
    }),
  );
});

test('keyGroupOf spreads keys evenly enough', () => {
  const counts = new Array(16).fill(0);
  for (let i = 0; i < 16_000; i++) counts[keyGroupOf(`user-${i}`, 16)]++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `bucket with ${c} of 16000 keys`);
});

test('shardOfKeyGroup and keyGroupRange are inverse, contiguous and cover every group', () => {
  fc.assert(
    fc.property(
      fc
        .integer({ min: 1, max: 4096 })
        .chain((max) => fc.tuple(fc.constant(max), fc.integer({ min: 1, max }))),
      ([max, shards]) => {
        let expectStart = 0;
        for (let s = 0; s < shards; s++) {
          const { start, end } = keyGroupRange(s, shards, max);
          if (start !== expectStart || end < start) return false;
          for (const kg of [start, end - 1])
            if (kg >= start && kg < end && shardOfKeyGroup(kg, shards, max) !== s) return false;
          expectStart = end;
        }
        return expectStart === max;
      },
    ),
  );
  for (let kg = 0; kg < 256; kg++) {
    const s = shardOfKeyGroup(kg, 3, 256);
    const r = keyGroupRange(s, 3, 256);
    assert.ok(kg >= r.start && kg < r.end);
  }
  assert.deepEqual(keyGroupRange(1, 4, 256), { start: 64, end: 128 });
});

test('shards must be 1..maxKeyGroups and maxKeyGroups ≥ 1', () => {
  assert.throws(() => shardOfKeyGroup(0, 0, 256), SluiceError);
  assert.throws(() => shardOfKeyGroup(0, 257, 256), /raise maxKeyGroups/);
  assert.throws(() => shardOfKeyGroup(0, 1.5, 256), SluiceError);
  assert.throws(() => keyGroupRange(0, 2, 0), /maxKeyGroups must be/);
  assert.throws(() => keyGroupRange(2, 2, 256), /shard must be a whole number from 0 to 1/);
});
