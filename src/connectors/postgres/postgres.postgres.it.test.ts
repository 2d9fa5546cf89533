/**
 * The `postgres` sink against the real server (`npm run services -- up postgres`, which
 * `npm test` runs for this file's name). Every test uses fresh table names.
 *
 * - insert and upsert, exact numerics, timestamps, text that needs COPY escaping;
 * - rows the database rejects go to the dlq with its message while the rest commits;
 * - two-phase exactly-once driven stage by stage: prepared at the barrier, committed after
 *   the checkpoint, rolled back on a restart from an older checkpoint;
 * - the ETL example through the real CLI, SIGKILLed several times and restarted: the table
 *   equals the expected one exactly.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type GeneratedRow, transactionRows, writeTransactions } from '../../../examples/etl/generate.ts';
import { exited } from '../../../test/support/kill-runs.ts';
import { systemClock } from '../../core/clock.ts';
import { barrier, batchOf, type Position, type RecordMeta } from '../../core/message.ts';
import { type Logger, runScope, type StageContext } from '../../core/stage.ts';
import { OFFSETS_TABLE, type PostgresSinkOptions, postgresSink } from './sink.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const PROJECT = new URL('../../../', import.meta.url).pathname;

let db: pg.Client;
const tables: string[] = [];

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
});

after(async () => {
  for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${t}`);
  await db.end();
});

async function freshTable(ddl: (name: string) => string): Promise<string> {
  const name = `it_${randomUUID().slice(0, 8)}`;
  tables.push(name);
  await db.query(ddl(name));
  return name;
}

interface Letter {
  record: unknown;
  error: unknown;
  meta?: RecordMeta | undefined;
}

const quiet: Logger = { info() {}, warn() {}, error() {} };

function context(
  name: string,
  letters: Letter[],
  options: { checkpointing?: boolean; positions?: Record<string, Position> } = {},
): StageContext {
  return {
    name,
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    clock: systemClock,
    log: quiet,
    checkpointing: options.checkpointing ?? false,
    runScoped: runScope(),
    deadLetter: (record, error, meta) => letters.push({ record, error, meta }),
    ...(options.positions !== undefined ? { checkpointPositions: () => options.positions } : {}),
  };
}

function sinkOptions(table: string, extra: Partial<PostgresSinkOptions> = {}): PostgresSinkOptions {
  return {
    url: PG_URL,
    table,
    mode: 'insert',
    batchSize: 1000,
    linger: 0,
    exactlyOnce: false,
    pipeline: `it-${randomUUID().slice(0, 8)}`,
    retryTimeout: 10_000,
    ...extra,
  };
}

describe('postgres sink', () => {
  test('insert keeps numerics, timestamps and awkward text exact', async () => {
    const table = await freshTable(
      (t) =>
        `CREATE TABLE ${t} (id bigint PRIMARY KEY, amount numeric(30,10), ts timestamptz, note text, doc jsonb, ok boolean)`,
    );
    const letters: Letter[] = [];
    const sink = postgresSink(sinkOptions(table, { batchSize: 2 }));
    await sink.open?.(context('pg', letters));
    try {
      await sink.write(
        batchOf([
          {
            id: 1n,
            amount: '12345678901234567890.0123456789',
            ts: '2026-01-31T12:00:00.123Z',
            note: 'tab\there\nnew line \\ back',
            doc: { a: [1, 2] },
            ok: true,
          },
          { id: 2, amount: '0.1', ts: Date.UTC(2026, 1, 1, 0, 0, 0, 5), note: null, ok: false },
          { id: 3, amount: 7n, ts: new Date('2026-03-01T00:00:00Z'), extra: 'ignored' },
        ]),
      );
      await sink.finish?.();
    } finally {
      await sink.close?.();
    }
    assert.deepEqual(letters, []);
    const r = await db.query(
      `SELECT id::text, amount::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS ts, note, doc, ok
         FROM ${table} ORDER BY id`,
    );
    assert.deepEqual(r.rows, [
      {
        id: '1',
        amount: '12345678901234567890.0123456789',
        ts: '2026-01-31T12:00:00.123',
        note: 'tab\there\nnew line \\ back',
        doc: { a: [1, 2] },
        ok: true,
      },
      { id: '2', amount: '0.1000000000', ts: '2026-02-01T00:00:00.005', note: null, doc: null, ok: false },
      { id: '3', amount: '7.0000000000', ts: '2026-03-01T00:00:00.000', note: null, doc: null, ok: null },
    ]);
  });

  test('upsert overwrites by key, the last record of a key in a batch winning', async () => {
    const table = await freshTable(
      (t) => `CREATE TABLE ${t} (country text, window_start timestamptz, total numeric, revision int,
              PRIMARY KEY (country, window_start))`,
    );
    const letters: Letter[] = [];
    const sink = postgresSink(sinkOptions(table, { mode: 'upsert', key: ['country', 'window_start'] }));
    await sink.open?.(context('pg', letters));
    const w = '2026-01-01T00:00:00Z';
    try {
      await sink.write(
        batchOf([
          { country: 'FR', window_start: w, total: '10.5', revision: 1 },
          { country: 'DE', window_start: w, total: '3', revision: 1 },
          { country: 'FR', window_start: w, total: '11.25', revision: 2 },
        ]),
      );
      await sink.write(batchOf([{ country: 'DE', window_start: w, total: '4.75', revision: 2 }]));
      await sink.finish?.();
    } finally {
      await sink.close?.();
    }
    assert.deepEqual(letters, []);
    const r = await db.query(`SELECT country, total::text, revision FROM ${table} ORDER BY country`);
    assert.deepEqual(r.rows, [
      { country: 'DE', total: '4.75', revision: 2 },
      { country: 'FR', total: '11.25', revision: 2 },
    ]);
  });

  test('upsert without a matching unique index fails at open, saying what to create', async () => {
    const table = await freshTable((t) => `CREATE TABLE ${t} (k text, v int)`);
    const sink = postgresSink(sinkOptions(table, { mode: 'upsert', key: ['k'] }));
    await assert.rejects(sink.open?.(context('pg', [])) as Promise<void>, /CREATE UNIQUE INDEX/);
    await sink.close?.();
  });

  for (const mode of ['insert', 'upsert'] as const) {
    test(`${mode}: rejected rows go to the dlq with the database's message; the rest commits`, async () => {
      const table = await freshTable(
        (t) =>
          `CREATE TABLE ${t} (id int PRIMARY KEY, amount numeric(8,2) CHECK (amount >= 0), ts timestamptz)`,
      );
      await db.query(`INSERT INTO ${table} VALUES (100, 1, now())`);
      const letters: Letter[] = [];
      const sink = postgresSink(sinkOptions(table, mode === 'upsert' ? { mode, key: ['id'] } : { mode }));
      await sink.open?.(context('pg', letters));
      const records = [];
      const meta: RecordMeta[] = [];
      for (let i = 1; i <= 50; i++) {
        let amount = `${i}.25`;
        let ts = '2026-01-01T00:00:00Z';
        if (i === 7) amount = 'seven';
        if (i === 20) amount = '-1';
        if (i === 33) ts = 'not a time';
        if (i === 41) amount = '1234567.00'; // numeric(8,2) overflow
        records.push({ id: i, amount, ts });
        meta.push({ source: 'input', position: { line: i + 1 } });
      }
      if (mode === 'insert') {
        records.push({ id: 100, amount: '1', ts: null });
        meta.push({ source: 'input', position: { line: 52 } });
      }
      try {
        await sink.write(batchOf(records, meta));
        await sink.finish?.();
      } finally {
        await sink.close?.();
      }
      const badIds = mode === 'insert' ? [7, 20, 33, 41, 100] : [7, 20, 33, 41];
      assert.deepEqual(
        letters.map((l) => Number((l.record as { id: unknown }).id)).sort((a, b) => a - b),
        badIds,
      );
      const byId = new Map(letters.map((l) => [Number((l.record as { id: unknown }).id), l]));
      const msg = (id: number) => String((byId.get(id)?.error as Error | undefined)?.message);
      assert.match(msg(7), /invalid input syntax for type numeric: "seven"/);
      assert.match(msg(7), new RegExp(`table \`${table}\``));
      assert.match(msg(20), /violates check constraint/);
      assert.match(msg(33), /timestamp/);
      assert.match(msg(41), /numeric field overflow/);
      if (mode === 'insert') assert.match(msg(100), /duplicate key/);
      assert.deepEqual(byId.get(7)?.meta?.position, { line: 8 });
      const r = await db.query(`SELECT id FROM ${table} WHERE id < 100 ORDER BY id`);
      const expected = [];
      for (let i = 1; i <= 50; i++) if (!badIds.includes(i)) expected.push(i);
      assert.deepEqual(
        r.rows.map((x) => x.id),
        expected,
      );
    });
  }

  test('exactly-once: prepared at the barrier, committed after the checkpoint, rolled back when it never completed', async () => {
    const table = await freshTable((t) => `CREATE TABLE ${t} (id int PRIMARY KEY)`);
    const options = sinkOptions(table, { exactlyOnce: true });
    const count = async () => Number((await db.query(`SELECT count(*) FROM ${table}`)).rows[0].count);
    const offsets = async () =>
      (
        await db.query(`SELECT source, position, checkpoint_id FROM ${OFFSETS_TABLE} WHERE pipeline = $1`, [
          options.pipeline,
        ])
      ).rows;

    // Run 1: checkpoint 1 completes, checkpoint 2 is prepared, then the process "dies".
    const first = postgresSink(options);
    await first.open?.(
      context('pg', [], { checkpointing: true, positions: { input: { line: 3, offset: 40n } } }),
    );
    await first.write(batchOf([{ id: 1 }, { id: 2 }]));
    await first.onSignal?.(barrier(1));
    assert.deepEqual(await first.snapshot?.(1), { checkpointId: 1 });
    assert.equal(await count(), 0, 'prepared rows are not visible before the checkpoint is stored');
    await first.commitCheckpoint?.(1);
    assert.equal(await count(), 2);
    assert.deepEqual(await offsets(), [
      { source: 'input', position: { line: 3, offset: { $bigint: '40' } }, checkpoint_id: '1' },
    ]);
    await first.write(batchOf([{ id: 3 }]));
    await first.onSignal?.(barrier(2));
    await first.write(batchOf([{ id: 4 }])); // in the open transaction: lost with the process
    await first.close?.();

    // Run 2 restores checkpoint 1: checkpoint 2's prepared transaction is rolled back.
    const second = postgresSink(options);
    await second.open?.(context('pg', [], { checkpointing: true, positions: { input: { line: 4 } } }));
    await second.restore?.({ checkpointId: 1 });
    assert.deepEqual(await second.committedPositions?.(), {
      checkpointId: 1,
      sources: { input: { line: 3, offset: 40n } },
    });
    await second.write(batchOf([{ id: 3 }, { id: 4 }]));
    await second.onSignal?.(barrier(2));
    await second.close?.();

    // Run 3 restores checkpoint 2 (stored, but its commit never ran): it is committed now.
    const third = postgresSink(options);
    await third.open?.(context('pg', [], { checkpointing: true }));
    await third.restore?.({ checkpointId: 2 });
    await third.finish?.();
    await third.close?.();
    assert.deepEqual(
      (await db.query(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      await offsets(),
      [{ source: '*', position: { final: true }, checkpoint_id: String(Number.MAX_SAFE_INTEGER) }],
      'a finished job keeps only its `final` marker',
    );
    const left = await db.query('SELECT gid FROM pg_prepared_xacts WHERE starts_with(gid, $1)', [
      `sluice:${options.pipeline}:`,
    ]);
    assert.equal(left.rowCount, 0);
  });

  test('exactlyOnce without checkpoints is a config error naming what to add', async () => {
    const table = await freshTable((t) => `CREATE TABLE ${t} (id int)`);
    const sink = postgresSink(sinkOptions(table, { exactlyOnce: true }));
    await assert.rejects(sink.open?.(context('pg', [])) as Promise<void>, /needs checkpoints/);
    await sink.close?.();
  });
});

/**
 * Leaves no test rows in the example's table: a user who then runs the example would see them
 * as duplicates of the new load (issue #15).
 */
async function dropEtlTable(): Promise<void> {
  await db.query('DROP TABLE IF EXISTS etl_transactions');
  await db.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = 'etl-transactions'`).catch(() => {});
}

describe('ETL example through the CLI, SIGKILLed and restarted', () => {
  const ROWS = 60_000;
  let dir: string;
  let rows: GeneratedRow[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-etl-'));
    cpSync(join(PROJECT, 'examples/etl/pipeline.yaml'), join(dir, 'pipeline.yaml'));
    writeTransactions(join(dir, 'data/transactions.csv.gz'), ROWS);
    rows = [...transactionRows(ROWS)];
    await db.query('DROP TABLE IF EXISTS etl_transactions');
    await db.query(readFileSync(join(PROJECT, 'examples/etl/schema.sql'), 'utf8'));
    await db.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = 'etl-transactions'`).catch(() => {});
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropEtlTable();
  });

  function start(): ChildProcess {
    return spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', 'pipeline.yaml'], {
      cwd: dir,
      env: { ...process.env, SLUICE_POSTGRES_URL: PG_URL },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }

  test('the table equals the expected one exactly', async () => {
    const expected = rows.filter((r) => r.expected !== undefined);
    const count = async () => Number((await db.query('SELECT count(*) FROM etl_transactions')).rows[0].count);
    // Kill when the committed rows pass these marks (progress, not wall-clock time).
    let kills = 0;
    let finished = false;
    for (const fraction of [0.15, 0.4, 0.65]) {
      if (finished) break;
      const child = start();
      const ended = exited(child);
      let done = false;
      void ended.then(() => {
        done = true;
      });
      // Only mid-run: the kill after the final commit has its own test below.
      let n = 0;
      for (;;) {
        if (done) break;
        n = await count();
        if (n >= fraction * expected.length) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!done && n < expected.length) {
        child.kill('SIGKILL');
        kills++;
      }
      const end = await ended;
      assert.ok(end.signal === 'SIGKILL' || end.code === 0, `run failed: ${end.stderr}`);
      // A run that got to the end deleted its checkpoints: running again would load it all again.
      finished = end.code === 0;
    }
    assert.ok(kills >= 1, 'at least one run was killed mid-way');
    if (!finished) {
      const last = await exited(start());
      assert.equal(last.code, 0, last.stderr);
    }

    const got = await db.query(
      `SELECT id::int, account, amount::text, currency,
              to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts
         FROM etl_transactions ORDER BY id`,
    );
    // Compared as text, with the first differences shown (a deepEqual diff of 60k rows is too slow).
    const want = expected.map((r) => JSON.stringify(r.expected));
    const have = got.rows.map((r) => JSON.stringify(r));
    const haveSet = new Set(have);
    const wantSet = new Set(want);
    const missing = want.filter((w) => !haveSet.has(w));
    const extra = have.filter((h) => !wantSet.has(h));
    assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] });
    assert.equal(have.length, want.length);
    assert.ok(
      have.every((h, i) => h === want[i]),
      'same rows in id order',
    );
  });

  // The dlq file sink is checkpointed like the table, so across the kills it neither loses nor
  // repeats a dead letter.
  test('every bad row is in the dlq file exactly once', () => {
    // Dead letters: the CSV reader's (raw line) and the table's (the record).
    const dlq = join(dir, 'out/dead-letters.jsonl');
    assert.ok(existsSync(dlq), 'the dlq file exists');
    const lines = readFileSync(dlq, 'utf8').split('\n').filter(Boolean);
    const deadLines = lines
      .map((l) => JSON.parse(l) as { record: unknown; position?: { line?: number } })
      .map((d) =>
        typeof d.record === 'string'
          ? Number(d.record.split(',')[0])
          : Number((d.record as { id: unknown }).id),
      );
    const bad = rows.filter((r) => r.kind !== 'ok').map((r) => r.id);
    const count = (ids: number[]) => {
      const m = new Map<number, number>();
      for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
      return m;
    };
    const got = count(deadLines);
    const want = count(bad);
    const missing = [...want].filter(([id, n]) => (got.get(id) ?? 0) < n).map(([id]) => id);
    const extra = [...got].filter(([id, n]) => (want.get(id) ?? 0) < n).map(([id]) => id);
    assert.deepEqual(
      { missing: missing.slice(0, 10), extra: extra.slice(0, 10) },
      { missing: [], extra: [] },
    );
  });
});

describe('ETL example killed after its final commit, before its checkpoints are deleted', () => {
  const ROWS = 20_000;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-etl-final-'));
    cpSync(join(PROJECT, 'examples/etl/pipeline.yaml'), join(dir, 'pipeline.yaml'));
    writeTransactions(join(dir, 'data/transactions.csv.gz'), ROWS);
    await db.query('DROP TABLE IF EXISTS etl_transactions');
    await db.query(readFileSync(join(PROJECT, 'examples/etl/schema.sql'), 'utf8'));
    await db.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = 'etl-transactions'`).catch(() => {});
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropEtlTable();
  });

  function run(
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; signal: string | null; stderr: string }> {
    // Checkpoints every 3,000 records, so the run stores some before it ends at any speed.
    const args = [join(PROJECT, 'bin/sluice.js'), 'run', 'pipeline.yaml', '--set', 'checkpoint.records=3000'];
    const child = spawn(process.execPath, args, {
      cwd: dir,
      env: { ...process.env, SLUICE_POSTGRES_URL: PG_URL, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  }

  test('the restart writes nothing again, and the run after it starts over', async () => {
    const expected = [...transactionRows(ROWS)].filter((r) => r.expected !== undefined).length;
    const count = async () => Number((await db.query('SELECT count(*) FROM etl_transactions')).rows[0].count);
    const first = await run({ SLUICE_TEST_CRASH: 'before-clear' });
    assert.equal(first.signal, 'SIGKILL', `the crash point was not reached: ${first.stderr}`);
    assert.equal(await count(), expected, 'the final commit made it');
    const marker = await db.query(
      `SELECT checkpoint_id FROM ${OFFSETS_TABLE} WHERE pipeline = 'etl-transactions' AND source = '*'`,
    );
    assert.equal(marker.rows.length, 1, 'the final marker is stored with the last rows');

    const second = await run();
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /already holds every row of this input/);
    assert.equal(await count(), expected, 'no row written twice');
    const left = await db.query(`SELECT count(*) FROM ${OFFSETS_TABLE} WHERE pipeline = 'etl-transactions'`);
    assert.equal(Number(left.rows[0].count), 0, 'the finished job forgets its positions');

    // The job is done and forgotten: a new run loads the input again, as a fresh job does.
    await db.query('TRUNCATE etl_transactions');
    const third = await run();
    assert.equal(third.code, 0, third.stderr);
    assert.equal(await count(), expected);
    // `written` is what the table committed; the rows it rejected (negative, repeated id) are dead letters.
    const rejected = [...transactionRows(ROWS)].filter(
      (r) => r.kind === 'negative' || r.kind === 'duplicate',
    );
    const counts = (stderr: string) =>
      [
        /([\d,]+) written/.exec(stderr)?.[1],
        /`output` sent ([\d,]+) records? to the DLQ/.exec(stderr)?.[1],
      ].map((n) => Number(n?.replace(/,/g, '')));
    assert.deepEqual(counts(third.stderr), [expected, rejected.length], third.stderr);

    // The example's schema.sql makes the next load a fresh one: the rows this run left are not
    // taken for duplicates (issue #15: 20,116 dead letters after `npm test`).
    await db.query(readFileSync(join(PROJECT, 'examples/etl/schema.sql'), 'utf8'));
    const fourth = await run();
    assert.equal(fourth.code, 0, fourth.stderr);
    assert.equal(await count(), expected);
    assert.deepEqual(counts(fourth.stderr), [expected, rejected.length], fourth.stderr);
  });
});
