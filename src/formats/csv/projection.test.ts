/**
 * `CsvDecoder.project`: a projected decoder reports the same rows, lines, offsets and invalid
 * rows as a full one, each record holding only the projected columns (oracle: the full decoder).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SluiceError } from '../../core/errors.ts';
import { parseIsoTime } from '../../time/timestamp.ts';
import type { DecodeSink } from '../format.ts';
import { CsvDecoder, type CsvRow } from './decoder.ts';
import type { CsvDecodeOptions } from './options.ts';

const enc = (s: string) => new TextEncoder().encode(s);

type Seen = (string | Record<string, unknown>)[];

function run(
  bytes: Uint8Array,
  options: CsvDecodeOptions,
  chunk: number,
  fields?: string[],
  uses?: ReadonlyMap<string, 'epochMillis'>,
): Seen | 'throws' {
  const seen: Seen = [];
  const sink: DecodeSink<CsvRow> = {
    record: (v, line, offset) => seen.push({ ...(v as Record<string, unknown>), '@': `${line}:${offset}` }),
    invalid: (e, raw, line, offset) =>
      seen.push(`${line}:${offset}:${e.message}:${Buffer.from(raw).toString('latin1')}`),
  };
  const dec = new CsvDecoder(options);
  if (fields !== undefined) dec.project(fields, uses);
  try {
    for (let i = 0; i < bytes.length; i += chunk) dec.write(bytes.slice(i, i + chunk), sink);
    dec.end(sink);
  } catch (err) {
    assert.ok(err instanceof SluiceError);
    return 'throws';
  }
  return seen;
}

/** The full decoder's events with records cut down to `fields` (and the position tag). */
function cutDown(seen: Seen | 'throws', fields: readonly string[]): Seen | 'throws' {
  if (seen === 'throws') return seen;
  return seen.map((e) =>
    typeof e === 'string'
      ? e
      : Object.fromEntries(Object.entries(e).filter(([k]) => k === '@' || fields.includes(k))),
  );
}

const cell = fc.oneof(
  fc.constantFrom('', 'a', 'x y', '1.50', 'é', '"q, ""r"""', '"multi\nline"', 'ü€'),
  // A quote inside an unquoted field is data; a quoted field with CRLF and a comma; broken quoting.
  fc.constantFrom('a"b', '"x\r\ny,"', '""', '"a""', 'b"', '"a"b'),
  fc.string({ maxLength: 6 }).map((s) => s.replace(/[",\r\n]/g, '')),
);
const csvText = fc
  .tuple(
    fc.integer({ min: 1, max: 5 }),
    fc.array(fc.array(cell, { minLength: 1, maxLength: 6 }), { maxLength: 12 }),
    fc.constantFrom('\n', '\r\n'),
  )
  .map(([n, rows, eol]) => {
    const header = Array.from({ length: n }, (_, i) => `c${i}`).join(',');
    return `${header}${eol}${rows.map((r) => r.join(',')).join(eol)}${eol}`;
  });

describe('CsvDecoder.project', () => {
  it('makes only the projected columns', () => {
    const seen = run(enc('a,b,c\n1,"x,""y""",3\n4,5,6\n'), {}, 1 << 16, ['c', 'a']);
    assert.deepEqual(seen, [
      { a: '1', c: '3', '@': '2:6' },
      { a: '4', c: '6', '@': '3:20' },
    ]);
  });

  it('keeps a typed column, whose conversion can reject the row', () => {
    const seen = run(enc('a,n\n1,2\n3,x\n'), { types: { n: 'int' } }, 1 << 16, ['a']);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0], { a: '1', n: 2, '@': '2:4' });
    assert.match(String(seen[1]), /not a valid/);
  });

  it('reports what the full decoder reports, however the input is cut (property)', () => {
    fc.assert(
      fc.property(
        csvText,
        fc.subarray(['c0', 'c1', 'c2', 'c3', 'c4']),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.record({ maxRecordBytes: fc.constantFrom(12, 1 << 20), skipEmptyLines: fc.boolean() }),
        (text, fields, chunk, badUtf8, options) => {
          let bytes = enc(text);
          if (badUtf8 && bytes.length > 8) {
            bytes = bytes.slice();
            bytes[bytes.length >> 1] = 0xff;
          }
          const full = run(bytes, options, chunk);
          const projected = run(bytes, options, chunk, fields);
          assert.deepEqual(projected, cutDown(full, fields));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('reports what the full decoder reports for a tricky tail, split in two at every byte', () => {
    // Columns after the last projected one (c1): quoted with commas, CRLF and doubled quotes,
    // too few and too many fields, a quote inside an unquoted field, invalid UTF-8, a broken quote.
    const bytes = Buffer.concat([
      enc('c0,c1,c2,c3,c4\r\n1,a,"x, ""y""\r\nz",w,v\r\n2,b,c\n3,d,e,f,g,h\r\n4,e,q"r,"s,t",u\n5,f,'),
      Buffer.from([0xff]),
      enc(',x,y\n6,g,"bad"q,x,y\n7,h,,,\n8,i,"",""'),
    ]);
    for (const fields of [['c1'], ['c0', 'c1'], ['c2']]) {
      const expected = cutDown(run(bytes, {}, bytes.length), fields);
      assert.ok(Array.isArray(expected) && expected.length === 8);
      for (let cut = 1; cut < bytes.length; cut++) {
        const seen: Seen = [];
        const sink: DecodeSink<CsvRow> = {
          record: (v, line, offset) =>
            seen.push({ ...(v as Record<string, unknown>), '@': `${line}:${offset}` }),
          invalid: (e, raw, line, offset) =>
            seen.push(`${line}:${offset}:${e.message}:${Buffer.from(raw).toString('latin1')}`),
        };
        const dec = new CsvDecoder();
        dec.project(fields);
        dec.write(bytes.subarray(0, cut), sink);
        dec.write(bytes.subarray(cut), sink);
        dec.end(sink);
        assert.deepEqual(seen, expected, `fields ${fields}, cut at ${cut}`);
      }
    }
  });

  it('hands an epochMillis column over as epoch ms when written as toISOString writes it, else as text', () => {
    const text = [
      'ts,a,n',
      '2024-05-01T12:00:00Z,x,1', // epoch ms
      '2024-05-01T12:00:00.250Z,x,2', // epoch ms
      '2024-05-01T12:00:00+02:00,x,3', // another layout: the text, for the reader to parse
      '"2024-05-01T12:00:00Z",x,4', // quoted: the text
      '2024-02-30T12:00:00Z,x,5', // no such day: the text (the reader rejects it as before)
      '2024-05-01T12:00:00Z,x,6',
    ].join('\n');
    const uses = new Map([['ts', 'epochMillis' as const]]);
    const seen = run(enc(`${text}\n`), {}, 1 << 16, ['ts', 'a'], uses) as Record<string, unknown>[];
    assert.deepEqual(
      seen.map((r) => r.ts),
      [
        Date.parse('2024-05-01T12:00:00Z'),
        Date.parse('2024-05-01T12:00:00.250Z'),
        '2024-05-01T12:00:00+02:00',
        '2024-05-01T12:00:00Z',
        '2024-02-30T12:00:00Z',
        Date.parse('2024-05-01T12:00:00Z'),
      ],
    );
    // A declared type wins: the column is converted as declared, not read as epochMillis.
    const typed = run(
      enc(`${text}\n`),
      { types: { n: 'int' } },
      1 << 16,
      ['ts', 'n'],
      new Map([['n', 'epochMillis']]),
    );
    assert.deepEqual(
      (typed as Record<string, unknown>[]).map((r) => r.n),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it('gives every epochMillis value the number its text spells, however the input is cut (property)', () => {
    const time = fc
      .integer({ min: Date.UTC(1, 0, 1), max: Date.UTC(9999, 11, 31) })
      .chain((t) =>
        fc.constantFrom(new Date(t).toISOString(), new Date(t).toISOString().replace(/\.\d+Z$/, 'Z')),
      );
    const garbled = fc
      .tuple(time, fc.integer({ min: 0, max: 23 }), fc.constantFrom('9', 'x', ' ', '-', '1'))
      .map(([t, i, c]) => `${t.slice(0, i)}${c}${t.slice(i + 1)}`);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(time, garbled), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 60 }),
        (values, chunk) => {
          const bytes = enc(`ts,a\n${values.map((v, i) => `${v},${i}`).join('\n')}\n`);
          const full = run(bytes, {}, chunk) as Record<string, unknown>[];
          const fast = run(bytes, {}, chunk, ['ts', 'a'], new Map([['ts', 'epochMillis']])) as Record<
            string,
            unknown
          >[];
          assert.equal(fast.length, full.length);
          for (let i = 0; i < full.length; i++) {
            const text = full[i]?.ts as string;
            const got = fast[i]?.ts;
            // A number only where the general parse gives that same number; else the same text.
            if (typeof got === 'number') assert.equal(got, parseIsoTime(text), text);
            else assert.equal(got, text);
            assert.equal(fast[i]?.['@'], full[i]?.['@']);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
