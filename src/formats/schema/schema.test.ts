import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Decimal } from '../../core/decimal.ts';
import { plainValue } from '../avro-file/test-helpers.ts';
import { avro, avroType, formatDecimal, parseDecimal } from './avro.ts';
import { type SchemaDecodeError, schemaDecoder, schemaEncoder } from './codec.ts';
import { jsonSchemaCheck } from './json-schema.ts';
import { protobufSchemas } from './protobuf.ts';
import { SchemaRegistry, type SchemaRegistryError } from './registry.ts';
import { ORDER_JSON_SCHEMA as ORDER_SCHEMA } from './test-helpers.ts';
import { frameHeader, readSchemaId, unframe, WireFormatError } from './wire.ts';

const V1 = JSON.stringify({
  type: 'record',
  name: 'P',
  fields: [
    { name: 'id', type: 'int' },
    { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
  ],
});
const V2 = JSON.stringify({
  type: 'record',
  name: 'P',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
    { name: 'cur', type: 'string', default: 'EUR' },
  ],
});
const NO_DEFAULT = JSON.stringify({
  type: 'record',
  name: 'P',
  fields: [{ name: 'other', type: 'string' }],
});

/** A fake Confluent-compatible registry: schemas by id, one subject, scripted failures. */
class FakeRegistry {
  server: Server;
  url = '';
  schemas = new Map<number, { schema: string; schemaType?: string }>([[1, { schema: V1 }]]);
  /** Statuses to answer before the real answer, in order. */
  failures: number[] = [];
  requests: IncomingMessage[] = [];
  constructor() {
    this.server = createServer((req, res) => {
      this.requests.push(req);
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const fail = this.failures.shift();
        const send = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        if (fail !== undefined) return send(fail, { error_code: fail, message: `scripted ${fail}` });
        const byId = /\/schemas\/ids\/(\d+)$/.exec(req.url ?? '');
        if (byId) {
          const s = this.schemas.get(Number(byId[1]));
          return s ? send(200, s) : send(404, { error_code: 40403, message: 'Schema not found' });
        }
        if (/\/schemas\/ids\/\d+\/versions$/.test(req.url ?? ''))
          return send(200, [{ subject: 't-value', version: 1 }]);
        if (req.method === 'POST' && /\/subjects\/t-value\/versions$/.test(req.url ?? '')) {
          const { schema } = JSON.parse(body) as { schema: string };
          if (schema === NO_DEFAULT)
            return send(409, { error_code: 409, message: 'Schema being registered is incompatible' });
          this.schemas.set(7, { schema });
          return send(200, { id: 7 });
        }
        if (req.method === 'POST' && /\/subjects\/t-value$/.test(req.url ?? ''))
          return send(200, { id: 9, version: 2 });
        if (/\/subjects\/t-value\/versions\/latest$/.test(req.url ?? ''))
          return send(200, { id: 1, version: 1, subject: 't-value', schema: V1 });
        send(404, { error_code: 40401, message: 'Subject not found' });
      });
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/apis/ccompat/v7`;
  }
}

describe('wire format', () => {
  test('frames and unframes ids and Protobuf message indexes', () => {
    const h = frameHeader(258);
    assert.deepEqual([...h], [0, 0, 0, 1, 2]);
    assert.equal(readSchemaId(Buffer.concat([h, Buffer.from([9])])), 258);
    assert.deepEqual([...frameHeader(5, [0])], [0, 0, 0, 0, 5, 0]);
    const nested = Buffer.concat([frameHeader(5, [1, 300]), Buffer.from([42])]);
    const u = unframe(nested, true);
    assert.deepEqual(u.indexes, [1, 300]);
    assert.deepEqual([...u.payload], [42]);
    assert.deepEqual(unframe(Buffer.from([0, 0, 0, 0, 5, 0, 7]), true).indexes, [0]);
  });
  test('names what is wrong with bad bytes', () => {
    assert.throws(() => readSchemaId(Buffer.from([1, 0, 0, 0, 1])), /magic byte 0/);
    assert.throws(() => readSchemaId(Buffer.from([0, 0])), /fewer than the 5/);
    assert.throws(() => unframe(Buffer.from([0, 0, 0, 0, 1, 4]), true), WireFormatError);
  });
});

describe('avro values', () => {
  test('decimals are Decimals, timestamps ISO text, big longs bigints', () => {
    assert.equal(formatDecimal(-5n, 2), '-0.05');
    assert.equal(parseDecimal('12.5', 2), 1250n);
    assert.throws(() => parseDecimal('1.234', 2), /fraction digits/);
    const t = avroType({
      type: 'record',
      name: 'R',
      fields: [
        {
          name: 'd',
          type: { type: 'fixed', name: 'F', size: 8, logicalType: 'decimal', precision: 18, scale: 4 },
        },
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros' } },
        { name: 'day', type: { type: 'int', logicalType: 'date' } },
        { name: 'n', type: 'long' },
      ],
    });
    const r = {
      d: '-12345678901234.5678',
      ts: '2026-01-02T03:04:05.123456Z',
      day: '2026-02-28',
      n: 2n ** 62n,
    };
    const back = t.fromBuffer(t.toBuffer(r));
    assert.ok(back.d instanceof Decimal && back.d.scale === 4, 'decimals are Decimals at the scale');
    assert.deepEqual(plainValue(back), r);
    assert.deepEqual(plainValue(t.fromBuffer(t.toBuffer({ ...r, n: String(2n ** 62n) }))), r);
    // A Decimal encodes too, rescaled without loss; one with more digits than the scale is refused.
    assert.deepEqual(plainValue(t.fromBuffer(t.toBuffer({ ...r, d: Decimal.from('-1.5') }))), {
      ...r,
      d: '-1.5000',
    });
    assert.equal(t.isValid({ ...r, d: Decimal.from('0.00001') }), false);
  });
});

describe('avro fast paths agree with the exact ones', () => {
  const t = avroType({
    type: 'record',
    name: 'R',
    fields: [
      { name: 'd', type: { type: 'bytes', logicalType: 'decimal', precision: 20, scale: 2 } },
      { name: 'p', type: { type: 'bytes', logicalType: 'decimal', precision: 4, scale: 2 } },
      { name: 'n', type: 'long' },
      { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  });
  const plainRound = (r: object) => plainValue(t.fromBuffer(t.toBuffer(r))) as Record<string, unknown>;
  const plainLong = avro.Type.forSchema('long');

  test('longs on both sides of the 7-byte varint and 2^53 bounds', () => {
    for (const n of [
      0,
      -1,
      2 ** 48 - 1,
      2 ** 48,
      -(2 ** 48) - 1,
      2 ** 52,
      -(2 ** 52),
      2 ** 53 - 1,
      -(2 ** 53) + 1,
    ]) {
      const bytes = t.toBuffer({ d: '0', p: '0', n, at: 0 });
      assert.equal(plainRound({ d: '0', p: '0', n, at: 0 }).n, n, `${n}`);
      // The same varint avsc's plain long writes (it takes numbers within ±2^52).
      if (Math.abs(n) <= 2 ** 52)
        assert.ok(bytes.includes(plainLong.toBuffer(n)), `${n} is written as avsc writes it`);
    }
    for (const n of [2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n])
      assert.equal(plainRound({ d: '0', p: '0', n, at: 0 }).n, n, `${n}`);
  });

  test('short decimal text in place; other forms through the exact path', () => {
    const cases: [string | number | bigint | Decimal, string][] = [
      ['12.5', '12.50'],
      ['-0.05', '-0.05'],
      ['+7', '7.00'],
      ['.5', '0.50'],
      ['1.230', '1.23'],
      ['123456789012.34', '123456789012.34'],
      ['-999999999999999.99', '-999999999999999.99'],
      [3, '3.00'],
      [5n, '5.00'],
      [Decimal.from('12.5'), '12.50'],
      [Decimal.from('-123456789012345.67'), '-123456789012345.67'],
    ];
    for (const [d, want] of cases) assert.equal(plainRound({ d, p: '0', n: 0, at: 0 }).d, want, String(d));
    assert.equal(t.isValid({ d: '1.234', p: '0', n: 0, at: 0 }), false);
    assert.equal(t.isValid({ d: '1.2.3', p: '0', n: 0, at: 0 }), false);
    assert.equal(plainRound({ d: '0', p: '99.99', n: 0, at: 0 }).p, '99.99');
    assert.throws(() => t.toBuffer({ d: '0', p: '100.00', n: 0, at: 0 }), /invalid/);
    assert.throws(() => t.toBuffer({ d: 'twelve', p: '0', n: 0, at: 0 }), /invalid/);
  });

  test('canonical times in place, other ISO forms parsed, days that do not exist refused', () => {
    assert.equal(
      plainRound({ d: '0', p: '0', n: 0, at: '2026-01-01T00:00:01.500Z' }).at,
      '2026-01-01T00:00:01.500Z',
    );
    assert.equal(
      plainRound({ d: '0', p: '0', n: 0, at: '2026-01-01T01:00:01.5+01:00' }).at,
      '2026-01-01T00:00:01.500Z',
    );
    assert.throws(() => t.toBuffer({ d: '0', p: '0', n: 0, at: '2023-02-29T00:00:00.000Z' }), /invalid/);
  });

  test('truncated and trailing bytes are refused', () => {
    const bytes = t.toBuffer({ d: '1.00', p: '0', n: 2 ** 40, at: 0 });
    assert.throws(() => t.fromBuffer(bytes.subarray(0, 3)), /truncated/);
    assert.throws(() => t.fromBuffer(Buffer.concat([bytes, Buffer.from([0])])), /trailing/);
  });
});

describe('protobuf values', () => {
  const proto = `syntax = "proto3"; package p;
import "google/protobuf/duration.proto"; import "google/type/decimal.proto";
message A { string s = 1; }
message B { uint64 big = 1; google.protobuf.Duration d = 2; google.type.Decimal price = 3; bytes raw = 4; message C { int32 x = 1; } C c = 5; }`;
  test('round-trips natural values and nested message indexes', () => {
    const s = protobufSchemas({ proto });
    const rec = { big: 18446744073709551615n, d: '-1.500s', price: '12.50', raw: 'AQI=', c: { x: 3 } };
    const back = s.decode(s.encode(rec, 'p.B'), [1]);
    assert.ok(back.price instanceof Decimal && back.price.scale === 2, 'google.type.Decimal is a Decimal');
    assert.deepEqual(plainValue(back), rec);
    assert.deepEqual(plainValue(s.decode(s.encode({ ...rec, price: Decimal.from('0.5') }, 'p.B'), [1])), {
      ...rec,
      price: '0.5',
    });
    assert.deepEqual(s.indexesOf('p.B.C'), [1, 0]);
    assert.equal(s.typeName([1, 0]), 'p.B.C');
    assert.throws(() => s.decode(Buffer.alloc(0), [2]), /names no message/);
  });
  test('reads a FileDescriptorSet', async () => {
    const protobuf = (await import('protobufjs')).default;
    const root = new protobuf.Root();
    protobuf.parse('syntax = "proto3"; package q; message M { int64 id = 1; string name = 2; }', root, {
      keepCase: true,
    });
    const set = (
      root as unknown as {
        toDescriptor(e: string): { $type: { encode(m: unknown): { finish(): Uint8Array } } };
      }
    ).toDescriptor('proto3');
    const bytes = set.$type.encode(set).finish();
    const s = protobufSchemas({ descriptorSet: bytes });
    const m = root.lookupType('q.M');
    assert.deepEqual(s.decode(m.encode(m.fromObject({ id: '-9007199254740993', name: 'n' })).finish(), [0]), {
      id: -9007199254740993n,
      name: 'n',
    });
  });
});

const ORDER_JSON_SCHEMA = JSON.stringify(ORDER_SCHEMA);

describe('json schema checks', () => {
  test('names the JSON pointer and keyword of the first failure; compiled once per schema', () => {
    const check = jsonSchemaCheck(ORDER_JSON_SCHEMA);
    assert.equal(check({ id: 1, lines: [{ sku: 'a', qty: 2 }] }), undefined);
    assert.deepEqual(check({ id: 1, lines: [{ sku: 'a' }, { sku: 'b', qty: 0 }] }), {
      pointer: '/lines/1/qty',
      keyword: 'minimum',
      message: 'must be >= 1',
    });
    assert.deepEqual(check({ id: 'x', lines: [] }), {
      pointer: '/id',
      keyword: 'type',
      message: 'must be integer',
    });
    assert.equal(check({ lines: [] })?.keyword, 'required');
    assert.equal(jsonSchemaCheck(ORDER_JSON_SCHEMA), check, 'the compiled check is kept');
  });
  test('2020-12 schemas; draft-04 and broken schemas are refused clearly', () => {
    const c = jsonSchemaCheck(
      JSON.stringify({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        prefixItems: [{ type: 'string' }],
      }),
    );
    assert.equal(c([1])?.pointer, '/0');
    assert.throws(
      () => jsonSchemaCheck(JSON.stringify({ $schema: 'http://json-schema.org/draft-04/schema#' })),
      /draft-04.*not supported/,
    );
    assert.throws(() => jsonSchemaCheck('{"type":"nope"}'), /does not compile/);
  });
});

describe('registry client and codecs', () => {
  const fake = new FakeRegistry();
  before(() => fake.start());
  after(() => fake.server.close());

  test('caches schemas by id and sends credentials', async () => {
    const r = new SchemaRegistry({ url: fake.url, token: 'tok' });
    await Promise.all([r.schemaById(1), r.schemaById(1)]);
    assert.equal(r.requests, 1);
    assert.equal(fake.requests.at(-1)?.headers.authorization, 'Bearer tok');
    const b = new SchemaRegistry({ url: fake.url, username: 'u', password: 'p' });
    await b.schemaById(1);
    assert.equal(
      fake.requests.at(-1)?.headers.authorization,
      `Basic ${Buffer.from('u:p').toString('base64')}`,
    );
  });

  test('retries an outage with backoff, not a 401', async () => {
    const r = new SchemaRegistry({ url: fake.url, retries: 3, retryDelay: 1 });
    fake.failures = [503, 503];
    assert.equal((await r.schemaById(1)).schema, V1);
    assert.equal(r.requests, 3);
    const r2 = new SchemaRegistry({ url: fake.url, retries: 3, retryDelay: 1 });
    fake.failures = [401];
    await assert.rejects(
      r2.schemaById(1),
      (e: SchemaRegistryError) => e.status === 401 && /credentials/.test(e.message),
    );
    assert.equal(r2.requests, 1);
    const down = new SchemaRegistry({ url: 'http://127.0.0.1:1/x', retries: 1, retryDelay: 1 });
    await assert.rejects(
      down.schemaById(1),
      (e: SchemaRegistryError) => e.retryable && /did not answer/.test(e.message),
    );
  });

  test('a compatibility rejection says so', async () => {
    const r = new SchemaRegistry({ url: fake.url });
    await assert.rejects(r.register('t-value', 'AVRO', NO_DEFAULT), /incompatible/);
    const e = schemaEncoder({ format: 'avro', registry: r, topic: 't', schema: V2, autoRegister: true });
    await e.open();
    assert.equal(e.schemaId, 7);
  });

  test('json-schema: decode and encode validate, naming the pointer and keyword', async () => {
    fake.schemas.set(20, { schema: ORDER_JSON_SCHEMA, schemaType: 'JSON' });
    const d = schemaDecoder({ format: 'json-schema', registry: { url: fake.url, retries: 0 } });
    const framed = (v: unknown) => Buffer.concat([frameHeader(20), Buffer.from(JSON.stringify(v))]);
    const good = framed({ id: 1, lines: [{ sku: 'a', qty: 1 }] });
    await d.prepare(good);
    assert.deepEqual(d.decode(good), { id: 1, lines: [{ sku: 'a', qty: 1 }] });
    assert.throws(
      () => d.decode(framed({ id: 1, lines: [{ qty: 1 }] })),
      (e: SchemaDecodeError) =>
        e.context.schemaId === 20 &&
        e.context.pointer === '/lines/0' &&
        e.context.keyword === 'required' &&
        /does not match its JSON Schema \(id 20\) at `\/lines\/0`: must have required property 'sku' \(keyword `required`\)/.test(
          e.message,
        ),
    );
    const e = schemaEncoder({
      format: 'json-schema',
      registry: { url: fake.url },
      topic: 't',
      schema: ORDER_JSON_SCHEMA,
      autoRegister: true,
    });
    await e.open();
    assert.equal(
      e
        .encode({ id: 2n ** 63n - 1n, lines: [] })
        .subarray(5)
        .toString(),
      '{"id":9223372036854775807,"lines":[]}',
      'a bigint is a JSON integer with every digit',
    );
    assert.throws(
      () => e.encode({ id: 1, lines: [{ sku: 'a', qty: 0 }] }),
      (err: Error & { context: Record<string, unknown> }) =>
        err.context.pointer === '/lines/0/qty' &&
        err.context.keyword === 'minimum' &&
        /does not match the JSON Schema \(id 7\) at `\/lines\/0\/qty`: must be >= 1/.test(err.message),
    );
  });

  test('decodes with a reader schema; bad values throw with the schema ids', async () => {
    const d = schemaDecoder({ format: 'avro', registry: { url: fake.url, retries: 0 }, readerSchema: V2 });
    const enc = schemaEncoder({ format: 'avro', registry: { url: fake.url }, topic: 't' }); // latest: id 1 (V1)
    await enc.open();
    const bytes = enc.encode({ id: 3, amount: '1.25' });
    await d.prepare(bytes);
    assert.deepEqual(plainValue(d.decode(bytes)), { id: 3, amount: '1.25', cur: 'EUR' });

    const unknown = Buffer.concat([frameHeader(404), Buffer.from([2])]);
    await d.prepare(unknown);
    assert.throws(
      () => d.decode(unknown),
      (e: SchemaDecodeError) => e.context.schemaId === 404 && /not found/.test(e.message),
    );
    assert.throws(() => d.decode(bytes.subarray(0, 6)), /truncated/);

    const strict = schemaDecoder({ format: 'avro', registry: { url: fake.url }, readerSchema: NO_DEFAULT });
    await strict.prepare(bytes);
    assert.throws(
      () => strict.decode(bytes),
      (e: SchemaDecodeError) =>
        e.context.schemaId === 1 &&
        e.context.readerSchemaId === 9 &&
        /cannot be read with the reader schema/.test(e.message),
    );
  });
});
