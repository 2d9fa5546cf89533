/**
 * The `lookup` step against the real PostgreSQL (`npm run services -- up postgres`), through the
 * CLI: a generated events stream enriched from a 1M-row table equals the same join computed in
 * SQL; the run's metrics show cache hits and latency; a server that goes away mid-run turns
 * into retries and then dead letters carrying their keys; a bad query fails at lint or at start.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { shown, sluice } from '../../../test/support/cli.ts';
import { defaultRegistry } from '../../components.ts';
import { buildPipeline } from '../../config/build.ts';
import { loadPipelineFile } from '../../config/load.ts';
import { runCli, tcpProxy } from '../../operators/lookup/store.test-helpers.ts';
import { EventGenerator } from '../generate/source.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const TABLE = `it_lookup_users_${randomUUID().slice(0, 8)}`;
const ROWS = 1_000_000;

let db: pg.Client;
let dir: string;

before(async () => {
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  dir = mkdtempSync(join(tmpdir(), 'sluice-lookup-pg-'));
  // 1M rows in one statement; the primary key after the insert is faster than during it.
  await db.query(`CREATE TABLE ${TABLE} (id text NOT NULL, name text NOT NULL, tier int NOT NULL)`);
  await db.query(
    `INSERT INTO ${TABLE} SELECT 'u' || g, 'name ' || g, g % 5 FROM generate_series(0, ${ROWS - 1}) g`,
  );
  await db.query(`ALTER TABLE ${TABLE} ADD PRIMARY KEY (id)`);
});

after(async () => {
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

function pipelineFile(name: string, step: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\n${step}\n${extra}`);
  return file;
}

function jsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The reference: the same events joined in SQL (LEFT JOIN: a missing user gives null), by id. */
async function referenceJoin(count: number, seed: number, userCount: number): Promise<Map<number, unknown>> {
  const events = new EventGenerator({ seed, userCount }).take(count);
  const t = `it_lookup_events_${randomUUID().slice(0, 8)}`;
  await db.query(`CREATE TEMP TABLE ${t} AS SELECT * FROM unnest($1::int[], $2::text[]) AS e(id, "user")`, [
    events.map((e) => e.id),
    events.map((e) => e.user),
  ]);
  const r = await db.query(
    `SELECT e.id, CASE WHEN u.id IS NULL THEN NULL ELSE json_build_object('id', u.id, 'name', u.name, 'tier', u.tier) END AS "user"
       FROM ${t} e LEFT JOIN ${TABLE} u ON u.id = e."user" ORDER BY e.id`,
  );
  await db.query(`DROP TABLE ${t}`);
  return new Map(r.rows.map((row: { id: number; user: unknown }) => [row.id, row.user]));
}

const lookupStep = (options: string) => `pipeline:
  - lookup:
      key: user
      into: user
${options}
      postgres:
        url: \${PG_URL}
        query: SELECT id, name, tier FROM ${TABLE} WHERE id = ANY($1)
        keyColumn: id`;

describe('lookup from PostgreSQL', () => {
  test('enriching 50,000 generated events from a 1M-row table through the CLI equals the SQL join', async () => {
    const out = join(dir, 'enriched.jsonl');
    // 1.2M users: about one event in six names a user the table does not have (null).
    const file = pipelineFile(
      'lookup-pg',
      `input:\n  generate: { count: 50000, seed: 7, userCount: 1200000, fields: [id, user, amount] }\n${lookupStep('      batchSize: 1000\n      concurrency: 4')}`,
      `output:\n  file: { path: ${out}, format: jsonl }\n`,
    );
    const r = sluice(['run', file], { cwd: dir, env: { PG_URL } });
    assert.equal(r.code, 0, shown(r));
    const got = jsonl(out);
    const want = await referenceJoin(50_000, 7, 1_200_000);
    assert.equal(got.length, 50_000);
    assert.deepEqual(
      got.map((e) => e.id),
      [...want.keys()],
      'input order kept',
    );
    let nulls = 0;
    for (const e of got) {
      assert.deepEqual(e.user, want.get(e.id as number), `event ${e.id}`);
      if (e.user === null) nulls++;
    }
    assert.ok(nulls > 5000 && nulls < 12_000, `${nulls} events without a user`);
  });

  test('the run’s metrics hold the cache hits and misses and the lookup latency', async (t) => {
    const out = join(dir, 'metrics.jsonl');
    const file = pipelineFile(
      'lookup-metrics',
      `input:\n  generate: { count: 20000, seed: 3, userCount: 2000, fields: [id, user] }\n${lookupStep('      cache: { maxEntries: 1000 }')}`,
      `output:\n  file: { path: ${out}, format: jsonl }\n`,
    );
    const config = await loadPipelineFile(file, { registry: defaultRegistry, env: { PG_URL } });
    const { pipeline, runOptions } = await buildPipeline(config);
    const summary = await pipeline.run(runOptions).done;
    assert.equal(summary.state, 'succeeded');
    const m = summary.stages.find((s) => s.component === 'lookup')?.custom ?? {};
    const hits = m.cacheHits ?? 0;
    const misses = m.cacheMisses ?? 0;
    assert.equal(hits + misses, 20_000);
    // 2,000 users in a cache of 1,000: a hit ratio between 0 and 1, every miss a key asked for.
    assert.ok(hits > 5000 && misses > 2000, JSON.stringify(m));
    assert.equal(m.lookupKeys, misses);
    assert.ok((m.lookupRequests ?? 0) > 0 && (m.lookupLatencyMsTotal ?? -1) >= 0, JSON.stringify(m));
    assert.ok((m.lookupLatencyMsMax ?? 0) <= (m.lookupLatencyMsTotal ?? 0));
    assert.equal(m.cacheEntries, 1000);
    t.diagnostic(
      `hit ratio ${(hits / (hits + misses)).toFixed(3)} (${hits} hits, ${misses} misses); ${m.lookupRequests} requests, mean ${((m.lookupLatencyMsTotal ?? 0) / (m.lookupRequests ?? 1)).toFixed(1)} ms, max ${m.lookupLatencyMsMax} ms`,
    );
  });

  test('a server that goes away mid-run: retries, then every record it could not look up goes to the dlq with its key', async () => {
    const proxy = await tcpProxy(5432, 30);
    try {
      const url = PG_URL.replace(':5432/', `:${proxy.port}/`);
      const out = join(dir, 'down.jsonl');
      const dead = join(dir, 'down-dlq.jsonl');
      const file = pipelineFile(
        'lookup-down',
        `input:\n  generate: { count: 3000, seed: 5, userCount: 900000, batchSize: 100, fields: [id, user] }\n${lookupStep('      batchSize: 25\n      concurrency: 2\n      cache: false\n      retryTimeout: 300ms')}`,
        `output:\n  file: { path: ${out}, format: jsonl }\ndlq:\n  file: { path: ${dead}, format: jsonl }\nmaxErrorRate: 1\n`,
      );
      const r = await runCli(['run', file], dir, { PG_URL: url });
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /retrying in/);
      const got = jsonl(out);
      const letters = jsonl(dead);
      assert.ok(got.length > 0, 'records looked up before the server went away are written');
      assert.ok(letters.length > 0, 'records after it are dead-lettered');
      assert.equal(got.length + letters.length, 3000);
      for (const l of letters) {
        const error = l.error as { key?: unknown; message: string };
        const record = l.record as { user: string };
        assert.equal(error.key, record.user);
        assert.match(
          error.message,
          /^looking up key `u\d+` in PostgreSQL at `127\.0\.0\.1:\d+` \(database `[^`]+`\)/,
        );
      }
      const want = await referenceJoin(3000, 5, 900_000);
      for (const e of got) assert.deepEqual(e.user, want.get(e.id as number));
    } finally {
      proxy.close();
    }
  });

  test('a bad query is reported by lint with its line, and a wrong column fails the run at start', async () => {
    const bad = pipelineFile(
      'lookup-bad',
      `input:\n  generate: { count: 1 }\npipeline:\n  - lookup:\n      key: user\n      postgres:\n        url: ${PG_URL}\n        query: SELECT * FROM ${TABLE} WHERE id = $1 AND tier = $2\n`,
      'output:\n  stdout: {}\n',
    );
    const lint = sluice(['lint', bad], { cwd: dir });
    assert.notEqual(lint.code, 0, shown(lint));
    const text = lint.stdout + lint.stderr;
    assert.match(text, /lookup-bad\.yaml:9:\d+.*takes only `\$1` \(the keys\); remove `\$2`/);
    assert.match(text, /compare with `= ANY\(\$1\)`/);
    assert.match(text, /keyColumn/);

    const wrong = pipelineFile(
      'lookup-wrong',
      `input:\n  generate: { count: 1 }\npipeline:\n  - lookup:\n      key: user\n      postgres:\n        url: ${PG_URL}\n        query: SELECT id, nam FROM ${TABLE} WHERE id = ANY($1)\n        keyColumn: id\n`,
      'output:\n  stdout: {}\n',
    );
    const run = sluice(['run', wrong], { cwd: dir });
    assert.notEqual(run.code, 0, shown(run));
    assert.match(
      run.stderr,
      /the lookup `query` fails at PostgreSQL .*column "nam" does not exist.*fix `query`/,
    );

    const noKey = pipelineFile(
      'lookup-nokey',
      `input:\n  generate: { count: 1 }\npipeline:\n  - lookup:\n      key: user\n      postgres:\n        url: ${PG_URL}\n        query: SELECT name FROM ${TABLE} WHERE id = ANY($1)\n        keyColumn: id\n`,
      'output:\n  stdout: {}\n',
    );
    const run2 = sluice(['run', noKey], { cwd: dir });
    assert.notEqual(run2.code, 0, shown(run2));
    assert.match(run2.stderr, /returns no column `id` \(`keyColumn`\); it returns `name`/);
  });
});
