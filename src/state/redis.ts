/**
 * A {@link StateBackend} in Redis: checkpoints in a server many pipelines share (one namespace
 * each), for teams that run Redis rather than PostgreSQL.
 *
 * Layout, per namespace (both under one hash tag, so they sit in one cluster slot):
 *
 *   sluice:{<namespace>}:data   hash: key → value (binary)
 *   sluice:{<namespace>}:keys   sorted set of the keys, all with score 0: `ZRANGEBYLEX` lists a
 *                               prefix in byte order without `KEYS` or `SCAN`
 *
 * A write is one Lua script: it checks the types of both keys first, then applies every upsert
 * and delete. Redis runs a script alone and does not roll back, so checking before the first
 * change is what makes a failing write change nothing (a key of the wrong type is the one
 * failure a script can meet after it starts; out-of-memory is refused before it starts).
 *
 * Durability is the server's: Redis answers a write before it reaches the disk unless it runs
 * with `appendonly yes` and `appendfsync always`. With `appendfsync everysec` (the usual
 * setting) a server crash or power loss can lose the last second of checkpoints; without AOF a
 * server restart loses them all. A Sluice process killed at any point loses nothing either way.
 */

import type { Redis, RedisOptions } from 'ioredis';
import { ioredis } from '../clients/redis.ts';
import { redisConnectFailure, redisTlsOptions } from '../clients/redis-tls.ts';
import type { TlsConfig } from '../clients/tls.ts';
import { errorMessage, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';
import { redactUrl } from '../core/url.ts';
import type { StateBackend } from './backend.ts';
import { keyBytes, prefixEnd } from './keys.ts';
import { serialCalls } from './retry.ts';

/** Options of {@link redisBackend}. */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. */
  readonly url: string;
  /** TLS settings (also turns TLS on for a `redis://` URL); see `clients/redis-tls.ts`. */
  readonly tls?: TlsConfig | true | undefined;
  /** Keys of this store are kept apart from other namespaces (e.g. the pipeline name). */
  readonly namespace: string;
  /**
   * After each write, wait until this many replicas have it (`WAIT`); a write fails when fewer
   * acknowledge within `retryTimeoutMs`. Default 0.
   */
  readonly replicas?: number | undefined;
  /** How long (ms) an operation is retried across connection failures before it fails. Default 60 000. */
  readonly retryTimeoutMs?: number | undefined;
  /** Durability warnings (once, at open) and retries. */
  readonly log?: Pick<Logger, 'warn'> | undefined;
}

/** Entries per `ZRANGEBYLEX` page when listing keys. */
const PAGE = 10_000;

/**
 * KEYS[1] data hash, KEYS[2] key index; ARGV[1] number of upserts n, then n key/value pairs,
 * then the keys to delete. Checks both types before the first change (see the module comment).
 */
const WRITE_SCRIPT = `
local t1 = redis.call('TYPE', KEYS[1]).ok
local t2 = redis.call('TYPE', KEYS[2]).ok
if (t1 ~= 'hash' and t1 ~= 'none') or (t2 ~= 'zset' and t2 ~= 'none') then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. t1 .. ' and ' .. KEYS[2] .. ' a ' .. t2 .. ', expected a hash and a sorted set')
end
local n = tonumber(ARGV[1])
local last = 1 + 2 * n
for i = 2, last, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i])
end
for i = last + 1, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return n
`;

type ScriptedRedis = Redis & {
  /** ioredis flattens the array into the command's arguments (a spread would overflow the stack). */
  sluiceStateWrite(data: string, index: string, args: (string | Buffer)[]): Promise<number>;
};

/** Connection failures and server states worth another attempt. */
function isTransient(err: unknown): boolean {
  if (err instanceof SluiceError) return false;
  const name = (err as Error | null)?.name;
  if (name === 'MaxRetriesPerRequestError') return true;
  const msg = errorMessage(err);
  return /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)\b|Connection is closed|ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN/.test(
    msg,
  );
}

/** `host:port/db` of a URL, for messages (never the password). */
function serverOf(url: string): string {
  try {
    const u = new URL(redactUrl(url)); // never a misread password as the host
    return `${u.hostname || 'localhost'}:${u.port || '6379'}/${u.pathname.slice(1) || '0'}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** `field:value` lines of an `INFO` section. */
function infoField(info: string, field: string): string | undefined {
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return m?.[1]?.trim();
}

/**
 * A {@link StateBackend} in Redis (`ioredis`, loaded on first use). See the module comment for
 * the layout, atomicity and durability.
 *
 * - `write` is one script call (atomic: all or nothing), then `WAITAOF 1 0` when the server has
 *   AOF on and knows the command (7.2+), so the write is on disk when it resolves, and `WAIT`
 *   when `replicas` is set. On Redis before 7.2 with `appendfsync everysec`, a resolved write
 *   may still be lost by a crash of the Redis server (not of Sluice) within about a second.
 * - At open the backend checks persistence and warns once when a Redis restart or crash can
 *   lose acknowledged checkpoints (no AOF, or AOF without `appendfsync always` or `WAITAOF`).
 * - Calls run one at a time, in call order. A connection failure is retried with backoff (100 ms
 *   doubling to 5 s) for `retryTimeoutMs`; then, or at once for other errors, the call rejects
 *   with a `SLUICE_STAGE` error naming the server and namespace.
 * - Values come back as Buffers; keys must be well-formed Unicode strings. Values are sent as
 *   they are when the call's turn comes: do not change their bytes until `write` resolves.
 *
 * @example
 * const b = await redisBackend({ url: 'redis://127.0.0.1:6379', namespace: 'orders' });
 * await b.write(new Map([['k', Buffer.from('v')]]));
 * await b.close();
 */
export async function redisBackend(options: RedisBackendOptions): Promise<StateBackend> {
  const { url, namespace } = options;
  const server = serverOf(url);
  const where = `Redis \`${server}\`, namespace \`${namespace}\``;
  const timeoutMs = options.retryTimeoutMs ?? 60_000;
  const replicas = options.replicas ?? 0;
  const dataKey = `sluice:{${namespace}}:data`;
  const indexKey = `sluice:{${namespace}}:keys`;
  const RedisClient = ioredis().Redis;
  const tls = redisTlsOptions(url, options.tls);
  const clientOptions: RedisOptions = {
    ...(tls !== undefined ? { tls } : {}),
    lazyConnect: true,
    // A command waiting for a connection fails after a few reconnects; `retrying` then tries
    // again until its deadline, so the deadline, not ioredis, decides when to give up.
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 5000),
    connectionName: `sluice-state-${namespace}`,
  };
  const client = new RedisClient(url, clientOptions) as ScriptedRedis;
  // Errors reach the pending commands; the last one is kept to diagnose a refused connection.
  let lastError: unknown;
  client.on('error', (err) => {
    lastError = err;
  });
  client.defineCommand('sluiceStateWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT });
  const calls = serialCalls({
    where,
    timeoutMs,
    isTransient,
    log: options.log,
    hint: (err) => {
      const msg = errorMessage(err);
      if (/^(NOAUTH|WRONGPASS)/.test(msg)) return 'check the user and password in `checkpoint.store`';
      if (/^WRONGTYPE/.test(msg))
        return `another program uses these keys; pick another namespace or delete \`${dataKey}\` and \`${indexKey}\``;
      return undefined;
    },
    context: () => ({ server, namespace }),
  });
  const serial = <T>(doing: string, fn: () => Promise<T>): Promise<T> => calls.run(doing, fn);

  let waitAof = false;
  try {
    await serial('connecting to the state store', async () => {
      if (client.status === 'wait' || client.status === 'end') {
        try {
          await client.connect();
        } catch (err) {
          const fields = { url: 'checkpoint.store', tls: 'checkpoint.tls' };
          throw (await redisConnectFailure(lastError ?? err, url, options.tls, fields)) ?? err;
        }
      }
      const persistence = await client.info('persistence');
      const version = infoField(await client.info('server'), 'redis_version') ?? '0';
      const [major = 0, minor = 0] = version.split('.').map(Number);
      const aof = infoField(persistence, 'aof_enabled') === '1';
      let fsync: string | undefined;
      try {
        fsync = ((await client.config('GET', 'appendfsync')) as string[])[1];
      } catch {
        // CONFIG is often disabled on managed Redis; then only INFO is known.
      }
      waitAof = aof && (major > 7 || (major === 7 && minor >= 2));
      if (!aof)
        options.log?.warn(
          `Redis \`${server}\` runs without \`appendonly yes\`: checkpoints it acknowledged are lost if the Redis server restarts or crashes (a crash of Sluice loses nothing); set \`appendonly yes\` and \`appendfsync always\` for durable checkpoints`,
          { server, namespace },
        );
      else if (!waitAof && fsync !== 'always')
        options.log?.warn(
          `Redis \`${server}\` has \`appendfsync ${fsync ?? 'unknown'}\` and no \`WAITAOF\` (Redis ${version}): a crash of the Redis server can lose the last second of checkpoints; set \`appendfsync always\` or use Redis 7.2+`,
          { server, namespace },
        );
    });
  } catch (err) {
    await calls.close();
    client.disconnect();
    throw err;
  }

  const afterWrite = async () => {
    if (waitAof) {
      const [local] = (await client.call('WAITAOF', '1', '0', String(timeoutMs))) as number[];
      if (local !== 1) throw new Error(`WAITAOF: the write was not fsynced within ${timeoutMs} ms`);
    }
    if (replicas > 0) {
      const n = (await client.call('WAIT', String(replicas), String(timeoutMs))) as number;
      if (n < replicas)
        throw new Error(`WAIT: ${n} of ${replicas} replicas acknowledged the write within ${timeoutMs} ms`);
    }
  };

  return {
    kind: 'redis',
    write(entries) {
      const args: (string | Buffer)[] = [''];
      const dels: Buffer[] = [];
      try {
        for (const [k, v] of entries) {
          const kb = keyBytes(k, where);
          if (v === null) dels.push(kb);
          else args.push(kb, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        }
      } catch (err) {
        return Promise.reject(err);
      }
      if (args.length === 1 && dels.length === 0) return Promise.resolve();
      args[0] = String((args.length - 1) / 2);
      for (const d of dels) args.push(d);
      return serial('writing state', async () => {
        await client.sluiceStateWrite(dataKey, indexKey, args);
        await afterWrite();
      });
    },
    read(key) {
      let kb: Buffer;
      try {
        kb = keyBytes(key, where);
      } catch (err) {
        return Promise.reject(err);
      }
      return serial('reading state', async () => (await client.hgetBuffer(dataKey, kb)) ?? undefined);
    },
    keys(prefix) {
      let start: Buffer;
      try {
        start = keyBytes(prefix, where);
      } catch (err) {
        return Promise.reject(err);
      }
      const end = prefixEnd(start);
      const max = end === undefined ? '+' : Buffer.concat([Buffer.from('('), end]);
      return serial('listing state keys', async () => {
        const out: string[] = [];
        let min: string | Buffer = start.length === 0 ? '-' : Buffer.concat([Buffer.from('['), start]);
        for (;;) {
          const page = await client.zrangebylexBuffer(indexKey, min, max, 'LIMIT', 0, PAGE);
          for (const k of page) out.push(k.toString('utf8'));
          const last = page[page.length - 1];
          if (page.length < PAGE || last === undefined) return out;
          min = Buffer.concat([Buffer.from('('), last]);
        }
      });
    },
    async close() {
      if (await calls.close()) return;
      // QUIT waits for a connection; without one, just stop reconnecting.
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}
