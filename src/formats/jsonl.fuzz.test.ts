/**
 * Property and fuzz tests of the JSON Lines reader: random and mutated bytes never crash it, the
 * way input is cut into chunks never changes what it reports, and every input line that is not
 * blank comes out exactly once, either as a record or as an invalid report, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { jsonlDecoder } from './jsonl.ts';
import { type DecodeEvent as Event, eventSink, writeBorrowed } from './test-helpers.ts';

/** Decodes `bytes` fed in chunks of `chunk` bytes (the last one shorter). */
function decode(bytes: Uint8Array, chunk: number, maxLineBytes = 64): Event[] {
  const events: Event[] = [];
  const sink = eventSink(events, (error, line, offset) => {
    assert.equal(error.code, 'SLUICE_PARSE');
    assert.equal(error.context.line, line);
    assert.equal(error.context.offset, offset);
  });
  const d = jsonlDecoder({ maxLineBytes });
  for (let i = 0; i < bytes.length; i += chunk) d.write(bytes.slice(i, i + chunk), sink);
  d.end(sink);
  return events;
}

/**
 * Decodes `bytes` in pieces of `chunk` bytes, each copied into the same buffer, which is
 * scribbled over after every write: as a reader that reuses its buffers feeds the decoder.
 */
function decodeBorrowed(bytes: Uint8Array, chunk: number, maxLineBytes = 64): Event[] {
  const events: Event[] = [];
  const d = jsonlDecoder({ maxLineBytes });
  assert.equal(d.borrowsChunks, true);
  writeBorrowed(d, bytes, chunk, eventSink(events));
  return events;
}

/**
 * The oracle: the lines a JSONL reader must report, by 1-based number and byte offset — every LF-
 * terminated (or final) line that is not empty nor only spaces and tabs, after a CR before the LF
 * and a byte-order mark at the very start are dropped.
 */
function expectedLines(bytes: Uint8Array): { line: number; offset: number }[] {
  const out: { line: number; offset: number }[] = [];
  let start = 0;
  let line = 1;
  while (start < bytes.length) {
    let end = bytes.indexOf(10, start);
    const next = end === -1 ? bytes.length : end + 1;
    if (end === -1) end = bytes.length;
    let a = start;
    if (a === 0 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) a = 3;
    let b = end;
    if (b > a && bytes[b - 1] === 13) b--;
    let blank = true;
    for (let i = a; i < b && blank; i++) blank = bytes[i] === 0x20 || bytes[i] === 0x09;
    if (!blank) out.push({ line, offset: a });
    start = next;
    line++;
  }
  return out;
}

const enc = (s: string) => new TextEncoder().encode(s);

/** Bytes that are mostly JSON and line syntax, so random inputs reach the interesting states. */
const jsonlByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...enc('{}[]":,\n\r 1a\\')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff, 0x80, 0x09) },
);
const jsonlBytes = fc.array(jsonlByte, { maxLength: 300 }).map((a) => new Uint8Array(a));

/** A tricky file: BOM, CRLF, blank and whitespace lines, multi-byte text, bad JSON, a long line, no final LF. */
const TRICKY = Buffer.concat([
  Buffer.from('\uFEFF{"a":1}\r\n\n  \t\n{"s":"héllo, wörld ✓"}\n{bad\n'),
  Buffer.from([0x7b, 0x22, 0x62, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]),
  Buffer.from(`{"long":"${'x'.repeat(80)}"}\n[1,2,3]\r\n"last"`),
]);

describe('JSON Lines reader under random input', () => {
  it('reports every non-blank line exactly once, in order, whatever the bytes and chunking', () => {
    fc.assert(
      fc.property(jsonlBytes, fc.integer({ min: 1, max: 17 }), (bytes, chunk) => {
        const whole = decode(bytes, bytes.length + 1);
        assert.deepEqual(
          whole.map((e) => ({ line: e.line, offset: e.offset })),
          expectedLines(bytes),
        );
        assert.deepEqual(decode(bytes, chunk), whole);
      }),
      { numRuns: 400 },
    );
  });

  it('keeps no view of a chunk after `write` returns: a reused, overwritten read buffer decodes the same', () => {
    fc.assert(
      fc.property(jsonlBytes, fc.integer({ min: 1, max: 17 }), (bytes, chunk) => {
        assert.deepEqual(decodeBorrowed(bytes, chunk), decode(bytes, bytes.length + 1));
      }),
      { numRuns: 1000 },
    );
    // Long lines (the carry buffer grows past 1 MiB and is let go), values the shape shortcut
    // copies out of the chunk, non-ASCII text, a bad line.
    const long = 'x'.repeat(1_200_000);
    const text =
      Array.from({ length: 3000 }, (_, i) =>
        JSON.stringify({ id: i, note: `a long note, row ${i}, ✓ é` }),
      ).join('\n') +
      `\n{"id":-1,"note":"${long}"}\n{"id":-2,"note":"short"}\n{bad\n{"id":-3,"note":"${long.slice(0, 70_000)}"}\n`;
    const bytes = new TextEncoder().encode(text);
    const whole = decode(bytes, bytes.length + 1, 1 << 21);
    assert.equal(whole.length, 3004);
    for (const chunk of [7, 4096, 65_536, 70_001, 262_144]) {
      assert.deepEqual(decodeBorrowed(bytes, chunk, 1 << 21), whole, `chunks of ${chunk} bytes`);
    }
  });

  it('gives the same report for a tricky file split at every offset', () => {
    const whole = decode(TRICKY, TRICKY.length);
    assert.deepEqual(
      whole.map((e) => [e.kind, e.line]),
      [
        ['record', 1],
        ['record', 4],
        ['invalid', 5],
        ['invalid', 6],
        ['invalid', 7],
        ['record', 8],
        ['record', 9],
      ],
    );
    for (let cut = 1; cut < TRICKY.length; cut++) {
      const events: Event[] = [];
      const sink = eventSink(events);
      const d = jsonlDecoder({ maxLineBytes: 64 });
      d.write(TRICKY.subarray(0, cut), sink);
      d.write(TRICKY.subarray(cut), sink);
      d.end(sink);
      assert.deepEqual(events, whole, `split at byte ${cut}`);
    }
  });

  it('survives mutations of a valid file: each line is still a record or a dead letter', () => {
    const valid = enc(
      Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, note: `a "b", c ${i}` })).join('\n'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(valid.length - 1), byte: fc.integer({ min: 0, max: 255 }) }), {
          maxLength: 8,
        }),
        fc.integer({ min: 1, max: 64 }),
        (mutations, chunk) => {
          const bytes = Uint8Array.from(valid);
          for (const m of mutations) bytes[m.at] = m.byte;
          const events = decode(bytes, chunk, 1 << 20);
          assert.deepEqual(
            events.map((e) => ({ line: e.line, offset: e.offset })),
            expectedLines(bytes),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
