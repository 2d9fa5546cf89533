import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SluiceError } from '../core/errors.ts';
import type { RecordDecoder } from './format.ts';
import { formatDecoder, resumeOptions } from './formats.ts';
import { LineDecoder, linesDecoder, linesEncoder } from './lines.ts';

type Event =
  | { kind: 'record'; value: unknown; line: number; offset: number }
  | { kind: 'invalid'; code: string; message: string; raw: string; line: number; offset: number };

function decode<T>(decoder: RecordDecoder<T>, chunks: Uint8Array[]): Event[] {
  const events: Event[] = [];
  const sink = {
    record: (value: T, line: number, offset: number) => events.push({ kind: 'record', value, line, offset }),
    invalid: (error: SluiceError, raw: Uint8Array, line: number, offset: number) =>
      events.push({
        kind: 'invalid',
        code: error.code,
        message: error.message,
        raw: Buffer.from(raw).toString('hex'),
        line,
        offset,
      }),
  };
  for (const c of chunks) decoder.write(c, sink);
  decoder.end(sink);
  return events;
}

const records = (events: Event[]) =>
  events.filter((e) => e.kind === 'record').map((e) => e.kind === 'record' && e.value);

describe('LineDecoder', () => {
  it('splits LF and CRLF lines and keeps a last line without newline', () => {
    const ev = decode(linesDecoder(), [Buffer.from('a\nbb\r\nccc')]);
    assert.deepEqual(ev, [
      { kind: 'record', value: 'a', line: 1, offset: 0 },
      { kind: 'record', value: 'bb', line: 2, offset: 2 },
      { kind: 'record', value: 'ccc', line: 3, offset: 6 },
    ]);
  });

  it('emits nothing for empty input and no phantom line after a final newline', () => {
    assert.deepEqual(decode(linesDecoder(), []), []);
    assert.deepEqual(records(decode(linesDecoder(), [Buffer.from('x\n')])), ['x']);
  });

  it('keeps empty lines unless skipBlank is set', () => {
    assert.deepEqual(records(decode(linesDecoder(), [Buffer.from('a\n\r\n\nb\n')])), ['a', '', '', 'b']);
    const skipped = decode(linesDecoder({ skipBlank: true }), [Buffer.from('a\n\r\n\nb\n')]);
    assert.deepEqual(skipped, [
      { kind: 'record', value: 'a', line: 1, offset: 0 },
      { kind: 'record', value: 'b', line: 4, offset: 5 },
    ]);
  });

  it('skips a UTF-8 BOM at the very start only', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const ev = decode(linesDecoder(), [
      Buffer.concat([bom, Buffer.from('héllo\n'), bom, Buffer.from('x\n')]),
    ]);
    assert.deepEqual(ev[0], { kind: 'record', value: 'héllo', line: 1, offset: 3 });
    // A BOM later in the input is data (U+FEFF), not skipped.
    assert.deepEqual(ev[1], { kind: 'record', value: '\uFEFFx', line: 2, offset: 10 });
  });

  it('decodes multi-byte characters split across chunks', () => {
    const bytes = Buffer.from('€uro\n😀\n');
    const ev = decode(linesDecoder(), [
      bytes.subarray(0, 1),
      bytes.subarray(1, 2),
      bytes.subarray(2, 7),
      bytes.subarray(7),
    ]);
    assert.deepEqual(records(ev), ['€uro', '😀']);
  });

  it('reports invalid UTF-8 as invalid and goes on', () => {
    const ev = decode(linesDecoder(), [
      Buffer.concat([Buffer.from('ok\nb'), Buffer.from([0xff, 0xfe]), Buffer.from('d\nnext\n')]),
    ]);
    assert.equal(ev.length, 3);
    assert.deepEqual(ev[0], { kind: 'record', value: 'ok', line: 1, offset: 0 });
    const bad = ev[1];
    assert.ok(bad?.kind === 'invalid');
    assert.equal(bad.code, 'SLUICE_PARSE');
    assert.match(bad.message, /^line 2 \(byte 3\): invalid UTF-8/);
    assert.equal(
      bad.raw,
      Buffer.concat([Buffer.from('b'), Buffer.from([0xff, 0xfe]), Buffer.from('d')]).toString('hex'),
    );
    assert.deepEqual(ev[2], { kind: 'record', value: 'next', line: 3, offset: 8 });
  });

  it('accepts a real U+FFFD character', () => {
    assert.deepEqual(records(decode(linesDecoder(), [Buffer.from('a\uFFFDb\n')])), ['a\uFFFDb']);
  });

  it('reports a line over maxLineBytes and resumes at the next line', () => {
    const ev = decode(linesDecoder({ maxLineBytes: 4 }), [Buffer.from('abcd\nabcde\nxy\nabcd\r\n')]);
    assert.equal(ev.length, 4);
    assert.deepEqual(ev[0], { kind: 'record', value: 'abcd', line: 1, offset: 0 });
    const bad = ev[1];
    assert.ok(bad?.kind === 'invalid');
    assert.equal(bad.line, 2);
    assert.equal(bad.offset, 5);
    assert.match(
      bad.message,
      /line 2 \(byte 5\): line longer than maxLineBytes \(4 bytes\); split the record or raise `maxLineBytes`/,
    );
    assert.equal(Buffer.from(bad.raw, 'hex').toString(), 'abcd');
    assert.deepEqual(ev[2], { kind: 'record', value: 'xy', line: 3, offset: 11 });
    // A CRLF line of exactly the limit is fine: the CR does not count.
    assert.deepEqual(ev[3], { kind: 'record', value: 'abcd', line: 4, offset: 14 });
  });

  it('does not buffer a huge line: memory stays bounded while skipping it', () => {
    const d = new LineDecoder({ maxLineBytes: 1024 });
    const events: Event[] = [];
    const sink = {
      record: (v: string, line: number, offset: number) =>
        events.push({ kind: 'record', value: v, line, offset }),
      invalid: (e: SluiceError, raw: Uint8Array, line: number, offset: number) =>
        events.push({
          kind: 'invalid',
          code: e.code,
          message: e.message,
          raw: String(raw.length),
          line,
          offset,
        }),
    };
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    // 64 MiB of one line, fed in chunks: the decoder must report it once and keep nothing.
    for (let i = 0; i < 1024; i++) {
      d.write(chunk, sink);
      assert.ok((d as unknown as { pendingBytes: number }).pendingBytes <= 1025);
    }
    d.write(Buffer.from('\nafter\n'), sink);
    d.end(sink);
    assert.equal(events.length, 2);
    assert.equal(events[0]?.kind, 'invalid');
    assert.equal(events[0]?.raw, '1024');
    assert.deepEqual(events[1], { kind: 'record', value: 'after', line: 2, offset: 64 * 1024 * 1024 + 1 });
  });

  it('reports a too long last line without newline', () => {
    const ev = decode(linesDecoder({ maxLineBytes: 3 }), [Buffer.from('ab\nabcdef')]);
    assert.equal(ev[1]?.kind, 'invalid');
    assert.equal(ev[1]?.line, 2);
  });

  it('rejects a bad maxLineBytes', () => {
    assert.throws(() => linesDecoder({ maxLineBytes: 0 }), /maxLineBytes must be a whole number/);
  });

  it('tracks the position after the last complete line', () => {
    const d = linesDecoder();
    const sink = { record: () => {}, invalid: () => {} };
    d.write(Buffer.from('ab\ncd\nef'), sink);
    assert.deepEqual(d.position(), { line: 2, offset: 6 });
    d.end(sink);
    assert.deepEqual(d.position(), { line: 3, offset: 8 });
  });

  it('gives identical output whatever the chunk boundaries', () => {
    const tricky = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from('first €\r\n\r\n\nsecond 😀 line\nwaytoolongline\r\nx\r'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('\nabcdefgh\r\n\r'),
      Buffer.from('\nlast line no newline é'),
    ]);
    for (const options of [{ maxLineBytes: 8 }, { maxLineBytes: 9, skipBlank: true }, { maxLineBytes: 3 }]) {
      const expected = decode(linesDecoder(options), [tricky]);
      assert.ok(expected.some((e) => e.kind === 'invalid'));
      assert.ok(expected.some((e) => e.kind === 'record'));
      for (let i = 0; i <= tricky.length; i++) {
        const got = decode(linesDecoder(options), [tricky.subarray(0, i), tricky.subarray(i)]);
        assert.deepEqual(got, expected, `split at ${i}`);
        for (let j = i; j <= tricky.length; j += 3) {
          const got3 = decode(linesDecoder(options), [
            tricky.subarray(0, i),
            tricky.subarray(i, j),
            tricky.subarray(j),
          ]);
          assert.deepEqual(got3, expected, `split at ${i} and ${j}`);
        }
      }
      const bytewise = decode(
        linesDecoder(options),
        [...tricky].map((b) => Buffer.from([b])),
      );
      assert.deepEqual(bytewise, expected, 'one byte per chunk');
    }
  });

  it('accepts plain Uint8Array chunks', () => {
    assert.deepEqual(records(decode(linesDecoder(), [new TextEncoder().encode('a\nb\n')])), ['a', 'b']);
  });
});

describe('linesEncoder', () => {
  it('writes one line per record', () => {
    assert.equal(linesEncoder().encode(['a', 'b', 3]), 'a\nb\n3\n');
    assert.equal(linesEncoder().encode([]), '');
  });
});

describe('resuming at a saved position (the `start` option every format takes)', () => {
  const formats = [
    { format: 'lines', text: 'a\nb\nc\nd\n' },
    { format: 'jsonl', text: '{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n' },
    { format: 'csv', text: 'n\n1\n2\n3\n' },
  ] as const;
  for (const { format, text } of formats) {
    it(`${format}: a decoder started at another's position reports the same lines and offsets`, async () => {
      const bytes = Buffer.from(text);
      const seen = (d: ReturnType<typeof formatDecoder>, chunk: Buffer) => {
        const out: [unknown, number, number][] = [];
        const sink = {
          record: (r: unknown, l: number, o: number) => void out.push([r, l, o]),
          invalid: () => {},
        };
        d.write(chunk, sink);
        d.end(sink);
        return out;
      };
      const whole = seen(formatDecoder(format), bytes);
      // Stop after the first half of the bytes, then resume from the first decoder's position.
      const first = formatDecoder(format);
      const half = Math.floor(bytes.length / 2);
      first.write(bytes.subarray(0, half), { record: () => {}, invalid: () => {} });
      const at = first.position();
      assert.ok(
        at.offset > 0 && at.line > 0,
        `${format}: position after half the input: ${JSON.stringify(at)}`,
      );
      const options = await resumeOptions(format, {}, at, async function* () {
        yield bytes;
      });
      const rest = seen(formatDecoder(format, options), bytes.subarray(at.offset));
      const expected = whole.filter(([, , offset]) => offset >= at.offset);
      assert.deepEqual(rest, expected);
      assert.ok(rest.length > 0);
    });
  }
});
