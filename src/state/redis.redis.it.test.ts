/**
 * The {@link StateBackend} contract (test/state/contract.ts) against the real Redis
 * (`npm run services -- up redis`, which `npm test` runs for this file's name), plus what is
 * Redis's own: the hash + sorted-set layout under one hash tag, a write meeting keys of the wrong
 * type changes nothing, the durability warning at open, and an unreachable server fails with a
 * message naming it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { failureBatch, stateBackendContract } from '../../test/state/contract.ts';
import { freePort } from '../../test/support/net.ts';
import type { StateBackend } from './backend.ts';
import { redisBackend } from './redis.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const quiet = { warn() {} };

let redis: Redis;
before(() => {
  redis = new Redis(REDIS_URL);
});
after(async () => {
  await redis.quit();
});

const keysOf = (ns: string) => [`sluice:{${ns}}:data`, `sluice:{${ns}}:keys`];

stateBackendContract({
  name: 'redis',
  persistent: true,
  open: (namespace) => redisBackend({ url: REDIS_URL, namespace, log: quiet }),
  // The key index is made a plain string: the script refuses before its first change.
  failingWrite: async (namespace) => {
    const [, index] = keysOf(namespace) as [string, string];
    const saved = await redis.zrangebylexBuffer(index, '-', '+');
    await redis.del(index);
    await redis.set(index, 'not a sorted set');
    return {
      backend: await redisBackend({ url: REDIS_URL, namespace, log: quiet }),
      batch: failureBatch(),
      error: /writing state in Redis .*WRONGTYPE.*pick another namespace/,
      heal: async () => {
        await redis.del(index);
        for (const k of saved) await redis.zadd(index, 0, k);
      },
    };
  },
  cleanup: async (namespace) => {
    await redis.del(...keysOf(namespace));
  },
});

describe('redisBackend', () => {
  it('keeps values in one hash and the keys in a sorted set, per namespace', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const [data, index] = keysOf(ns) as [string, string];
    const b = await redisBackend({ url: REDIS_URL, namespace: ns, log: quiet });
    try {
      await b.write(
        new Map([
          ['b', Buffer.from([0, 1])],
          ['a', Buffer.from([2])],
        ]),
      );
      assert.deepEqual((await redis.hgetallBuffer(data)).b, Buffer.from([0, 1]));
      assert.deepEqual(await redis.zrangebylex(index, '-', '+'), ['a', 'b']);
      await b.write(new Map([['b', null]]));
      assert.deepEqual(await redis.zrangebylex(index, '-', '+'), ['a']);
      assert.equal(await redis.hexists(data, 'b'), 0);
    } finally {
      await b.close();
      await redis.del(data, index);
    }
  });

  it('lists more keys than one page, in order', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await redisBackend({ url: REDIS_URL, namespace: ns, log: quiet });
    try {
      const keys = Array.from({ length: 25_001 }, (_, i) => `k/${String(i).padStart(6, '0')}`);
      await b.write(new Map(keys.map((k) => [k, Buffer.from('v')])));
      const got = await b.keys('k/');
      assert.equal(got.length, keys.length);
      assert.deepEqual(got, keys);
    } finally {
      await b.close();
      await redis.del(...keysOf(ns));
    }
  });

  it('warns once at open when Redis can lose acknowledged writes (no AOF)', async () => {
    const warnings: string[] = [];
    const b = await redisBackend({
      url: REDIS_URL,
      namespace: `ns-${randomUUID().slice(0, 8)}`,
      log: { warn: (m) => warnings.push(m) },
    });
    await b.close();
    const aof = (await redis.info('persistence')).includes('aof_enabled:1');
    if (aof) assert.ok(warnings.length <= 1);
    else {
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0] as string,
        /without `appendonly yes`.*set `appendonly yes` and `appendfsync always`/,
      );
    }
  });

  it('with `replicas`, fails a write that fewer replicas acknowledged (WAIT)', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await redisBackend({
      url: REDIS_URL,
      namespace: ns,
      replicas: 1,
      retryTimeoutMs: 200,
      log: quiet,
    });
    try {
      // The test server has no replica, so WAIT 1 cannot be satisfied.
      assert.match(await redis.info('replication'), /connected_slaves:0/);
      await assert.rejects(
        b.write(new Map([['a', Buffer.from('1')]])),
        /writing state in Redis .*WAIT: 0 of 1 replicas acknowledged the write within 200 ms/,
      );
    } finally {
      await b.close();
      await redis.del(...keysOf(ns));
    }
  });

  it('names the server when it cannot be reached', async () => {
    await assert.rejects(
      redisBackend({ url: 'redis://127.0.0.1:1/3', namespace: 'x', retryTimeoutMs: 300, log: quiet }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLUICE_STAGE');
        assert.match(err.message, /Redis `127\.0\.0\.1:1\/3`, namespace `x`/);
        assert.match(err.message, /check that it runs/);
        return true;
      },
    );
  });

  it('survives its connection being killed between calls', async () => {
    const ns = `ns-${randomUUID().slice(0, 8)}`;
    const b = await redisBackend({ url: REDIS_URL, namespace: ns, log: quiet });
    try {
      await b.write(new Map([['a', Buffer.from('1')]]));
      // Only this backend's own connection (found by its name): the server is shared.
      const list = (await redis.client('LIST')) as string;
      const line = list.split('\n').find((l) => l.includes(` name=sluice-state-${ns} `));
      const id = / ?id=(\d+) /.exec(` ${line ?? ''}`)?.[1];
      assert.ok(id !== undefined, `no connection named sluice-state-${ns}`);
      assert.equal(await redis.client('KILL', 'ID', id), 1);
      await b.write(new Map([['b', Buffer.from('2')]]));
      assert.deepEqual(await b.keys(''), ['a', 'b']);
    } finally {
      await b.close();
      await redis.del(...keysOf(ns));
    }
  });
});

/** A private `redis-server` (the shared one must never be restarted) with AOF fsynced on every write. */
function privateRedis(dir: string, port: number): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes'],
    { stdio: 'ignore' },
  );
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not start`);
}

describe('redisBackend with a private Redis (AOF, appendfsync always)', () => {
  it('does not warn, keeps acknowledged writes across a SIGKILL of Redis, and retries until it is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-aof-'));
    const port = await freePort();
    let server = privateRedis(dir, port);
    const warnings: string[] = [];
    let b: StateBackend | undefined;
    try {
      await waitForPort(port);
      const url = `redis://127.0.0.1:${port}`;
      const admin = new Redis(url);
      await admin.config('SET', 'appendfsync', 'always');
      await admin.quit();
      b = await redisBackend({ url, namespace: 'aof', log: { warn: (m) => warnings.push(m) } });
      assert.deepEqual(warnings, []);
      await b.write(new Map([['cp/1/meta', Buffer.from([0, 1, 2])]]));
      // Killed right after the write resolved: with `appendfsync always` it is on disk.
      server.kill('SIGKILL');
      await new Promise((resolve) => server.once('exit', resolve));
      const pending = b.read('cp/1/meta');
      // Long enough for ioredis to give the command up, so that our retry loop takes over.
      await sleep(1500);
      server = privateRedis(dir, port);
      assert.deepEqual([...((await pending) ?? [])], [0, 1, 2]);
      assert.ok(
        warnings.some((w) =>
          /Reading state in Redis .* failed .*; retrying in .*giving up after 60 s/.test(w),
        ),
        warnings.join('\n'),
      );
    } finally {
      await b?.close();
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
