/**
 * The Avro container and length-delimited Protobuf file formats, at the decoder/encoder level:
 * round trips through every codec fed in small chunks, positions, schema evolution, damaged
 * blocks and frames as dead letters while the rest flows, truncation, restarts at a saved
 * position, records that do not fit the schema.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import protobuf from 'protobufjs';
import type { SluiceError } from '../../core/errors.ts';
import type { DecodeSink, DecodeStart, RecordDecoder, RecordEncoder } from '../format.ts';
import { protobufFileDecoder, protobufFileEncoder } from '../protobuf-file.ts';
import { AVRO_CODECS } from './codecs.ts';
import { avroFileDecoder } from './decoder.ts';
import { avroFileEncoder } from './encoder.ts';
import { parseHeader, SYNC_BYTES, writeHeader } from './header.ts';
import { paymentSchema, plainValue } from './test-helpers.ts';

const SCHEMA = JSON.stringify(paymentSchema({ name: 'note', type: ['null', 'string'], default: null }));

function payments(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: i === 7 ? 2n ** 62n : i,
    user: `user-${i % 13}`,
    amount: `${i}.${String(i % 100).padStart(2, '0')}`,
    ts: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    note: i % 3 === 0 ? null : `n${i}`,
  }));
}

/** avsc decodes records as instances of a class per record type: compared as plain objects. */
const plain = plainValue;

interface Seen {
  records: { value: unknown; line: number; offset: number }[];
  invalid: { error: SluiceError; raw: string; line: number; offset: number }[];
}

function sinkOf(seen: Seen): DecodeSink<unknown> {
  return {
    record: (value, line, offset) => seen.records.push({ value: plain(value), line, offset }),
    invalid: (error, raw, line, offset) =>
      seen.invalid.push({ error, raw: Buffer.from(raw).toString('latin1'), line, offset }),
  };
}

/** Feeds `bytes` in pieces of `chunk` bytes (fresh copies) and ends. */
function decodeAll(decoder: RecordDecoder<unknown>, bytes: Uint8Array, chunk = 7): Seen {
  const seen: Seen = { records: [], invalid: [] };
  const sink = sinkOf(seen);
  for (let i = 0; i < bytes.length; i += chunk)
    decoder.write(Buffer.from(bytes.subarray(i, i + chunk)), sink);
  decoder.end(sink);
  return seen;
}

function file(encoder: RecordEncoder<unknown>, ...batches: unknown[][]): Buffer {
  const parts: Uint8Array[] = [];
  const h = encoder.header?.();
  if (h !== undefined) parts.push(typeof h === 'string' ? Buffer.from(h) : h);
  for (const b of batches) {
    const e = encoder.encode(b);
    parts.push(typeof e === 'string' ? Buffer.from(e) : e);
  }
  return Buffer.concat(parts);
}

/** Block start offsets of an Avro file written without codec (from the decoder's record offsets). */
function blockStarts(seen: Seen): number[] {
  return [...new Set(seen.records.map((r) => r.offset))];
}

/** 100 payments in blocks of about 400 bytes, decoded once clean: what the damage tests break. */
function damageable(codec?: 'deflate') {
  const records = payments(100);
  const bytes = file(avroFileEncoder({ schema: SCHEMA, codec, blockBytes: 400 }), records);
  const clean = decodeAll(avroFileDecoder(), bytes);
  const starts = blockStarts(clean);
  return { records, clean, bad: Buffer.from(bytes), second: starts[1] as number, third: starts[2] as number };
}

describe('avro container files', () => {
  for (const codec of AVRO_CODECS) {
    test(`round trip with codec ${codec}, several blocks, 7-byte chunks`, () => {
      const records = payments(300);
      const bytes = file(
        avroFileEncoder({ schema: SCHEMA, codec, blockBytes: 1024 }),
        records.slice(0, 120),
        records.slice(120),
      );
      const header = parseHeader(bytes);
      assert.equal(header?.codec, codec);
      const seen = decodeAll(avroFileDecoder(), bytes);
      assert.deepEqual(seen.invalid, []);
      assert.deepEqual(
        seen.records.map((r) => r.value),
        records,
      );
      const starts = blockStarts(seen);
      assert.ok(starts.length >= 4, `blocks: ${starts.length}`);
      // Each record: its 1-based index in its block and the block's offset.
      let index = 0;
      let last = -1;
      for (const r of seen.records) {
        index = r.offset === last ? index + 1 : 1;
        last = r.offset;
        assert.equal(r.line, index);
      }
      assert.equal(starts[0], header?.length);
    });
  }

  test('position, then a restart there, neither loses nor repeats a record', () => {
    const records = payments(200);
    const bytes = file(avroFileEncoder({ schema: SCHEMA, codec: 'deflate', blockBytes: 512 }), records);
    const all = decodeAll(avroFileDecoder(), bytes).records;
    const header = parseHeader(bytes);
    // Resume before each record k: `k`'s line - 1 records of its block done.
    for (const k of [0, 1, 17, 63, 150, 199]) {
      const r = all[k] as { line: number; offset: number };
      const start: DecodeStart = { line: r.line - 1, offset: r.offset };
      const rest = decodeAll(
        avroFileDecoder({ start, avroHeader: header }),
        bytes.subarray(start.offset),
        11,
      );
      assert.deepEqual(
        rest.records.map((x) => x.value),
        records.slice(k),
        `resumed before record ${k}`,
      );
      assert.deepEqual(rest.records[0] && { line: rest.records[0].line, offset: rest.records[0].offset }, {
        line: r.line,
        offset: r.offset,
      });
    }
    const d = avroFileDecoder();
    decodeAll(d, bytes);
    assert.deepEqual(d.position(), { line: 0, offset: bytes.length });
  });

  test('a reader schema resolves older writers: added field with default, promotion, alias', () => {
    const v1 = JSON.stringify({
      type: 'record',
      name: 'User',
      fields: [
        { name: 'id', type: 'int' },
        { name: 'fullName', type: 'string' },
        { name: 'gone', type: 'string' },
      ],
    });
    const v3 = JSON.stringify({
      type: 'record',
      name: 'User',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'name', type: 'string', aliases: ['fullName'] },
        { name: 'country', type: 'string', default: 'NL' },
      ],
    });
    const bytes = file(avroFileEncoder({ schema: v1 }), [{ id: 1, fullName: 'Ann', gone: 'x' }]);
    const seen = decodeAll(avroFileDecoder({ readerSchema: v3 }), bytes);
    assert.deepEqual(
      seen.records.map((r) => r.value),
      [{ id: 1, name: 'Ann', country: 'NL' }],
    );
    const incompatible = JSON.stringify({
      type: 'record',
      name: 'User',
      fields: [{ name: 'x', type: 'string' }],
    });
    assert.throws(
      () => decodeAll(avroFileDecoder({ readerSchema: incompatible }), bytes),
      /the file's writer schema cannot be read with the reader schema/,
    );
  });

  test('a block whose data is damaged is one dead letter; the other blocks flow', () => {
    const { records, clean, bad, second, third } = damageable('deflate');
    // Garble the middle of block 2's compressed data (count and size stay intact).
    bad.fill(0xff, second + 8, Math.min(third - 20, second + 40));
    const seen = decodeAll(avroFileDecoder(), bad);
    assert.equal(seen.invalid.length, 1);
    const [letter] = seen.invalid;
    assert.match(
      letter?.error.message ?? '',
      new RegExp(`Avro block 2 \\(byte ${second}\\): .*records are skipped`),
    );
    assert.equal(letter?.offset, second);
    assert.equal(letter?.error.context.block, 2);
    assert.ok(Buffer.from(letter?.raw ?? '', 'base64').length > 0, 'raw bytes as base64');
    const lost = clean.records.filter((r) => r.offset === second).length;
    assert.deepEqual(
      seen.records.map((r) => r.value),
      records.filter((_, i) => clean.records[i]?.offset !== second),
    );
    assert.equal(seen.records.length, records.length - lost);
  });

  test('damaged framing (a bad size) skips to the next sync marker', () => {
    const { records, clean, bad, second } = damageable();
    // The count stays, the size varint becomes huge: the sync marker is not where the size says.
    bad[second + 2] = 0x02;
    const seen = decodeAll(avroFileDecoder(), bad, 5);
    assert.equal(seen.invalid.length, 1);
    assert.match(seen.invalid[0]?.error.message ?? '', /sync marker does not match|declares/);
    assert.equal(
      seen.records.length,
      records.length - clean.records.filter((r) => r.offset === second).length,
    );
    assert.deepEqual(seen.records.at(-1)?.value, records.at(-1));
  });

  // Only block 2's trailing sync marker is damaged: block 2 still decodes to exactly its count,
  // so its records are read, the marker is one dead letter, and block 3 (right after the marker)
  // is read too — nothing but the 16 marker bytes is lost.
  test('a damaged sync marker: every record is read, the marker is one dead letter', () => {
    const { records, bad, third } = damageable();
    bad[third - 3] = (bad[third - 3] as number) ^ 0xff; // inside block 2's trailing sync marker
    const seen = decodeAll(avroFileDecoder(), bad, 11);
    assert.equal(seen.invalid.length, 1);
    const [letter] = seen.invalid;
    assert.match(letter?.error.message ?? '', /Avro block 2 .*sync marker after it is damaged/);
    assert.equal(letter?.offset, third - SYNC_BYTES);
    assert.equal(letter?.error.context.block, 2);
    assert.deepEqual(
      seen.records.map((r) => r.value),
      records,
    );
  });

  // The same damage when block 2's size is wrong too cannot be told apart from a damaged size:
  // the block does not decode to its count, so the decoder resyncs at the next intact marker.
  test('a damaged sync marker after a block that does not decode: resync at the next marker', () => {
    const { records, clean, bad, second, third } = damageable();
    bad[third - 3] = (bad[third - 3] as number) ^ 0xff;
    bad[second] = 0x04; // block 2's record count (zigzag): 2 instead of what it holds
    const seen = decodeAll(avroFileDecoder(), bad, 11);
    assert.equal(seen.invalid.length, 1);
    const [letter] = seen.invalid;
    assert.match(letter?.error.message ?? '', /Avro block 2 .*sync marker does not match/);
    assert.equal(letter?.offset, second);
    assert.match(letter?.error.message ?? '', /skipped up to the next sync marker/);
    assert.deepEqual(
      seen.records.map((r) => r.value),
      records.filter((_, i) => clean.records[i]?.offset !== second && clean.records[i]?.offset !== third),
    );
  });

  test('a wrong magic: not an Avro file, whatever follows', () => {
    const bytes = file(avroFileEncoder({ schema: SCHEMA }), payments(3));
    const bad = Buffer.from(bytes);
    bad[3] = 2; // `Obj\x02`
    assert.throws(() => decodeAll(avroFileDecoder(), bad), /not an Avro object container file/);
  });

  test('a truncated file: complete blocks flow, the cut block is a dead letter', () => {
    const records = payments(60);
    const bytes = file(avroFileEncoder({ schema: SCHEMA, blockBytes: 400 }), records);
    const cut = bytes.subarray(0, bytes.length - 30);
    const seen = decodeAll(avroFileDecoder(), cut);
    assert.equal(seen.invalid.length, 1);
    assert.match(seen.invalid[0]?.error.message ?? '', /the file ends inside this block .*truncated/);
    assert.ok(seen.records.length > 0 && seen.records.length < records.length);
  });

  test('not a container file, an empty file, an unknown codec: clear errors', () => {
    assert.throws(
      () => decodeAll(avroFileDecoder(), Buffer.from('{"id":1}\n')),
      /not an Avro object container file/,
    );
    assert.throws(() => decodeAll(avroFileDecoder(), Buffer.alloc(0)), /the file is empty/);
    const xz = Buffer.concat([writeHeader(SCHEMA, 'xz', Buffer.alloc(16, 1)), Buffer.from([2, 0])]);
    assert.throws(
      () => decodeAll(avroFileDecoder(), xz),
      /blocks use codec `xz`, which Sluice does not read/,
    );
    assert.throws(
      () => decodeAll(avroFileDecoder(), writeHeader('{"type":"nope"}', 'null', Buffer.alloc(16))),
      /writer schema is not a valid Avro schema/,
    );
  });

  test('the encoder rejects a record that does not fit, naming the field; the rest is written', () => {
    const enc = avroFileEncoder({ schema: SCHEMA });
    const rejected: { index: number; error: Error }[] = [];
    const good = payments(3);
    const body = enc.encode(
      [good[0], { ...good[1], amount: 'twelve' }, { ...good[2], user: 5 }, good[2]],
      (index, error) => rejected.push({ index, error: error as Error }),
    );
    assert.deepEqual(
      rejected.map((r) => r.index),
      [1, 2],
    );
    assert.match(rejected[0]?.error.message ?? '', /field `amount`: "twelve" is not a valid/);
    assert.match(rejected[1]?.error.message ?? '', /field `user`: 5 is not a valid `string`/);
    const bytes = Buffer.concat([enc.header?.() as Uint8Array, body as Uint8Array]);
    assert.deepEqual(
      decodeAll(avroFileDecoder(), bytes).records.map((r) => r.value),
      [good[0], good[2]],
    );
  });

  test('a continued file (no header) gets the same sync marker', () => {
    const a = avroFileEncoder({ schema: SCHEMA, syncSeed: '/out/x.avro' });
    const b = avroFileEncoder({ schema: SCHEMA, syncSeed: '/out/x.avro', header: false });
    assert.equal(b.header?.(), undefined);
    const bytes = Buffer.concat([
      a.header?.() as Uint8Array,
      a.encode(payments(3)) as Uint8Array,
      b.encode(payments(2)) as Uint8Array,
    ]);
    const seen = decodeAll(avroFileDecoder(), bytes);
    assert.deepEqual(seen.invalid, []);
    assert.equal(seen.records.length, 5);
  });
});

describe('length-delimited protobuf files', () => {
  const root = new protobuf.Root();
  root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')?.nested ?? {});
  protobuf.parse(
    'syntax = "proto3"; package shop; import "google/protobuf/timestamp.proto"; enum Kind { UNKNOWN = 0; CARD = 1; } message Order { int64 id = 1; string user = 2; Kind kind = 3; google.protobuf.Timestamp at = 4; }',
    root,
    { keepCase: true },
  );
  const set = (
    root as unknown as {
      toDescriptor(e: string): { $type: { encode(m: unknown): { finish(): Uint8Array } } };
    }
  ).toDescriptor('proto3');
  const descriptorSet = set.$type.encode(set).finish();
  const orders = Array.from({ length: 50 }, (_, i) => ({
    id: i === 3 ? -(2n ** 60n) : i,
    user: `u${i}`,
    kind: i % 2 ? 'CARD' : 'UNKNOWN',
    at: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
  }));

  test('round trip in 3-byte chunks; positions are message boundaries; a restart there', () => {
    const enc = protobufFileEncoder({ descriptorSet, messageType: 'shop.Order' });
    const bytes = Buffer.from(enc.encode(orders) as Uint8Array);
    const seen = decodeAll(protobufFileDecoder({ descriptorSet, messageType: 'shop.Order' }), bytes, 3);
    assert.deepEqual(seen.invalid, []);
    assert.deepEqual(
      seen.records.map((r) => r.value),
      orders,
    );
    assert.deepEqual(
      seen.records.slice(0, 2).map((r) => [r.line, r.offset]),
      [
        [1, 0],
        [2, seen.records[1]?.offset],
      ],
    );
    const k = 20;
    const at = seen.records[k] as { line: number; offset: number };
    const rest = decodeAll(
      protobufFileDecoder({ descriptorSet, start: { line: at.line - 1, offset: at.offset } }),
      bytes.subarray(at.offset),
    );
    assert.deepEqual(
      rest.records.map((r) => r.value),
      orders.slice(k),
    );
    assert.equal(rest.records[0]?.line, k + 1);
  });

  test('a message that does not decode is a dead letter; a cut one too; the rest flows', () => {
    const enc = protobufFileEncoder({ descriptorSet, messageType: 'shop.Order' });
    const good = Buffer.from(enc.encode(orders.slice(0, 3)) as Uint8Array);
    // A frame of 3 bytes holding a field with a length running past the message.
    const junk = Buffer.from([3, 0x12, 0x7f, 0x01]);
    const bytes = Buffer.concat([good, junk, good, good.subarray(0, 5)]);
    const seen = decodeAll(protobufFileDecoder({ descriptorSet, messageType: 'shop.Order' }), bytes);
    assert.equal(seen.records.length, 6);
    assert.equal(seen.invalid.length, 2);
    assert.match(
      seen.invalid[0]?.error.message ?? '',
      new RegExp(`Protobuf message 4 \\(byte ${good.length}\\): does not decode`),
    );
    assert.match(seen.invalid[1]?.error.message ?? '', /message 8 .*truncated/);
  });

  test('a length prefix beyond maxMessageBytes: one dead letter with its position, then nothing', () => {
    const enc = protobufFileEncoder({ descriptorSet, messageType: 'shop.Order' });
    const good = Buffer.from(enc.encode(orders.slice(0, 2)) as Uint8Array);
    // A varint of 100 000 where at most 1000 bytes are allowed, then more good messages.
    const bytes = Buffer.concat([good, Buffer.from([0xa0, 0x8d, 0x06]), good]);
    const seen = decodeAll(
      protobufFileDecoder({ descriptorSet, messageType: 'shop.Order', maxMessageBytes: 1000 }),
      bytes,
      4,
    );
    assert.equal(seen.records.length, 2);
    assert.equal(seen.invalid.length, 1);
    const [letter] = seen.invalid;
    assert.match(
      letter?.error.message ?? '',
      new RegExp(
        `Protobuf message 3 \\(byte ${good.length}\\): its length 100000 is beyond the limit of 1000 bytes; the rest of the input cannot be framed`,
      ),
    );
    assert.equal(letter?.offset, good.length);
    assert.equal(letter?.line, 3);
    assert.equal(letter?.error.context.offset, good.length);
    assert.ok(
      Buffer.from(letter?.raw ?? '', 'base64')
        .subarray(0, 3)
        .equals(Buffer.from([0xa0, 0x8d, 0x06])),
    );
  });

  test('a length varint over 10 bytes is refused the same way', () => {
    const bytes = Buffer.concat([Buffer.alloc(11, 0xff), Buffer.from([1])]);
    const seen = decodeAll(protobufFileDecoder({ descriptorSet, messageType: 'shop.Order' }), bytes);
    assert.equal(seen.records.length, 0);
    assert.equal(seen.invalid.length, 1);
    assert.match(
      seen.invalid[0]?.error.message ?? '',
      /message 1 \(byte 0\): its length \(a varint over 10 bytes\)/,
    );
  });

  test('encoding: a value that does not fit names the field', () => {
    const enc = protobufFileEncoder({ descriptorSet, messageType: 'shop.Order' });
    const rejected: Error[] = [];
    enc.encode([{ id: 1, at: 'yesterday' }], (_i, e) => rejected.push(e as Error));
    assert.equal(rejected.length, 1);
    assert.match(rejected[0]?.message ?? '', /`shop.Order`.*yesterday/);
    assert.throws(
      () => protobufFileEncoder({ descriptorSet, messageType: 'shop.Nope' }),
      /descriptor set cannot be used/,
    );
  });
});
