/**
 * The saga-transfer example (`examples/saga-transfer/`) through the real CLI against the real
 * PostgreSQL: transfer sagas (debit A, credit B, compensate A when B cannot be credited), the run
 * SIGKILLed three times while sagas are under way and restarted. Every saga must end completed
 * or fully compensated, once: the outcomes hold each saga once, the idempotency keys the database
 * committed match each outcome exactly (no step without its compensation, no half saga), and the
 * balances equal the opening balances plus the completed transfers, each counted once.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  ACCOUNTS,
  OPENING_CENTS,
  type Transfer,
  textCents,
  transfers,
  writeTransfers,
} from '../examples/saga-transfer/generate.ts';
import { runWithKills } from './support/kill-runs.ts';

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

/** Sagas the log shows begun (an entry) but not ended (no `end` entry). */
function sagasUnderWay(): number {
  const logDir = join(dir, '.sluice/saga-transfer');
  if (!existsSync(logDir)) return 0;
  const begun = new Set<string>();
  const ended = new Set<string>();
  for (const f of readdirSync(logDir).filter((n) => n.endsWith('.log'))) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        const e = JSON.parse(line) as { s: string; e: string };
        (e.e === 'end' ? ended : begun).add(e.s);
      } catch {
        // The last line of a killed run may be cut short.
      }
    }
  }
  return [...begun].filter((s) => !ended.has(s)).length;
}

describe('saga-transfer example through the CLI, SIGKILLed mid-saga and restarted', () => {
  test('every saga ends completed or fully compensated, each once; balances match the completed transfers', async (t) => {
    const debits = async () =>
      Number(
        (await db.query("SELECT count(*) FROM saga_transfer_calls WHERE key LIKE '%:debit'")).rows[0].count,
      );
    let interrupted = 0;
    const kills = await runWithKills('pipeline.yaml', {
      cwd: dir,
      env: { SLUICE_POSTGRES_URL: PG_URL },
      progress: debits,
      total: SAGAS,
      afterKill: () => {
        interrupted += sagasUnderWay();
      },
    });
    t.diagnostic(`${kills} SIGKILLs, ${interrupted} sagas under way at the kills`);
    assert.ok(kills >= 2, `killed ${kills} times mid-run`);
    assert.ok(interrupted > 0, 'some SIGKILL landed while a saga was under way');

    // One outcome per saga, completed or compensated (nothing here may fail a compensation).
    const outcomes = readFileSync(join(dir, 'out/outcomes.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { sagaId: string; status: string; step?: string });
    assert.equal(outcomes.length, SAGAS, 'one outcome per saga, none twice');
    const status = new Map(
      outcomes.map((o) => [o.sagaId, o.status === 'completed' ? 'completed' : `${o.status}@${o.step}`]),
    );
    assert.equal(status.size, SAGAS);
    assert.deepEqual(
      outcomes.filter((o) => o.status !== 'completed' && o.status !== 'compensated'),
      [],
    );
    assert.equal(readFileSync(join(dir, 'out/dead-letters.jsonl'), 'utf8'), '');

    // What the database committed, per saga, is exactly what its outcome says.
    const keys = new Map<string, string[]>();
    for (const { key } of (await db.query<{ key: string }>('SELECT key FROM saga_transfer_calls')).rows) {
      const [id, ...rest] = key.split(':');
      keys.set(id as string, [...(keys.get(id as string) ?? []), rest.join(':')]);
    }
    const expected: Record<string, string> = {
      completed: 'credit,debit',
      'compensated@credit': 'debit,debit:compensate',
      'compensated@debit': '',
    };
    const wrong = lines.filter(
      (l) => (keys.get(l.id) ?? []).sort().join(',') !== expected[status.get(l.id) as string],
    );
    assert.deepEqual(
      wrong.slice(0, 5).map((l) => `${l.id} ${status.get(l.id)}: ${keys.get(l.id)}`),
      [],
    );
    // A closed or missing account is never credited.
    assert.deepEqual(
      lines.filter((l) => !l.to.match(/^acct-\d$/) && status.get(l.id) === 'completed').map((l) => l.id),
      [],
    );

    // Balances: opening + completed transfers, each once; total money conserved.
    const want = new Map<string, bigint>(ACCOUNTS.map((a) => [a, OPENING_CENTS]));
    want.set('acct-closed', 0n);
    for (const l of lines) {
      if (status.get(l.id) !== 'completed') continue;
      want.set(l.from, (want.get(l.from) as bigint) - textCents(l.amount));
      want.set(l.to, (want.get(l.to) as bigint) + textCents(l.amount));
    }
    const got = new Map(
      (
        await db.query<{ id: string; balance: string }>('SELECT id, balance::text FROM saga_accounts')
      ).rows.map((r) => [r.id, textCents(r.balance)]),
    );
    assert.deepEqual(got, want);
    let total = 0n;
    for (const v of got.values()) total += v;
    assert.equal(total, OPENING_CENTS * BigInt(ACCOUNTS.length));
    const completed = outcomes.filter((o) => o.status === 'completed').length;
    t.diagnostic(`${completed} completed, ${SAGAS - completed} compensated`);
    assert.ok(completed > 0 && completed < SAGAS);
  });
});
