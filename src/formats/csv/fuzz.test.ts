/**
 * Property and fuzz tests of the CSV reader: random and mutated bytes never crash or hang it, the
 * way input is cut into chunks never changes what it reports, and every input row comes out
 * either as a record or as an invalid report.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SluiceError } from '../../core/errors.ts';
import type { CsvDecodeOptions } from './options.ts';
import { comparable, decode, decodeBorrowed, decodeSplit, type Event } from './test-helpers.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** Bytes that are mostly CSV syntax, so random inputs reach the interesting states. */
const csvByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...enc(',"\n\r a1')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff, 0x80) },
);
const csvBytes = fc.array(csvByte, { maxLength: 300 }).map((a) => new Uint8Array(a));

/** Decodes, turning the one legitimate throw (an unreadable header) into a value. */
function safeDecode(bytes: Uint8Array, options: CsvDecodeOptions, chunk: number): Event[] | string {
  try {
    return decode(bytes, options, chunk);
  } catch (err) {
    assert.ok(err instanceof SluiceError, `unexpected throw: ${String(err)}`);
    assert.equal(err.code, 'SLUICE_PARSE');
    assert.match(err.message, /header/);
    return 'header';
  }
}

function checkWellFormed(events: Event[], length: number): void {
  let lastOffset = -1;
  let lastLine = 0;
  for (const e of events) {
    assert.ok(
      e.offset > lastOffset && e.offset < length,
      `offset ${e.offset} after ${lastOffset}, input ${length}`,
    );
    assert.ok(e.line > lastLine, `line ${e.line} after ${lastLine}`);
    lastOffset = e.offset;
    lastLine = e.line;
    if (e.kind === 'invalid') assert.equal(e.error.context.offset, e.offset);
  }
}

const optionsArb = fc.record({
  header: fc.boolean(),
  maxRecordBytes: fc.constantFrom(16, 64, 1 << 20),
  skipEmptyLines: fc.boolean(),
  intern: fc.constantFrom(true, false, { entries: 2, maxLength: 4 }),
});

describe('CSV reader under random input', () => {
  it('never crashes, and reports the same thing however the bytes are chunked', () => {
    fc.assert(
      fc.property(csvBytes, optionsArb, fc.integer({ min: 1, max: 17 }), (bytes, options, chunk) => {
        const whole = safeDecode(bytes, options, 0);
        const pieces = safeDecode(bytes, options, chunk);
        if (typeof whole === 'string' || typeof pieces === 'string') {
          assert.equal(pieces, whole);
          return;
        }
        checkWellFormed(whole, bytes.length);
        assert.deepEqual(comparable(pieces), comparable(whole));
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps no view of a chunk after `write` returns: a reused, overwritten read buffer decodes the same', () => {
    fc.assert(
      fc.property(csvBytes, optionsArb, fc.integer({ min: 1, max: 17 }), (bytes, options, chunk) => {
        const whole = safeDecode(bytes, options, 0);
        let borrowed: Event[] | string;
        try {
          borrowed = decodeBorrowed(bytes, options, chunk);
        } catch (err) {
          borrowed = err instanceof SluiceError && /header/.test(err.message) ? 'header' : String(err);
        }
        if (typeof whole === 'string' || typeof borrowed === 'string') {
          assert.equal(borrowed, whole);
          return;
        }
        assert.deepEqual(comparable(borrowed), comparable(whole));
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps no view of a reused chunk across windows and long rows (tails, joins, rows over 256 KiB)', () => {
    const long = 'x'.repeat(300_000);
    const text =
      '\ufeffid,text,n\n' +
      Array.from({ length: 2000 }, (_, i) => `${i},"row ${i}, with ""quotes""\nand é",${i * 3}\n`).join('') +
      `2000,${long},1\n2001,"${long}\n${long}",2\n2002,last,3`;
    const bytes = enc(text);
    const whole = comparable(decode(bytes, {}, 0));
    assert.equal(whole.length, 2003);
    for (const chunk of [1, 7, 4096, 65_536, 70_001, 300_007]) {
      assert.deepEqual(comparable(decodeBorrowed(bytes, {}, chunk)), whole, `chunks of ${chunk} bytes`);
    }
  });

  it('survives mutations of a tricky file, split at every offset', () => {
    const tricky = enc(
      '\ufeffid,"na\r\nme",v\r\n1,"a,""b""\nc",x\r\n\r\n2,plain,"y"\n3,"é ""q""",\n4,,\n5,"",last',
    );
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        op: fc.constant('insert' as const),
        at: fc.nat(),
        byte: fc.constantFrom(...enc('",\n\r'), 0xff),
      }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), optionsArb, (muts, options) => {
        const a = [...tricky];
        for (const m of muts) {
          const at = m.at % (a.length + 1);
          if (m.op === 'flip' && at < a.length) a[at] = m.byte;
          else if (m.op === 'insert') a.splice(at, 0, m.byte);
          else if (m.op === 'delete') a.splice(at, 1);
        }
        const bytes = new Uint8Array(a);
        const whole = safeDecode(bytes, options, 0);
        if (typeof whole !== 'string') checkWellFormed(whole, bytes.length);
        const expected = typeof whole === 'string' ? whole : comparable(whole);
        for (let cut = 1; cut < bytes.length; cut++) {
          let got: unknown;
          try {
            got = comparable(decodeSplit(bytes, options, cut));
          } catch (err) {
            assert.ok(err instanceof SluiceError && /header/.test(err.message), String(err));
            got = 'header';
          }
          assert.deepEqual(got, expected, `cut at ${cut}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('turns every row into exactly one record or one invalid report', () => {
    const cell = fc.string({ unit: fc.constantFrom('a', 'b', ',', '"', '\n', ' ', 'é'), maxLength: 6 });
    const row = fc.record({
      cells: fc.array(cell, { minLength: 3, maxLength: 3 }),
      n: fc.integer({ min: -999, max: 999 }),
      fault: fc.constantFrom('none', 'none', 'none', 'extra', 'missing', 'badInt', 'badUtf8', 'badQuote'),
    });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 30 }), fc.integer({ min: 0, max: 13 }), (rows, chunk) => {
        const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
        const parts: Uint8Array[] = [enc('a,b,c,n\n')];
        for (const r of rows) {
          const cells = r.cells.map(quote);
          let n = String(r.n);
          if (r.fault === 'extra') cells.push('x');
          if (r.fault === 'missing') cells.pop();
          if (r.fault === 'badInt') n = `${n}x`;
          if (r.fault === 'badQuote') cells[0] = `${cells[0]}z`;
          if (r.fault === 'badUtf8') {
            parts.push(enc(`${cells.join(',')},`), new Uint8Array([0xff]), enc(`${n}\n`));
            continue;
          }
          parts.push(enc(`${[...cells, n].join(',')}\n`));
        }
        const bytes = new Uint8Array(Buffer.concat(parts));
        const events = decode(bytes, { types: { n: 'int' } }, chunk);
        // A quote error resumes at the next physical line, so a broken row that spans lines may
        // yield more than one report; the others map one to one.
        const simple = rows.every((r) => r.fault !== 'badQuote' || !r.cells.some((c) => c.includes('\n')));
        const good = rows.filter((r) => r.fault === 'none');
        const recs = events
          .filter((e) => e.kind === 'record')
          .map((e) => (e.kind === 'record' ? e.value : null));
        if (simple && rows.every((r) => r.fault !== 'badQuote')) assert.equal(events.length, rows.length);
        if (simple) {
          assert.deepEqual(
            recs,
            good.map((r) => ({ a: r.cells[0], b: r.cells[1], c: r.cells[2], n: r.n })),
          );
        }
        if (simple) assert.ok(events.filter((e) => e.kind === 'invalid').length >= rows.length - good.length);
        checkWellFormed(events, bytes.length);
      }),
      { numRuns: 1000 },
    );
  });
});
