/**
 * Restart tests (conformance suite, `outage.ts`): the checkpoint store goes away mid-run. A
 * `sluice run` (the real CLI) reads a file through a throttle into the `file` sink (exactly-once
 * under checkpoints) with `checkpoint.store` on a PRIVATE PostgreSQL (`startPrivatePostgres`,
 * test/support) or a PRIVATE Redis (`privateRedis`, scripts/services/redis.ts) — never the shared
 * servers — which is crashed mid-run:
 *
 * - back within `checkpoint.storeTimeout`: the run says the store is away (one line naming it, no
 *   stack trace) and that it is back, goes on, ends by itself; the output holds every record once;
 * - away longer than `storeTimeout`: the run fails with one line naming the store and the setting;
 *   once the store is back, the next run resumes from the last stored checkpoint and the output
 *   holds every record exactly once.
 *
 * Needs the Debian `postgresql` and `redis-server` (`npm run services -- up postgres redis`, which
 * `npm test` runs for this file's name).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { privateRedis } from '../../scripts/services/redis.ts';
import { freePort } from '../support/net.ts';
import { startPrivatePostgres } from '../support/private-postgres.ts';
import {
  assertDelivered,
  fileOutput,
  jsonLines,
  padded,
  records,
  runToEnd,
  startRun,
  until,
} from './conformance.ts';
import { assertStatusLine, type Outage, runThroughOutage } from './outage.ts';

// 10 s of records at RATE: the outage (at a fifth, DOWN_MS long) ends with ~4 s of the run left,
// room for a restarted server on a loaded machine (with 6,000 and a quarter, a slow PostgreSQL
// start under load let the run write everything before the store was back).
const N = 10_000;
const RATE = 1000;
const DOWN_MS = 4000;

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A private store server: its URL for `checkpoint.store`, how it is crashed and brought back. */
interface Store extends Outage {
  readonly url: string;
  /** What the warnings call it: ``PostgreSQL `127.0.0.1:<port>/postgres` ``. */
  readonly named: RegExp;
}

async function postgresStore(): Promise<Store> {
  const pg = await startPrivatePostgres();
  cleanups.push(() => pg.destroy());
  return {
    what: 'the private PostgreSQL',
    url: pg.url,
    named: new RegExp(`PostgreSQL \`127\\.0\\.0\\.1:${pg.port}/postgres\``),
    down: () => pg.stop('immediate'),
    up: () => pg.start(),
  };
}

async function redisStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-redis-'));
  dirs.push(dir);
  const port = await freePort();
  const server = privateRedis({ dir, port });
  await server.start();
  cleanups.push(() => server.stop('SIGKILL'));
  return {
    what: 'the private Redis',
    url: server.url,
    named: new RegExp(`Redis \`127\\.0\\.0\\.1:${port}/0\``),
    down: () => server.stop('SIGKILL'),
    up: () => server.start(),
  };
}

/** A fresh folder: `in.jsonl` with N records, `pipeline.yaml` copying it to `out.jsonl` with checkpoints in `store`. */
function folder(store: Store, checkpoint: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-outage-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'in.jsonl'),
    records(N)
      .map((r) => `${JSON.stringify(padded(r))}\n`)
      .join(''),
  );
  const name = `store-outage-${randomUUID().slice(0, 8)}`;
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    stringify({
      name,
      input: { file: { path: 'in.jsonl', format: 'jsonl', batchSize: 50 } },
      pipeline: [{ throttle: { rate: RATE, burst: 50 } }],
      output: { file: { path: 'out.jsonl', format: 'jsonl' } },
      checkpoint: { interval: '1h', records: 200, store: store.url, ...checkpoint },
    }),
  );
  return dir;
}

for (const [kind, open] of [
  ['PostgreSQL', postgresStore],
  ['Redis', redisStore],
] as const) {
  describe(`checkpoint store ${kind} crashed mid-run`, { timeout: 180_000 }, () => {
    test('back within `storeTimeout`: the run says so, goes on and ends; every record once', async () => {
      const store = await open();
      const dir = folder(store);
      const out = join(dir, 'out.jsonl');
      const r = await runThroughOutage(dir, {
        progress: () => fileOutput(out).length,
        at: N / 5,
        outage: store,
        downMs: DOWN_MS,
      });
      const stderr = r.run.stderr();
      assert.equal(r.end.code, 0, `the run ends by itself once the store is back:\n${stderr}`);
      assert.ok(r.atUp < N, `the store was back before the end (${r.atUp} of ${N} written)`);
      const away = assertStatusLine(stderr, store.named, 'while the store was away');
      assert.match(
        away,
        /^WARN .* failed .*; retrying in .*\. Checkpoints wait meanwhile; the data flows on/,
        'it says it retries',
      );
      assertStatusLine(
        stderr,
        new RegExp(`^WARN ${store.named.source}, .* answers again after \\d.*; .* went through`),
        'once the store was back',
      );
      assertDelivered(jsonLines(out), records(N), 'exactly-once', 'the output');
    });

    test('away longer than `storeTimeout`: one clear failure; the next run resumes from the last checkpoint, every record once', async () => {
      const store = await open();
      const dir = folder(store, { storeTimeout: '3s' });
      const out = join(dir, 'out.jsonl');
      const first = startRun(dir);
      await until('a third of the output', () => fileOutput(out).length >= N / 3, { run: first });
      await store.down();
      const end = await first.exited;
      const stderr = first.stderr();
      assert.equal(end.code, 1, `the run fails once \`storeTimeout\` has passed:\n${stderr}`);
      const failure = assertStatusLine(stderr, /storeTimeout/, 'the failure');
      assert.match(failure, store.named, 'it names the store');
      assert.match(failure, /did not answer for 3 s \(`checkpoint\.storeTimeout`\)/, 'it names the setting');
      assert.match(failure, /the next run resumes from checkpoint \d+/, 'it says where the next run resumes');
      await store.up();
      await runToEnd(dir, 'the run after the outage');
      assertDelivered(jsonLines(out), records(N), 'exactly-once', 'the output after the restart');
    });
  });
}
