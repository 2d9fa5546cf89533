/**
 * Protobuf schema evolution through the real broker and registry (Apicurio): a producer outside
 * Sluice's codec (protobufjs's own types, framed by hand) writes v1, v2 and v3 of a message
 * interleaved to one topic, each registered under the topic's subject. One pipeline reads them
 * in their writers' shapes, with each schema fetched from the registry by the id in the message;
 * another reads them all in the v3 shape from a FileDescriptorSet (`descriptor`), where fields a
 * writer lacked take their defaults. (Apicurio's compatibility rule refuses a renamed field, so
 * the versions only add fields and enum values.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import protobuf from 'protobufjs';
import 'protobufjs/ext/descriptor/index.js';
import { REGISTRY_URL } from '../../../scripts/services/registry.ts';
import { createTopic, fresh } from '../../connectors/kafka/test-helpers.ts';
import { produceBytes, sluiceRun as run } from './test-helpers.ts';
import { frameHeader } from './wire.ts';

const BROKER = '127.0.0.1:9092';
const V1 = `syntax = "proto3";
package shop;
message Payment { int64 id = 1; string amount = 2; string cust = 3; }
`;
const V2 = `syntax = "proto3";
package shop;
enum Status { NEW = 0; PAID = 1; }
message Payment { int64 id = 1; string amount = 2; string cust = 3; string currency = 4; Status status = 5; }
`;
const V3 = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
enum Status { NEW = 0; PAID = 1; REFUNDED = 2; }
message Payment {
  int64 id = 1; string amount = 2; string cust = 3; string currency = 4; Status status = 5;
  google.protobuf.Timestamp at = 6;
}
`;

function rootOf(proto: string): protobuf.Root {
  const root = new protobuf.Root();
  root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')?.nested ?? {});
  protobuf.parse(proto.replace(/import .*\n/g, ''), root, { keepCase: true });
  return root;
}

async function register(subject: string, schema: string): Promise<number> {
  const res = await fetch(`${REGISTRY_URL}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schemaType: 'PROTOBUF', schema }),
  });
  const j = (await res.json()) as { id: number };
  assert.equal(res.status, 200, JSON.stringify(j));
  return j.id;
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-proto-evo-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('Protobuf v1, v2 and v3 interleaved: writer shapes from the registry, one v3 shape from a descriptor', async () => {
  const topic = await createTopic([BROKER], 'proto-evo', 1);
  const subject = `${topic}-value`;
  const versions = [V1, V2, V3];
  const ids: number[] = [];
  for (const v of versions) ids.push(await register(subject, v));
  assert.equal(new Set(ids).size, 3);
  const types = versions.map((v) => rootOf(v).lookupType('shop.Payment'));
  const message = (version: number, fields: Record<string, unknown>) => {
    const t = types[version - 1] as protobuf.Type;
    // Index [0]: the first message of the file, written as the single byte 0.
    return Buffer.concat([
      frameHeader(ids[version - 1] as number, [0]),
      t.encode(t.fromObject(fields)).finish(),
    ]);
  };
  await produceBytes([BROKER], topic, [
    message(1, { id: 1, amount: '10.50', cust: 'ann' }),
    message(3, {
      id: '9007199254740993',
      amount: '1.00',
      cust: 'cy',
      currency: 'CHF',
      status: 2,
      at: { seconds: 1767225600, nanos: 123_000_000 },
    }),
    message(2, { id: 2, amount: '-0.05', cust: 'bob', currency: 'USD', status: 1 }),
    message(1, { id: 4, amount: '0.00', cust: 'dee' }),
  ]);
  const v3 = rootOf(V3) as unknown as {
    toDescriptor(e: string): { $type: { encode(m: unknown): { finish(): Uint8Array } } };
  };
  const set = v3.toDescriptor('proto3');
  writeFileSync(join(dir, 'v3.pb'), set.$type.encode(set).finish());

  const read = async (name: string, extra: string) => {
    await run(
      dir,
      fresh('p'),
      `name: ${name}
input:
  kafka: { brokers: ${BROKER}, topic: ${topic}, group: ${fresh('g')}, idleTimeout: 2s, format: protobuf,
           schemaRegistry: { url: ${REGISTRY_URL} }${extra} }
output:
  file: { path: ${name}.jsonl, format: jsonl }
`,
    );
    return readFileSync(join(dir, `${name}.jsonl`), 'utf8');
  };

  assert.equal(
    await read('writers', ''),
    [
      '{"id":1,"amount":"10.50","cust":"ann"}',
      '{"id":"9007199254740993","amount":"1.00","cust":"cy","currency":"CHF","status":"REFUNDED","at":"2026-01-01T00:00:00.123Z"}',
      '{"id":2,"amount":"-0.05","cust":"bob","currency":"USD","status":"PAID"}',
      '{"id":4,"amount":"0.00","cust":"dee"}',
      '',
    ].join('\n'),
  );
  assert.equal(
    await read('as-v3', ', descriptor: v3.pb, messageType: shop.Payment'),
    [
      '{"id":1,"amount":"10.50","cust":"ann","currency":"","status":"NEW","at":null}',
      '{"id":"9007199254740993","amount":"1.00","cust":"cy","currency":"CHF","status":"REFUNDED","at":"2026-01-01T00:00:00.123Z"}',
      '{"id":2,"amount":"-0.05","cust":"bob","currency":"USD","status":"PAID","at":null}',
      '{"id":4,"amount":"0.00","cust":"dee","currency":"","status":"NEW","at":null}',
      '',
    ].join('\n'),
  );
});
