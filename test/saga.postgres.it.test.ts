/**
 * The saga-transfer example (`examples/saga-transfer/`) through the real CLI against the real
 * PostgreSQL: transfer sagas (debit A, credit B, compensate A when B cannot be credited), the run
 * SIGKILLed three times while sagas are under way and restarted. Every saga must end completed
 * or fully compensated, once: the outcomes hold each saga once, the idempotency keys the database
 * committed match each outcome exactly (no step without its compensation, no half saga), and the
 * balances equal the opening balances plus the completed transfers, each counted once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type Transfer, transfers, writeTransfers } from '../examples/saga-transfer/generate.ts';
import { assertBalances, runSagaTransfers } from './support/saga-checks.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const PROJECT = new URL('../', import.meta.url).pathname;
const EXAMPLE = join(PROJECT, 'examples/saga-transfer');
const SAGAS = 1000;

let db: pg.Client;
let dir: string;
let lines: Transfer[];

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(readFileSync(join(EXAMPLE, 'schema.sql'), 'utf8'));
  dir = mkdtempSync(join(tmpdir(), 'sluice-saga-'));
  lines = transfers(SAGAS, 11);
  writeTransfers(join(dir, 'data/transfers.jsonl'), lines);
  const credit = 'balance + $2::numeric WHERE id = $1 AND open\n';
  const yaml = readFileSync(join(EXAMPLE, 'pipeline.yaml'), 'utf8');
  assert.ok(yaml.includes(credit), 'the example credits with the statement this test slows down');
  // The credit step takes 20 ms, so that a SIGKILL lands between a saga's debit and its end.
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    yaml.replace(
      credit,
      'balance + $2::numeric WHERE id = $1 AND open AND (SELECT true FROM pg_sleep(0.02))\n',
    ),
  );
});

after(async () => {
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('saga-transfer example through the CLI, SIGKILLed mid-saga and restarted', () => {
  test('every saga ends completed or fully compensated, each once; balances match the completed transfers', async (t) => {
    const status = await runSagaTransfers({
      db,
      dir,
      callsTable: 'saga_transfer_calls',
      lines,
      env: { SLUICE_POSTGRES_URL: PG_URL },
      diagnostic: (m) => t.diagnostic(m),
    });
    // Balances: opening + completed transfers, each once; total money conserved.
    await assertBalances(db, 'saga_accounts', lines, status);
  });
});
