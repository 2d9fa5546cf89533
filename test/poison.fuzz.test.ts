/**
 * Fuzz: hostile input through file → every format (jsonl, csv, lines; plain and gzip) → a JSON
 * Lines file, with a dlq. Cases mix random bytes, JSON nested past the limit (up to 3,000
 * levels), huge numbers (beyond 2^53, 1e400, -0, long digit strings) and odd Unicode (lone
 * surrogates, a BOM, NUL, U+2028/2029, invalid UTF-8). For every case:
 * - the run never fails;
 * - every input record ends in the output or the dlq exactly once. One input record is, for
 *   `lines`, one line (LF-terminated, or the last bytes without one; a byte order mark alone is
 *   an empty line); for `jsonl`, one line that is not empty or made only of spaces and tabs
 *   (after dropping a CR before the LF and a byte order mark opening the input); for `csv`,
 *   one row after the header as the CSV reader delimits it (quoted fields span lines, so rows are
 *   counted by running the reader alone over the same bytes);
 * - through `sluice run`, nothing printed holds the `${SECRET_PW}` planted in the input's path.
 *
 * Library cases for `SLUICE_FUZZ_MS` (default 45 s: several thousand cases)
 * and 40 CLI cases (about 15 s): a minute of generated cases.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { main } from '../src/cli/main.ts';
import type { CliIO } from '../src/cli/output.ts';
import { formatDecoder } from '../src/formats/formats.ts';
import { fileSink, fileSource, Pipeline } from '../src/index.ts';

type Format = 'jsonl' | 'csv' | 'lines';

/** How long the library property generates cases, ms. */
const LIBRARY_FUZZ_MS = Number(process.env.SLUICE_FUZZ_MS ?? 45_000);

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-poison-fuzz-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const deep = (n: number, array: boolean) =>
  array ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;

const hugeNumber = fc.constantFrom(
  '9007199254740993',
  '-9007199254740993',
  '1e400',
  '-1e400',
  '-0',
  '0.000000000000000000000000000000000000000000001e-400',
  '123456789012345678901234567890123456789012345678901234567890',
  `1${'0'.repeat(400)}`,
);

const oddText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(
    '\uD800',
    '\uDFFF',
    'a\uD83D',
    '\uFEFF',
    '\u0000',
    '\u2028',
    '\u2029',
    'é',
    '😀',
    '"',
    ',',
    '\\',
  ),
);

/** One line (no LF) of hostile text, as bytes. */
const piece: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 400, max: 3000 }), fc.boolean())
      .map(([n, a]) => Buffer.from(deep(n, a))),
  },
  { weight: 3, arbitrary: hugeNumber.map((n) => Buffer.from(`{"n":${n},"s":"${n}"}`)) },
  { weight: 3, arbitrary: oddText.map((s) => Buffer.from(JSON.stringify({ s }))) },
  // Raw, unescaped: NUL, U+2028, a lone surrogate encoded as WTF-8, a stray BOM.
  { weight: 3, arbitrary: oddText.map((s) => Buffer.from(`{"s":"${s}"}`, 'utf8')) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0xed, 0xa0, 0x80])) },
  { weight: 2, arbitrary: fc.array(oddText, { maxLength: 4 }).map((cells) => Buffer.from(cells.join(','))) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from(''), Buffer.from(' \t'), Buffer.from('\r')) },
);

const input = fc.record({
  format: fc.constantFrom<Format>('jsonl', 'csv', 'lines'),
  gzip: fc.boolean(),
  outGzip: fc.boolean(),
  bom: fc.boolean(),
  pieces: fc.array(piece, { minLength: 0, maxLength: 8 }),
  trailingNewline: fc.boolean(),
});

type Case = typeof input extends fc.Arbitrary<infer C> ? C : never;

function bytesOf(c: Case): Buffer {
  const parts: Buffer[] = [];
  if (c.bom) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  // CSV: a header line first, so the rows are data.
  if (c.format === 'csv') parts.push(Buffer.from('a,b,c\n'));
  c.pieces.forEach((p, i) => {
    parts.push(p);
    if (i < c.pieces.length - 1 || c.trailingNewline) parts.push(Buffer.from('\n'));
  });
  return Buffer.concat(parts);
}

/** The input records of `bytes` in `format`; see the module comment. */
function inputRecords(bytes: Buffer, format: Format): number {
  if (format === 'csv') {
    const d = formatDecoder('csv');
    let n = 0;
    const sink = { record: () => n++, invalid: () => n++ };
    d.write(bytes, sink);
    d.end(sink);
    return n;
  }
  const body = bytes;
  const lines: Buffer[] = [];
  let at = 0;
  for (let nl = body.indexOf(0x0a); nl !== -1; nl = body.indexOf(0x0a, at)) {
    lines.push(body.subarray(at, nl));
    at = nl + 1;
  }
  if (at < body.length) lines.push(body.subarray(at));
  if (format === 'lines') return lines.length;
  return lines.filter((line, i) => {
    // A byte order mark opening the input is no content.
    const l = i === 0 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf ? line.subarray(3) : line;
    const s = l.at(-1) === 0x0d ? l.subarray(0, -1) : l;
    return !s.every((b) => b === 0x20 || b === 0x09);
  }).length;
}

function countLines(path: string): number {
  let bytes = readFileSync(path);
  if (path.endsWith('.gz')) bytes = gunzipSync(bytes);
  const text = bytes.toString('utf8');
  return text === '' ? 0 : text.split('\n').length - 1;
}

let caseNo = 0;

describe('poison fuzz', () => {
  it('every input record ends in the output or the dlq exactly once, and the run never dies', async () => {
    await fc.assert(
      fc.asyncProperty(input, async (c) => {
        const n = caseNo++;
        const raw = bytesOf(c);
        const inPath = join(dir, `in-${n}.${c.format === 'csv' ? 'csv' : 'txt'}${c.gzip ? '.gz' : ''}`);
        writeFileSync(inPath, c.gzip ? gzipSync(raw) : raw);
        const outPath = join(dir, `out-${n}.jsonl${c.outGzip ? '.gz' : ''}`);
        const deadPath = join(dir, `dead-${n}.jsonl`);
        const p = new Pipeline(`fuzz-${n}`);
        p.from(fileSource({ path: inPath, format: c.format, chunkBytes: 64 })).to(
          fileSink({ path: outPath, format: 'jsonl' }),
        );
        p.dlq(fileSink({ path: deadPath, format: 'jsonl' }));
        const summary = await p.run({ log: { info() {}, warn() {}, error() {} } }).done;
        assert.equal(summary.state, 'succeeded');
        const expected = inputRecords(raw, c.format);
        const written = countLines(outPath);
        const dead = countLines(deadPath);
        assert.equal(
          written + dead,
          expected,
          `${written} written + ${dead} dead letters, ${expected} records in`,
        );
        assert.equal(summary.deadLetters, dead);
      }),
      // A minute of generated cases in all (with the CLI cases below), as many as fit.
      { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: LIBRARY_FUZZ_MS },
    );
  });

  it('`sluice run` prints no secret from the config while it meets hostile input', async () => {
    const secret = 'pw-Zq81-hunter2';
    const secretDir = join(dir, secret);
    mkdirSync(secretDir, { recursive: true });
    await fc.assert(
      fc.asyncProperty(input, async (c) => {
        const n = caseNo++;
        const raw = bytesOf(c);
        const inPath = join(secretDir, `in-${n}.${c.format === 'csv' ? 'csv' : 'txt'}`);
        writeFileSync(inPath, raw);
        const yaml = join(dir, `p-${n}.yaml`);
        // `${SECRET_PW}` in the YAML: the CLI substitutes the variable.
        const inYaml = inPath.replace(secret, ['$', '{SECRET_PW}'].join(''));
        writeFileSync(
          yaml,
          [
            `name: fuzz-cli-${n}`,
            // Hostile input may be all dead letters; the run must still end cleanly.
            'maxErrorRate: 1',
            `input: {file: {path: "${inYaml}", format: ${c.format}}}`,
            `output: {file: {path: "${join(dir, `cli-out-${n}.jsonl`)}", format: jsonl}}`,
            `dlq: {file: {path: "${join(dir, `cli-dead-${n}.jsonl`)}", format: jsonl}}`,
            '',
          ].join('\n'),
        );
        const stdout = new Capture();
        const stderr = new Capture();
        const io: Partial<CliIO> = {
          stdout,
          stderr,
          env: { SECRET_PW: secret },
          signals: new EventEmitter(),
        };
        const code = await main(['run', yaml], io);
        assert.equal(code, 0, stderr.text);
        assert.ok(!stdout.text.includes(secret) && !stderr.text.includes(secret), stderr.text);
      }),
      { numRuns: 40 },
    );
  });
});

class Capture {
  text = '';
  readonly isTTY = false;
  readonly columns = 200;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}
