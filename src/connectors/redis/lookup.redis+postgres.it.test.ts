/**
 * The `lookup` step against the real Redis (`npm run services -- up redis postgres`), through the
 * CLI: events enriched from a 1M-field Redis hash equal the same join computed in SQL against a
 * table built by the same rule (`generate_series`); one hash per key (`hgetall`) with misses
 * dropped; a Redis that goes away mid-run turns into retries, then dead letters with their keys.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { shown, sluice } from '../../../test/support/cli.ts';
import { runCli, tcpProxy } from '../../operators/lookup/store.test-helpers.ts';
import { EventGenerator } from '../generate/source.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const ID = randomUUID().slice(0, 8);
const HASH = `it:lookup:${ID}:users`;
const PREFIX = `it:lookup:${ID}:user:`;
const TABLE = `it_lookup_ref_${ID}`;
const ROWS = 1_000_000;

let redis: Redis;
let db: pg.Client;
let dir: string;

before(async () => {
  redis = new Redis(REDIS_URL);
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  dir = mkdtempSync(join(tmpdir(), 'sluice-lookup-redis-'));
  // The hash: field `u<i>` holds {"name":"name <i>","tier":<i mod 5>}, written 10,000 fields a command.
  for (let start = 0; start < ROWS; start += 10_000) {
    const args: string[] = [];
    for (let i = start; i < start + 10_000; i++)
      args.push(`u${i}`, JSON.stringify({ name: `name ${i}`, tier: i % 5 }));
    await redis.hset(HASH, ...args);
  }
  // One hash per user for the first 1,000 users (hgetall).
  const p = redis.pipeline();
  for (let i = 0; i < 1000; i++) p.hset(`${PREFIX}u${i}`, 'name', `name ${i}`, 'tier', String(i % 5));
  await p.exec();
  // The same table by the same rule, in SQL: the reference the join is checked against.
  await db.query(
    `CREATE TABLE ${TABLE} AS SELECT 'u' || g AS id, 'name ' || g AS name, g % 5 AS tier FROM generate_series(0, ${ROWS - 1}) g`,
  );
  await db.query(`ALTER TABLE ${TABLE} ADD PRIMARY KEY (id)`);
});

after(async () => {
  await redis.del(HASH);
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

function pipelineFile(name: string, body: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\n${body}`);
  return file;
}

function jsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The generated events joined in SQL with the reference table (`inner`: only events with a row). */
async function referenceJoin(
  count: number,
  seed: number,
  userCount: number,
  row: string,
  join: 'LEFT' | 'INNER',
): Promise<Map<number, unknown>> {
  const events = new EventGenerator({ seed, userCount }).take(count);
  const r = await db.query(
    `SELECT e.id, CASE WHEN u.id IS NULL THEN NULL ELSE ${row} END AS "user"
       FROM unnest($1::int[], $2::text[]) AS e(id, "user") ${join} JOIN ${TABLE} u ON u.id = e."user" ORDER BY e.id`,
    [events.map((e) => e.id), events.map((e) => e.user)],
  );
  return new Map(r.rows.map((x: { id: number; user: unknown }) => [x.id, x.user]));
}

describe('lookup from Redis', () => {
  test('50,000 events enriched from a 1M-field hash (HMGET) through the CLI equal the SQL join', async () => {
    const out = join(dir, 'hmget.jsonl');
    const file = pipelineFile(
      'lookup-redis',
      `input:\n  generate: { count: 50000, seed: 11, userCount: 1200000, fields: [id, user] }
pipeline:
  - lookup:
      key: user
      into: user
      batchSize: 1000
      redis: { url: "\${REDIS_URL}", command: hmget, hash: "${HASH}" }
output:\n  file: { path: ${out}, format: jsonl }\n`,
    );
    const r = sluice(['run', file], { cwd: dir, env: { REDIS_URL } });
    assert.equal(r.code, 0, shown(r));
    const got = jsonl(out);
    const want = await referenceJoin(
      50_000,
      11,
      1_200_000,
      `json_build_object('name', u.name, 'tier', u.tier)`,
      'LEFT',
    );
    assert.deepEqual(
      got.map((e) => e.id),
      [...want.keys()],
    );
    let nulls = 0;
    for (const e of got) {
      assert.deepEqual(e.user, want.get(e.id as number), `event ${e.id}`);
      if (e.user === null) nulls++;
    }
    assert.ok(nulls > 5000 && nulls < 12_000, `${nulls} events without a user`);
  });

  test('a hash per key (HGETALL, pipelined), merged into the record, misses dropped', async () => {
    const out = join(dir, 'hgetall.jsonl');
    const file = pipelineFile(
      'lookup-hgetall',
      `input:\n  generate: { count: 5000, seed: 2, userCount: 1500, fields: [id, user] }
pipeline:
  - lookup:
      key: user
      onMiss: drop
      ordered: false
      concurrency: 3
      batchSize: 100
      redis: { url: "\${REDIS_URL}", command: hgetall, keyPrefix: "${PREFIX}" }
output:\n  file: { path: ${out}, format: jsonl }\n`,
    );
    const r = sluice(['run', file], { cwd: dir, env: { REDIS_URL } });
    assert.equal(r.code, 0, shown(r));
    // Hash values are strings: tier as text; only the first 1,000 users have a hash.
    const want = await referenceJoin(
      5000,
      2,
      1500,
      `json_build_object('name', u.name, 'tier', u.tier::text)`,
      'INNER',
    );
    const got = jsonl(out).sort((a, b) => (a.id as number) - (b.id as number));
    const expected = [...want.entries()]
      .filter(([, u]) => Number((u as { name: string }).name.slice(5)) < 1000)
      .map(([id, u]) => ({ id, user: `u${(u as { name: string }).name.slice(5)}`, ...(u as object) }));
    assert.ok(expected.length > 2000 && expected.length < 5000, `${expected.length}`);
    assert.deepEqual(got, expected);
  });

  test('Redis gone mid-run: retries, then each record it could not look up goes to the dlq with its key', async () => {
    const port = Number(new URL(REDIS_URL).port || 6379);
    const proxy = await tcpProxy(port, 15);
    try {
      const out = join(dir, 'down.jsonl');
      const dead = join(dir, 'down-dlq.jsonl');
      const file = pipelineFile(
        'lookup-redis-down',
        `input:\n  generate: { count: 3000, seed: 4, userCount: 900000, batchSize: 100, fields: [id, user] }
pipeline:
  - lookup:
      key: user
      into: user
      batchSize: 25
      concurrency: 2
      cache: false
      retryTimeout: 300ms
      redis: { url: "redis://127.0.0.1:${proxy.port}", command: hmget, hash: "${HASH}", connectTimeout: 2s }
output:\n  file: { path: ${out}, format: jsonl }
dlq:\n  file: { path: ${dead}, format: jsonl }
maxErrorRate: 1\n`,
      );
      const r = await runCli(['run', file], dir, {});
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /retrying in/);
      const got = jsonl(out);
      const letters = jsonl(dead);
      assert.ok(got.length > 0 && letters.length > 0, `${got.length} written, ${letters.length} dead`);
      assert.equal(got.length + letters.length, 3000);
      for (const l of letters) {
        const error = l.error as { key?: unknown; message: string };
        assert.equal(error.key, (l.record as { user: string }).user);
        assert.match(error.message, /^looking up key `u\d+` in Redis at `redis:\/\/127\.0\.0\.1:\d+`: /);
      }
      const want = await referenceJoin(
        3000,
        4,
        900_000,
        `json_build_object('name', u.name, 'tier', u.tier)`,
        'LEFT',
      );
      for (const e of got) assert.deepEqual(e.user, want.get(e.id as number));
    } finally {
      proxy.close();
    }
  });

  test('lint reports a Redis store config that cannot work', () => {
    const file = pipelineFile(
      'lookup-redis-bad',
      `input:\n  generate: { count: 1 }
pipeline:
  - lookup:
      key: user
      redis: { url: "${REDIS_URL}", command: hmget, keyPrefix: "user:" }
      file: { path: x.csv, format: csv, keyField: id }
output:\n  stdout: {}\n`,
    );
    const r = sluice(['lint', file], { cwd: dir });
    assert.notEqual(r.code, 0, shown(r));
    assert.match(r.stderr + r.stdout, /`command: hmget` needs `hash`/);
    assert.match(r.stderr + r.stdout, /`keyPrefix` is for `get` and `hgetall`/);
    assert.match(r.stderr + r.stdout, /give only one store, not `file` and `redis`/);
  });
});
