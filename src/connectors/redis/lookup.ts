/**
 * The Redis store of the `lookup` step: `get` reads string values with one `MGET` per batch,
 * `hmget` reads fields of one hash with one `HMGET`, and `hgetall` reads one hash per key with a
 * pipeline of `HGETALL`s (one round trip). Its client does not queue commands while the server
 * is away (unlike the streams connector's): a request fails at once and the step retries it with
 * backoff, so a Redis outage becomes retries and then dead letters with their keys, never a hang.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ioredis } from '../../clients/redis.ts';
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { backoffDelay, retrying } from '../../core/retry.ts';
import { redactUrl } from '../../core/url.ts';
import type { LookupProvider, LookupRows } from '../../operators/lookup/provider.ts';
import { defineLookupStore } from '../../operators/lookup/provider.ts';
import { checkConnectionUrl, durationField } from '../../spec/fields.ts';
import { isReplyError } from './group.ts';

/** The Redis command a {@link redisLookup} reads with. */
export type RedisLookupCommand = 'get' | 'hgetall' | 'hmget';

/** Options of {@link redisLookup}. */
export interface RedisLookupOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  readonly url: string;
  /** `get` (string values), `hgetall` (a hash per key), `hmget` (fields of the hash `hash`). */
  readonly command: RedisLookupCommand;
  /** Put before each key to make the Redis key (`user:`), for `get` and `hgetall`. */
  readonly keyPrefix?: string | undefined;
  /** `hmget`: the hash whose fields are the keys. */
  readonly hash?: string | undefined;
  /** `get` and `hmget`: `json` parses each value as JSON, `raw` keeps the string. Default `json`. */
  readonly format?: 'json' | 'raw' | undefined;
  /** Longest one command may take, ms; a timed-out one is retried. Default 5 s. */
  readonly commandTimeoutMs?: number | undefined;
  /** How long `open` waits for the first connection, ms. Default 30 s. */
  readonly connectTimeoutMs?: number | undefined;
}

/**
 * True for Redis failures another attempt may cure: anything but the server's reply errors
 * (`WRONGTYPE`…) and Sluice's own errors (a value that is not JSON).
 */
export function isTransientRedisError(err: unknown): boolean {
  return !(err instanceof SluiceError) && !isReplyError(err);
}

/**
 * A provider reading rows from Redis; see the module comment.
 *
 * @example
 * const users = redisLookup({ url: 'redis://127.0.0.1:6379', command: 'hgetall', keyPrefix: 'user:' });
 */
export function redisLookup(options: RedisLookupOptions): LookupProvider {
  const where = redactUrl(options.url);
  const prefix = options.keyPrefix ?? '';
  const json = (options.format ?? 'json') === 'json';
  let client: Redis | undefined;

  const decode = (key: string, value: string): unknown => {
    if (!json) return value;
    try {
      return JSON.parse(value) as unknown;
    } catch (err) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `the value of Redis key \`${prefix}${key}\` is not JSON (${errorMessage(err)}); set \`format: raw\` to read it as text`,
        { key },
      );
    }
  };

  return {
    describe: `Redis at \`${where}\``,
    async open(ctx) {
      client = new (ioredis().Redis)(options.url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: options.commandTimeoutMs ?? 5000,
        connectTimeout: 5000,
        retryStrategy: (times) => backoffDelay(times, { maxDelayMs: 2000 }),
      });
      const c = client;
      let last = '';
      c.on('error', (err: Error) => {
        const text = errorMessage(err);
        if (text !== last) ctx.log.warn(`Redis at \`${where}\` for lookups: ${text}`, { stage: ctx.name });
        last = text;
      });
      c.on('ready', () => {
        last = '';
      });
      await retrying(
        async () => {
          if (c.status === 'ready') return;
          if (c.status === 'wait' || c.status === 'end') await c.connect();
          else
            await new Promise<void>((resolve, reject) => {
              c.once('ready', () => resolve());
              c.once('error', reject);
            });
        },
        {
          what: `connecting to Redis at \`${where}\` for lookups`,
          clock: ctx.clock,
          signal: ctx.signal,
          log: ctx.log,
          retryable: () => true,
          timeoutMs: options.connectTimeoutMs ?? 30_000,
          setting: 'connectTimeout',
        },
      );
    },
    async fetch(keys): Promise<LookupRows> {
      const c = client as Redis;
      const found = new Map<string, unknown>();
      if (options.command === 'hgetall') {
        const p = c.pipeline();
        for (const k of keys) p.hgetall(prefix + k);
        const replies = (await p.exec()) ?? [];
        keys.forEach((k, i) => {
          const [err, value] = replies[i] ?? [new Error('no reply')];
          if (err) throw err;
          const hash = value as Record<string, string>;
          if (Object.keys(hash).length > 0) found.set(k, hash);
        });
        return found;
      }
      const values =
        options.command === 'get'
          ? await c.mget(...keys.map((k) => prefix + k))
          : await c.hmget(options.hash as string, ...keys);
      keys.forEach((k, i) => {
        const v = values[i];
        if (v !== null && v !== undefined) found.set(k, decode(k, v));
      });
      return found;
    },
    retryable: isTransientRedisError,
    async close() {
      client?.disconnect();
      client = undefined;
    },
  };
}

/** The `redis` store of the `lookup` step, for pipeline files. */
export const redisLookupStore = defineLookupStore({
  name: 'redis',
  summary:
    'Rows from Redis: `get` (one `MGET` per batch), `hmget` (fields of one hash, one `HMGET` per batch) or `hgetall` (a hash per key, one pipeline per batch).',
  config: z
    .object({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'must be a URL such as `redis://127.0.0.1:6379` (or `rediss://` for TLS)')
        .superRefine(checkConnectionUrl)
        .describe(
          `Connection URL, \`redis://[user:password@]host:port[/db]\` (use \`\${ENV_VAR}\` for the password).`,
        ),
      command: z
        .enum(['get', 'hgetall', 'hmget'])
        .describe(
          '`get`: a string value per key. `hgetall`: a hash per key (the row is the hash). `hmget`: the keys are fields of the hash `hash`.',
        ),
      keyPrefix: z
        .string()
        .optional()
        .describe('`get` and `hgetall`: put before each key to make the Redis key (`user:`).'),
      hash: z.string().min(1).optional().describe('`hmget`: the hash whose fields the keys are.'),
      format: z
        .enum(['json', 'raw'])
        .default('json')
        .describe('`get` and `hmget`: `json` parses each value, `raw` keeps it as text (use `into` then).'),
      commandTimeout: durationField()
        .prefault('5s')
        .describe('Longest one command may take; a timed-out one is retried.'),
      connectTimeout: durationField()
        .prefault('30s')
        .describe('How long opening the step waits for the server.'),
    })
    .strict()
    .superRefine((c, ctx) => {
      if (c.command === 'hmget' && c.hash === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['hash'],
          message: '`command: hmget` needs `hash`, the hash whose fields the keys are',
        });
      if (c.command !== 'hmget' && c.hash !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['hash'],
          message: `\`hash\` is for \`command: hmget\`; \`${c.command}\` reads one Redis key per lookup key (use \`keyPrefix\`)`,
        });
      if (c.command === 'hmget' && c.keyPrefix !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['keyPrefix'],
          message: '`keyPrefix` is for `get` and `hgetall`; `hmget` reads fields of `hash`',
        });
    }),
  create: (c) =>
    redisLookup({
      url: c.url,
      command: c.command,
      keyPrefix: c.keyPrefix,
      hash: c.hash,
      format: c.format,
      commandTimeoutMs: c.commandTimeout,
      connectTimeoutMs: c.connectTimeout,
    }),
});
