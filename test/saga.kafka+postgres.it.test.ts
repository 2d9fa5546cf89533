/**
 * A saga mixing both kinds of service action, through the real CLI against the real PostgreSQL
 * and the real Kafka broker: the saga-transfer example with a Kafka step between its two
 * statements (debit A in PostgreSQL, announce the transfer on a Kafka topic, credit B in
 * PostgreSQL; a credit that cannot happen compensates the announcement with a reversal event,
 * then the debit). The run is SIGKILLed three times while sagas are under way and restarted.
 *
 * Every saga must end completed or fully compensated, never half: per saga, the idempotency keys
 * PostgreSQL committed and the idempotency keys of the events on the topic are exactly those its
 * outcome calls for. Kafka has no produce-once, so an event may appear twice after a kill (the
 * same idempotency key, for the consumer to apply once); it may never be missing, and a
 * compensated saga's reversal is always there.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { type Transfer, transfers, writeTransfers } from '../examples/saga-transfer/generate.ts';
import { createTopic, readValues } from '../src/connectors/kafka/test-helpers.ts';
import { assertBalances, assertKeysPerSaga, runSagaTransfers } from './support/saga-checks.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const EXAMPLE = new URL('../examples/saga-transfer/', import.meta.url).pathname;
const SAGAS = 600;
const suffix = randomUUID().slice(0, 8);
// Tables of its own, so this test and the PostgreSQL-only one can run at the same time.
const ACCOUNTS_TABLE = `saga_k_accounts_${suffix}`;
const CALLS_TABLE = `saga_k_calls_${suffix}`;
const own = (text: string) =>
  text.replaceAll('saga_accounts', ACCOUNTS_TABLE).replaceAll('saga_transfer_calls', CALLS_TABLE);

let db: pg.Client;
let dir: string;
let topic: string;
let lines: Transfer[];

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(own(readFileSync(join(EXAMPLE, 'schema.sql'), 'utf8')));
  topic = await createTopic(BROKERS, 'saga-transfers', 3);
  dir = mkdtempSync(join(tmpdir(), 'sluice-saga-kafka-'));
  lines = transfers(SAGAS, 23);
  writeTransfers(join(dir, 'data/transfers.jsonl'), lines);
  const yaml = readFileSync(join(EXAMPLE, 'pipeline.yaml'), 'utf8');
  const credit = '        - name: credit\n';
  const slowCredit = 'balance + $2::numeric WHERE id = $1 AND open\n';
  assert.ok(
    yaml.includes(credit) && yaml.includes(slowCredit),
    'the example has the credit step this test extends',
  );
  const notify = [
    '        - name: announce',
    `          action: { kafka: { brokers: '${BROKERS.join(',')}', topic: ${topic}, type: transfer-debited } }`,
    `          compensate: { kafka: { brokers: '${BROKERS.join(',')}', topic: ${topic}, type: transfer-reversed } }`,
    '',
  ].join('\n');
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    own(yaml)
      .replace(credit, `${notify}${credit}`)
      // The credit takes 20 ms, so that a SIGKILL lands between a saga's first steps and its end.
      .replace(
        slowCredit,
        'balance + $2::numeric WHERE id = $1 AND open AND (SELECT true FROM pg_sleep(0.02))\n',
      ),
  );
});

after(async () => {
  await db.query(`DROP TABLE IF EXISTS ${ACCOUNTS_TABLE}, ${CALLS_TABLE}`).catch(() => {});
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

test('a saga of PostgreSQL statements and Kafka events, SIGKILLed mid-saga: each ends completed or fully compensated', async (t) => {
  const status = await runSagaTransfers({
    db,
    dir,
    callsTable: CALLS_TABLE,
    lines,
    env: { SLUICE_POSTGRES_URL: PG_URL },
    diagnostic: (m) => t.diagnostic(m),
  });

  // The events on the topic, per saga, are exactly what its outcome calls for (repeats allowed).
  const events = (await readValues(BROKERS, topic)).map(
    (v) => JSON.parse(v) as { type: string; sagaId: string; step: string; idempotencyKey: string },
  );
  for (const e of events) {
    assert.equal(e.step, 'announce');
    assert.equal(e.type, e.idempotencyKey.endsWith(':compensate') ? 'transfer-reversed' : 'transfer-debited');
  }
  assertKeysPerSaga(
    events.map((e) => e.idempotencyKey),
    lines,
    status,
    { completed: 'announce', 'compensated@credit': 'announce,announce:compensate', 'compensated@debit': '' },
  );
  const distinct = new Set(events.map((e) => e.idempotencyKey)).size;
  t.diagnostic(`${events.length} events, ${events.length - distinct} produced again after a kill`);

  await assertBalances(db, ACCOUNTS_TABLE, lines, status);
});
