import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyTable } from './key-table.ts';

test('a key table holds any string as a plain key: prototype names, index-like and empty keys', () => {
  const t = new KeyTable<number>();
  const keys = [
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '5',
    '05',
    '4294967295',
    '',
    'a\u0000b',
  ];
  for (const [i, k] of keys.entries()) {
    assert.equal(t.get(k), undefined, `${JSON.stringify(k)} before it is set`);
    t.set(k, i);
  }
  assert.equal(t.size, keys.length);
  for (const [i, k] of keys.entries()) assert.equal(t.get(k), i, JSON.stringify(k));
  assert.deepEqual(t.keys().sort(), [...keys].sort());
  // Setting a held key again replaces its value, not the count.
  t.set('5', 50);
  assert.equal(t.get('5'), 50);
  assert.equal(t.size, keys.length);
});

test('a key table deletes and clears', () => {
  const t = new KeyTable<string>();
  t.set('a', 'x');
  t.set('b', 'y');
  t.delete('a');
  t.delete('missing');
  assert.equal(t.get('a'), undefined);
  assert.equal(t.get('b'), 'y');
  assert.equal(t.size, 1);
  t.clear();
  assert.equal(t.get('b'), undefined);
  assert.equal(t.size, 0);
  assert.deepEqual(t.keys(), []);
});

test('keys built by concatenation find what equal strings from elsewhere set', () => {
  const t = new KeyTable<number>();
  const built = ['DE', 'view'].join('\u0000');
  t.set(built, 1);
  assert.equal(t.get(`D${'E'}\u0000view`), 1);
});
