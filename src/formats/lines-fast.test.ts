import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SluiceError } from '../core/errors.ts';
import { jsonlDecoder } from './jsonl.ts';

/** Decodes `bytes` in chunks of `size`, recording records and dead letters with positions. */
function decode(bytes: Buffer, size: number) {
  const out: string[] = [];
  const d = jsonlDecoder();
  const sink = {
    record(v: unknown, line: number, offset: number) {
      out.push(`ok ${line}@${offset} ${JSON.stringify(v)}`);
    },
    invalid(e: SluiceError, _raw: Uint8Array, line: number, offset: number) {
      out.push(`bad ${line}@${offset} ${e.message.split(':')[0]}`);
    },
  };
  for (let i = 0; i < bytes.length; i += size) d.write(bytes.subarray(i, i + size), sink);
  d.end(sink);
  return out;
}

test('JSON Lines with non-ASCII text, CRLF, blank and bad lines: same records and byte offsets in any chunking', () => {
  const lines = [
    '{"city":"São Paulo","n":1}',
    '{"city":"Zürich","n":2}\r',
    '',
    '   ',
    '{"emoji":"🙂","n":3}',
    '{"broken":',
    '{"n":4}',
  ];
  const bytes = Buffer.concat([
    Buffer.from(`${lines.join('\n')}\n`),
    Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x0a]), // {"x":"\xff"} invalid UTF-8
    Buffer.from('{"n":5}\n'),
  ]);
  const expected = [
    'ok 1@0 {"city":"São Paulo","n":1}',
    'ok 2@28 {"city":"Zürich","n":2}',
    'ok 5@59 {"emoji":"🙂","n":3}',
    'bad 6@82 line 6 (byte 82)',
    'ok 7@93 {"n":4}',
    'bad 8@101 line 8 (byte 101)',
    'ok 9@111 {"n":5}',
  ];
  for (const size of [1, 2, 3, 7, 16, 64, bytes.length]) {
    assert.deepEqual(decode(bytes, size), expected, `chunks of ${size} bytes`);
  }
});

test('a chunk of several 64 KiB pieces, with a line longer than a piece and a bad line in a later piece, decodes as line by line', () => {
  const parts: string[] = [];
  for (let i = 0; i < 6000; i++) parts.push(JSON.stringify({ i, city: i % 7 === 0 ? 'Zürich' : 'Oslo' }));
  parts[3000] = JSON.stringify({ long: 'x'.repeat(150_000) }); // spans several pieces
  parts[4500] = '{"broken":';
  const text = `${parts.join('\n')}\n`;
  const bytes = Buffer.concat([
    Buffer.from(text),
    Buffer.from([0x7b, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x0a]), // invalid UTF-8 at the end
    Buffer.from('{"last":true}\n'),
  ]);
  const whole = decode(bytes, bytes.length);
  const lineByLine: string[] = [];
  let offset = 0;
  let line = 1;
  for (const part of bytes.toString('latin1').split('\n').slice(0, -1)) {
    const size = Buffer.byteLength(part, 'latin1') + 1;
    lineByLine.push(
      ...decode(bytes.subarray(offset, offset + size), size).map((s) =>
        s
          .replace(/^(\w+) 1@0/, `$1 ${line}@${offset}`)
          .replace(/line 1 \(byte 0\)/, `line ${line} (byte ${offset})`),
      ),
    );
    offset += size;
    line++;
  }
  assert.equal(whole.length, 6002);
  assert.deepEqual(whole, lineByLine);
  assert.match(whole[4500]!, /^bad 4501@/);
  assert.match(whole[6000]!, /^bad 6001@/);
});
