import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal } from '../core/decimal.ts';
import type { SluiceError } from '../core/errors.ts';
import { jsonlDecoder, jsonlEncoder, toJsonLine } from './jsonl.ts';

function decodeAll(input: string | Buffer, maxLineBytes?: number) {
  const values: { value: unknown; line: number; offset: number }[] = [];
  const invalid: { error: SluiceError; raw: string; line: number; offset: number }[] = [];
  const d = jsonlDecoder(maxLineBytes === undefined ? {} : { maxLineBytes });
  const sink = {
    record: (value: unknown, line: number, offset: number) => values.push({ value, line, offset }),
    invalid: (error: SluiceError, raw: Uint8Array, line: number, offset: number) =>
      invalid.push({ error, raw: Buffer.from(raw).toString(), line, offset }),
  };
  d.write(typeof input === 'string' ? Buffer.from(input) : input, sink);
  d.end(sink);
  return { values, invalid };
}

describe('jsonlDecoder', () => {
  it('parses one value per line and skips blank lines', () => {
    const { values, invalid } = decodeAll('{"a":1}\n\n   \n[1,2]\r\n"s"\n{"b":null}');
    assert.deepEqual(invalid, []);
    assert.deepEqual(values, [
      { value: { a: 1 }, line: 1, offset: 0 },
      { value: [1, 2], line: 4, offset: 13 },
      { value: 's', line: 5, offset: 20 },
      { value: { b: null }, line: 6, offset: 24 },
    ]);
  });

  it('reports a malformed line with line, byte offset and reason, and keeps the others', () => {
    const input = '{"id":1}\n{"id":2}\n{"id":3,}\n{"id":4}\n';
    const { values, invalid } = decodeAll(input);
    assert.deepEqual(
      values.map((v) => v.value),
      [{ id: 1 }, { id: 2 }, { id: 4 }],
    );
    assert.equal(invalid.length, 1);
    const bad = invalid[0]!;
    assert.equal(bad.line, 3);
    assert.equal(bad.offset, 18);
    assert.equal(bad.raw, '{"id":3,}');
    assert.equal(bad.error.code, 'SLUICE_PARSE');
    assert.match(
      bad.error.message,
      /^line 3 \(byte 18\): invalid JSON: .+; fix the line or let it go to the dlq$/,
    );
    assert.deepEqual(
      { line: bad.error.context.line, offset: bad.error.context.offset },
      { line: 3, offset: 18 },
    );
    assert.ok(bad.error.cause instanceof SyntaxError);
  });

  it('reports a truncated last line', () => {
    const { values, invalid } = decodeAll('{"a":1}\n{"a":');
    assert.equal(values.length, 1);
    assert.equal(invalid[0]?.line, 2);
  });

  it('reports a line over maxLineBytes', () => {
    const { values, invalid } = decodeAll('{"a":1}\n{"a":"0123456789"}\n{"b":2}\n', 10);
    assert.deepEqual(
      values.map((v) => v.value),
      [{ a: 1 }, { b: 2 }],
    );
    assert.equal(invalid.length, 1);
    assert.match(invalid[0]!.error.message, /line 2 \(byte 8\): line longer than maxLineBytes/);
  });
});

describe('jsonlEncoder', () => {
  it('writes one JSON value per line', () => {
    assert.equal(jsonlEncoder().encode([{ a: 1 }, 'x', null]), '{"a":1}\n"x"\nnull\n');
  });

  it('turns bigint into strings and undefined into null instead of throwing', () => {
    assert.equal(toJsonLine({ n: 12345678901234567890n, m: [1n] }), '{"n":"12345678901234567890","m":["1"]}');
    assert.equal(toJsonLine(undefined), 'null');
  });

  it('still fails loudly on a circular record, with a SLUICE_RECORD error', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    assert.throws(
      () => toJsonLine(a),
      (err: Error & { code?: string }) => err.code === 'SLUICE_RECORD' && err.cause instanceof TypeError,
    );
  });

  it('round-trips through the decoder', () => {
    const rows = [{ a: 1, s: 'é\n"' }, [true], 'line'];
    assert.deepEqual(
      decodeAll(jsonlEncoder().encode(rows) as string).values.map((v) => v.value),
      rows,
    );
  });
});

describe('jsonlDecoder with decimals', () => {
  function decodeWith(input: string, decimals: string[]) {
    const values: unknown[] = [];
    const invalid: { message: string; line: number }[] = [];
    const d = jsonlDecoder({ decimals });
    const sink = {
      record: (value: unknown) => values.push(value),
      invalid: (error: SluiceError, _raw: Uint8Array, line: number) =>
        invalid.push({ message: error.message, line }),
    };
    d.write(Buffer.from(input), sink);
    d.end(sink);
    return { values, invalid };
  }

  it('reads the listed fields exactly, beyond 2^53 and past a double’s digits, and leaves the rest', () => {
    const { values, invalid } = decodeWith(
      '{"amount":473.98,"n":0.1}\n{"amount":"12.50","n":1}\n{"amount":12345678901234567890.123456789,"n":9007199254740993}\n{"amount":null}\n{"amount":1.5e2}\n',
      ['amount'],
    );
    assert.deepEqual(invalid, []);
    assert.deepEqual(
      values.map((v) => {
        const r = v as { amount: unknown; n?: unknown };
        return [r.amount instanceof Decimal ? r.amount.toString() : r.amount, r.n];
      }),
      [
        ['473.98', 0.1],
        ['12.50', 1],
        ['12345678901234567890.123456789', 9007199254740992],
        [null, undefined],
        ['150', undefined],
      ],
    );
  });

  it('with `*` reads every number exactly', () => {
    const { values } = decodeWith('{"a":9007199254740993,"b":{"c":0.30000000000000004}}\n', ['*']);
    const r = values[0] as { a: Decimal; b: { c: Decimal } };
    assert.equal(r.a.toString(), '9007199254740993');
    assert.equal(r.b.c.toString(), '0.30000000000000004');
  });

  it('sends a listed field that is no decimal to the dlq naming field, value and line', () => {
    const { values, invalid } = decodeWith('{"amount":"1,200"}\n{"amount":true}\n{"amount":2}\n', ['amount']);
    assert.equal(values.length, 1);
    assert.deepEqual(
      invalid.map((i) => i.line),
      [1, 2],
    );
    assert.match(invalid[0]!.message, /line 1 \(byte 0\): .*field `amount`: "1,200" is not a decimal number/);
    assert.match(invalid[1]!.message, /field `amount`: true is not a decimal number/);
  });

  it('writes a decimal as its exact text, a JSON string', () => {
    assert.equal(toJsonLine({ amount: new Decimal(47398n, 2) }), '{"amount":"473.98"}');
  });
});
