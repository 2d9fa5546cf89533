/**
 * The shape shortcut of the JSON Lines reader must give exactly what `JSON.parse` gives — the
 * same value (key order, -0, number rounding, escapes, non-ASCII text) or the same rejection —
 * for every line, whether it takes the line or leaves it to `JSON.parse`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { DecodeSink } from './format.ts';
import { JsonShapes, parseJsonBytes } from './json-shape.ts';
import { LineDecoder } from './lines.ts';

type Outcome = { ok: true; value: unknown } | { ok: false };

/** What `JSON.parse` makes of one line: the oracle. */
function oracle(line: string): Outcome {
  try {
    return { ok: true, value: JSON.parse(line) };
  } catch {
    return { ok: false };
  }
}

/** Equal as `JSON.parse` results must be: same keys in the same order, -0 apart from 0. */
function assertSameValue(actual: unknown, expected: unknown, line: string): void {
  assert.deepStrictEqual(actual, expected, line);
  if (typeof expected === 'object' && expected !== null) {
    assert.deepEqual(Object.keys(actual as object), Object.keys(expected), `key order: ${line}`);
    for (const [k, v] of Object.entries(expected))
      if (typeof v !== 'object' || v === null)
        assert.ok(Object.is((actual as Record<string, unknown>)[k], v), `${k} in ${line}`);
    assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), line);
  }
}

/**
 * Decodes `lines` (joined by `\n`) through a JSON Lines reader with the shortcut, in chunks of
 * `chunk` bytes; returns each line's outcome and how many lines the shortcut took.
 */
function decodeLines(lines: readonly string[], chunk: number): { outcomes: Outcome[]; taken: number } {
  const shapes = new JsonShapes();
  let taken = 0;
  const decoder = new LineDecoder<unknown>({
    parse: (text) => JSON.parse(text),
    parseError: 'invalid JSON',
    skipBlank: 'whitespace',
    shortcut: {
      parse(text, start, end, bytes, bytesAt) {
        const value = shapes.parse(text, start, end, bytes, bytesAt);
        if (value !== undefined) taken++;
        return value;
      },
      learn: (value) => shapes.learn(value),
    },
  });
  const byLine = new Map<number, Outcome>();
  const sink: DecodeSink<unknown> = {
    record: (value, line) => byLine.set(line, { ok: true, value }),
    invalid: (_error, _raw, line) => byLine.set(line, { ok: false }),
  };
  const bytes = Buffer.from(`${lines.join('\n')}\n`);
  for (let i = 0; i < bytes.length; i += chunk) decoder.write(bytes.subarray(i, i + chunk), sink);
  decoder.end(sink);
  return { outcomes: lines.map((_, i) => byLine.get(i + 1) ?? { ok: false }), taken };
}

/** Asserts every line decodes as `JSON.parse` says; returns how many the shortcut took. */
function assertLikeJsonParse(lines: readonly string[], chunk = 1 << 16): number {
  const { outcomes, taken } = decodeLines(lines, chunk);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    // What the line's bytes say (a surrogate cut in half by a mutation is U+FFFD in UTF-8).
    const expected = oracle(Buffer.from(line).toString('utf8'));
    const actual = outcomes[i]!;
    assert.equal(actual.ok, expected.ok, `accepted or rejected like JSON.parse: ${line}`);
    if (actual.ok && expected.ok) assertSameValue(actual.value, expected.value, line);
  });
  return taken;
}

const FIRST = '{"id":1,"name":"a","score":1.5,"ok":true,"note":null}';

describe('JsonShapes (the JSON Lines shape shortcut)', () => {
  it('takes lines of the learned shape and gives what JSON.parse gives', () => {
    const lines = [
      FIRST,
      '{"id":2,"name":"b","score":-0.25,"ok":false,"note":"x"}',
      '{"id":-0,"name":"a much longer name than thirteen","score":1e3,"ok":true,"note":null}',
      '{"id":12345678901234567890,"name":"é","score":-1.5E-3,"ok":false,"note":"✓ done"}',
      '{"id":0,"name":"naïve café — a long non-ASCII value","score":0.1,"ok":true,"note":"😀 emoji after it, also long"}',
      '{"id":6,"name":"é, then \\"an escape\\"","score":1,"ok":true,"note":"a long ASCII value after it"}',
      '{"id":3,"name":"tab\\tand \\"quotes\\" and \\u00e9 and \\\\","score":2,"ok":true,"note":"\\/"}',
      '{ "id" : 4 , "name" : "spaced" , "score" : 5 , "ok" : true , "note" : null }',
      '{"id":5,\t"name":"tabs","score":6,"ok":false,"note":null}\r',
      '{"id":9007199254740993,"name":"big","score":1.7976931348623157e308,"ok":true,"note":"z"}',
    ];
    const taken = assertLikeJsonParse(lines);
    assert.equal(taken, lines.length - 1, 'every line after the first takes the shortcut');
  });

  it('leaves whatever is not surely its shape to JSON.parse, which accepts or rejects it', () => {
    const lines = [
      FIRST,
      // Invalid JSON the shortcut must not accept.
      '{"id":01,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":1.,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":-,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":.5,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":+1,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":1e,"name":"a","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"raw\ttab","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"raw \u0001 control","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"bad \\x escape","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"bad \\u12 escape","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"a","score":1,"ok":tru,"note":null}',
      '{"id":1,"name":"a","score":1,"ok":true,"note":nul}',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null}x',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null},',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null',
      '{"id":1,"name":"unterminated,"score":1,"ok":true,"note":null}',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null,}',
      '{"id":1,"name":"a" "score":1,"ok":true,"note":null}',
      '{"id":1;"name":"a","score":1,"ok":true,"note":null}',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null]',
      // Valid JSON of another shape: JSON.parse's value, not the shape's.
      '{"id":1,"name":"a","score":1,"ok":true}',
      '{"id":1,"name":"a","score":1,"ok":true,"note":null,"extra":2}',
      '{"id":1,"id":2,"score":1,"ok":true,"note":null}',
      '{"id":1,"name":{"nested":true},"score":1,"ok":true,"note":null}',
      '{"id":1,"name":["a"],"score":1,"ok":true,"note":null}',
      '{"name":"a","id":1,"score":1,"ok":true,"note":null}',
      '{"i\\u0064":1,"name":"a","score":1,"ok":true,"note":null}',
      '{"__proto__":{"polluted":1},"name":"a","score":1,"ok":true,"note":null}',
      '[1,2,3]',
      '"just a string"',
      '42',
    ];
    assertLikeJsonParse(lines);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('does not learn keys an object literal would treat differently', () => {
    for (const key of ['__proto__', '0', '1e3', 'a b', 'é', '']) {
      const shapes = new JsonShapes();
      const line = `{${JSON.stringify(key)}:1}`;
      shapes.learn(JSON.parse(line));
      assert.equal(shapes.parse(line, 0, line.length, Buffer.from(line), 0), undefined, key);
    }
  });

  it('takes nested objects of learned shapes, and leaves other nesting to JSON.parse', () => {
    const lines = [
      '{"id":1,"user":{"name":"ann","geo":{"lat":1.5,"lon":-2}},"ok":true}',
      '{"id":2,"user":{"name":"a name longer than 13 chars, é","geo":{"lat":0,"lon":0}},"ok":false}',
      '{"id":3,"user":null,"ok":true}',
      '{"id":4, "user" : { "name" : "bob" , "geo" : { "lat" : 1 , "lon" : 2 } } , "ok" : true }',
      '{"id":5,"user":{"name":"x","geo":{"lat":1,"lon":2},"extra":1},"ok":true}',
      '{"id":6,"user":{"name":"x","geo":{"lat":1,"lon":2}}}',
      '{"id":7,"user":{"name":"x","geo":{"lat":1,"lon":2}},"ok":true}}',
      '{"id":8,"user":{"name":"x","geo":{"lat":1,"lon":2},"ok":true}',
      '{"id":9,"user":{"name":"x","geo":[1,2]},"ok":true}',
      '{"id":10,"user":{},"ok":true}',
      '{"id":11,"user":{"name":"x","geo":{"lat":1,"lon":{"a":{"b":{"c":{"d":1}}}}}},"ok":true}',
      '{"id":12,"user":{"name":"x","geo":{"lat":1,"lon":2}},"ok":true}',
    ];
    const taken = assertLikeJsonParse(lines);
    // Lines 2, 3 (a null where line 1 has an object), 4 and 12 are of line 1's shape.
    assert.equal(taken, 4);
  });

  it('learns each shape once: optional keys, several record types, a change of shape', () => {
    const lines = [
      ...Array.from({ length: 40 }, (_, i) => `{"a":${i}}`),
      ...Array.from({ length: 90 }, (_, i) =>
        i % 3 === 0
          ? `{"b":${i},"c":"x"}`
          : i % 3 === 1
            ? `{"b":${i},"c":"x","d":true}`
            : `{"kind":"other","b":${i}}`,
      ),
    ];
    // Only the first line of each of the four shapes goes to JSON.parse.
    assert.equal(assertLikeJsonParse(lines), lines.length - 4);
  });

  it('stays exact when every line has other keys (past its limits it leaves them all to JSON.parse)', () => {
    const lines = Array.from(
      { length: 20_000 },
      (_, i) => `{"k${i % 5000}":${i},"v":"${'x'.repeat(i % 20)}"}`,
    );
    assertLikeJsonParse(lines);
  });

  it('gives what JSON.parse gives for random lines of one shape, mutated, in any chunking', () => {
    const key = fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/);
    const char = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('a', 'Z', ' ', '0', '.', ',', ':', '{', '}') },
      { weight: 4, arbitrary: fc.constantFrom('"', '\\', '\t', '\r', '\u0001', '\u007f') },
      { weight: 2, arbitrary: fc.constantFrom('é', 'ß', '✓', '€', '😀', '\u2028') },
    );
    const text = fc.string({ unit: char, maxLength: 30 });
    const primitive = fc.oneof(
      text,
      fc.integer(),
      fc.double(),
      fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map((n) => Number(n)),
      fc.boolean(),
      fc.constant(null),
    );
    // Nested objects of a few shapes (an optional key, one more level), now and then an array.
    const nested = fc.record(
      { x: primitive, y: fc.record({ z: primitive }, { requiredKeys: [] }) },
      { requiredKeys: ['x'] },
    );
    const value = fc.oneof(
      { weight: 6, arbitrary: primitive },
      { weight: 2, arbitrary: nested },
      { weight: 1, arbitrary: fc.array(primitive, { maxLength: 2 }) },
    );
    const style = fc.constantFrom<[string, string]>([',', ':'], [', ', ': '], [' ,', ' : '], [',\t', ':']);
    // `at`: where in the line, as a fraction (unbiased, so mutations land inside values too).
    const mutation = fc.record({
      at: fc.noBias(fc.integer({ min: 0, max: 9999 })),
      insert: fc.boolean(),
      char,
    });
    let takenTotal = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { minLength: 1, maxLength: 6 }),
        fc.array(fc.array(value, { minLength: 6, maxLength: 6 }), { minLength: 3, maxLength: 12 }),
        style,
        fc.array(fc.record({ line: fc.noBias(fc.nat(11)), mutation }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 300 }),
        (keys, rows, [comma, colon], mutations, chunk) => {
          const lines = rows.map(
            (row) =>
              `{${keys.map((k, i) => `${JSON.stringify(k)}${colon}${JSON.stringify(row[i])}`).join(comma)}}`,
          );
          for (const { line, mutation: m } of mutations) {
            const n = line % lines.length;
            const s = lines[n]!;
            const at = Math.floor((m.at / 10000) * (s.length + 1));
            lines[n] = s.slice(0, at) + m.char + s.slice(m.insert ? at : at + 1);
          }
          takenTotal += assertLikeJsonParse(lines, chunk);
        },
      ),
      { numRuns: 1000 },
    );
    assert.ok(takenTotal > 250, `the shortcut took ${takenTotal} lines in all: the test exercises it`);
  });

  it('parseJsonBytes: whole values (Kafka messages) through the shortcut, exactly as JSON.parse', () => {
    const shapes = new JsonShapes();
    const values = [
      '{"id":1,"name":"first, learned"}',
      '{"id":2,"name":"taken, and a long one: naïve café ✓"}\n',
      ' {"id":3,"name":"x"}\r\n',
      '{"id":4,"name":"y"} trailing',
      '{"id":5,"name":"z"',
    ];
    let taken = 0;
    for (const v of values) {
      const bytes = Buffer.from(v);
      if (shapes.parse(v, 0, v.length, bytes, 0) !== undefined) taken++;
      const expected = oracle(v);
      if (expected.ok) assertSameValue(parseJsonBytes(bytes, shapes), expected.value, v);
      else assert.throws(() => parseJsonBytes(bytes, shapes), SyntaxError, v);
    }
    assert.equal(taken, 2);
    // Invalid UTF-8 is decoded as Buffer#toString decodes it (U+FFFD), then JSON.parse.
    const bad = Buffer.concat([
      Buffer.from('{"id":6,"name":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(' long enough to copy"}'),
    ]);
    assertSameValue(parseJsonBytes(bad, shapes), JSON.parse(bad.toString('utf8')), 'invalid UTF-8');
  });
});
