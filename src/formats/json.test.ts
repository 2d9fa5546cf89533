import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../core/errors.ts';
import { CsvEncoder } from './csv/encoder.ts';
import { jsonNestingOver, MAX_RECORD_DEPTH, parseJson, stringifyJson, toJsonLine } from './json.ts';
import { JsonShapes, parseJsonBytes } from './json-shape.ts';
import { jsonlDecoder, jsonlEncoder } from './jsonl.ts';
import { linesEncoder } from './lines.ts';

const deepText = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

function deepValue(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

const isRecordError = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof SluiceError, String(err));
  assert.equal(err.code, 'SLUICE_RECORD');
  assert.match(err.message, pattern);
  return true;
};

describe('parseJson', () => {
  it('takes values up to 512 levels deep and rejects deeper ones with where', () => {
    assert.equal(MAX_RECORD_DEPTH, 512);
    assert.doesNotThrow(() => parseJson(deepArray(512)));
    assert.doesNotThrow(() => parseJson(deepText(512)));
    assert.throws(
      () => parseJson(deepArray(513)),
      (err: SluiceError) => {
        assert.equal(err.code, 'SLUICE_PARSE');
        assert.equal(
          err.message,
          'the value nests deeper than 512 levels of objects and arrays (level 513 opens at byte 512 of it)',
        );
        return true;
      },
    );
    // A million levels: JSON.parse takes it, parseJson says no, nothing overflows.
    assert.throws(() => parseJson(deepText(1_000_000)), /nests deeper than 512 levels/);
  });

  it('counts brackets inside strings as text, and many shallow brackets as no nesting', () => {
    assert.equal(jsonNestingOver(JSON.stringify(['{'.repeat(3000), '['.repeat(3000)])), -1);
    const wide = JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ i, a: [i] })));
    assert.equal(jsonNestingOver(wide), -1);
    assert.doesNotThrow(() => parseJson(wide));
    assert.equal(jsonNestingOver('[[[1]]]', 2), 2);
    // The byte offset counts UTF-8 bytes, not characters.
    assert.throws(() => parseJson(`["é",${deepArray(600)}]`), /level 513 opens at byte 517 of it/);
  });

  it('still throws what JSON.parse throws for bad JSON', () => {
    assert.throws(() => parseJson('{"a":'), SyntaxError);
  });
});

describe('stringifyJson', () => {
  it('writes bigints as digits and undefined as null, as before', () => {
    assert.equal(stringifyJson({ n: 2n ** 64n }), '{"n":"18446744073709551616"}');
    assert.equal(toJsonLine(undefined), 'null');
    assert.equal(
      stringifyJson(() => 1),
      undefined,
    );
  });

  it('throws a SLUICE_RECORD error naming where a record nests too deep, never a RangeError', () => {
    assert.throws(
      () => stringifyJson(deepValue(100_000)),
      isRecordError(
        /^writing JSON: the record nests deeper than 512 levels .*\(at `a\.a\.a\.a\.a\.a…`\); flatten it/,
      ),
    );
    // Deep and with a bigint: the replacer path fails the same way.
    assert.throws(
      () => stringifyJson({ n: 1n, d: deepValue(100_000) }),
      isRecordError(/at `d\.a\.a\.a\.a\.a…`/),
    );
  });

  it('throws a SLUICE_RECORD error for a circular record and a throwing toJSON', () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = loop;
    assert.throws(() => stringifyJson(loop), isRecordError(/refers to itself \(a circular structure\)/));
    assert.throws(
      () =>
        stringifyJson({
          toJSON() {
            throw new Error('nope');
          },
        }),
      isRecordError(/^writing JSON: nope; map the record to plain data first/),
    );
  });
});

describe('encoders with reject', () => {
  it('jsonl leaves out and reports what it cannot write; without reject it throws', () => {
    const records = [{ a: 1 }, deepValue(100_000), { a: 3 }];
    const rejected: number[] = [];
    assert.equal(
      jsonlEncoder().encode(records, (i) => rejected.push(i)),
      '{"a":1}\n{"a":3}\n',
    );
    assert.deepEqual(rejected, [1]);
    assert.throws(() => jsonlEncoder().encode(records), isRecordError(/nests deeper/));
  });

  it('csv keeps its header when the first record fails and reports each bad row', () => {
    const rejected: [number, string][] = [];
    const enc = new CsvEncoder();
    const out = enc.encode(
      [
        { a: deepValue(100_000), b: 1 },
        { a: 'x', b: 2 },
        { a: new Date(Number.NaN), b: 3 },
      ],
      (i, err) => rejected.push([i, (err as Error).message]),
    );
    assert.equal(out, 'a,b\nx,2\n');
    assert.deepEqual(
      rejected.map(([i]) => i),
      [0, 2],
    );
    assert.match(rejected[1]?.[1] ?? '', /invalid Date/);
    assert.equal(enc.encode([{ a: 'y', b: 4 }]), 'y,4\n');
  });

  it('lines reports a record with no text', () => {
    const rejected: number[] = [];
    assert.equal(
      linesEncoder().encode(['a', Object.create(null), 'b'], (i) => rejected.push(i)),
      'a\nb\n',
    );
    assert.deepEqual(rejected, [1]);
  });
});

describe('JSON Lines decoding of deep lines', () => {
  it('reports a too deep line as invalid, with line and byte, on the fast path and the slow one', () => {
    for (const chunk of [1 << 20, 7]) {
      const d = jsonlDecoder();
      const records: unknown[] = [];
      const invalid: string[] = [];
      const sink = {
        record: (v: unknown) => records.push(v),
        invalid: (e: SluiceError) => invalid.push(e.message),
      };
      const text = Buffer.from(`{"ok":1}\n${deepText(5000)}\n{"ok":2}\n`);
      for (let i = 0; i < text.length; i += chunk) d.write(text.subarray(i, i + chunk), sink);
      d.end(sink);
      assert.deepEqual(records, [{ ok: 1 }, { ok: 2 }]);
      assert.deepEqual(invalid, [
        'line 2 (byte 9): invalid JSON: the value nests deeper than 512 levels of objects and arrays (level 513 opens at byte 2560 of it); fix the line or let it go to the dlq',
      ]);
    }
  });

  it('the shape shortcut learns nothing from a deep value and parseJsonBytes rejects it', () => {
    const shapes = new JsonShapes();
    shapes.learn(deepValue(100_000));
    assert.deepEqual(parseJsonBytes(Buffer.from('{"a":{"a":1}}'), shapes), { a: { a: 1 } });
    assert.throws(() => parseJsonBytes(Buffer.from(deepText(5000)), shapes), /nests deeper than 512 levels/);
    // A learned shape five levels deep, then a line of that shape nested much deeper.
    const five = '{"a":{"a":{"a":{"a":{"a":1}}}}}';
    shapes.learn(JSON.parse(five));
    assert.deepEqual(parseJsonBytes(Buffer.from(five), shapes), JSON.parse(five));
    assert.throws(() => parseJsonBytes(Buffer.from(deepText(5000)), shapes), /nests deeper than 512 levels/);
  });
});
