import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Decimal } from '../../core/decimal.ts';
import { SluiceError } from '../../core/errors.ts';
import { CsvDecoder } from './decoder.ts';
import { comparable, decode, records } from './test-helpers.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('CsvDecoder: RFC 4180', () => {
  it('reads quoted fields, doubled quotes, newlines and CRLF inside quotes', () => {
    const input = 'a,b,c\r\n1,"x,""y""\r\nz",3\r\n"",,"q"\r\n';
    assert.deepEqual(records(input), [
      { a: '1', b: 'x,"y"\r\nz', c: '3' },
      { a: '', b: '', c: 'q' },
    ]);
  });

  it('reads a last line without a newline, LF and CRLF line ends, and a UTF-8 BOM', () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc('id,name\n1,ada\r\n2,"grace"')]);
    const ev = decode(bom);
    assert.deepEqual(
      ev.map((e) => (e.kind === 'record' ? e.value : e.kind)),
      [
        { id: '1', name: 'ada' },
        { id: '2', name: 'grace' },
      ],
    );
    // Offsets count the BOM: "id,name\n" starts at 3, the first data row at 11.
    assert.deepEqual(
      ev.map((e) => [e.line, e.offset]),
      [
        [2, 11],
        [3, 18],
      ],
    );
  });

  it('keeps a trailing empty field and skips empty lines', () => {
    assert.deepEqual(records('a,b\n1,\n\n\r\n2,x\n'), [
      { a: '1', b: '' },
      { a: '2', b: 'x' },
    ]);
  });

  it('decodes multi-byte UTF-8, also in quoted fields and headers', () => {
    assert.deepEqual(records('名前,city\n"José, Jr",São Paulo\n'), [{ 名前: 'José, Jr', city: 'São Paulo' }]);
  });

  it('counts lines across quoted newlines', () => {
    const ev = decode('a,b\n"1\n2\n3",x\ny,z\n');
    assert.deepEqual(
      ev.map((e) => e.line),
      [2, 5],
    );
  });

  it('honours delimiter, quote, header off and explicit columns', () => {
    assert.deepEqual(records("a;'b;c'\n1;'it''s'\n", { delimiter: ';', quote: "'" }), [
      { a: '1', 'b;c': "it's" },
    ]);
    assert.deepEqual(records('1,2\n3,4\n', { header: false }), [
      ['1', '2'],
      ['3', '4'],
    ]);
    assert.deepEqual(records('1,2\n', { header: false, columns: ['x', 'y'] }), [{ x: '1', y: '2' }]);
    assert.deepEqual(records('p,q\n1,2\n', { columns: ['x', 'y'] }), [{ x: '1', y: '2' }]);
    assert.deepEqual(records('\t1\t2\n', { header: false, delimiter: '\t' }), [['', '1', '2']]);
  });

  it('renames duplicate header names instead of dropping a column', () => {
    assert.deepEqual(records('a,a,a_2\n1,2,3\n'), [{ a: '1', a_2: '2', a_2_2: '3' }]);
  });

  it('treats `__proto__` as an ordinary column name', () => {
    const [r] = records('__proto__,b\n1,2\n') as Record<string, string>[];
    assert.equal(Object.getPrototypeOf(r), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(r, '__proto__')?.value, '1');
  });

  it('reports positions after the last complete row and restarts from one', () => {
    const text = 'a,b\n1,2\n3,4\n5,';
    const dec = new CsvDecoder();
    const out: unknown[] = [];
    const sink = { record: (r: unknown) => out.push(r), invalid: () => assert.fail('no invalid rows') };
    dec.write(enc(text), sink);
    assert.deepEqual(
      dec.position(),
      { line: 3, offset: 12 },
      'three lines done, the fourth starts at byte 12',
    );
    const resumed = new CsvDecoder({ header: false, columns: dec.columnNames()!, start: dec.position() });
    const ev: unknown[] = [];
    resumed.write(enc('5,6\n'), {
      record: (r, line, offset) => ev.push([r, line, offset]),
      invalid: () => {},
    });
    resumed.end({ record: () => {}, invalid: () => {} });
    assert.deepEqual(ev, [[{ a: '5', b: '6' }, 4, 12]]);
  });
});

describe('CsvDecoder: bad rows are dead letters, the rest flows', () => {
  it('reports an unterminated quote with line, offset and raw bytes, then resumes on the next line', () => {
    const ev = decode('a,b\n1,2\n3,"open\n5,6\n');
    assert.equal(ev.length, 3);
    assert.deepEqual(ev[0]!.kind === 'record' && ev[0]!.value, { a: '1', b: '2' });
    const bad = ev[1]!;
    assert.equal(bad.kind, 'invalid');
    if (bad.kind !== 'invalid') return;
    assert.match(
      bad.error.message,
      /^invalid CSV at line 3 \(byte 8\): unterminated quoted field 2; close the quote/,
    );
    assert.equal(bad.error.code, 'SLUICE_PARSE');
    assert.deepEqual([bad.line, bad.offset, bad.raw], [3, 8, '3,"open']);
    assert.deepEqual([bad.error.context.line, bad.error.context.offset], [3, 8]);
    assert.deepEqual(ev[2]!.kind === 'record' && [ev[2]!.value, ev[2]!.line], [{ a: '5', b: '6' }, 4]);
  });

  it('reports text after a closing quote', () => {
    const ev = decode('a,b\n"x"y,1\n2,3\n');
    assert.equal(ev[0]!.kind, 'invalid');
    assert.match(
      ev[0]!.kind === 'invalid' ? ev[0]!.error.message : '',
      /unexpected "y" after the closing quote/,
    );
    assert.deepEqual(ev[1]!.kind === 'record' && ev[1]!.value, { a: '2', b: '3' });
  });

  it('reports a row with the wrong number of fields', () => {
    const ev = decode('a,b\n1\n1,2,3\n4,5\n');
    assert.deepEqual(
      ev.map((e) => (e.kind === 'invalid' ? [e.error.message, e.raw, e.line, e.offset] : e.value)),
      [
        [
          'invalid CSV at line 2 (byte 4): row has 1 fields, expected 2; check the delimiter and the quoting of this row',
          '1',
          2,
          4,
        ],
        [
          'invalid CSV at line 3 (byte 6): row has 3 fields, expected 2; check the delimiter and the quoting of this row',
          '1,2,3',
          3,
          6,
        ],
        { a: '4', b: '5' },
      ],
    );
  });

  it('reports invalid UTF-8 naming the column, in quoted and unquoted fields', () => {
    const bytes = new Uint8Array([
      ...enc('a,b\n1,'),
      0xc3,
      0x28,
      ...enc('\n"'),
      0xff,
      ...enc('",2\nok,ok\n'),
    ]);
    const ev = decode(bytes);
    assert.deepEqual(
      ev.map((e) => (e.kind === 'invalid' ? [e.error.context.column, e.line, e.offset] : e.value)),
      [['b', 2, 4], ['a', 3, 9], { a: 'ok', b: 'ok' }],
    );
    assert.deepEqual(ev[0]!.kind === 'invalid' && [...enc(ev[0]!.raw)].length > 0, true);
  });

  it('bounds the raw bytes of a dead letter', () => {
    const ev = decode(`a,b\n${'x'.repeat(100)}\n`, { maxRawBytes: 10 });
    assert.equal(ev[0]!.kind === 'invalid' && ev[0]!.raw, 'xxxxxxxxxx');
  });

  it('reports a field longer than maxRecordBytes instead of buffering it, at any chunk size', () => {
    const big = `a,b\n1,"${'y'.repeat(5000)}"\n2,3\n`;
    for (const chunk of [0, 1, 7, 100, 4096]) {
      const ev = decode(big, { maxRecordBytes: 1000 }, chunk);
      assert.equal(ev.length, 2, `chunk ${chunk}`);
      assert.match(
        ev[0]!.kind === 'invalid' ? ev[0]!.error.message : '',
        /longer than maxRecordBytes \(1000 bytes\)/,
      );
      assert.deepEqual(ev[1]!.kind === 'record' && ev[1]!.value, { a: '2', b: '3' });
    }
  });

  it('reports a line without a newline longer than the limit and skips the rest of it', () => {
    const dec = new CsvDecoder({ maxRecordBytes: 100 });
    const ev: string[] = [];
    const sink = {
      record: (r: unknown) => ev.push(JSON.stringify(r)),
      invalid: (e: SluiceError) => ev.push(e.message),
    };
    dec.write(enc('a\n'), sink);
    for (let i = 0; i < 50; i++) dec.write(enc('z'.repeat(1000)), sink);
    dec.write(enc('zz\nfine\n'), sink);
    dec.end(sink);
    assert.equal(ev.length, 2);
    assert.match(
      ev[0]!,
      /^invalid CSV at line 2 \(byte 2\): the row is longer than maxRecordBytes \(100 bytes\)/,
    );
    assert.equal(ev[1], '{"a":"fine"}');
    // The pending buffer never held the whole 50 KB line.
    assert.deepEqual(dec.position(), { line: 3, offset: 2 + 50_000 + 3 + 5 });
  });

  it('stops at the first bad row with `strict`, with the same message', () => {
    const lenient = decode('a,b\n1\n2,3\n');
    const msg = lenient[0]!.kind === 'invalid' ? lenient[0]!.error.message : '';
    assert.throws(
      () => decode('a,b\n1\n2,3\n', { strict: true }),
      (e: unknown) => e instanceof SluiceError && e.message === msg && e.context.line === 2,
    );
  });

  it('fails on a header it cannot read, since no row could be keyed', () => {
    assert.throws(() => decode('"a,b\n'), /unterminated quoted field/);
  });

  it('fails on a header that is not UTF-8, saying where and what to do', () => {
    const latin1 = Buffer.from([0x69, 0x64, 0x2c, 0x6e, 0x61, 0x6d, 0xe9, 0x0a, 0x31, 0x2c, 0x78, 0x0a]); // id,nam\xe9\n1,x\n
    assert.throws(
      () => decode(latin1),
      (e: SluiceError) =>
        e.message ===
          'the CSV header (line 1, byte 0) is not valid UTF-8; convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`)' &&
        e.context?.line === 1 &&
        e.context?.offset === 0,
    );
  });
});

describe('CsvDecoder: typed columns', () => {
  const types = {
    id: 'int',
    price: 'float',
    amount: { type: 'decimal', scale: 2 },
    exact: 'decimal',
    ok: 'bool',
    ts: 'timestamp',
  } as const;

  it('converts declared columns and leaves the others as strings', () => {
    const rows = records(
      'id,price,amount,exact,ok,ts,note\n7,1.5e3,-12.5,+0.10,yes,2024-05-01T12:00:00.5+02:00,hi\n8,,,,,,\n',
      { types },
    );
    assert.deepEqual(rows, [
      {
        id: 7,
        price: 1500,
        amount: new Decimal(-1250n, 2),
        exact: new Decimal(10n, 2),
        ok: true,
        ts: Date.UTC(2024, 4, 1, 10, 0, 0, 500),
        note: 'hi',
      },
      { id: 8, price: null, amount: null, exact: null, ok: null, ts: null, note: '' },
    ]);
  });

  it('reports a conversion error naming line, column and value, and goes on', () => {
    const ev = decode('id,amount\n1,1.234\nx,1\n3,2\n', {
      types: { id: 'int', amount: { type: 'decimal', scale: 2 } },
    });
    assert.deepEqual(
      ev.map((e) =>
        e.kind === 'invalid'
          ? [e.error.message, e.error.context.column, e.error.context.value, e.line]
          : e.value,
      ),
      [
        [
          'invalid CSV at line 2 (byte 10): column `amount`: "1.234" has 3 fraction digits, more than the column\'s `scale: 2` (never rounded); fix the value or the column\'s type in `types`',
          'amount',
          '1.234',
          2,
        ],
        [
          'invalid CSV at line 3 (byte 18): column `id`: "x" is not a valid int; fix the value or the column\'s type in `types`',
          'id',
          'x',
          3,
        ],
        { id: 3, amount: new Decimal(200n, 2) },
      ],
    );
  });

  it('rejects types for columns the header does not have, and bad options, all at once', () => {
    assert.throws(
      () => decode('a\n1\n', { types: { b: 'int' } }),
      /`types` names `b`, not among the CSV columns \(a\)/,
    );
    assert.throws(
      () => new CsvDecoder({ delimiter: '::', maxRecordBytes: 0, types: { a: 'money' as never } }),
      (e: unknown) =>
        e instanceof SluiceError &&
        e.code === 'SLUICE_CONFIG' &&
        /delimiter/.test(e.message) &&
        /maxRecordBytes/.test(e.message) &&
        /unknown column type `money`/.test(e.message),
    );
  });
});

describe('CsvDecoder: interning', () => {
  it('serves repeated short values from the cache and switches off columns that do not repeat', () => {
    const text = `id,c\n${Array.from({ length: 6000 }, (_, i) => `${1_000_000 + i},status_${i % 3}`).join('\n')}\n`;
    const dec = new CsvDecoder();
    let n = 0;
    const sink = { record: () => n++, invalid: () => assert.fail('no invalid rows') };
    dec.write(enc(text), sink);
    dec.end(sink);
    assert.equal(n, 6000);
    const { lookups, hits } = dec.internStats();
    // Column `c`: the header and 6000 values, all but 6 values hits (each of the 3 values misses
    // once among values of up to 12 bytes, and once among those read where fewer than 12 bytes
    // are left in the window). Column `id`: unique, switched off after 2048 lookups (the header among them).
    assert.equal(lookups, 6001 + 2048);
    assert.equal(hits, 6000 - 6);
    assert.deepEqual(new CsvDecoder({ intern: false }).internStats(), { lookups: 0, hits: 0 });
  });

  it('gives the values of a column it switched off mid-input, short and long, as without the cache', () => {
    // `id` (unique) is switched off after 2048 lookups; its values stay the field's text, also
    // those of 13+ characters (fresh copies while interned, slices after).
    const text = `id,c\n${Array.from({ length: 5000 }, (_, i) => `${i % 2 === 0 ? 'long-identifier-' : ''}${i},s${i % 3}`).join('\n')}\n`;
    const on = records(text, { intern: { maxLength: 30 } });
    assert.deepEqual(on, records(text, { intern: false }));
    assert.equal(on.length, 5000);
  });

  it('gives the same records with the cache on and off', () => {
    const text = `k,v\n${Array.from({ length: 5000 }, (_, i) => `${'abcdefghijklmnopqrstuvwxyz'.slice(0, (i * 7) % 26)},${i % 13}`).join('\n')}\n`;
    assert.deepEqual(
      records(text, { intern: { entries: 16, maxLength: 30 } }),
      records(text, { intern: false }),
    );
  });

  it('gives the same records with the cache on and off for values alike but in their last bytes (property)', () => {
    // Values of up to 14 bytes, many sharing their first 8 (or 4) bytes and their length, so
    // that a small table puts look-alikes in one slot: each must still come back as its own text.
    const value = fc
      .tuple(
        fc.constantFrom('', 'abcd', 'abcdefgh', 'abcdefgi'),
        fc.string({ unit: fc.constantFrom('a', 'b', 'é', '\u0000'), maxLength: 6 }),
      )
      .map(([head, tail]) => head + tail);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(value, value), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 64 }),
        (rows, chunk) => {
          const text = `k,v\n${rows.map(([a, b]) => `${a},${b}`).join('\n')}\n`;
          assert.deepEqual(
            records(text, { intern: { entries: 16 } }, chunk),
            records(text, { intern: false }, chunk),
          );
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('CsvDecoder: chunking never changes the output', () => {
  it('gives the same events for every split point of a tricky file', () => {
    const text =
      '\ufeffid,"na\r\nme",v\r\n1,"a,""b""\nc",x\r\n\r\n2,plain,"y"\n3,"unterminated\n4,"x"z,5\n5,é,ü\n6,short\n7,"",\n8,"q",last';
    const bytes = new Uint8Array([...enc(text.slice(0, 30)), 0xff, ...enc(text.slice(30))]);
    const whole = comparable(decode(bytes));
    assert.ok(whole.length >= 6);
    for (let cut = 1; cut < bytes.length; cut++) {
      const events: unknown[] = [];
      const dec = new CsvDecoder();
      const sink = {
        record: (v: unknown, line: number, offset: number) => events.push(['R', v, line, offset]),
        invalid: (e: SluiceError, raw: Uint8Array, line: number, offset: number) =>
          events.push(['I', e.code, e.message, Buffer.from(raw).toString('latin1'), line, offset]),
      };
      dec.write(bytes.slice(0, cut), sink);
      dec.write(bytes.slice(cut), sink);
      dec.end(sink);
      assert.deepEqual(events, whole, `split at ${cut}`);
    }
    for (const chunk of [1, 2, 3, 5, 13])
      assert.deepEqual(comparable(decode(bytes, {}, chunk)), whole, `chunks of ${chunk}`);
  });
});

it('a chunk larger than one decoding window gives the same rows and positions as small chunks', () => {
  const rows = ['id,city,note'];
  for (let i = 0; i < 8000; i++) {
    const note = i % 97 === 0 ? `"multi\nline ""${i}"", with comma"` : `plain ${i}`;
    rows.push(`${i},${i % 5 === 0 ? 'Zürich' : 'Oslo'},${note}`);
  }
  rows[4000] = `4000,"${'x'.repeat(200_000)}",long`; // one row longer than a window
  rows[6000] = '6000,"unterminated,oops'; // broken quoting inside a later window
  rows[6001] = '6001,Oslo,after';
  const input = `${rows.join('\r\n')}\r\n`;
  const whole = decode(input, {}, 0);
  const small = decode(input, {}, 4093);
  assert.ok(whole.length > 7900);
  assert.deepEqual(
    whole.map((e) => [e.kind, e.line, e.offset]),
    small.map((e) => [e.kind, e.line, e.offset]),
  );
  assert.deepEqual(
    whole.filter((e) => e.kind === 'record').map((e) => e.value),
    small.filter((e) => e.kind === 'record').map((e) => e.value),
  );
});
