/**
 * `format: avro | protobuf` on the `kafka` source and sink against a real broker and a real
 * schema registry (Apicurio, Confluent-compatible API): a producer outside Sluice (Python
 * fastavro) writes three versions of an Avro schema interleaved and one pipeline reads them all
 * as the reader schema v3; bad values go to the dlq with their bytes and schema id; JSONL → Avro
 * topic (registered on demand) → JSONL is byte-identical and fastavro reads Sluice's output;
 * Protobuf with the schema (and its reference) fetched from the registry.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Consumer } from '@platformatic/kafka';
import protobuf from 'protobufjs';
import { pythonWithFastavro, REGISTRY_URL } from '../../../scripts/services/registry.ts';
import { jsonLines, produceBytes, sluiceRun as run } from '../../formats/schema/test-helpers.ts';
import { createTopic, fresh, messageCount } from './test-helpers.ts';

const PROJECT = new URL('../../../', import.meta.url).pathname;
const BROKERS = ['127.0.0.1:9092'];
const AVRO_TOOL = join(PROJECT, 'test/schemas/avro_tool.py');

const decimal = { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 };
const V1 = {
  type: 'record',
  name: 'Payment',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'int' },
    { name: 'amount', type: decimal },
    { name: 'cust', type: 'string' },
    { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID', 'DISPUTED'] } },
    { name: 'note', type: 'string' },
  ],
};
const V2 = {
  ...V1,
  fields: [
    { name: 'id', type: 'int' },
    { name: 'amount', type: decimal },
    { name: 'cust', type: 'string' },
    { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID', 'DISPUTED'] } },
    { name: 'currency', type: 'string', default: 'EUR' },
  ],
};
const V3 = {
  ...V1,
  fields: [
    { name: 'id', type: 'long' },
    { name: 'amount', type: decimal },
    { name: 'customer', aliases: ['cust'], type: 'string' },
    {
      name: 'status',
      type: {
        type: 'enum',
        name: 'Status',
        symbols: ['NEW', 'PAID', 'REFUNDED', 'UNKNOWN'],
        default: 'UNKNOWN',
      },
    },
    { name: 'currency', type: 'string', default: 'EUR' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' }, default: 0 },
    { name: 'ref', type: ['null', 'long'], default: null },
  ],
};

function python(args: string[], input: string): string {
  const r = spawnSync(pythonWithFastavro(), [AVRO_TOOL, ...args], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const produceRaw = (topic: string, values: Buffer[]) => produceBytes(BROKERS, topic, values);

async function readRaw(topic: string): Promise<Buffer[]> {
  const total = await messageCount(BROKERS, topic);
  const out: Buffer[] = [];
  const consumer = new Consumer({
    clientId: 'sluice-it-reader',
    groupId: fresh('reader'),
    bootstrapBrokers: BROKERS,
    autocommit: false,
    maxWaitTime: 200,
  });
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    for await (const m of stream) {
      out.push(m.value as Buffer);
      if (out.length >= total) break;
    }
  } finally {
    await consumer.close(true);
  }
  return out;
}

const sluiceRun = (dir: string, yaml: string) => run(dir, fresh('p'), yaml);
const lines = jsonLines;

describe('schema-registry formats through kafka', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-schemas-'));
    writeFileSync(join(dir, 'v3.avsc'), JSON.stringify(V3));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('Avro v1, v2 and v3 from fastavro, interleaved, read as v3; bad values to the dlq', async () => {
    const topic = await createTopic(BROKERS, 'avro-evo', 1);
    const jobs = [
      { schema: V1, record: { id: 1, amount: '10.50', cust: 'ann', status: 'NEW', note: 'x' } },
      { schema: V2, record: { id: 2, amount: '-0.05', cust: 'bob', status: 'DISPUTED', currency: 'USD' } },
      {
        schema: V3,
        record: {
          id: 2 ** 53 + 2,
          amount: '1234567890.12',
          customer: 'cy',
          status: 'REFUNDED',
          currency: 'CHF',
          at: 1767225600123,
          ref: 7,
        },
      },
      { schema: V1, record: { id: 4, amount: '0.00', cust: 'dee', status: 'PAID', note: 'y' } },
    ];
    // fastavro wants decimals as Decimal and timestamps as datetimes or ints: send the plain values it takes.
    const input = jobs
      .map((j) => JSON.stringify(j).replace(/"amount":"([-0-9.]+)"/, '"amount":{"$decimal":"$1"}'))
      .join('\n');
    const framed = python(['produce', REGISTRY_URL, `${topic}-value`], `${input}\n`)
      .trim()
      .split('\n')
      .map((b) => Buffer.from(b, 'base64'));
    assert.equal(framed.length, 4);
    const good = framed as [Buffer, Buffer, Buffer, Buffer];
    const bad: [Buffer, Buffer, Buffer] = [
      Buffer.from([1, 0, 0, 0, 1, 2]), // wrong magic byte
      Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 2]), // unknown schema id
      good[0].subarray(0, 8), // truncated
    ];
    await produceRaw(topic, [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]]);
    await sluiceRun(
      dir,
      `name: it-avro-evo
maxErrorRate: 1 # three of four values are bad on purpose
input:
  kafka:
    brokers: ${BROKERS[0]}
    topic: ${topic}
    group: ${fresh('g')}
    idleTimeout: 2s
    format: avro
    schemaRegistry: { url: ${REGISTRY_URL}, retries: 1 }
    readerSchema: v3.avsc
output:
  file: { path: evo.jsonl, format: jsonl }
dlq:
  file: { path: evo-dead.jsonl, format: jsonl }
`,
    );
    assert.equal(
      readFileSync(join(dir, 'evo.jsonl'), 'utf8'),
      [
        '{"id":1,"amount":"10.50","customer":"ann","status":"NEW","currency":"EUR","at":"1970-01-01T00:00:00.000Z","ref":null}',
        '{"id":2,"amount":"-0.05","customer":"bob","status":"UNKNOWN","currency":"USD","at":"1970-01-01T00:00:00.000Z","ref":null}',
        '{"id":"9007199254740994","amount":"1234567890.12","customer":"cy","status":"REFUNDED","currency":"CHF","at":"2026-01-01T00:00:00.123Z","ref":7}',
        '{"id":4,"amount":"0.00","customer":"dee","status":"PAID","currency":"EUR","at":"1970-01-01T00:00:00.000Z","ref":null}',
        '',
      ].join('\n'),
    );
    const dead = lines(join(dir, 'evo-dead.jsonl'));
    assert.equal(dead.length, 3);
    const errors = dead.map((d) => d.error as Record<string, unknown>);
    assert.match(String(errors[0]?.message), /magic byte 0/);
    assert.match(String(errors[1]?.message), /schema id 2147483392|not found/);
    assert.equal(errors[1]?.schemaId, 0x7fffff00);
    assert.match(String(errors[2]?.message), /truncated/);
    assert.equal(typeof errors[2]?.schemaId, 'number');
    assert.deepEqual(
      dead.map((d) => (d.record as { valueBase64: string }).valueBase64),
      bad.map((b) => b.toString('base64')),
    );
  });

  test('JSONL → Avro topic (registered on demand) → JSONL is byte-identical; fastavro reads it', async () => {
    const topic = await createTopic(BROKERS, 'avro-rt', 1);
    const jsonl = [
      '{"id":1,"amount":"10.50","customer":"ann","status":"NEW","currency":"EUR","at":"2026-01-01T00:00:00.000Z","ref":null}',
      '{"id":"9007199254740993","amount":"-99999.99","customer":"bø","status":"UNKNOWN","currency":"USD","at":"2026-06-30T23:59:59.999Z","ref":42}',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'rt-in.jsonl'), jsonl);
    await sluiceRun(
      dir,
      `name: it-avro-rt-out
input:
  file: { path: rt-in.jsonl, format: jsonl }
output:
  kafka:
    brokers: ${BROKERS[0]}
    topic: ${topic}
    format: avro
    schema: v3.avsc
    autoRegister: true
    schemaRegistry: { url: ${REGISTRY_URL} }
`,
    );
    await sluiceRun(
      dir,
      `name: it-avro-rt-in
input:
  kafka:
    brokers: ${BROKERS[0]}
    topic: ${topic}
    group: ${fresh('g')}
    idleTimeout: 2s
    format: avro
    schemaRegistry: { url: ${REGISTRY_URL} }
output:
  file: { path: rt-out.jsonl, format: jsonl }
`,
    );
    assert.equal(readFileSync(join(dir, 'rt-out.jsonl'), 'utf8'), jsonl);
    const raw = await readRaw(topic);
    const decoded = python(['decode', REGISTRY_URL], `${raw.map((b) => b.toString('base64')).join('\n')}\n`)
      .trim()
      .split('\n')
      // Python prints big integers as numbers, Sluice as strings (exact either way): compare their digits.
      .map((l) =>
        JSON.parse(l, (_k, v, c?: { source?: string }) =>
          typeof v !== 'number' || Number.isSafeInteger(v) || !Number.isInteger(v) ? v : c?.source,
        ),
      );
    assert.deepEqual(
      decoded,
      jsonl
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    );
  });

  test('Protobuf with its schema and a reference fetched from the registry', async () => {
    const topic = await createTopic(BROKERS, 'proto', 1);
    const common =
      'syntax = "proto3";\npackage shop.common;\nmessage Money { string currency = 1; int64 units = 2; int32 nanos = 3; }\n';
    const main = `syntax = "proto3";
package shop;
import "shop/common.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message Ignored { string x = 1; }
message Order {
  int64 id = 1;
  shop.common.Money price = 2;
  google.protobuf.Timestamp at = 3;
  google.protobuf.StringValue note = 4;
  enum Kind { RETAIL = 0; WHOLESALE = 1; }
  Kind kind = 5;
  repeated string tags = 6;
}
`;
    const post = async (subject: string, body: unknown) => {
      const res = await fetch(`${REGISTRY_URL}/subjects/${subject}/versions`, {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify(body),
      });
      const j = (await res.json()) as { id: number };
      assert.equal(res.status, 200, JSON.stringify(j));
      return j.id;
    };
    const commonSubject = `${topic}-common`;
    await post(commonSubject, { schemaType: 'PROTOBUF', schema: common });
    const id = await post(`${topic}-value`, {
      schemaType: 'PROTOBUF',
      schema: main,
      references: [{ name: 'shop/common.proto', subject: commonSubject, version: 1 }],
    });
    // A producer outside Sluice's codec: protobufjs's own types, framed by hand (message index [1]).
    const root = new protobuf.Root();
    protobuf.parse(common, root, { keepCase: true });
    root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')?.nested ?? {});
    root.addJSON(protobuf.common.get('google/protobuf/wrappers.proto')?.nested ?? {});
    protobuf.parse(main.replace(/import .*\n/g, ''), root, { keepCase: true });
    const Order = root.lookupType('shop.Order');
    const frame = (payload: Uint8Array, index: number) =>
      Buffer.concat([
        Buffer.from([0, id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255, 2, index * 2]),
        payload,
      ]);
    const one = Order.encode(
      Order.fromObject({
        id: '9007199254740993',
        price: { currency: 'EUR', units: 12, nanos: 500_000_000 },
        at: { seconds: 1767225600, nanos: 123_000_000 },
        note: { value: 'gift' },
        kind: 1,
        tags: ['a', 'b'],
      }),
    ).finish();
    const two = Order.encode(Order.fromObject({ id: 2 })).finish();
    await produceRaw(topic, [frame(one, 1), frame(two, 1), frame(two, 5)]);
    await sluiceRun(
      dir,
      `name: it-proto
input:
  kafka:
    brokers: ${BROKERS[0]}
    topic: ${topic}
    group: ${fresh('g')}
    idleTimeout: 2s
    format: protobuf
    schemaRegistry: { url: ${REGISTRY_URL} }
output:
  file: { path: proto.jsonl, format: jsonl }
dlq:
  file: { path: proto-dead.jsonl, format: jsonl }
`,
    );
    assert.equal(
      readFileSync(join(dir, 'proto.jsonl'), 'utf8'),
      [
        '{"id":"9007199254740993","price":{"currency":"EUR","units":12,"nanos":500000000},"at":"2026-01-01T00:00:00.123Z","note":"gift","kind":"WHOLESALE","tags":["a","b"]}',
        '{"id":2,"price":null,"at":null,"note":null,"kind":"RETAIL","tags":[]}',
        '',
      ].join('\n'),
    );
    const dead = lines(join(dir, 'proto-dead.jsonl'));
    assert.equal(dead.length, 1);
    const error = dead[0]?.error as { message: string; schemaId: number } | undefined;
    assert.match(String(error?.message), /message index \[5\] names no message/);
    assert.equal(error?.schemaId, id);
  });
});
