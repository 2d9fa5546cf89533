import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CsvEncoder } from './encoder.ts';
import { records } from './test-helpers.ts';

describe('CsvEncoder', () => {
  it('quotes exactly the fields that need it', () => {
    const enc = new CsvEncoder({ columns: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(enc.header(), 'a,b,c,d,e\n');
    assert.equal(
      enc.encode([{ a: 'x,y', b: 'say "hi"', c: 'two\nlines', d: 'cr\r', e: 'plain' }]),
      '"x,y","say ""hi""","two\nlines","cr\r",plain\n',
    );
  });

  it('writes numbers, bigints, booleans, dates, null and objects', () => {
    const enc = new CsvEncoder({ header: false, columns: ['n', 'b', 't', 'd', 'z', 'o'] });
    assert.equal(
      enc.encode([{ n: 1.5, b: 10n, t: true, d: new Date(0), z: null, o: { k: 'v,' } }]),
      '1.5,10,true,1970-01-01T00:00:00.000Z,,"{""k"":""v,""}"\n',
    );
  });

  it('writes the header ahead of the first batch when columns come from the first record', () => {
    const enc = new CsvEncoder({ lineEnding: '\r\n', delimiter: ';' });
    assert.equal(enc.header(), undefined);
    assert.equal(enc.encode([{ x: 1, y: 'a;b' }]), 'x;y\r\n1;"a;b"\r\n');
    assert.equal(enc.encode([{ x: 2, y: '' }]), '2;\r\n');
    assert.equal(enc.header(), 'x;y\r\n');
  });

  it('keeps a one-column empty value and a leading BOM readable', () => {
    const enc = new CsvEncoder({ columns: ['\ufeffa'] });
    const text = enc.header()! + enc.encode([{ '\ufeffa': '' }, { '\ufeffa': 'v' }]);
    assert.deepEqual(records(text), [{ '\ufeffa': '' }, { '\ufeffa': 'v' }]);
  });

  it('rejects a record with no field instead of writing an empty line readers skip, and goes on', () => {
    const enc = new CsvEncoder();
    const rejected: number[] = [];
    const out = enc.encode([{}, { a: 1 }, {}], (i) => rejected.push(i));
    assert.deepEqual(rejected, [0]);
    // The columns come from the first record that has any; later, `{}` is a row of empty fields.
    assert.equal(out, 'a\n1\n""\n');
    // With `columns`, an empty record is a row of empty fields (one column: a quoted empty field).
    assert.equal(new CsvEncoder({ columns: ['a'], header: false }).encode([{}]), '""\n');
  });

  it('round-trips any table of strings (property)', () => {
    const cell = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.string({ unit: fc.constantFrom(',', '"', '\n', '\r', ' ', 'a', ';', '\ufeff', 'é'), maxLength: 8 }),
    );
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 6 })
          .chain((n) =>
            fc.tuple(
              fc.uniqueArray(fc.string({ maxLength: 6 }), { minLength: n, maxLength: n }),
              fc.array(fc.array(cell, { minLength: n, maxLength: n }), { maxLength: 8 }),
              fc.constantFrom(',', ';', '\t'),
              fc.constantFrom('\n', '\r\n') as fc.Arbitrary<'\n' | '\r\n'>,
              fc.integer({ min: 0, max: 9 }),
            ),
          ),
        ([header, rows, delimiter, lineEnding, chunk]) => {
          const enc = new CsvEncoder({ columns: header, delimiter, lineEnding });
          const objects = rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!])));
          const text = enc.header()! + enc.encode(objects);
          // Names that collide after de-duplication are not the point here; unique names are.
          assert.deepEqual(records(text, { delimiter, intern: { entries: 16 } }, chunk), objects);
        },
      ),
      { numRuns: 500 },
    );
  });
});
