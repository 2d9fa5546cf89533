/**
 * The `postgres` sink when the server goes away: each test runs its own private PostgreSQL
 * (`test/support/private-postgres.ts`, the Debian binaries `npm run services -- up postgres`
 * installs) and stops, crashes and starts it — never the shared server other tests use.
 *
 * - the two-phase protocol stage by stage across a crash (`pg_ctl stop -m immediate`) and a fast
 *   shutdown: prepared transactions survive and are committed or rolled back by checkpoint, the
 *   open transaction is sent again, nothing is lost or doubled;
 * - the ETL example through the real CLI while the server is crashed, then shut down, mid-run and
 *   started again a few seconds later: the run waits, says so, reconnects and ends with exactly
 *   the expected table and every bad row once in the dlq file;
 * - a server that is not running when the run starts is waited for, and one that never comes
 *   fails the run after `connectTimeout` with a message naming it (no stack trace).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type GeneratedRow, transactionRows, writeTransactions } from '../../../examples/etl/generate.ts';
import { freePort } from '../../../test/support/net.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../../../test/support/private-postgres.ts';
import { systemClock } from '../../core/clock.ts';
import { barrier, batchOf } from '../../core/message.ts';
import { type Logger, runScope, type StageContext } from '../../core/stage.ts';
import { type PostgresSinkOptions, postgresSink } from './sink.ts';

const PROJECT = new URL('../../../', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A query on a fresh connection (the server may have restarted since the last one). */
async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  sql: string,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await c.query<R>(sql, values);
  } finally {
    await c.end().catch(() => {});
  }
}

describe('postgres sink, two-phase protocol across server restarts', () => {
  let server: PrivatePostgres;
  before(async () => {
    server = await startPrivatePostgres();
  });
  after(async () => {
    await server?.destroy();
  });

  test('prepared transactions survive a crash and a fast shutdown; the open one is sent again', async () => {
    const table = `rs_${randomUUID().slice(0, 8)}`;
    await query(server.url, `CREATE TABLE ${table} (id int PRIMARY KEY)`);
    const warnings: string[] = [];
    const log: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
    const letters: unknown[] = [];
    const context = (): StageContext => ({
      name: 'pg',
      signal: new AbortController().signal,
      stopSignal: new AbortController().signal,
      clock: systemClock,
      log,
      checkpointing: true,
      runScoped: runScope(),
      deadLetter: (record) => letters.push(record),
      checkpointPositions: () => ({ input: { line: 1 } }),
    });
    const options: PostgresSinkOptions = {
      url: server.url,
      table,
      mode: 'insert',
      batchSize: 2,
      linger: 0,
      exactlyOnce: true,
      pipeline: `rs-${randomUUID().slice(0, 8)}`,
      retryTimeout: 60_000,
      holdInMemory: 0, // every held chunk goes through the spill file
    };
    const ids = async () =>
      (await query<{ id: number }>(server.url, `SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
    const preparedIds = async () =>
      (await query<{ gid: string }>(server.url, 'SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map(
        (r) => Number(r.gid.split(':').pop()),
      );

    const first = postgresSink(options);
    await first.open?.(context());
    await first.write(batchOf([{ id: 1 }, { id: 2 }]));
    await first.onSignal?.(barrier(1));
    // A crash between PREPARE and COMMIT PREPARED: the prepared transaction survives it.
    await server.stop('immediate');
    await server.start();
    assert.deepEqual(await preparedIds(), [1]);
    await first.commitCheckpoint?.(1); // the admin connection was lost: reconnects, commits
    assert.deepEqual(await ids(), [1, 2]);

    // Rows in the open transaction when the server shuts down are sent again after it is back.
    await first.write(batchOf([{ id: 3 }, { id: 4 }, { id: 5 }]));
    await server.stop('fast');
    await server.start();
    await first.onSignal?.(barrier(2));
    assert.deepEqual(await preparedIds(), [2]);
    await first.write(batchOf([{ id: 6 }, { id: 7 }]));
    await server.stop('immediate');
    await server.start();
    await first.onSignal?.(barrier(3));
    assert.deepEqual(await preparedIds(), [2, 3]);
    // The process dies before committing 2 and 3; its checkpoint 2 was stored, 3 was not.
    await first.close?.();

    const second = postgresSink(options);
    await second.open?.(context());
    await second.restore?.({ checkpointId: 2 });
    assert.deepEqual(await preparedIds(), [], 'the restart settled both');
    assert.deepEqual(await ids(), [1, 2, 3, 4, 5], 'checkpoint 2 committed, 3 rolled back');
    await second.write(batchOf([{ id: 6 }, { id: 7 }, { id: 8 }]));
    await second.finish?.();
    await second.close?.();
    assert.deepEqual(await ids(), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(letters, [], 'no row was rejected: none was sent twice into one transaction');
    assert.deepEqual(await preparedIds(), []);

    const waits = warnings.filter((w) => w.startsWith('Waiting for PostgreSQL'));
    assert.ok(waits.length >= 3, `one wait per outage at least, got ${JSON.stringify(warnings)}`);
    for (const w of waits)
      assert.match(w, new RegExp(`at \`127\\.0\\.0\\.1:${server.port}\` \\(database \`postgres\`\\)`));
    assert.ok(
      warnings.some((w) => w.startsWith('Reconnected to PostgreSQL')),
      'the end of the outage is logged',
    );
  });
});

describe('postgres sink, upsert across a server restart', () => {
  let server: PrivatePostgres;
  before(async () => {
    server = await startPrivatePostgres();
  });
  after(async () => {
    await server?.destroy();
  });

  test('the open transaction of upserts is sent again; the last record of a key wins', async () => {
    const table = `ru_${randomUUID().slice(0, 8)}`;
    await query(server.url, `CREATE TABLE ${table} (k text PRIMARY KEY, v int)`);
    const ctx: StageContext = {
      name: 'pg',
      signal: new AbortController().signal,
      stopSignal: new AbortController().signal,
      clock: systemClock,
      log: { info() {}, warn() {}, error() {} },
      checkpointing: true,
      runScoped: runScope(),
      deadLetter: () => assert.fail('no row is rejected'),
    };
    const sink = postgresSink({
      url: server.url,
      table,
      mode: 'upsert',
      key: ['k'],
      batchSize: 2,
      linger: 0,
      exactlyOnce: true,
      pipeline: `ru-${randomUUID().slice(0, 8)}`,
      retryTimeout: 60_000,
    });
    await sink.open?.(ctx);
    await sink.write(
      batchOf([
        { k: 'a', v: 1 },
        { k: 'b', v: 1 },
      ]),
    );
    await sink.write(
      batchOf([
        { k: 'a', v: 2 },
        { k: 'c', v: 1 },
      ]),
    );
    await server.stop('immediate');
    await server.start();
    await sink.write(
      batchOf([
        { k: 'b', v: 3 },
        { k: 'd', v: 1 },
      ]),
    );
    await sink.onSignal?.(barrier(1));
    await sink.commitCheckpoint?.(1);
    await sink.finish?.();
    await sink.close?.();
    const rows = (await query<{ k: string; v: number }>(server.url, `SELECT k, v FROM ${table} ORDER BY k`))
      .rows;
    assert.deepEqual(rows, [
      { k: 'a', v: 2 },
      { k: 'b', v: 3 },
      { k: 'c', v: 1 },
      { k: 'd', v: 1 },
    ]);
  });
});

describe('ETL example through the CLI against a server that stops and starts', () => {
  let server: PrivatePostgres;
  let dir: string;
  before(async () => {
    server = await startPrivatePostgres();
    dir = mkdtempSync(join(tmpdir(), 'sluice-etl-restart-'));
  });
  after(async () => {
    await server?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the ETL example in `dir/<name>` with `rows` rows, its table created. */
  async function setUp(
    name: string,
    rows: number,
    edit: (yaml: string) => string = (y) => y,
  ): Promise<{ cwd: string; rows: GeneratedRow[] }> {
    const cwd = join(dir, name);
    cpSync(join(PROJECT, 'examples/etl/pipeline.yaml'), join(cwd, 'pipeline.yaml'));
    // Checkpoints by record count too, so there are several whatever the machine's speed.
    const yaml = readFileSync(join(cwd, 'pipeline.yaml'), 'utf8').replace(
      /^checkpoint: .*$/m,
      `checkpoint: { interval: 500ms, records: ${Math.ceil(rows / 10)} }`,
    );
    writeFileSync(join(cwd, 'pipeline.yaml'), edit(yaml));
    writeTransactions(join(cwd, 'data/transactions.csv.gz'), rows);
    await query(server.url, 'DROP TABLE IF EXISTS etl_transactions');
    await query(server.url, readFileSync(join(PROJECT, 'examples/etl/schema.sql'), 'utf8'));
    await query(server.url, `DELETE FROM sluice_sink_offsets WHERE pipeline = 'etl-transactions'`).catch(
      () => {},
    );
    return { cwd, rows: [...transactionRows(rows)] };
  }

  interface Run {
    readonly child: ChildProcess;
    /** Resolves when the process exits. */
    readonly ended: Promise<{ code: number | null; signal: string | null }>;
    /** What it wrote to stderr so far. */
    stderr(): string;
  }

  function run(cwd: string, url = server.url): Run {
    const child = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', 'pipeline.yaml'], {
      cwd,
      env: { ...process.env, SLUICE_POSTGRES_URL: url },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderr += d;
    });
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    return { child, ended, stderr: () => stderr };
  }

  async function exitedYet(r: Run): Promise<boolean> {
    return Promise.race([r.ended.then(() => true), sleep(0).then(() => false)]);
  }

  /** Waits until the committed rows reach `n`; false when the run ended first. */
  async function committed(r: Run, n: number): Promise<boolean> {
    for (;;) {
      if (await exitedYet(r)) return false;
      const got = await query<{ n: string }>(server.url, 'SELECT count(*) AS n FROM etl_transactions');
      if (Number(got.rows[0]?.n) >= n) return true;
      await sleep(20);
    }
  }

  async function assertExactTable(rows: GeneratedRow[]): Promise<void> {
    const got = await query(
      server.url,
      `SELECT id::int, account, amount::text, currency,
              to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts
         FROM etl_transactions ORDER BY id`,
    );
    const want = rows.filter((r) => r.expected !== undefined).map((r) => JSON.stringify(r.expected));
    const have = got.rows.map((r) => JSON.stringify(r));
    const haveSet = new Set(have);
    const wantSet = new Set(want);
    const missing = want.filter((w) => !haveSet.has(w));
    const extra = have.filter((h) => !wantSet.has(h));
    assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] });
    assert.equal(have.length, want.length);
  }

  function assertDlqOnce(cwd: string, rows: GeneratedRow[]): void {
    const lines = readFileSync(join(cwd, 'out/dead-letters.jsonl'), 'utf8').split('\n').filter(Boolean);
    // The CSV reader's dead letters hold the raw line, the table's the record.
    const ids = lines
      .map((l) => (JSON.parse(l) as { record: unknown }).record)
      .map((r) => (typeof r === 'string' ? Number(r.split(',')[0]) : Number((r as { id: unknown }).id)))
      .sort((a, b) => a - b);
    const want = rows
      .filter((r) => r.kind !== 'ok')
      .map((r) => r.id)
      .sort((a, b) => a - b);
    assert.equal(ids.length, want.length, 'as many dead letters as bad rows');
    assert.deepEqual(ids, want);
  }

  test('crashed, then shut down mid-run: the run waits, reconnects and the table is exact', async () => {
    const { cwd, rows } = await setUp('restart', 200_000);
    const good = rows.filter((r) => r.expected !== undefined).length;
    const r = run(cwd);
    for (const [fraction, mode] of [
      [0.25, 'immediate'],
      [0.6, 'fast'],
    ] as const) {
      assert.ok(await committed(r, fraction * good), `the run ended before ${fraction}: ${r.stderr()}`);
      await server.stop(mode);
      await sleep(3000);
      assert.equal(await exitedYet(r), false, `the run waits for the server: ${r.stderr()}`);
      await server.start();
    }
    const end = await r.ended;
    assert.equal(end.code, 0, r.stderr());
    const stderr = r.stderr();
    assert.match(
      stderr,
      new RegExp(
        `WARN Waiting for PostgreSQL at \`127\\.0\\.0\\.1:${server.port}\` \\(database \`postgres\`\\): `,
      ),
    );
    assert.match(
      stderr,
      /retrying in \d+(\.\d+)? m?s \(attempt \d+, giving up after 2 min, `retryTimeout`\)/,
    );
    assert.ok((stderr.match(/WARN Reconnected to PostgreSQL/g) ?? []).length >= 2, stderr);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    await assertExactTable(rows);
    assertDlqOnce(cwd, rows);
    const left = await query(server.url, 'SELECT gid FROM pg_prepared_xacts');
    assert.equal(left.rowCount, 0, 'no prepared transaction is left behind');
  });

  test('a server not running at the start is waited for', async () => {
    const { cwd, rows } = await setUp('late-server', 20_000);
    await server.stop('fast');
    const r = run(cwd);
    try {
      while (!r.stderr().includes('Waiting for PostgreSQL')) {
        assert.equal(await exitedYet(r), false, `the run waits for the server: ${r.stderr()}`);
        await sleep(50);
      }
      await sleep(1000);
    } finally {
      await server.start();
    }
    const end = await r.ended;
    assert.equal(end.code, 0, r.stderr());
    assert.match(r.stderr(), /connecting for `etl_transactions` failed \(.*ECONNREFUSED.*\)/);
    assert.match(r.stderr(), /giving up after 30 s, `connectTimeout`/);
    await assertExactTable(rows);
    assertDlqOnce(cwd, rows);
  });

  test('a server that never comes fails the run after connectTimeout, saying where and what to do', async () => {
    const port = await freePort();
    const { cwd } = await setUp('no-server', 100, (yaml) =>
      yaml.replace(/exactlyOnce: true/, 'exactlyOnce: true\n    connectTimeout: 1500ms'),
    );
    const r = run(cwd, `postgres://sluice@127.0.0.1:${port}/nowhere`);
    const end = await r.ended;
    const stderr = r.stderr();
    assert.equal(end.code, 1, stderr);
    assert.match(
      stderr,
      new RegExp(`Waiting for PostgreSQL at \`127\\.0\\.0\\.1:${port}\` \\(database \`nowhere\`\\)`),
    );
    assert.match(
      stderr,
      new RegExp(
        `Error \\[SLUICE_STAGE\\]: .*PostgreSQL at \`127\\.0\\.0\\.1:${port}\` \\(database \`nowhere\`\\) still failed after \\d+ attempts .*\`connectTimeout\` is 1\\.5 s.*ECONNREFUSED.*check that the server is running`,
      ),
    );
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });
});
