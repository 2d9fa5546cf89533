/**
 * The CSV → JSON Lines transcoder against the general path it stands in for: `CsvDecoder` records
 * written by the `jsonl` encoder. Byte for byte, with the same bad-row reports (error text,
 * context, raw bytes, line, offset), the same positions after every chunk, and the same throws —
 * on random CSV (quotes, doubled quotes, escapes, control characters, non-ASCII and invalid
 * UTF-8, CRLF, BOM, empty lines), random options, and input cut at every byte.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SluiceError } from '../../core/errors.ts';
import type { DecodeStart } from '../format.ts';
import { jsonlEncoder } from '../jsonl.ts';
import { CsvDecoder } from './decoder.ts';
import type { CsvDecodeOptions } from './options.ts';
import { CsvJsonlTranscoder, keyOrder } from './transcode.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** What a run reported: the output text, bad rows, positions after each write, or what it threw. */
interface Outcome {
  out: string;
  rows: number;
  invalid: unknown[];
  positions: DecodeStart[];
  thrown?: string;
}

function errorView(error: SluiceError, raw: Uint8Array, line: number, offset: number): unknown {
  return [error.code, error.message, error.context, Buffer.from(raw).toString('latin1'), line, offset];
}

function thrownView(err: unknown): string {
  assert.ok(err instanceof SluiceError, `unexpected throw: ${String(err)}`);
  return `${err.code} ${err.message} ${JSON.stringify(err.context)}`;
}

/**
 * Feeds `pieces` to a write/end pair; each piece goes through one buffer that is scribbled over
 * after the write (a reader reusing its buffers). `commit` runs after each write or end that
 * returned: what a write made before it threw is never handed on (as `pumpRecords` does).
 */
function feed(
  pieces: readonly Uint8Array[],
  write: (chunk: Uint8Array) => void,
  end: () => void,
  position: () => DecodeStart,
  positions: DecodeStart[],
  commit: () => void,
): void {
  for (const piece of pieces) {
    const buf = new Uint8Array(piece);
    write(buf);
    commit();
    buf.fill(0x22);
    positions.push(position());
  }
  end();
  commit();
  positions.push(position());
}

/** The general path: decoder records, encoded by the `jsonl` encoder. */
function general(pieces: readonly Uint8Array[], options: CsvDecodeOptions): Outcome {
  const records: unknown[] = [];
  let made: unknown[] = [];
  const o: Outcome = { out: '', rows: 0, invalid: [], positions: [] };
  const d = new CsvDecoder(options);
  const sink = {
    record: (r: unknown) => made.push(r),
    invalid: (e: SluiceError, raw: Uint8Array, line: number, offset: number) =>
      o.invalid.push(errorView(e, raw, line, offset)),
  };
  try {
    feed(
      pieces,
      (c) => d.write(c, sink),
      () => d.end(sink),
      () => d.position(),
      o.positions,
      () => {
        records.push(...made);
        made = [];
      },
    );
  } catch (err) {
    o.thrown = thrownView(err);
  }
  o.out = jsonlEncoder().encode(records) as string;
  o.rows = records.length;
  return o;
}

/** The transcoder; checks every `rows` call's batch size and line count on the way. */
function transcoded(pieces: readonly Uint8Array[], options: CsvDecodeOptions, batchSize = 1024): Outcome {
  const o: Outcome = { out: '', rows: 0, invalid: [], positions: [] };
  const out: Buffer[] = [];
  let made: Buffer[] = [];
  let madeRows = 0;
  const t = new CsvJsonlTranscoder(options, batchSize);
  const sink = {
    rows: (bytes: Uint8Array, count: number) => {
      assert.ok(count >= 1 && count <= batchSize, `batch of ${count}, batchSize ${batchSize}`);
      let lfs = 0;
      for (const b of bytes) if (b === 10) lfs++;
      assert.equal(lfs, count, 'one line per row');
      made.push(Buffer.from(bytes));
      madeRows += count;
    },
    invalid: (e: SluiceError, raw: Uint8Array, line: number, offset: number) =>
      o.invalid.push(errorView(e, raw, line, offset)),
  };
  try {
    feed(
      pieces,
      (c) => t.write(c, sink),
      () => t.end(sink),
      () => t.position(),
      o.positions,
      () => {
        out.push(...made);
        o.rows += madeRows;
        made = [];
        madeRows = 0;
      },
    );
  } catch (err) {
    o.thrown = thrownView(err);
  }
  o.out = Buffer.concat(out).toString('utf8');
  return o;
}

function cutEvery(bytes: Uint8Array, n: number): Uint8Array[] {
  if (n <= 0) return [bytes];
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += n) out.push(bytes.subarray(i, i + n));
  return out;
}

function same(bytes: Uint8Array, options: CsvDecodeOptions, pieces: Uint8Array[], batchSize = 1024): void {
  const want = general(pieces, options);
  const got = transcoded(pieces, options, batchSize);
  assert.deepEqual(got, want, `input ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`);
}

/** Bytes that are mostly CSV syntax and JSON's escapes, so random inputs reach every state. */
const csvByte = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...enc(',;"\'\n\r a1\\\t')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 1, arbitrary: fc.constantFrom(0x00, 0x1f, 0x7f, 0x08, 0x0c) },
  { weight: 1, arbitrary: fc.constantFrom(0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff, 0x80, 0xed, 0xa0, 0xf0, 0x9f) },
);
const csvBytes = fc.array(csvByte, { maxLength: 200 }).map((a) => new Uint8Array(a));

/** A cell as text: the characters JSON escapes, non-ASCII of every UTF-8 length, CSV syntax. */
const cellChar = fc.constantFrom(
  'a',
  'b',
  ' ',
  ',',
  ';',
  '"',
  "'",
  '\\',
  '/',
  '\n',
  '\r',
  '\t',
  '\b',
  '\f',
  '\u0000',
  '\u001f',
  '\u007f',
  'é',
  '€',
  '😀',
  '\u2028',
  '\ufeff',
  '0',
  '{',
);
const cell = fc.string({ unit: cellChar, maxLength: 8 });

const optionsArb: fc.Arbitrary<CsvDecodeOptions> = fc.record(
  {
    delimiter: fc.constantFrom(',', ';', '\t', '|'),
    quote: fc.constantFrom('"', "'", '\\'),
    header: fc.boolean(),
    columns: fc.constantFrom(['a', 'b', 'c'], ['1', 'b', '0'], ['__proto__', 'x', 'x'], ['only']),
    skipEmptyLines: fc.boolean(),
    maxRecordBytes: fc.constantFrom(8, 24, 1 << 20),
    maxRawBytes: fc.constantFrom(3, 4096),
    strict: fc.boolean(),
    intern: fc.boolean(),
  },
  { requiredKeys: [] },
);

/** CSV text built from cells (quoted when needed or at random), in the options' dialect. */
const structured = fc
  .record({
    options: optionsArb,
    header: fc.array(cell, { minLength: 1, maxLength: 4 }),
    rows: fc.array(
      fc.record({
        cells: fc.array(cell, { minLength: 1, maxLength: 4 }),
        quoteAll: fc.boolean(),
        eol: fc.constantFrom('\n', '\r\n', '\n\n', '\r\n\r\n'),
      }),
      { maxLength: 12 },
    ),
    bom: fc.boolean(),
    lastEol: fc.boolean(),
    garbage: fc.option(
      fc.constantFrom(new Uint8Array([0xff]), new Uint8Array([0xed, 0xa0, 0x80]), enc('"x"y')),
    ),
  })
  .map(({ options, header, rows, bom, lastEol, garbage }) => {
    const d = options.delimiter ?? ',';
    const q = options.quote ?? '"';
    const field = (c: string, all: boolean) =>
      all || c.includes(d) || c.includes(q) || c.includes('\n') || c.includes('\r')
        ? `${q}${c.replaceAll(q, q + q)}${q}`
        : c;
    const lines = [header.map((c) => field(c, false)).join(d)];
    const eols = ['\n'];
    for (const r of rows) {
      lines.push(r.cells.map((c) => field(c, r.quoteAll)).join(d));
      eols.push(r.eol);
    }
    let text = bom ? '\ufeff' : '';
    lines.forEach((l, i) => {
      text += l + (i < lines.length - 1 || lastEol ? eols[i] : '');
    });
    let bytes = enc(text);
    if (garbage !== null) bytes = new Uint8Array(Buffer.concat([bytes, garbage, enc(`${d}z\n`)]));
    return { options, bytes };
  });

describe('CSV → JSON Lines transcoder against CsvDecoder + the jsonl encoder', () => {
  it('writes the same bytes and reports the same bad rows on generated CSV, in chunks of any size', () => {
    fc.assert(
      fc.property(
        structured,
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 1, max: 4 }),
        (c, n, batch) => {
          same(c.bytes, c.options, cutEvery(c.bytes, n), batch);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('does the same on random bytes, with or without column names', () => {
    fc.assert(
      fc.property(csvBytes, optionsArb, fc.integer({ min: 0, max: 13 }), (bytes, options, n) => {
        same(bytes, options, cutEvery(bytes, n), 3);
      }),
      { numRuns: 4000 },
    );
  });

  it('does the same with the input cut in two at every byte', () => {
    fc.assert(
      fc.property(structured, (c) => {
        for (let cut = 0; cut <= c.bytes.length; cut++) {
          same(c.bytes, c.options, [c.bytes.subarray(0, cut), c.bytes.subarray(cut)], 2);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('writes a realistic file as the general path does, over windows, joins and rows longer than a window', () => {
    const long = 'x'.repeat(150_000);
    const text =
      '\ufeffid,text,city,n\r\n' +
      Array.from(
        { length: 3000 },
        (_, i) =>
          `${i},"row ${i}, with ""quotes"" and \\ \t\u0001\nnewline",${i % 7 === 0 ? 'São Paulo' : 'Zürich 😀'},${i * 3}\r\n`,
      ).join('') +
      `3000,${long},x,1\n3001,"${long}\n${long}",y,2\n3002,bad,\xff\n3003,last,z,3`;
    const bytes = new Uint8Array(Buffer.from(text.replace('\xff', '\u0000'), 'utf8'));
    // The one invalid byte, where the NUL stood.
    bytes[bytes.lastIndexOf(0)] = 0xff;
    const whole = general([bytes], {});
    assert.equal(whole.rows, 3003);
    assert.equal(whole.invalid.length, 1);
    for (const n of [1, 4096, 65_536, 70_001, 200_003]) {
      const pieces = cutEvery(bytes, n);
      assert.deepEqual(transcoded(pieces, {}, 1024), general(pieces, {}), `chunks of ${n} bytes`);
    }
  });

  it('resumes from a saved position as a resumed decoder does', () => {
    const text = 'a,b\n1,x\n2,"y\nz"\n3,w\n';
    const start = { line: 2, offset: 8 };
    const bytes = enc(text).subarray(start.offset);
    const options = { header: false, columns: ['a', 'b'], start };
    assert.deepEqual(transcoded([bytes], options), general([bytes], options));
    assert.equal(transcoded([bytes], options).out, '{"a":"2","b":"y\\nz"}\n{"a":"3","b":"w"}\n');
  });
});

describe('CSV → JSON Lines transcoder, cases spelled out', () => {
  const run = (text: string, options: CsvDecodeOptions = {}) => transcoded([enc(text)], options);

  it('escapes as JSON.stringify does and keeps non-ASCII as it is', () => {
    const r = run('k\n"a""b\\c\u0001\u001f\u007f\t\r\nd é😀\u2028"\n');
    assert.equal(r.out, `${JSON.stringify({ k: 'a"b\\c\u0001\u001f\u007f\t\r\nd é😀\u2028' })}\n`);
  });

  it('orders keys as a record would: integer-like names first, duplicates made unique', () => {
    assert.deepEqual(keyOrder(['b', '10', 'a', '2']), [3, 1, 0, 2]);
    assert.equal(run('b,1,a,a\nx,y,z,w\n').out, '{"1":"y","b":"x","a":"z","a_2":"w"}\n');
    assert.equal(run('__proto__,x\n1,2\n').out, '{"__proto__":"1","x":"2"}\n');
  });

  it('writes rows without column names as arrays', () => {
    assert.equal(run('1,"2"\n3,4', { header: false }).out, '["1","2"]\n["3","4"]\n');
  });

  it('reports a wrong field count, broken quoting and invalid UTF-8 as the decoder does, and goes on', () => {
    const bytes = new Uint8Array(
      Buffer.concat([enc('a,b\n1,2,3\n"x"y,1\n'), Buffer.from([0xff]), enc(',2\nok,3\n')]),
    );
    const r = transcoded([bytes], {});
    assert.equal(r.out, '{"a":"ok","b":"3"}\n');
    assert.deepEqual(
      r.invalid.map((i) => (i as unknown[])[1]),
      [
        'invalid CSV at line 2 (byte 4): row has 3 fields, expected 2; check the delimiter and the quoting of this row',
        'invalid CSV at line 3 (byte 10): unexpected "y" after the closing quote of field 1; a quote inside a quoted field must be doubled (`""`)',
        'invalid CSV at line 4 (byte 17): invalid UTF-8 in column `a`; the input must be UTF-8 text',
      ],
    );
    assert.deepEqual(r, general([bytes], {}));
  });

  it('throws where the decoder throws: a bad header, and the first bad row with `strict`', () => {
    assert.match(run('"a"x,b\n1,2\n').thrown ?? '', /invalid CSV header at line 1/);
    assert.match(run('a,b\n1\n', { strict: true }).thrown ?? '', /row has 1 fields, expected 2/);
    assert.match(
      transcoded([Buffer.from([0x61, 0xe9, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0x32, 0x0a])], {}).thrown ?? '',
      /the CSV header \(line 1, byte 0\) is not valid UTF-8; convert the file to UTF-8/,
    );
  });

  it('writes later rows into an output buffer only once the receiver released it, and once', () => {
    const t = new CsvJsonlTranscoder({}, 1);
    const got: { bytes: Uint8Array; release: () => void }[] = [];
    const sink = {
      rows: (bytes: Uint8Array, _n: number, release: () => void) => got.push({ bytes, release }),
      invalid: () => {},
    };
    t.write(enc('a\n1\n2\n3\n'), sink);
    // Nothing released: three buffers of their own.
    assert.deepEqual(
      got.map((g) => Buffer.from(g.bytes).toString()),
      ['{"a":"1"}\n', '{"a":"2"}\n', '{"a":"3"}\n'],
    );
    assert.equal(new Set(got.map((g) => g.bytes.buffer)).size, 3);
    const first = got[0] as { bytes: Uint8Array; release: () => void };
    first.release();
    first.release();
    t.write(enc('4\n5\n6\n'), sink);
    // Row 4 went into the buffer already waiting; the released one takes the next batch, and only it.
    const reused = got.map((g) => g.bytes.buffer === first.bytes.buffer);
    assert.deepEqual(reused, [true, false, false, false, true, false]);
    assert.equal(Buffer.from(got[4]?.bytes ?? []).toString(), '{"a":"5"}\n');
  });

  it('refuses options it cannot transcode', () => {
    assert.match(CsvJsonlTranscoder.unsupported({ types: { n: 'int' } }) ?? '', /`types`/);
    assert.equal(CsvJsonlTranscoder.unsupported({ delimiter: ';', header: false }), undefined);
    assert.equal(CsvJsonlTranscoder.unsupported({ types: {}, intern: false, strict: undefined }), undefined);
    const later = { trim: true } as CsvDecodeOptions;
    assert.match(CsvJsonlTranscoder.unsupported(later) ?? '', /`trim` is not one the transcoder knows/);
    assert.throws(() => new CsvJsonlTranscoder({ types: { n: 'int' } }, 10), /cannot transcode/);
  });
});
