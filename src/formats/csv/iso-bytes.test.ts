/**
 * `canonicalIsoBytes` gives what `canonicalIsoAt` gives for the latin1 text of the same bytes
 * (oracle: `canonicalIsoAt`), for valid times, times with one character changed, and any bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalIsoAt } from '../iso-time.ts';
import { canonicalIsoBytes } from './iso-bytes.ts';

const time = fc
  // Year 1 (Date.UTC maps 0–99 to 1900–1999) to 9999.
  .integer({ min: -62_135_596_800_000, max: Date.UTC(9999, 11, 31, 23, 59, 59, 999) })
  .chain((t) => {
    const iso = new Date(t).toISOString();
    return fc.constantFrom(iso, iso.replace(/\.\d+Z$/, 'Z'));
  });
/** A time with one character replaced: digits out of range, wrong separators, bytes ≥ 0x80. */
const garbled = fc.tuple(time, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([t, i, c]) => {
  const at = i % t.length;
  return `${t.slice(0, at)}${String.fromCharCode(c)}${t.slice(at + 1)}`;
});
const anyText = fc.string({
  unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 30,
});

describe('canonicalIsoBytes', () => {
  it('reads a time as toISOString writes it', () => {
    const b = Buffer.from('x,2024-05-01T12:00:00.250Z,y', 'latin1');
    assert.equal(canonicalIsoBytes(b, 2, 24), Date.parse('2024-05-01T12:00:00.250Z'));
    assert.ok(Number.isNaN(canonicalIsoBytes(b, 2, 23)));
  });

  it('answers as canonicalIsoAt does for the same text (property)', () => {
    fc.assert(
      fc.property(fc.oneof(time, garbled, anyText), fc.string({ maxLength: 3 }), (text, pad) => {
        const s = `${pad}${text}${pad}`;
        const b = Buffer.from(s, 'latin1');
        for (const n of [20, 24, text.length]) {
          if (pad.length + n > s.length) continue;
          assert.ok(Object.is(canonicalIsoBytes(b, pad.length, n), canonicalIsoAt(s, pad.length, n)), s);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
