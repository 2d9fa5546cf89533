/**
 * `npm run bench -- postgres`: loading a CSV file into PostgreSQL (`npm run services -- up
 * postgres`), Sluice against `psql`'s `\copy`, in the same run.
 *
 * - Input: a generated CSV of 5M rows (`--records`) with a header and five columns — `id`,
 *   `ts` (ISO-8601 UTC), `account`, `amount` (a decimal), `note` (free text, every tenth one
 *   quoted with a comma and a double quote in it) — about 400 MB, written once to the temporary
 *   directory and reused.
 * - `sluice`: the real CLI (`node bin/sluice.js run pipeline.yaml` with its shebang's flags, as the
 *   `sluice` command runs): `file` source (csv, values left as text) → `postgres` sink, `insert`
 *   (COPY), **exactly-once on** (two-phase commit per checkpoint, `checkpoint: { interval: 10s }`).
 * - `psql`: `psql URL -c "\copy TABLE FROM FILE CSV HEADER"` of the same file.
 *
 * Each contender loads into its own table of identical shape (`id bigint, ts timestamptz,
 * account text, amount numeric(14,2), note text`, no index), truncated before every run; runs
 * are interleaved (sluice, psql, sluice, psql…) over `--rounds` rounds (default 3). Wall time is
 * from spawn to exit; peak RSS is the contender process's (`/usr/bin/time -f %M`; for psql the
 * client only, for Sluice the whole engine). After each run the table's row count and
 * `sum(amount)` must equal the file's, or the benchmark fails.
 *
 * Run alone: `npx node bench/postgres.ts --records 5000000 --rounds 3`.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { numberFlag } from './child.ts';
import { launcher } from './launcher.ts';
import { median } from './run.ts';

const URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const PROJECT = fileURLToPath(new globalThis.URL('../', import.meta.url));
const CONTENDERS = ['sluice', 'psql'] as const;
type Contender = (typeof CONTENDERS)[number];

/** One CSV line (without newline) and its amount in cents. */
function row(i: number): { text: string; cents: number } {
  const cents = (i * 7919) % 10_000_000;
  const amount = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
  const ts = new Date(Date.UTC(2026, 0, 1) + i * 97).toISOString();
  const note =
    i % 10 === 0 ? `"refund, ref ""R${i}"""` : `card payment ${i % 977} at store ${(i * 31) % 4099}`;
  return { text: `${i},${ts},acct-${(i * 7) % 100_000},${amount},${note}`, cents };
}

/** The input file for `records` rows (written once, then reused) and the sum of its amounts in cents. */
async function inputFile(records: number): Promise<{ file: string; cents: bigint }> {
  const file = join(tmpdir(), `sluice-bench-postgres-v1-${records}.csv`);
  let cents = 0n;
  for (let i = 1; i <= records; i++) cents += BigInt(row(i).cents);
  if (existsSync(file)) return { file, cents };
  process.stderr.write(`postgres: writing ${records.toLocaleString('en-US')} rows to ${file}…\n`);
  const tmp = `${file}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  out.write('id,ts,account,amount,note\n');
  let chunk = '';
  for (let i = 1; i <= records; i++) {
    chunk += `${row(i).text}\n`;
    if (chunk.length > 1 << 20 || i === records) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk = '';
    }
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  renameSync(tmp, file);
  return { file, cents };
}

/** Runs `argv` under `/usr/bin/time`; returns wall seconds and peak RSS (KiB). Throws on failure. */
function timed(argv: readonly string[], cwd: string): { seconds: number; maxRssKiB: number } {
  const timeFile = join(cwd, `time-${randomUUID().slice(0, 8)}`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, ...argv], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`\`${argv.join(' ')}\` exited with ${r.status}:\n${r.stderr}`);
  const maxRssKiB = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
  rmSync(timeFile, { force: true });
  return { seconds, maxRssKiB };
}

function pipelineYaml(file: string, table: string, name: string): string {
  return `name: ${name}
input:
  file: { path: ${JSON.stringify(file)}, format: csv }
output:
  postgres:
    url: ${URL}
    table: ${table}
    exactlyOnce: true
checkpoint: { interval: 10s }
`;
}

async function main(records: number, rounds: number): Promise<void> {
  const db = new pg.Client({ connectionString: URL });
  try {
    await db.connect();
  } catch (err) {
    process.stderr.write(
      `postgres: cannot connect to ${URL} (${(err as Error).message}); start it with \`npm run services -- up postgres\`\n`,
    );
    process.exitCode = 1;
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'sluice-bench-pg-'));
  const suffix = randomUUID().slice(0, 8);
  const tables: Record<Contender, string> = {
    sluice: `bench_pg_sluice_${suffix}`,
    psql: `bench_pg_psql_${suffix}`,
  };
  try {
    const { file, cents } = await inputFile(records);
    for (const t of Object.values(tables)) {
      await db.query(
        `CREATE TABLE ${t} (id bigint, ts timestamptz, account text, amount numeric(14,2), note text)`,
      );
    }
    const name = `bench-pg-${suffix}`;
    writeFileSync(join(work, 'pipeline.yaml'), pipelineYaml(file, tables.sluice, name));
    const argv: Record<Contender, string[]> = {
      sluice: [
        process.execPath,
        ...launcher(PROJECT).nodeFlags,
        join(PROJECT, 'bin/sluice.js'),
        'run',
        'pipeline.yaml',
      ],
      psql: ['psql', URL, '-v', 'ON_ERROR_STOP=1', '-qc', `\\copy ${tables.psql} FROM '${file}' CSV HEADER`],
    };
    const results = new Map<Contender, { rate: number; rss: number; seconds: number }[]>(
      CONTENDERS.map((c) => [c, []]),
    );
    process.stderr.write(
      `postgres: CSV file → table, ${records.toLocaleString('en-US')} rows, ${rounds} rounds × ${CONTENDERS.length} contenders (sluice exactly-once)\n`,
    );
    for (let r = 0; r < rounds; r++) {
      for (const c of CONTENDERS) {
        await db.query(`TRUNCATE ${tables[c]}`);
        await db.query('CHECKPOINT').catch(() => {}); // needs superuser; evens out WAL flushing when allowed
        const run = timed(argv[c], work);
        const check = await db.query<{ n: string; cents: string }>(
          `SELECT count(*) AS n, coalesce(sum(amount * 100), 0)::bigint::text AS cents FROM ${tables[c]}`,
        );
        const n = Number(check.rows[0]?.n);
        if (n !== records || BigInt(check.rows[0]?.cents ?? '0') !== cents) {
          throw new Error(
            `${c} loaded ${n} rows summing to ${check.rows[0]?.cents} cents; expected ${records} rows, ${cents} cents`,
          );
        }
        const rate = records / run.seconds;
        (results.get(c) as { rate: number; rss: number; seconds: number }[]).push({
          rate,
          rss: run.maxRssKiB / 1024,
          seconds: run.seconds,
        });
        process.stderr.write(
          `  round ${r + 1} ${c}: ${Math.round(rate).toLocaleString('en-US')} rows/s, ${run.seconds.toFixed(1)} s, ${(run.maxRssKiB / 1024).toFixed(0)} MiB\n`,
        );
      }
    }
    const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
    process.stdout.write(
      `postgres — CSV file (${fmt(records)} rows) → PostgreSQL table; sluice exactly-once vs psql \\copy\n`,
    );
    process.stdout.write(
      `${'contender'.padEnd(10)}${'median rows/s'.padStart(15)}${'min rows/s'.padStart(13)}${'max rows/s'.padStart(13)}${'median s'.padStart(10)}${'peak RSS MiB'.padStart(14)}\n`,
    );
    const medians = new Map<Contender, number>();
    for (const c of CONTENDERS) {
      const rs = results.get(c) as { rate: number; rss: number; seconds: number }[];
      const rates = rs.map((x) => x.rate);
      medians.set(c, median(rates));
      process.stdout.write(
        `${c.padEnd(10)}${fmt(median(rates)).padStart(15)}${fmt(Math.min(...rates)).padStart(13)}${fmt(Math.max(...rates)).padStart(13)}${median(
          rs.map((x) => x.seconds),
        )
          .toFixed(2)
          .padStart(10)}${Math.max(...rs.map((x) => x.rss))
          .toFixed(0)
          .padStart(14)}\n`,
      );
    }
    process.stdout.write(
      `ratio postgres sluice/psql ${((medians.get('sluice') ?? 0) / (medians.get('psql') ?? 1)).toFixed(2)}\n`,
    );
  } finally {
    for (const t of Object.values(tables)) await db.query(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
    await db.end();
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  await main(numberFlag(argv, '--records') ?? 5_000_000, numberFlag(argv, '--rounds') ?? 3);
}
