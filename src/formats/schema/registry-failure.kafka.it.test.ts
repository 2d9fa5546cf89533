/**
 * A schema registry that refuses the credentials (HTTP 401) or is down, seen from the `kafka`
 * source against a real broker: each value whose schema cannot be fetched becomes a dead letter
 * carrying its raw bytes (base64), its schema id and a message saying what to check, and the
 * partition keeps flowing — values of a schema that can be fetched are decoded around them.
 *
 * The registry here is a small HTTP server of the test (Apicurio runs without authentication,
 * so it cannot answer 401): it serves schema id 1 and answers 401 for every other id.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTopic, fresh } from '../../connectors/kafka/test-helpers.ts';
import { avroType } from './avro.ts';
import { jsonLines, produceBytes, sluiceRun as run } from './test-helpers.ts';
import { frameHeader } from './wire.ts';

const BROKER = '127.0.0.1:9092';
const DECIMAL = { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 };
const FIELDS = [
  { name: 'n', type: 'long' },
  { name: 'amount', type: DECIMAL },
];
const SCHEMA = JSON.stringify({ type: 'record', name: 'Ping', fields: FIELDS });

let dir: string;
let server: Server;
let url: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-registry-failure-'));
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
    if (req.url?.endsWith('/schemas/ids/1')) {
      res.end(JSON.stringify({ schemaType: 'AVRO', schema: SCHEMA }));
      return;
    }
    res.statusCode = 401;
    res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/apis/ccompat/v7`;
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await new Promise((r) => server.close(r));
});

const type = avroType(SCHEMA);
const value = (id: number, n: number) =>
  Buffer.concat([frameHeader(id), type.toBuffer({ n, amount: `${n}.25` })]);

const produce = (topic: string, values: Buffer[]) => produceBytes([BROKER], topic, values);

async function readWith(topic: string, registry: string, name: string) {
  await run(
    dir,
    fresh('p'),
    `name: ${name}
maxErrorRate: 1 # the registry fails on purpose
input:
  kafka: { brokers: ${BROKER}, topic: ${topic}, group: ${fresh('g')}, idleTimeout: 2s, format: avro,
           schemaRegistry: { url: ${JSON.stringify(registry)}, retries: 1 } }
output:
  file: { path: ${name}.jsonl, format: jsonl }
dlq:
  file: { path: ${name}-dead.jsonl, format: jsonl }
`,
  );
  return {
    records: jsonLines(join(dir, `${name}.jsonl`)),
    dead: jsonLines(join(dir, `${name}-dead.jsonl`)),
  };
}

test('a registry answering 401: dead letters with raw bytes and schema id; the partition flows', async () => {
  const topic = await createTopic([BROKER], 'registry-401', 1);
  const values = [value(1, 1), value(2, 2), value(1, 3), value(2, 4), value(1, 5)];
  await produce(topic, values);
  const { records, dead } = await readWith(topic, url, 'unauthorized');
  assert.deepEqual(records, [
    { n: 1, amount: '1.25' },
    { n: 3, amount: '3.25' },
    { n: 5, amount: '5.25' },
  ]);
  assert.equal(dead.length, 2);
  for (const [i, d] of dead.entries()) {
    const error = d.error as { message: string; schemaId: number };
    assert.match(error.message, /refused the credentials \(HTTP 401\); check `schemaRegistry.username`/);
    assert.equal(error.schemaId, 2);
    assert.equal((d.record as { valueBase64: string }).valueBase64, values[2 * i + 1]?.toString('base64'));
  }
});

test('a registry that is down: every value a dead letter with its bytes and schema id', async () => {
  const topic = await createTopic([BROKER], 'registry-down', 1);
  const values = [value(1, 1), value(1, 2), value(3, 3)];
  await produce(topic, values);
  const { records, dead } = await readWith(topic, 'http://127.0.0.1:1/apis/ccompat/v7', 'down');
  assert.deepEqual(records, []);
  assert.deepEqual(
    dead.map((d) => [
      (d.error as { schemaId: number }).schemaId,
      (d.record as { valueBase64: string }).valueBase64,
    ]),
    values.map((v, i) => [i === 2 ? 3 : 1, v.toString('base64')]),
  );
  assert.match(String((dead[0]?.error as { message?: string } | undefined)?.message), /127\.0\.0\.1:1/);
  assert.ok(readFileSync(join(dir, 'down-dead.jsonl'), 'utf8').length > 0);
});
