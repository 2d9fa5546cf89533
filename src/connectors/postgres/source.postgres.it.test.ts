/**
 * The `postgres` source against the real server (`npm run services -- up postgres`, which
 * `npm test` runs for this file's name). Every test uses fresh table names.
 *
 * - incremental reads with ties on the column, with and without a tie-breaker key, exact types;
 * - a restart from a position resumes right after it (SIGKILL through the CLI and a restart are
 *   in the connector conformance suite, test/connectors/postgres.postgres.it.test.ts);
 * - `follow` picks up rows inserted later;
 * - identifiers and values cannot inject SQL; a missing table or column fails with a clear message.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { systemClock } from '../../core/clock.ts';
import { Decimal } from '../../core/decimal.ts';
import type { Position, RecordMeta } from '../../core/message.ts';
import { type Emitter, type Logger, runScope, type SourceContext } from '../../core/stage.ts';
import { type PostgresSourceOptions, postgresSource } from './source.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const quiet: Logger = { info() {}, warn() {}, error() {} };

/** The newest installed server's `bin` folder (Debian layout), when this process may run it as `postgres`. */
const PG_BIN = ((): string | undefined => {
  if (process.getuid?.() !== 0 || !existsSync('/usr/lib/postgresql')) return undefined;
  const majors = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v) && existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : `/usr/lib/postgresql/${majors[0]}/bin`;
})();

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

/** A fresh table `(id bigint primary key, ts timestamptz, amount numeric, big bigint, note text)` with `n` rows, three per `ts`. */
async function eventsTable(n: number): Promise<string> {
  const name = `it_src_${randomUUID().slice(0, 8)}`;
  tables.push(name);
  await db.query(
    `CREATE TABLE ${name} (id bigint PRIMARY KEY, ts timestamptz NOT NULL, amount numeric(30,10), big bigint, note text)`,
  );
  await insertEvents(name, 1, n);
  return name;
}

/** Inserts ids `from..to`: `ts` advances 1.000001 s every three ids (ties), `big` beyond 2^53. */
async function insertEvents(name: string, from: number, to: number): Promise<void> {
  await db.query(
    `INSERT INTO ${name} (id, ts, amount, big, note)
     SELECT g, '2026-01-01T00:00:00.000001Z'::timestamptz + (g / 3) * interval '1.000001 second',
            (g::text || '.0000000001')::numeric, 9007199254740993 + g, 'note ' || g
       FROM generate_series($1::int, $2::int) g`,
    [from, to],
  );
}

function options(extra: Partial<PostgresSourceOptions>): PostgresSourceOptions {
  return {
    url: PG_URL,
    column: 'ts',
    batchSize: 4,
    pollInterval: 50,
    follow: false,
    retryTimeout: 5000,
    ...extra,
  };
}

interface Row {
  id: string;
  ts: string;
  amount: unknown;
  big: string;
  note: string;
}

/** Runs a source by hand; `positions[i]` is its position right after the i-th emit. */
function drive(log: Logger = quiet) {
  const cancel = new AbortController();
  const stop = new AbortController();
  const records: Row[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  const positions: (Position | undefined)[] = [];
  /** Records emitted so far, after each emit. */
  const counts: number[] = [];
  let positionOf: () => Position | undefined = () => undefined;
  const out: Emitter<unknown> = {
    async emit(batch) {
      for (let i = 0; i < batch.records.length; i++) {
        records.push(batch.records[i] as Row);
        meta.push(batch.meta?.[i]);
      }
      positions.push(positionOf());
      counts.push(records.length);
    },
    async signal() {},
  };
  const ctx: SourceContext = {
    name: 'pg',
    signal: cancel.signal,
    stopSignal: stop.signal,
    checkpointing: true,
    runScoped: runScope(),
    clock: systemClock,
    log,
    deadLetter() {
      throw new Error('no dead letters expected');
    },
  };
  return {
    ctx,
    out,
    records,
    meta,
    positions,
    counts,
    stop,
    track(p: () => Position | undefined) {
      positionOf = p;
    },
  };
}

async function readAll(o: PostgresSourceOptions, restoreFrom?: Position): Promise<ReturnType<typeof drive>> {
  const source = postgresSource(o);
  const d = drive();
  d.track(() => source.position?.());
  await source.open?.(d.ctx);
  if (restoreFrom !== undefined) await source.restore?.(restoreFrom);
  try {
    await source.run(d.out, d.ctx);
  } finally {
    await source.close?.();
  }
  return d;
}

const ids = (rows: Row[]): number[] => rows.map((r) => Number(r.id));
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('postgres source', () => {
  test('reads every row once in (column, key) order, with ties split across batches, exact types', async () => {
    const t = await eventsTable(50);
    const d = await readAll(options({ table: t, key: 'id', batchSize: 4 }));
    assert.deepEqual(ids(d.records), range(1, 50));
    const r7 = d.records[6] as Row;
    // `numeric` reads as an exact Decimal: compared by its text.
    assert.ok(Decimal.is(r7.amount), 'numeric reads as a Decimal');
    assert.deepEqual(
      { ...r7, amount: String(r7.amount) },
      {
        id: '7',
        ts: '2026-01-01T00:00:02.000003Z',
        amount: '7.0000000001',
        big: '9007199254741000',
        note: 'note 7',
      },
    );
    assert.deepEqual(d.meta[6]?.position, { column: '2026-01-01 00:00:02.000003+00', key: '7' });
    assert.equal(d.meta[6]?.timestamp, Date.parse('2026-01-01T00:00:02.000Z'));
  });

  test('timestamp without time zone and date columns: ISO strings, exact cursors', async () => {
    const name = `it_src_${randomUUID().slice(0, 8)}`;
    tables.push(name);
    await db.query(
      `CREATE TABLE ${name} (id int PRIMARY KEY, at timestamp NOT NULL, day date NOT NULL, n bigint)`,
    );
    await db.query(
      `INSERT INTO ${name} SELECT g, '2026-03-01 10:00:00.000001'::timestamp + g * interval '0.000001 second',
              '2026-03-01'::date + (g / 4), 9223372036854775000 + g FROM generate_series(1, 12) g`,
    );
    const byAt = await readAll(options({ table: name, column: 'at', batchSize: 5 }));
    assert.deepEqual(
      byAt.records.map((r) => (r as unknown as { at: string }).at),
      // The server drops trailing zeros of the fraction (`.00001`), still ISO-8601.
      Array.from(
        { length: 12 },
        (_, i) =>
          `2026-03-01T10:00:00.${String(i + 2)
            .padStart(6, '0')
            .replace(/0+$/, '')}`,
      ),
      'microseconds kept, no zone added',
    );
    assert.equal((byAt.records[11] as unknown as { n: string }).n, '9223372036854775012', 'bigint exact');
    const byDay = await readAll(options({ table: name, column: 'day', key: 'id', batchSize: 5 }));
    assert.deepEqual(ids(byDay.records), range(1, 12));
    assert.equal((byDay.records[0] as unknown as { day: string }).day, '2026-03-01');
    const after = await readAll(options({ table: name, column: 'day', key: 'id', after: '2026-03-02' }));
    assert.deepEqual(ids(after.records), range(8, 12), '`after` skips every row of that value');
  });

  test('without a key, a batch takes every tie of its last value: nothing skipped, nothing twice', async () => {
    const t = await eventsTable(50);
    // batchSize 2 with three rows per value: every batch must grow to hold the whole group.
    const d = await readAll(options({ table: t, batchSize: 2 }));
    assert.deepEqual(
      ids(d.records).sort((a, b) => a - b),
      range(1, 50),
    );
    assert.ok(d.positions.length < 25, 'batches grew to whole groups of equal values');
  });

  test('a restart from a position resumes right after it, without duplicates or loss', async () => {
    const t = await eventsTable(40);
    // ts + id; ts alone (ties: whole groups); id alone (a primary key: the plain LIMIT poll).
    const configs = [
      { column: 'ts', key: 'id' },
      { column: 'ts', key: undefined },
      { column: 'id', key: undefined },
    ];
    for (const { column, key } of configs) {
      const full = await readAll(options({ table: t, column, key, batchSize: 5 }));
      if (column === 'id') assert.equal(full.positions.length, 8, 'batches of exactly batchSize');
      assert.deepEqual(
        ids(full.records).sort((a, b) => a - b),
        range(1, 40),
      );
      // Positions after each emit: resuming from the k-th yields exactly the rows after it.
      for (const k of [0, 2, full.positions.length - 1]) {
        const pos = full.positions[k] as Position;
        const before = full.records.slice(0, full.counts[k]);
        const rest = await readAll(options({ table: t, column, key, batchSize: 5 }), pos);
        assert.deepEqual(
          [...ids(before), ...ids(rest.records)].sort((a, b) => a - b),
          range(1, 40),
          `${column} + ${key}: resume after batch ${k}`,
        );
      }
    }
  });

  test('follow picks up rows inserted later', async () => {
    const t = await eventsTable(10);
    const source = postgresSource(options({ table: t, key: 'id', follow: true, pollInterval: 30 }));
    const d = drive();
    await source.open?.(d.ctx);
    const running = source.run(d.out, d.ctx);
    try {
      await until(() => d.records.length === 10, 'the first rows');
      await insertEvents(t, 11, 25);
      await until(() => d.records.length === 25, 'the rows inserted later');
      d.stop.abort();
      await running;
    } finally {
      d.stop.abort();
      await running.catch(() => {});
      await source.close?.();
    }
    assert.deepEqual(ids(d.records), range(1, 25));
  });

  test('a server restart mid-run (private cluster) is retried with warnings, and follow goes on after it', {
    skip: PG_BIN === undefined ? 'needs root and a Debian PostgreSQL to run a private cluster' : false,
  }, async () => {
    const bin = PG_BIN as string;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-private-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const asPostgres = (cmd: string): void => {
      const r = spawnSync('su', ['postgres', '-c', cmd], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
    };
    const start = () =>
      asPostgres(
        `${bin}/pg_ctl -D ${dir}/data -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off' -l ${dir}/log -w start`,
      );
    spawnSync('chown', ['postgres', dir]);
    asPostgres(`${bin}/initdb -D ${dir}/data -A trust -U sluice --no-sync -E UTF8`);
    start();
    const url = `postgres://sluice@127.0.0.1:${port}/postgres`;
    const own = new pg.Client({ connectionString: url });
    await own.connect();
    const warnings: string[] = [];
    const log: Logger = { info() {}, warn: (m) => warnings.push(m), error() {} };
    const source = postgresSource({
      ...options({ table: 'ev', column: 'id' }),
      url,
      follow: true,
      retryTimeout: 60_000,
    });
    const d = drive(log);
    let running: Promise<void> | undefined;
    try {
      await own.query('CREATE TABLE ev (id int PRIMARY KEY, note text)');
      await own.query(`INSERT INTO ev SELECT g, 'n' || g FROM generate_series(1, 20) g`);
      await own.end();
      await source.open?.(d.ctx);
      running = source.run(d.out, d.ctx);
      await until(() => d.records.length === 20, 'the first rows');
      asPostgres(`${bin}/pg_ctl -D ${dir}/data -m immediate stop`);
      await until(() => warnings.length > 0, 'a retry warning');
      start();
      const again = new pg.Client({ connectionString: url });
      await again.connect();
      await again.query(`INSERT INTO ev SELECT g, 'n' || g FROM generate_series(21, 40) g`);
      await again.end();
      await until(() => d.records.length === 40, 'the rows inserted after the restart');
      d.stop.abort();
      await running;
    } finally {
      d.stop.abort();
      await running?.catch(() => {});
      await source.close?.();
      spawnSync('su', ['postgres', '-c', `${bin}/pg_ctl -D ${dir}/data -m immediate stop`]);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(ids(d.records), range(1, 40), 'every row once across the restart');
    assert.match(
      warnings[0] as string,
      /^Waiting for PostgreSQL at `127\.0\.0\.1:\d+` \(database `postgres`\): reading table `ev` failed \(.*\); retrying in \d+ ms \(attempt 2, giving up after 60 s, `retryTimeout`\)/,
    );
  });

  test('identifiers and values cannot inject SQL', async () => {
    const canary = `it_canary_${randomUUID().slice(0, 8)}`;
    tables.push(canary);
    await db.query(`CREATE TABLE ${canary} (x int)`);
    const odd = `it_odd"; DROP TABLE ${canary}; --${randomUUID().slice(0, 4)}`;
    const quoted = pg.escapeIdentifier(odd);
    tables.push(quoted);
    await db.query(`CREATE TABLE ${quoted} ("we""ird col" int, "k; DROP TABLE ${canary}" int)`);
    await db.query(`INSERT INTO ${quoted} VALUES (1, 1), (2, 2), (3, 3)`);
    const d = await readAll(
      options({ table: quoted, column: 'we"ird col', key: `k; DROP TABLE ${canary}`, batchSize: 2 }),
    );
    assert.deepEqual(
      d.records.map((r) => (r as unknown as Record<string, number>)['we"ird col']),
      [1, 2, 3],
    );
    // A hostile value is a parameter: the server rejects it as an integer, nothing runs.
    await assert.rejects(
      readAll(options({ table: quoted, column: 'we"ird col', after: `0; DROP TABLE ${canary}; --` })),
      /invalid input syntax for type integer/,
    );
    // A table name that tries to break out is resolved as one (missing) name.
    await assert.rejects(
      readAll(options({ table: `it_none; DROP TABLE ${canary}`, column: 'x' })),
      /does not exist/,
    );
    const still = await db.query(`SELECT to_regclass($1) AS t`, [canary]);
    assert.equal(still.rows[0].t, canary, 'the canary table survived');
  });

  test('a missing table or column fails at start with a message that says what exists', async () => {
    const t = await eventsTable(3);
    await assert.rejects(readAll(options({ table: `${t}_nope` })), (err: Error) => {
      assert.match(err.message, new RegExp(`table \`${t}_nope\`.* does not exist`));
      assert.doesNotMatch(err.message, /sluice:sluice@/, 'no password in the message');
      return true;
    });
    await assert.rejects(readAll(options({ table: t, column: 'nope' })), (err: Error) => {
      assert.match(
        err.message,
        /has no column `nope` \(`column`\); its columns are `id`, `ts`, `amount`, `big`, `note`/,
      );
      return true;
    });
    await assert.rejects(readAll(options({ table: t, key: 'nope' })), /has no column `nope` \(`key`\)/);
    await assert.rejects(
      readAll(options({ table: t, column: 'note' })),
      /`column` must be an integer, numeric, timestamp/,
    );
    await assert.rejects(readAll(options({ table: t, column: 'id', lag: 1000 })), /`lag` needs a timestamp/);
    // A query source is checked the same way.
    await assert.rejects(
      readAll(options({ query: `SELECT id, note FROM ${t}`, column: 'ts' })),
      /the query on .* has no column `ts`/,
    );
  });

  test('a query source with a lag window reads only rows old enough', async () => {
    const t = await eventsTable(6);
    await db.query(`INSERT INTO ${t} (id, ts, note) VALUES (100, now() + interval '1 hour', 'future')`);
    const d = await readAll(
      options({ query: `SELECT id, ts, note FROM ${t} WHERE id % 2 = 0 OR id = 100`, key: 'id', lag: 5000 }),
    );
    assert.deepEqual(
      d.records.map((r) => Number(r.id)),
      [2, 4, 6],
    );
  });
});

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
