import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SHORT_STRING_BYTES, ShortStrings } from './short-strings.ts';

/** `text` as latin1 bytes with its DataView. */
function bytesOf(text: string) {
  const buf = Buffer.from(text, 'latin1');
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length) };
}

test('gives the same string as a slice for every length, however values share bytes', () => {
  // Values that differ only in their last byte, in their length, or in bytes past their end.
  const values = ['', 'D', 'DE', 'DEU', 'DEUT', 'DEUTS', 'DEUTSCHLAND', 'DEUTSCHLANDS', 'DF', 'ED', 'a'];
  for (let n = 0; n <= SHORT_STRING_BYTES; n++)
    values.push('x'.repeat(n), 'y'.repeat(n), `${'x'.repeat(Math.max(0, n - 1))}z`);
  const cache = new ShortStrings(2, 16); // few slots: many collisions
  for (let round = 0; round < 3; round++) {
    for (const v of values) {
      for (const after of ['",', 'EU",', 'XXXXXXXXXXXXXX']) {
        const text = `{"k":"${v}${after}                `;
        const { view } = bytesOf(text);
        const at = 6;
        assert.equal(
          cache.get(view, at, v.length, text, at, round % 2),
          v,
          `${JSON.stringify(v)} before ${after}`,
        );
      }
    }
  }
});

test('values whose bytes differ only by trailing NULs are told apart by their length', () => {
  const cache = new ShortStrings(1, 1); // one slot: every value meets the one before
  for (const v of ['', '\0', 'DE', 'DE\0', 'DE\0\0\0', 'DE']) {
    const text = `${v}\0\0\0\0\0\0\0\0\0\0\0\0`;
    assert.equal(cache.get(bytesOf(text).view, 0, v.length, text, 0, 0), v, JSON.stringify(v));
  }
});

test('random short values, many repeated: each lookup equals the slice', () => {
  let x = 12345;
  const next = () => {
    x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
    return x;
  };
  const pool = Array.from({ length: 300 }, () =>
    String.fromCharCode(
      ...Array.from({ length: next() % (SHORT_STRING_BYTES + 1) }, () => 32 + (next() % 95)),
    ),
  );
  const cache = new ShortStrings(1, 64);
  let text = '';
  const spans: [number, number][] = [];
  for (let i = 0; i < 20_000; i++) {
    const v = pool[next() % (i < 10_000 ? 20 : pool.length)] as string;
    spans.push([text.length, v.length]);
    text += `${v}|`;
  }
  text += ' '.repeat(SHORT_STRING_BYTES);
  const { view } = bytesOf(text);
  for (const [at, n] of spans) assert.equal(cache.get(view, at, n, text, at, 0), text.slice(at, at + n));
});

test('near the end of the bytes, and for a field whose values seldom repeat, it slices', () => {
  const cache = new ShortStrings(2);
  const text = 'abcdef';
  const { view } = bytesOf(text);
  assert.equal(cache.get(view, 2, 3, text, 2, 0), 'cde'); // fewer than 12 bytes readable
  // A field of distinct values is switched off after its sample; its values are still right.
  let ids = '';
  for (let i = 0; i < 5000; i++) ids += `${i}`.padStart(6, '0');
  ids += ' '.repeat(SHORT_STRING_BYTES);
  const v = bytesOf(ids).view;
  for (let i = 0; i < 5000; i++)
    assert.equal(cache.get(v, 6 * i, 6, ids, 6 * i, 1), ids.slice(6 * i, 6 * i + 6));
});
