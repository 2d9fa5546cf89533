import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { ManualClock } from '../core/clock.ts';
import { keyGroupOf } from '../core/keygroups.ts';
import { memoryBackend } from './backend.ts';
import { KeyedStateStore } from './keyed.ts';

describe('KeyedStateStore', () => {
  it('scopes value, map, list and aggregating state to the current key', () => {
    const s = new KeyedStateStore();
    const v = s.valueState<number>('v');
    const m = s.mapState<string, number>('m');
    const l = s.listState<string>('l');
    const sum = s.aggregatingState('sum', {
      create: () => 0,
      add: (a: number, x: number) => a + x,
      result: (a) => a * 10,
    });
    s.setCurrentKey('a');
    v.set(1);
    m.set('x', 1);
    l.add('a1');
    sum.add(2);
    s.setCurrentKey('b');
    assert.equal(v.get(), undefined);
    assert.equal(m.size(), 0);
    assert.deepEqual(l.get(), []);
    assert.equal(sum.get(), undefined);
    s.setCurrentKey('a');
    sum.add(3);
    assert.deepEqual([v.get(), m.get('x'), l.get(), sum.get()], [1, 1, ['a1'], 50]);
    m.delete('x');
    assert.equal(m.has('x'), false);
  });

  it('throws when state is used before a key is set', () => {
    const s = new KeyedStateStore();
    assert.throws(() => s.valueState('v').get(), /no current key/);
  });

  it('expires entries after their TTL on the injected clock', () => {
    const clock = new ManualClock(0);
    const s = new KeyedStateStore({ clock });
    const v = s.valueState<string>('v', { ttl: { ttlMs: 100 } });
    s.setCurrentKey(7);
    v.set('x');
    clock.advance(99);
    assert.equal(v.get(), 'x');
    clock.advance(1);
    assert.equal(v.get(), undefined);
    v.set('y');
    clock.advance(150);
    assert.equal(s.count('v'), 0, 'expired entries do not count');
    assert.equal(s.snapshot().states.get('v')?.size ?? 0, 0, 'nor are they snapshotted');
  });

  it('survives v8 serialisation and restores only the key groups in range', () => {
    const s = new KeyedStateStore({ maxKeyGroups: 8 });
    const v = s.valueState<bigint>('v');
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', new Uint8Array([1, 2])];
    for (const k of keys) {
      s.setCurrentKey(k);
      v.set(BigInt(keyGroupOf(k, 8)));
    }
    const copy = deserialize(serialize(s.snapshot()));
    const low = new KeyedStateStore({ maxKeyGroups: 8 });
    low.restore(copy, { start: 0, end: 4 });
    const lv = low.valueState<bigint>('v');
    for (const k of keys) {
      low.setCurrentKey(k);
      const kg = keyGroupOf(k, 8);
      assert.equal(lv.get(), kg < 4 ? BigInt(kg) : undefined, `key ${String(k)}`);
    }
    assert.throws(() => new KeyedStateStore({ maxKeyGroups: 16 }).restore(copy), /8 key groups/);
    assert.throws(() => low.restore({ nope: 1 }), /not a keyed-state snapshot/);
  });
});

describe('memoryBackend', () => {
  it('writes atomically per call, deletes with null and lists by prefix in order', async () => {
    const b = memoryBackend();
    await b.write(
      new Map([
        ['p/2', new Uint8Array([2])],
        ['p/1', new Uint8Array([1])],
        ['q', new Uint8Array([9])],
      ]),
    );
    assert.deepEqual(await b.keys('p/'), ['p/1', 'p/2']);
    await b.write(new Map([['p/1', null]]));
    assert.equal(await b.read('p/1'), undefined);
    assert.deepEqual([...((await b.read('p/2')) ?? [])], [2]);
  });
});
