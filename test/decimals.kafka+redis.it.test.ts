/**
 * `decimals:` on the message sources, through the real CLI against the real Kafka broker and
 * Redis server: JSON numbers beyond 2^53 and with more digits than a double holds are read
 * exactly, computed with in CEL (`amount * 2`), and written back digit for digit; a listed field
 * holding a word sends its message to the dlq naming the field and value; without `decimals` the
 * same numbers are doubles (what the option is for).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import { createTopic, produce } from '../src/connectors/kafka/test-helpers.ts';
import { shown, sluice } from './support/cli.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'sluice-decimals-'));
const redis = new Redis(REDIS_URL);
const stream = `decimals-${randomUUID().slice(0, 8)}`;

after(async () => {
  await redis.del(stream).catch(() => {});
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

/** The messages: exact numbers, a decimal string, a null, and a word where a decimal belongs. */
const VALUES = [
  '{"id":1,"amount":12345678901234567890.12,"n":9007199254740993}',
  '{"id":2,"amount":"473.98","n":0.1}',
  '{"id":3,"amount":null,"n":-18446744073709551617}',
  '{"id":4,"amount":"lots","n":1}',
];
const EXACT = [
  { id: 1, amount: '12345678901234567890.12', n: '9007199254740993', doubled: '24691357802469135780.24' },
  { id: 2, amount: '473.98', n: '0.1', doubled: '947.96' },
  { id: 3, amount: null, n: '-18446744073709551617', doubled: null },
];

/** Runs `input` (a YAML flow mapping) through a CEL step to JSON Lines; returns records and dead letters. */
function run(name: string, input: string) {
  writeFileSync(
    join(dir, `${name}.yaml`),
    `name: ${name}
input: ${input}
pipeline:
  - map: { fields: { doubled: 'amount == null ? null : amount * 2' } }
output:
  file: { path: ${name}.jsonl, format: jsonl }
dlq:
  file: { path: ${name}-dlq.jsonl, format: jsonl }
maxErrorRate: 1
`,
  );
  const r = sluice(['run', `${name}.yaml`], { cwd: dir });
  assert.equal(r.code, 0, shown(r));
  const lines = (f: string) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const out = lines(`${name}.jsonl`).sort((a, b) => Number(a.id) - Number(b.id));
  return { out, dead: lines(`${name}-dlq.jsonl`), raw: readFileSync(join(dir, `${name}.jsonl`), 'utf8') };
}

function assertExact(result: ReturnType<typeof run>): void {
  assert.deepEqual(result.out, EXACT);
  assert.equal(result.dead.length, 1, JSON.stringify(result.dead));
  assert.match(JSON.stringify(result.dead[0]), /field `amount`: \\"lots\\" is not a decimal number/);
}

test('kafka `decimals`: numbers beyond 2^53 and past a double’s digits stay exact; a word goes to the dlq', async () => {
  const topic = await createTopic(BROKERS, 'decimals', 1);
  await produce(
    BROKERS,
    topic,
    VALUES.map((value) => ({ value })),
  );
  const kafka = (extra: string) =>
    `{ kafka: { brokers: '${BROKERS.join(',')}', topic: ${topic}, group: g-${randomUUID().slice(0, 8)}, idleTimeout: 3s${extra} } }`;
  assertExact(run('kafka-exact', kafka(', decimals: [amount, n]')));

  // Without `decimals` the same message is read as doubles: the digits are gone.
  const plain = run('kafka-plain', kafka(''));
  assert.doesNotMatch(plain.raw, /9007199254740993|12345678901234567890\.12/);
});

test('redis `decimals`: the same, from stream entries', async () => {
  for (const v of VALUES) await redis.xadd(stream, '*', 'data', v);
  const input = `{ redis: { url: '${REDIS_URL}', stream: ${stream}, group: g-${randomUUID().slice(0, 8)}, start: '0', field: data, idleTimeout: 2s, decimals: [amount, n] } }`;
  assertExact(run('redis-exact', input));
});

test('`decimals` with a format that reads no JSON is a lint error naming the field', () => {
  writeFileSync(
    join(dir, 'raw.yaml'),
    `name: raw
input: { redis: { url: '${REDIS_URL}', stream: s, format: raw, decimals: [amount] } }
output: { stdout: { format: jsonl } }
`,
  );
  const r = sluice(['lint', 'raw.yaml'], { cwd: dir });
  assert.equal(r.code, 1, shown(r));
  assert.match(r.stderr + r.stdout, /decimals.*applies to `format: json`, not `raw`; remove it or read JSON/);
});
