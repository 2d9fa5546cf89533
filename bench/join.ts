/**
 * `npm run bench -- join`: the `lookup` step enriching events from a 1M-row PostgreSQL table
 * (`npm run services -- up postgres`), against peers doing the same work by hand:
 * - `sluice`: events → `lookup` (PostgreSQL store, `batchSize` 500, `concurrency` 4, no cache so
 *   every batch goes to the server) → a counting sink, through the runtime;
 * - `plain`: the same batches with `pg` by hand: per input batch, the distinct keys in chunks of
 *   500, four `pool.query(… = ANY($1))` at a time with `Promise.all`, rows merged into the records;
 * - `one-at-a-time`: one `SELECT … WHERE id = $1` per record, awaited in turn (what a YAML
 *   `module:` step doing its own lookups amounts to), on `--slow-records` records.
 * Every query carries an injected latency of `--latency-ms` (default 10: `pg_sleep` once per
 * query, as a remote store would add); `sluice-0ms` and `plain-0ms` run without it, showing the
 * step's own cost. Input: `--records` generated events (default 100,000) over 1.2M users, so
 * about one in six has no row. Each run is a fresh child process, rounds interleaved, medians.
 *
 * Run alone: `npx node bench/join.ts --records 100000 --rounds 3`.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { EventGenerator, type GeneratedEvent } from '../src/connectors/generate/source.ts';
import { postgresLookup } from '../src/connectors/postgres/lookup.ts';
import type { Sink } from '../src/core/stage.ts';
import { lookup } from '../src/operators/lookup/operator.ts';
import { Pipeline } from '../src/pipeline.ts';
import { type ChildReport, numberFlag, reportRun, spawnJson, stringFlag } from './child.ts';
import { median } from './run.ts';

const URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const TABLE = 'sluice_bench_join_users';
const ROWS = 1_000_000;
const INPUT_BATCH = 2000;
const CHUNK = 500;
const CONCURRENCY = 4;
const CONTENDERS = ['sluice', 'plain', 'one-at-a-time', 'sluice-0ms', 'plain-0ms'] as const;
type Name = (typeof CONTENDERS)[number];

/** The lookup query; with latency, `pg_sleep` runs once per query (a materialised CTE). */
function query(latencyMs: number, one: boolean): string {
  const where = one ? 'u.id = $1' : 'u.id = ANY($1)';
  return latencyMs === 0
    ? `SELECT u.id, u.name, u.tier FROM ${TABLE} u WHERE ${where}`
    : `WITH s AS MATERIALIZED (SELECT pg_sleep(${latencyMs / 1000})) SELECT u.id, u.name, u.tier FROM ${TABLE} u, s WHERE ${where}`;
}

function inputBatches(records: number): GeneratedEvent[][] {
  const g = new EventGenerator({ seed: 42, userCount: 1_200_000 });
  const batches: GeneratedEvent[][] = [];
  for (let i = 0; i < records; i += INPUT_BATCH) batches.push(g.take(Math.min(INPUT_BATCH, records - i)));
  return batches;
}

/** Sum of `tier` over the enriched records that found a user: the same for every contender. */
let checksum = 0;

type Contender = (batches: GeneratedEvent[][], latencyMs: number) => Promise<number>;

const sluice: Contender = async (batches, latencyMs) => {
  let n = 0;
  const sink: Sink<Record<string, unknown>> = {
    write(batch) {
      for (const r of batch.records) {
        n++;
        const u = r.u as { tier: number } | null;
        if (u !== null) checksum += u.tier;
      }
    },
  };
  const summary = await new Pipeline('bench-join')
    .from<GeneratedEvent>({
      async run(out) {
        for (const b of batches) await out.emit({ kind: 'batch', records: b });
      },
    })
    .via(
      lookup({
        provider: postgresLookup({
          url: URL,
          query: query(latencyMs, false),
          keyColumn: 'id',
          connections: CONCURRENCY,
        }),
        key: 'user',
        into: 'u',
        batchSize: CHUNK,
        concurrency: CONCURRENCY,
        cache: false,
      }) as never,
    )
    .to(sink as Sink)
    .run().done;
  if (summary.state !== 'succeeded') throw new Error(`sluice run ${summary.state}`);
  return n;
};

const plain: Contender = async (batches, latencyMs) => {
  const pool = new pg.Pool({ connectionString: URL, max: CONCURRENCY });
  const sql = query(latencyMs, false);
  let n = 0;
  for (const batch of batches) {
    const keys = [...new Set(batch.map((e) => e.user))];
    const rows = new Map<string, { tier: number }>();
    for (let i = 0; i < keys.length; i += CHUNK * CONCURRENCY) {
      const wave: Promise<void>[] = [];
      for (let k = i; k < Math.min(keys.length, i + CHUNK * CONCURRENCY); k += CHUNK)
        wave.push(
          pool.query(sql, [keys.slice(k, k + CHUNK)]).then((r) => {
            for (const row of r.rows as { id: string; tier: number }[]) rows.set(row.id, row);
          }),
        );
      await Promise.all(wave);
    }
    const out = batch.map((e) => ({ ...e, u: rows.get(e.user) ?? null }));
    for (const r of out) {
      n++;
      if (r.u !== null) checksum += r.u.tier;
    }
  }
  await pool.end();
  return n;
};

const oneAtATime: Contender = async (batches, latencyMs) => {
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  const sql = query(latencyMs, true);
  let n = 0;
  for (const batch of batches)
    for (const e of batch) {
      const r = await c.query(sql, [e.user]);
      const u = (r.rows[0] as { tier: number } | undefined) ?? null;
      n++;
      if (u !== null) checksum += u.tier;
    }
  await c.end();
  return n;
};

const contenders: Record<Name, { run: Contender; latency: boolean; slow?: true }> = {
  sluice: { run: sluice, latency: true },
  plain: { run: plain, latency: true },
  'one-at-a-time': { run: oneAtATime, latency: true, slow: true },
  'sluice-0ms': { run: sluice, latency: false },
  'plain-0ms': { run: plain, latency: false },
};

async function child(name: Name, records: number, latencyMs: number): Promise<void> {
  const c = contenders[name];
  const batches = inputBatches(records);
  await reportRun(
    () => c.run(batches, c.latency ? latencyMs : 0),
    () => checksum,
  );
}

/** Makes the 1M-row table once (kept between bench runs: `DROP TABLE sluice_bench_join_users` to rebuild). */
async function ensureTable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
  } catch {
    process.stderr.write(
      `join: no PostgreSQL at ${URL}; start it with \`npm run services -- up postgres\`\n`,
    );
    return false;
  }
  const exists = await c.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = $1`, [TABLE]);
  if ((exists.rows[0] as { n: number }).n === 0) {
    process.stderr.write(`join: creating \`${TABLE}\` (${ROWS.toLocaleString('en-US')} rows)…\n`);
    await c.query(`CREATE TABLE ${TABLE} (id text NOT NULL, name text NOT NULL, tier int NOT NULL)`);
    await c.query(
      `INSERT INTO ${TABLE} SELECT 'u' || g, 'name ' || g, g % 5 FROM generate_series(0, ${ROWS - 1}) g`,
    );
    await c.query(`ALTER TABLE ${TABLE} ADD PRIMARY KEY (id)`);
    await c.query(`ANALYZE ${TABLE}`);
  }
  await c.end();
  return true;
}

async function main(records: number, slowRecords: number, latencyMs: number, rounds: number): Promise<void> {
  if (!(await ensureTable())) {
    process.exitCode = 1;
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const results = new Map<Name, { rate: number; rss: number; count: number; checksum: number }[]>(
    CONTENDERS.map((c) => [c, []]),
  );
  process.stderr.write(
    `join: ${records.toLocaleString('en-US')} events (one-at-a-time: ${slowRecords}) against ${ROWS.toLocaleString('en-US')} rows, ${latencyMs} ms per query, ${rounds} rounds\n`,
  );
  for (let round = 0; round < rounds; round++) {
    for (const name of CONTENDERS) {
      const n = contenders[name].slow ? slowRecords : records;
      const rep = spawnJson([
        self,
        '--child',
        name,
        '--records',
        String(n),
        '--latency-ms',
        String(latencyMs),
      ]) as unknown as ChildReport;
      const rate = rep.count / rep.seconds;
      results.get(name)?.push({ rate, rss: rep.maxRssKb / 1024, count: rep.count, checksum: rep.checksum });
      process.stderr.write(
        `  run ${round + 1} ${name}: ${Math.round(rate).toLocaleString('en-US')} rec/s, ${(rep.maxRssKb / 1024).toFixed(0)} MiB\n`,
      );
    }
  }
  const rows = CONTENDERS.map((name) => {
    const rs = results.get(name) ?? [];
    return {
      name,
      rate: median(rs.map((x) => x.rate)),
      rss: median(rs.map((x) => x.rss)),
      count: rs.at(-1)?.count ?? 0,
      checksum: rs.at(-1)?.checksum ?? 0,
    };
  });
  // The same records enriched the same way: equal checksums, or the comparison means nothing.
  const check = (a: Name, b: Name) => {
    const x = rows.find((r) => r.name === a);
    const y = rows.find((r) => r.name === b);
    if (x?.checksum !== y?.checksum)
      throw new Error(`checksums differ: ${a} ${x?.checksum}, ${b} ${y?.checksum}`);
  };
  check('sluice', 'plain');
  check('sluice-0ms', 'plain-0ms');
  process.stdout.write(
    `${'contender'.padEnd(16)}${'median rec/s'.padStart(14)}${'peak RSS MiB'.padStart(14)}${'records'.padStart(10)}\n`,
  );
  for (const row of rows)
    process.stdout.write(
      `${row.name.padEnd(16)}${Math.round(row.rate).toLocaleString('en-US').padStart(14)}${row.rss.toFixed(0).padStart(14)}${String(row.count).padStart(10)}\n`,
    );
  const rate = (n: Name) => rows.find((x) => x.name === n)?.rate ?? Number.NaN;
  process.stdout.write(`ratio join sluice/plain ${(rate('sluice') / rate('plain')).toFixed(2)}\n`);
  process.stdout.write(
    `ratio join sluice/one-at-a-time ${(rate('sluice') / rate('one-at-a-time')).toFixed(2)}\n`,
  );
  process.stdout.write(
    `ratio join sluice-0ms/plain-0ms ${(rate('sluice-0ms') / rate('plain-0ms')).toFixed(2)}\n`,
  );
}

const argv = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  const records = numberFlag(argv, '--records') ?? 100_000;
  const latencyMs = numberFlag(argv, '--latency-ms') ?? 10;
  const name = stringFlag(argv, '--child');
  if (name !== undefined) {
    await child(name as Name, records, latencyMs);
    process.exit(0);
  } else {
    await main(
      records,
      numberFlag(argv, '--slow-records') ?? 300,
      latencyMs,
      numberFlag(argv, '--rounds') ?? 3,
    );
  }
}
