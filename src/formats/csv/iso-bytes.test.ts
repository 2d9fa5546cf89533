/**
 * `canonicalIsoBytes` gives what `canonicalIsoAt` gives for the latin1 text of the same bytes
 * (oracle: `canonicalIsoAt`), for valid times, times with one character changed, and any bytes;
 * so does `canonicalIsoView` for such times in a row, many sharing their minute (its cache).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalIsoAt } from '../iso-time.ts';
import { canonicalIsoBytes, canonicalIsoView } from './iso-bytes.ts';

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

  it('canonicalIsoView answers as canonicalIsoAt does, time after time sharing minutes (property)', () => {
    // Times near one another (same minute, next second, next day…), some garbled in one character.
    const near = fc.tuple(
      time,
      fc.array(
        fc.tuple(
          fc.integer({ min: -90_000, max: 90_000 }),
          fc.nat(),
          fc.integer({ min: 0, max: 255 }),
          fc.nat(9),
        ),
        { maxLength: 20 },
      ),
    );
    fc.assert(
      fc.property(near, fc.string({ maxLength: 3 }), ([first, steps], pad) => {
        const base = Date.parse(first);
        const texts = [first];
        for (const [dt, i, c, kind] of steps) {
          let t = new Date(
            Math.min(Math.max(base + dt, -62_135_596_800_000), 253_402_300_799_999),
          ).toISOString();
          if (kind === 0) t = t.replace(/\.\d+Z$/, 'Z');
          if (kind === 1) {
            const at = i % t.length;
            t = `${t.slice(0, at)}${String.fromCharCode(c)}${t.slice(at + 1)}`;
          }
          texts.push(t);
        }
        for (const text of texts) {
          const s = `${pad}${text}${pad}`;
          const b = Buffer.from(s, 'latin1');
          const view = new DataView(b.buffer, b.byteOffset, b.length);
          const n = text.length;
          assert.ok(Object.is(canonicalIsoView(view, b, pad.length, n), canonicalIsoAt(s, pad.length, n)), s);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('canonicalIsoView checks the seconds, fraction and Z of a time whose minute it has cached', () => {
    const first = '2024-05-01T12:00:00.250Z';
    for (const text of [
      '2024-05-01T12:00:59.999Z',
      '2024-05-01T12:00:60.000Z',
      '2024-05-01T12:00:99Z',
      '2024-05-01T12:00:5a.000Z',
      '2024-05-01T12:00:05.0a0Z',
      '2024-05-01T12:00:05,000Z',
      '2024-05-01T12:00:05.000z',
      '2024-05-01T12:00-05.000Z',
      '2024-05-01T12:00:05Z',
      '2024-05-01T12:00:05.000',
    ]) {
      for (const t of [first, text]) {
        const b = Buffer.from(t, 'latin1');
        const view = new DataView(b.buffer, b.byteOffset, b.length);
        assert.ok(Object.is(canonicalIsoView(view, b, 0, t.length), canonicalIsoAt(t, 0, t.length)), t);
      }
    }
  });
});
