/**
 * The {@link StateBackend} contract (test/state/contract.ts) against the real PostgreSQL
 * (`npm run services -- up postgres`, which `npm test` runs for this file's name), plus what is
 * PostgreSQL's own: the table is created once and shared by namespaces, a failure between two
 * statements of a large write rolls the whole write back, and an unreachable server fails with a
 * message naming host and database.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { failureBatch, stateBackendContract } from '../../test/state/contract.ts';
import { postgresBackend } from './postgres.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
// One table per test file run, dropped at the end (other helpers share the server).
const TABLE = `it_state_${randomUUID().slice(0, 8)}`;

let db: pg.Client;
before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
});
after(async () => {
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.end();
});

stateBackendContract({
  name: 'postgres',
  persistent: true,
  open: (namespace) => postgresBackend({ url: PG_URL, table: TABLE, namespace }),
  // Two statements in one transaction (values over `chunkBytes`); the hook throws between them.
  failingWrite: async (namespace) => ({
    backend: await postgresBackend({
      url: PG_URL,
      table: TABLE,
      namespace,
      chunkBytes: 1024,
      afterChunk: (i) => {
        if (i === 0) throw new Error('injected failure after the first statement');
      },
    }),
    batch: failureBatch(new Map([['d', Buffer.alloc(4096, 1)]])),
    error: /writing state in PostgreSQL .*injected failure after the first statement/,
  }),
});

describe('postgresBackend', () => {
  it('keeps keys in a `bytea` primary key, namespaces side by side in one table', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await postgresBackend({ url: PG_URL, table: TABLE, namespace: ns });
    await b.write(new Map([['k\u00e9', Buffer.from([0, 1])]]));
    const r = await db.query<{ key: Buffer; value: Buffer }>(
      `SELECT key, value FROM ${TABLE} WHERE namespace = $1`,
      [ns],
    );
    assert.deepEqual(
      r.rows.map((row) => [row.key.toString('hex'), row.value.toString('hex')]),
      [['6bc3a9', '0001']],
    );
    const storage = await db.query<{ attstorage: string }>(
      `SELECT attstorage FROM pg_attribute WHERE attrelid = '${TABLE}'::regclass AND attname = 'value'`,
    );
    assert.equal(storage.rows[0]?.attstorage, 'e', 'values are stored uncompressed (STORAGE EXTERNAL)');
    await b.close();
    await assert.rejects(b.read('k'), /the state store is closed/);
  });

  it('rejects a key that is not well-formed Unicode without writing anything', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await postgresBackend({ url: PG_URL, table: TABLE, namespace: ns });
    await assert.rejects(
      b.write(
        new Map([
          ['fine', Buffer.from('x')],
          ['bad\ud800', Buffer.from('y')],
        ]),
      ),
      /not valid Unicode/,
    );
    assert.deepEqual(await b.keys(''), []);
    await b.close();
  });

  it('names host, database and table when the server cannot be reached', async () => {
    await assert.rejects(
      postgresBackend({
        url: 'postgres://sluice:sluice@127.0.0.1:1/sluice',
        table: TABLE,
        namespace: 'x',
        retryTimeoutMs: 300,
      }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLUICE_STAGE');
        assert.match(err.message, /PostgreSQL `127\.0\.0\.1:1\/sluice`, table `it_state_\w+`, namespace `x`/);
        assert.match(err.message, /ECONNREFUSED/);
        assert.match(err.message, /check that it runs/);
        return true;
      },
    );
  });

  it('fails at once, with what to check, on a wrong password', async () => {
    await assert.rejects(
      postgresBackend({ url: 'postgres://sluice:wrong@127.0.0.1:5432/sluice', table: TABLE, namespace: 'x' }),
      /PostgreSQL at `127\.0\.0\.1:5432` refused the password of user `sluice`.*check the password in `checkpoint\.store`/,
    );
  });

  it('survives its connection being killed between calls', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await postgresBackend({ url: PG_URL, table: TABLE, namespace: ns, log: { warn() {} } });
    await b.write(new Map([['a', Buffer.from('1')]]));
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
      `sluice state ${ns}`,
    ]);
    await b.write(new Map([['b', Buffer.from('2')]]));
    assert.deepEqual(await b.keys(''), ['a', 'b']);
    await b.close();
  });
});
