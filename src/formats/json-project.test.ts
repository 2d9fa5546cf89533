/**
 * The projected JSON Lines reader must report exactly what the whole-line reader reports, with
 * each record cut down to the wanted fields: the same records (values, -0, escapes, non-ASCII
 * text, duplicate keys, an `epochMillis` time as its epoch ms) and the same dead letters (message,
 * line, byte offset, raw bytes) — whether its scanner takes a line or leaves it to `JSON.parse`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RecordDecoder } from './format.ts';
import { JsonProjection } from './json-project.ts';
import { jsonlDecoder } from './jsonl.ts';
import { type DecodeEvent as Event, eventSink } from './test-helpers.ts';

const FIELDS = ['country', 'amount', 'ts', 'é'];
const USES = new Map([['ts', 'epochMillis' as const]]);

/** Decodes `bytes` in chunks of `chunk` bytes, projected or not. */
function decode(bytes: Uint8Array, chunk: number, projected: boolean): Event[] {
  const events: Event[] = [];
  const sink = eventSink(events);
  const d: RecordDecoder<unknown> = jsonlDecoder({ maxLineBytes: 1 << 16 });
  if (projected) d.project?.(FIELDS, USES);
  for (let i = 0; i < bytes.length; i += chunk) d.write(bytes.slice(i, i + chunk), sink);
  d.end(sink);
  return events;
}

/** What a projected record must be, written without the code under test. */
function expectedRecord(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) {
    if (!Object.hasOwn(value, f)) continue;
    let v = (value as Record<string, unknown>)[f];
    if (f === 'ts' && typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/.test(v)) {
      const ms = Date.parse(v);
      if (!Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === v.slice(0, 19)) v = ms;
    }
    out[f] = v;
  }
  return out;
}

/** Projected events against whole-line events, records cut down by {@link expectedRecord}. */
function assertSameAsWhole(bytes: Uint8Array, chunk: number): void {
  const whole = decode(bytes, bytes.length + 1, false).map(
    (e): Event => (e.kind === 'record' ? { ...e, value: expectedRecord(e.value) } : e),
  );
  const projected = decode(bytes, chunk, true);
  assert.deepStrictEqual(projected, whole);
  for (let i = 0; i < whole.length; i++) {
    const w = whole[i] as Event;
    const p = projected[i] as Event;
    if (w.kind !== 'record' || p.kind !== 'record') continue;
    if (typeof w.value !== 'object' || w.value === null) continue;
    // Same keys in the same order; -0 stays -0.
    assert.deepEqual(Object.keys(p.value as object), Object.keys(w.value));
    for (const [k, v] of Object.entries(w.value))
      if (typeof v !== 'object' || v === null)
        assert.ok(Object.is((p.value as Record<string, unknown>)[k], v), `${k}: ${String(v)}`);
  }
}

// Keys of 1- to 4-byte UTF-8 characters (the scanner walks bytes and counts their extra bytes).
const key = fc.constantFrom(
  'country',
  'amount',
  'ts',
  'é',
  'id',
  'note',
  'n\u00f6te',
  'c',
  '',
  '✓',
  '𝄞k',
  'countr',
);
/** JSON text written as it is, not through `JSON.stringify`: escapes and numbers it never writes. */
class Raw {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}
const raw = fc
  .constantFrom(
    '"a\\/b"',
    '"\\b\\f\\n\\r\\t\\"\\\\"',
    '"\\u00e9\\uD83D\\uDE00"',
    '"\\uDE00 lone"',
    '"\\u12G4"',
    '"\\uG123"',
    '"\\u123"',
    '"\\x"',
    '"\\',
    '"tab\there"',
    '"nul\u0000"',
    '"del\u007f ✓ 𝄞"',
    '-0',
    '0',
    '-0.0e0',
    '1E-7',
    '1e+2',
    '123456789012345678901',
    '01',
    '-',
    '1.',
    '.5',
    '1e',
    '1e+',
    '+1',
    'tru',
    'nul',
    'falsey',
    '[ ]',
    '{ }',
    '[1,]',
    '{"a" 1}',
    '{"a":1,}',
  )
  .map((t) => new Raw(t));
/** `v` as JSON text: a {@link Raw} as written, at any depth; anything else as `JSON.stringify` writes it. */
function json(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`;
  if (typeof v === 'object' && v !== null)
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${json(x)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
const leaf = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 16 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('2024-05-01T12:00:00Z', '2024-05-01T12:00:00.250Z', '2024-02-30T00:00:00Z', 'DE'),
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 1e21, 0.1, 2 ** 60),
  fc.boolean(),
  fc.constant(null),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, raw, tie('arr'), tie('obj')),
  arr: fc.array(tie('v'), { maxLength: 3 }),
  obj: fc.dictionary(key, tie('v'), { maxKeys: 3 }),
})).v;
/** A record as JSON text: maybe spaced out, maybe with a duplicate key or an escaped character. */
const wantedValue = fc.oneof({ weight: 6, arbitrary: leaf }, { weight: 1, arbitrary: value });
const recordLine = fc
  .tuple(
    fc.array(fc.tuple(key, value), { maxLength: 7 }),
    fc.array(wantedValue, { minLength: FIELDS.length, maxLength: FIELDS.length }),
    fc.array(fc.nat(), { minLength: FIELDS.length, maxLength: FIELDS.length }),
    fc.integer({ min: 0, max: 9 }),
    fc.constantFrom('', '', '', ' ', '\t', ' \r '),
    fc.integer({ min: 0, max: 9 }),
  )
  .map(([others, wanted, at, dropOne, space, escapeOne]) => {
    // Usually every wanted field, among the others at random places; now and then one is missing.
    const members: [string, unknown][] = [...others];
    FIELDS.forEach((f, i) => {
      if (dropOne !== i) members.splice((at[i] as number) % (members.length + 1), 0, [f, wanted[i]]);
    });
    const escaped = escapeOne === 0;
    const body = members
      .map(([k, v]) => `${JSON.stringify(k)}${space}:${space}${json(v)}`)
      .join(`${space},${space}`);
    let line = `${space}{${space}${body}${space}}${space}`;
    if (escaped) line = line.replace('e', '\\u0065');
    return line;
  });

/**
 * Lines mostly valid, with random byte mutations (bad JSON, control characters, bad UTF-8) and
 * now and then a line cut short (the scanner, which walks bytes, must not read on into the next).
 */
const fileBytes = fc
  .tuple(
    fc.array(recordLine, { minLength: 1, maxLength: 12 }),
    fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 3 }),
    fc.constantFrom('\n', '\r\n'),
    fc.array(fc.option(fc.nat(), { freq: 4 }), { maxLength: 12 }),
  )
  .map(([lines, mutations, eol, cuts]) => {
    const cut = lines.map((line, i) => {
      const at = cuts[i];
      return at === null || at === undefined ? line : line.slice(0, at % (line.length + 1));
    });
    const bytes = Buffer.from(cut.join(eol) + eol);
    for (const m of mutations) bytes[m.at % bytes.length] = m.byte;
    return new Uint8Array(bytes);
  });

describe('projected JSON Lines', () => {
  it('reports what the whole-line reader reports, cut down to the wanted fields', () => {
    fc.assert(
      fc.property(
        fileBytes,
        // Mostly whole files (lines within a chunk take the fast path), sometimes cut small.
        fc.oneof({ weight: 3, arbitrary: fc.constant(1 << 20) }, fc.integer({ min: 1, max: 300 })),
        (bytes, chunk) => {
          assertSameAsWhole(bytes, chunk);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('agrees on hand-picked lines: escapes, duplicates, nesting, non-ASCII, bad input', () => {
    const deep = `${'['.repeat(600)}${']'.repeat(600)}`;
    const lines = [
      '{"country":"DE","amount":"1.50","ts":"2024-05-01T12:00:00.000Z","é":1,"note":"a, b"}',
      '{"note":"ünïcödé ✓ 𝄞","country":"a long country name with ✓","amount":-0,"ts":"x","é":"é"}',
      '{"n\u00f6te":"✓✓✓","country":"another long value, after non-ASCII","amount":1,"ts":1,"é":2}',
      '{"country":"D\\u0045","amount":"1","ts":"2024-05-01T12:00:00\\u002e000Z","é":null}',
      '{"country":"DE","country":"FR","amount":1,"ts":2,"é":3}',
      '{"country":"DE","amount":1,"ts":2}',
      '{"country":{"a":1},"amount":1,"ts":2,"é":3}',
      `{"country":"DE","amount":1,"ts":2,"é":3,"deep":${deep}}`,
      '{"country":"DE","amount":1,"ts":2,"é":3,"bad":"\\x"}',
      '{"country":"DE","amount":1,"ts":2,"é":3,"bad":01}',
      '{"country":"DE","amount":1,"ts":2,"é":3,"bad":"tab\there"}',
      '{"country":"DE","amount":1,"ts":2,"é":3} x',
      '{"country":"DE","amount":1,"ts":2,"é":3,}',
      '{"c\\u006funtry":"DE","amount":1,"ts":2,"é":3}',
      '[1,2]',
      '"text"',
      '{"country":"DE","amount":1e400,"ts":-1.5e-3,"é":true,"x":[{"y":[1,{"z":"\\ud83d\\ude00"}]}]}',
      '{"country":"DE","amount":12345678901234567890,"ts":"2024-13-01T00:00:00Z","é":false}',
    ];
    const bytes = new Uint8Array(
      Buffer.concat([
        Buffer.from(`${lines.join('\n')}\n`),
        Buffer.from([0x7b, 0x22, 0x63, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]),
      ]),
    );
    for (const chunk of [1, 7, 64, bytes.length + 1]) assertSameAsWhole(bytes, chunk);
    const events = decode(bytes, bytes.length + 1, true);
    assert.deepEqual(
      events.filter((e) => e.kind === 'invalid').map((e) => e.line),
      [8, 9, 10, 11, 12, 13, 19],
    );
    assert.deepStrictEqual(events[0]?.kind === 'record' && events[0].value, {
      country: 'DE',
      amount: '1.50',
      ts: Date.UTC(2024, 4, 1, 12),
      é: 1,
    });
  });

  it('takes lines with 2- to 4-byte characters, escapes and spacing itself, in any key order', () => {
    const p = JsonProjection.create(['country', 'ts', 'amount'], USES) as JsonProjection;
    const skipped = [
      '"𝄞k":"𝄞 ✓ é 𝄞𝄞"',
      '"id" :\t-0.5e-3',
      '"n\u00f6te"\r:\r"a\\/b\\u00e9\\uD83D\\uDE00\\"\\\\\\b\\f\\n\\r\\t"',
      '"x": [ 1 , { "y" : [ null , true , false , "✓" ] } , { } , [ ] ]',
    ];
    const wanted = ['"country" : "a long country name, ✓ 𝄞"', '"ts":"2024-05-01T12:00:00Z"', '"amount":1E+2'];
    const want = { country: 'a long country name, ✓ 𝄞', ts: Date.UTC(2024, 4, 1, 12), amount: 100 };
    // Three layouts, each twice (the second line of a layout has its keys recognised from the first).
    const layouts = [
      [...skipped, ...wanted],
      [wanted[2], skipped[2], wanted[0], skipped[0], skipped[1], wanted[1], skipped[3]],
      [skipped[3], wanted[1], skipped[0], wanted[0], skipped[1], skipped[2], wanted[2]],
    ];
    const lines = layouts.flatMap((l) => {
      const line = ` \t{ ${l.join(' ,\t')}\r}\t `;
      return [line, line];
    });
    const bytes = Buffer.from(lines.join('\n'));
    const text = bytes.toString('utf8');
    let c = 0;
    let b = 0;
    for (const line of lines) {
      assert.deepStrictEqual(p.parse(text, c, c + line.length, bytes, b - c), want, line);
      c += line.length + 1;
      b += Buffer.byteLength(line) + 1;
    }
  });

  it('tells keys apart that differ only in their last byte, past 16 bytes or within them', () => {
    const long = 'a_wanted_key_longer_than_16';
    const p = JsonProjection.create(['country', long, 'event_type_x']) as JsonProjection;
    const lines = [
      `{"country":"DE","countrx":"no","${long}":1,"${long.slice(0, -1)}7":2,"event_type_x":3,"event_type_y":4}`,
      `{"countrx":"no","country":"DE","${long.slice(0, -1)}7":2,"${long}":1,"event_type_y":4,"event_type_x":3}`,
      `{"country":"DE","countrx":"no","${long}":1,"${long.slice(0, -1)}7":2,"event_type_x":3,"event_type_y":4}`,
    ];
    const bytes = Buffer.from(lines.join('\n'));
    const text = bytes.toString('latin1');
    let c = 0;
    for (const line of lines) {
      assert.deepStrictEqual(
        p.parse(text, c, c + line.length, bytes, 0),
        { country: 'DE', [long]: 1, event_type_x: 3 },
        line,
      );
      c += line.length + 1;
    }
  });

  it('takes lines of the common shape itself, long values copied out of the bytes', () => {
    const p = JsonProjection.create(['country', 'ts', 'note'], USES) as JsonProjection;
    const line = '{"id":7,"ünï":"✓","ts":"2024-05-01T12:00:00Z","country":"DE","note":"a long note, ✓ é"}';
    const bytes = Buffer.from(`${line}\n${line}`);
    const text = bytes.toString('utf8');
    const second = line.length + 1;
    const byteAt = Buffer.byteLength(line) + 1;
    const want = { country: 'DE', ts: Date.UTC(2024, 4, 1, 12), note: 'a long note, ✓ é' };
    assert.deepStrictEqual(p.parse(text, 0, line.length, bytes, 0), want);
    // The second line: its keys are recognised from the first one's, its bytes further on.
    assert.deepStrictEqual(p.parse(text, second, text.length, bytes, byteAt - second), want);
    assert.equal(JsonProjection.create(['__proto__']), undefined);
    assert.equal(JsonProjection.create([]), undefined);
  });
});
