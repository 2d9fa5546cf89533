/**
 * What the saga-transfer crash tests check after their SIGKILLed runs: how many sagas a kill
 * interrupted (from the saga log), each saga's outcome, the idempotency keys the database
 * committed per saga, and the balances the completed transfers must have left.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { ACCOUNTS, OPENING_CENTS, type Transfer, textCents } from '../../examples/saga-transfer/generate.ts';
import { runWithKills } from './kill-runs.ts';

/**
 * Runs `pipeline.yaml` in `dir` (pipeline `name`) through the CLI, SIGKILLed three times (see
 * `runWithKills`), to the end; asserts that it was killed at least twice and that some kill
 * landed while a saga was under way (its log shows it begun and not ended).
 */
export async function killSagaRuns(options: {
  readonly dir: string;
  readonly name: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly progress: () => Promise<number>;
  readonly total: number;
  readonly diagnostic: (message: string) => void;
}): Promise<void> {
  let interrupted = 0;
  const kills = await runWithKills('pipeline.yaml', {
    cwd: options.dir,
    ...(options.env !== undefined ? { env: options.env } : {}),
    progress: options.progress,
    total: options.total,
    afterKill: () => {
      interrupted += sagasUnderWay(join(options.dir, '.sluice', options.name));
    },
  });
  options.diagnostic(`${kills} SIGKILLs, ${interrupted} sagas under way at the kills`);
  assert.ok(kills >= 2, `killed ${kills} times mid-run`);
  assert.ok(interrupted > 0, 'some SIGKILL landed while a saga was under way');
}

/** What {@link runSagaTransfers} needs. */
export interface SagaTransferRun {
  readonly db: pg.Client;
  /** The folder holding `pipeline.yaml` (the saga-transfer example's, adapted) and its input. */
  readonly dir: string;
  /** The saga's table of committed idempotency keys. */
  readonly callsTable: string;
  /** The transfers of the input. */
  readonly lines: readonly Transfer[];
  readonly env: Readonly<Record<string, string>>;
  /** Where the test's diagnostics go (`t.diagnostic`). */
  readonly diagnostic: (message: string) => void;
}

/**
 * Runs the saga-transfer pipeline in `dir` through the CLI, SIGKILLed three times while sagas are
 * under way (asserted), to the end; asserts one outcome per saga, completed or compensated, no
 * dead letters, and exactly the PostgreSQL keys each outcome calls for. Returns saga id → status.
 */
export async function runSagaTransfers(run: SagaTransferRun): Promise<Map<string, string>> {
  const { db, dir, callsTable, lines } = run;
  await killSagaRuns({
    dir,
    name: 'saga-transfer',
    env: run.env,
    progress: async () =>
      Number((await db.query(`SELECT count(*) FROM ${callsTable} WHERE key LIKE '%:debit'`)).rows[0].count),
    total: lines.length,
    diagnostic: run.diagnostic,
  });

  // One outcome per saga, completed or compensated (nothing here may fail a compensation).
  const status = sagaStatuses(join(dir, 'out/outcomes.jsonl'), lines);
  assert.equal(readFileSync(join(dir, 'out/dead-letters.jsonl'), 'utf8'), '');
  // What the database committed, per saga, is exactly what its outcome says.
  const { rows } = await db.query<{ key: string }>(`SELECT key FROM ${callsTable}`);
  assertKeysPerSaga(
    rows.map((r) => r.key),
    lines,
    status,
    { completed: 'credit,debit', 'compensated@credit': 'debit,debit:compensate', 'compensated@debit': '' },
  );
  const completed = [...status.values()].filter((s) => s === 'completed').length;
  run.diagnostic(`${completed} completed, ${lines.length - completed} compensated`);
  assert.ok(completed > 0 && completed < lines.length);
  return status;
}

/** Sagas the logs in `logDir` show begun (an entry) but not ended (no `end` entry). */
export function sagasUnderWay(logDir: string): number {
  if (!existsSync(logDir)) return 0;
  const begun = new Set<string>();
  const ended = new Set<string>();
  for (const f of readdirSync(logDir).filter((n) => n.endsWith('.log'))) {
    for (const line of readFileSync(`${logDir}/${f}`, 'utf8').split('\n')) {
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

/**
 * The outcomes in the JSON Lines `file`, asserted to be one per saga of `lines`, each
 * `completed` or `compensated`; returns saga id → `completed` or `compensated@<step>`.
 */
export function sagaStatuses(file: string, lines: readonly { readonly id: string }[]): Map<string, string> {
  const outcomes = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { sagaId: string; status: string; step?: string });
  assert.equal(outcomes.length, lines.length, 'one outcome per saga, none twice');
  assert.deepEqual(
    outcomes.filter((o) => o.status !== 'completed' && o.status !== 'compensated'),
    [],
  );
  const status = new Map(
    outcomes.map((o) => [o.sagaId, o.status === 'completed' ? 'completed' : `${o.status}@${o.step}`]),
  );
  assert.equal(status.size, lines.length);
  return status;
}

/**
 * Asserts that, for every saga of `lines`, the sorted keys committed for it (`<id>:<rest>`, the
 * `<rest>` parts joined by commas) are what `expected[status]` says.
 */
export function assertKeysPerSaga(
  keys: Iterable<string>,
  lines: readonly { readonly id: string }[],
  status: ReadonlyMap<string, string>,
  expected: Readonly<Record<string, string>>,
): void {
  const bySaga = new Map<string, string[]>();
  for (const key of keys) {
    const [id, ...rest] = key.split(':');
    bySaga.set(id as string, [...(bySaga.get(id as string) ?? []), rest.join(':')]);
  }
  const wrong = lines.filter(
    (l) => [...new Set(bySaga.get(l.id) ?? [])].sort().join(',') !== expected[status.get(l.id) as string],
  );
  assert.deepEqual(
    wrong.slice(0, 5).map((l) => `${l.id} ${status.get(l.id)}: ${bySaga.get(l.id)}`),
    [],
  );
}

/**
 * Asserts that the balances in `table` equal the opening balances plus the completed transfers,
 * each counted once, that money is conserved, and that no closed or missing account was credited.
 */
export async function assertBalances(
  db: pg.Client,
  table: string,
  lines: readonly Transfer[],
  status: ReadonlyMap<string, string>,
): Promise<void> {
  assert.deepEqual(
    lines.filter((l) => !l.to.match(/^acct-\d$/) && status.get(l.id) === 'completed').map((l) => l.id),
    [],
  );
  const want = new Map<string, bigint>(ACCOUNTS.map((a) => [a, OPENING_CENTS]));
  want.set('acct-closed', 0n);
  for (const l of lines) {
    if (status.get(l.id) !== 'completed') continue;
    want.set(l.from, (want.get(l.from) as bigint) - textCents(l.amount));
    want.set(l.to, (want.get(l.to) as bigint) + textCents(l.amount));
  }
  const got = new Map(
    (await db.query<{ id: string; balance: string }>(`SELECT id, balance::text FROM ${table}`)).rows.map(
      (r) => [r.id, textCents(r.balance)],
    ),
  );
  assert.deepEqual(got, want);
  let total = 0n;
  for (const v of got.values()) total += v;
  assert.equal(total, OPENING_CENTS * BigInt(ACCOUNTS.length));
}
