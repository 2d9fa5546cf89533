/**
 * `postgresCall` against the real PostgreSQL: a statement takes effect once per idempotency key
 * (a second call, and a concurrent one, skip), a statement touching too few rows or breaking a
 * constraint fails without a retry, a timeout mid-statement rolls back (the key stays free for the
 * retry), an unreachable server is retryable; and a saga of two statements compensates the first.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { SluiceError } from '../core/errors.ts';
import { OperatorHarness } from './harness.ts';
import type { SagaOutcome, SagaStepContext } from './saga.ts';
import { saga } from './saga.ts';
import { postgresCall, SagaPools } from './saga-postgres.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const suffix = randomUUID().slice(0, 8);
const ACCOUNTS = `saga_it_accounts_${suffix}`;
const CALLS = `saga_it_calls_${suffix}`;
let db: pg.Client;
const pools = new SagaPools();

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(
    `CREATE TABLE ${ACCOUNTS} (id text PRIMARY KEY, balance numeric(12,2) NOT NULL CHECK (balance >= 0))`,
  );
  await db.query(`INSERT INTO ${ACCOUNTS} VALUES ('a', 100.00), ('b', 0.00)`);
});
after(async () => {
  await pools.close();
  await db.query(`DROP TABLE IF EXISTS ${ACCOUNTS}, ${CALLS}`);
  await db.end();
});

type Row = { id: string; from: string; to: string; amount: string };
const ctx = (record: Row, key: string, signal: AbortSignal): SagaStepContext<Row> => ({
  record,
  sagaId: record.id,
  step: 'debit',
  idempotencyKey: key,
  attempt: 1,
  signal,
});
const debit = postgresCall<Row>(
  {
    url: PG_URL,
    statement: `UPDATE ${ACCOUNTS} SET balance = balance - $2::numeric WHERE id = $1`,
    params: ['from', 'amount'],
    minRows: 1,
    table: CALLS,
  },
  pools,
);
const balance = async (id: string) =>
  (await db.query(`SELECT balance::text AS b FROM ${ACCOUNTS} WHERE id = $1`, [id])).rows[0]?.b as string;
const keys = async () =>
  (await db.query(`SELECT key FROM ${CALLS} ORDER BY key`)).rows.map((r) => r.key as string);

test('postgresCall: applied once per idempotency key, also when called twice at once', async () => {
  const r = { id: 't1', from: 'a', to: 'b', amount: '10.50' };
  const signal = () => new AbortController().signal;
  assert.deepEqual(await debit(ctx(r, 't1:debit', signal())), { rows: 1 });
  assert.deepEqual(await debit(ctx(r, 't1:debit', signal())), { skipped: true });
  const both = await Promise.all([debit(ctx(r, 't2:debit', signal())), debit(ctx(r, 't2:debit', signal()))]);
  assert.deepEqual(both.map((x) => JSON.stringify(x)).sort(), ['{"rows":1}', '{"skipped":true}']);
  assert.equal(await balance('a'), '79.00');
  assert.deepEqual(await keys(), ['t1:debit', 't2:debit']);
});

test('postgresCall: too few rows and a CHECK violation fail at once and leave no key', async () => {
  const signal = new AbortController().signal;
  await assert.rejects(
    debit(ctx({ id: 't3', from: 'nobody', to: 'b', amount: '1' }, 't3:debit', signal)),
    (err) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /touched 0 row\(s\), fewer than minRows 1 \(params \["nobody","1"\]\)/);
      return true;
    },
  );
  await assert.rejects(
    debit(ctx({ id: 't4', from: 'a', to: 'b', amount: '1000' }, 't4:debit', signal)),
    (err) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.retryable, false);
      assert.match(err.message, /PostgreSQL 127\.0\.0\.1:5432: running the statement: .*check constraint/);
      return true;
    },
  );
  assert.equal(await balance('a'), '79.00');
  assert.deepEqual(await keys(), ['t1:debit', 't2:debit']);
});

test('postgresCall: a timeout mid-statement rolls back and is retryable; so is an unreachable server', async () => {
  const slow = postgresCall<Row>(
    {
      url: PG_URL,
      statement: `UPDATE ${ACCOUNTS} SET balance = balance - 1 WHERE id = $1 AND (SELECT true FROM pg_sleep(5))`,
      params: ['from'],
      table: CALLS,
    },
    pools,
  );
  await assert.rejects(
    slow(ctx({ id: 't5', from: 'a', to: 'b', amount: '1' }, 't5:debit', AbortSignal.timeout(300))),
    (err) => err instanceof SluiceError && err.retryable === true && /cancelled/.test(err.message),
  );
  assert.equal(await balance('a'), '79.00');
  assert.deepEqual(await keys(), ['t1:debit', 't2:debit']);

  const down = postgresCall<Row>({ url: 'postgres://x:y@127.0.0.1:1/none', statement: 'SELECT 1' }, pools);
  await assert.rejects(
    down(ctx({ id: 't6', from: 'a', to: 'b', amount: '1' }, 't6:debit', new AbortController().signal)),
    (err) =>
      err instanceof SluiceError &&
      err.retryable === true &&
      /PostgreSQL 127\.0\.0\.1:1: connecting/.test(err.message),
  );
});

test('saga of statements: debit A, credit B; a credit that cannot happen compensates the debit', async () => {
  const stmt = (statement: string, params: string[], minRows = 0) =>
    postgresCall<Row>({ url: PG_URL, statement, params, minRows, table: CALLS }, pools);
  const fast = { minDelayMs: 5, maxDelayMs: 20, timeoutMs: 1000 };
  const op = saga<Row>({
    id: 'id',
    steps: [
      {
        name: 'debit',
        action: stmt(
          `UPDATE ${ACCOUNTS} SET balance = balance - $2::numeric WHERE id = $1`,
          ['from', 'amount'],
          1,
        ),
        compensate: stmt(
          `UPDATE ${ACCOUNTS} SET balance = balance + $2::numeric WHERE id = $1`,
          ['from', 'amount'],
          1,
        ),
        retry: fast,
      },
      {
        name: 'credit',
        action: stmt(
          `UPDATE ${ACCOUNTS} SET balance = balance + $2::numeric WHERE id = $1`,
          ['to', 'amount'],
          1,
        ),
        retry: fast,
      },
    ],
  });
  const h = new OperatorHarness(op);
  await h.open();
  await h.process([
    { id: 's1', from: 'a', to: 'b', amount: '9.00' },
    { id: 's2', from: 'a', to: 'closed', amount: '5.00' },
  ]);
  const out = (h.records() as SagaOutcome<Row>[])
    .map((o) => `${o.sagaId} ${o.status} ${o.step ?? ''}`)
    .sort();
  assert.deepEqual(out, ['s1 completed ', 's2 compensated credit']);
  await op.close?.();
  assert.equal(await balance('a'), '70.00');
  assert.equal(await balance('b'), '9.00');
  assert.deepEqual(
    (await keys()).filter((k) => k.startsWith('s')),
    ['s1:credit', 's1:debit', 's2:debit', 's2:debit:compensate'],
  );
});
