/**
 * `format: json-schema` against a real broker and registry (Apicurio): the kafka sink validates
 * each record against the schema it registered and dead-letters one that fails with the JSON
 * pointer and keyword; the kafka source validates each value against its writer schema (fetched
 * by the id in the message) and dead-letters one that fails with the schema id, pointer and
 * keyword, while the valid ones flow.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REGISTRY_URL } from '../../../scripts/services/registry.ts';
import { createTopic, fresh } from '../../connectors/kafka/test-helpers.ts';
import { jsonLines, ORDER_JSON_SCHEMA, produceBytes, sluiceRun as run } from './test-helpers.ts';
import { frameHeader } from './wire.ts';

const BROKER = '127.0.0.1:9092';
const SCHEMA = ORDER_JSON_SCHEMA;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-json-schema-'));
  writeFileSync(join(dir, 'order.json'), JSON.stringify(SCHEMA));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sluiceRun = (yaml: string) => run(dir, fresh('p'), yaml);
const lines = jsonLines;

test('json-schema: the sink and the source validate, dead-lettering with pointer and keyword', async () => {
  const topic = await createTopic([BROKER], 'json-schema', 1);
  const good = ['{"id":1,"lines":[{"sku":"a","qty":2}]}', '{"id":3,"lines":[]}'];
  writeFileSync(join(dir, 'in.jsonl'), `${good[0]}\n{"id":2,"lines":[{"sku":"b","qty":0}]}\n${good[1]}\n`);
  await sluiceRun(`name: it-json-schema-out
maxErrorRate: 1 # one record is bad on purpose
input:
  file: { path: in.jsonl, format: jsonl }
output:
  kafka:
    brokers: ${BROKER}
    topic: ${topic}
    format: json-schema
    schema: order.json
    autoRegister: true
    schemaRegistry: { url: ${REGISTRY_URL} }
dlq:
  file: { path: out-dead.jsonl, format: jsonl }
`);
  const outDead = lines(join(dir, 'out-dead.jsonl'));
  assert.equal(outDead.length, 1);
  assert.match(
    String((outDead[0]?.error as { message?: string } | undefined)?.message),
    /at `\/lines\/0\/qty`: must be >= 1 \(keyword `minimum`\)/,
  );

  // A value outside Sluice writes with the registered id, which its schema rejects.
  const latest = (await (await fetch(`${REGISTRY_URL}/subjects/${topic}-value/versions/latest`)).json()) as {
    id: number;
  };
  const bad = Buffer.concat([frameHeader(latest.id), Buffer.from('{"id":"x","lines":[]}')]);
  await produceBytes([BROKER], topic, [bad]);
  await sluiceRun(`name: it-json-schema-in
maxErrorRate: 1
input:
  kafka:
    brokers: ${BROKER}
    topic: ${topic}
    group: ${fresh('g')}
    idleTimeout: 2s
    format: json-schema
    schemaRegistry: { url: ${REGISTRY_URL} }
output:
  file: { path: back.jsonl, format: jsonl }
dlq:
  file: { path: in-dead.jsonl, format: jsonl }
`);
  assert.equal(readFileSync(join(dir, 'back.jsonl'), 'utf8'), `${good.join('\n')}\n`);
  const inDead = lines(join(dir, 'in-dead.jsonl'));
  assert.equal(inDead.length, 1);
  const error = inDead[0]?.error as Record<string, unknown>;
  assert.equal(error.schemaId, latest.id);
  assert.equal(error.pointer, '/id');
  assert.equal(error.keyword, 'type');
  assert.match(
    String(error.message),
    new RegExp(`does not match its JSON Schema \\(id ${latest.id}\\) at \`/id\`: must be integer`),
  );
});
