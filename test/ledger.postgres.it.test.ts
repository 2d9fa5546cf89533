/**
 * The ledger example (`examples/ledger/`) through the real CLI against the real PostgreSQL: many
 * transfers between five hot accounts, one in ten sent twice, the run SIGKILLed three times at
 * progress marks and restarted. Both variants — balances in Sluice's state (`pipeline.yaml`) and
 * in the database (`pipeline-db.yaml`, `mode: statement`) — must end with the sequential
 * reference: each transfer applied once, the same balances after each one (so none was ever
 * negative), total money conserved, every overdraft rejected once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  type Reference,
  reference,
  type TransferLine,
  transferLines,
  writeTransfers,
} from '../examples/ledger/generate.ts';
import { OPENING_BALANCE } from '../examples/ledger/money.ts';
import { OFFSETS_TABLE } from '../src/connectors/postgres/sink.ts';
import { runWithKills } from './support/kill-runs.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const PROJECT = new URL('../', import.meta.url).pathname;
const TRANSFERS = 12_000;
const ACCOUNTS = 5;

let db: pg.Client;
let dir: string;
let lines: TransferLine[];
let want: Reference;

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(readFileSync(join(PROJECT, 'examples/ledger/schema.sql'), 'utf8'));
  await db.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline IN ('ledger', 'ledger-db')`).catch(() => {});
  dir = mkdtempSync(join(tmpdir(), 'sluice-ledger-'));
  lines = transferLines(TRANSFERS, ACCOUNTS, 42);
  want = reference(lines);
  writeTransfers(join(dir, 'data/transfers.jsonl'), lines);
  // The module by absolute path: the pipeline files run from the temporary folder.
  const apply = join(PROJECT, 'examples/ledger/apply.ts');
  for (const f of ['pipeline.yaml', 'pipeline-db.yaml'])
    writeFileSync(
      join(dir, f),
      readFileSync(join(PROJECT, 'examples/ledger', f), 'utf8')
        .replace('./apply.ts', apply)
        // Paced, so that a run lasts long enough to be killed mid-way on a fast machine too.
        .replace('\npipeline:\n', '\npipeline:\n  - throttle: { rate: 4000, burst: 200 }\n'),
    );
});

after(async () => {
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `file` to the end, SIGKILLing it when `progress()` passes each mark; returns the kills. */
function runKilled(file: string, progress: () => Promise<number>, total: number): Promise<number> {
  return runWithKills(file, { cwd: dir, env: { SLUICE_POSTGRES_URL: PG_URL }, progress, total });
}

function sum(values: Iterable<bigint>): bigint {
  let s = 0n;
  for (const v of values) s += v;
  return s;
}

describe('ledger example through the CLI, SIGKILLed and restarted', () => {
  test('balances in Sluice state: each transfer once, sequential balances, overdrafts rejected once', async (t) => {
    const count = async () => Number((await db.query('SELECT count(*) FROM ledger_entries')).rows[0].count);
    const kills = await runKilled('pipeline.yaml', count, want.applied.length);
    assert.ok(kills >= 2, `killed ${kills} times mid-run`);
    t.diagnostic(`${kills} SIGKILLs mid-run`);

    const rows = (
      await db.query<{
        id: string;
        from_balance: string;
        to_balance: string;
        from_account: string;
        to_account: string;
        amount: string;
      }>(
        'SELECT id, from_account, to_account, amount::text, from_balance::text, to_balance::text FROM ledger_entries',
      )
    ).rows;
    // Each applied transfer exactly once, with the balances the sequential run has after it.
    const got = new Map(rows.map((r) => [r.id, `${r.from_balance}/${r.to_balance}`]));
    assert.equal(rows.length, want.applied.length);
    const wrong = want.applied.filter((a) => got.get(a.id) !== `${a.from_balance}/${a.to_balance}`);
    assert.deepEqual(wrong.slice(0, 5), []);
    // Final balances from the entries: opening + credits − debits, equal to the reference, total conserved.
    const balances = new Map<string, bigint>();
    for (const a of want.balances.keys()) balances.set(a, OPENING_BALANCE);
    for (const r of rows) {
      balances.set(r.from_account, (balances.get(r.from_account) as bigint) - BigInt(r.amount));
      balances.set(r.to_account, (balances.get(r.to_account) as bigint) + BigInt(r.amount));
    }
    assert.deepEqual(balances, want.balances);
    assert.equal(sum(balances.values()), OPENING_BALANCE * BigInt(want.balances.size));
    assert.ok(
      rows.every((r) => BigInt(r.from_balance) >= 0n && BigInt(r.to_balance) >= 0n),
      'no balance ever negative',
    );
    // Every overdraft in the rejected file exactly once; nothing dead-lettered.
    const rejected = readFileSync(join(dir, 'out/rejected.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string; reason: string }).id);
    assert.deepEqual(rejected, want.rejected);
    assert.equal(readFileSync(join(dir, 'out/dead-letters.jsonl'), 'utf8'), '');
  });

  test('balances in the database (`mode: statement`): the same outcome', async (t) => {
    rmSync(join(dir, 'out'), { recursive: true, force: true });
    const count = async () => Number((await db.query('SELECT count(*) FROM ledger_transfers')).rows[0].count);
    const kills = await runKilled('pipeline-db.yaml', count, TRANSFERS);
    assert.ok(kills >= 2, `killed ${kills} times mid-run`);
    t.diagnostic(`${kills} SIGKILLs mid-run`);

    const accounts = (
      await db.query<{ id: string; balance: string }>('SELECT id, balance::text FROM ledger_accounts')
    ).rows;
    assert.deepEqual(new Map(accounts.map((a) => [a.id, BigInt(a.balance)])), want.balances);
    assert.equal(sum(accounts.map((a) => BigInt(a.balance))), OPENING_BALANCE * BigInt(ACCOUNTS));
    const transfers = (
      await db.query<{ id: string; status: string }>('SELECT id, status FROM ledger_transfers')
    ).rows;
    assert.equal(transfers.length, TRANSFERS, 'each transfer recorded once');
    const status = new Map(transfers.map((t) => [t.id, t.status]));
    assert.deepEqual(
      want.rejected.filter((id) => status.get(id) !== 'rejected'),
      [],
    );
    assert.deepEqual(
      want.applied.filter((a) => status.get(a.id) !== 'applied').map((a) => a.id),
      [],
    );
  });
});
