/**
 * What the Redis source and sink share: a connection that reconnects with backoff and says so,
 * the URL without its password for messages, and the entry codec (fields ↔ record).
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { errorMessage } from '../../core/errors.ts';
import type { Logger } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { stringifyJson } from '../../formats/jsonl.ts';

// `ioredis` is loaded on the first connection, not with this module: it adds ~23 MB of RSS to
// every process that loads the component registry (measured: 41 → 64 MB for the import alone).
// It is CommonJS, so `require` loads it synchronously.
const require = createRequire(import.meta.url);
const ioredis = () => require('ioredis') as typeof import('ioredis');

/** How an entry field's value becomes a record value and back. */
export type RedisFormat = 'json' | 'raw';

/** Options of {@link connectRedis}. */
export interface ConnectOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string;
  /** Where reconnect warnings go. */
  readonly log: Logger;
  /** The stage, for log fields. */
  readonly stage: string;
  /** What the connection is for, in messages (`reading stream \`events\``). */
  readonly purpose: string;
  /** Longest wait between two connection attempts, ms. */
  readonly maxRetryDelay?: number | undefined;
}

/**
 * A client for `url` that connects lazily (`await client.connect()`), retries with backoff
 * (100 ms doubling to `maxRetryDelay`) forever while it is not closed, logs one warning per
 * failed attempt, and keeps commands queued meanwhile (`maxRetriesPerRequest: null`), so a
 * Redis restart delays the run instead of failing it. Close it with `disconnect()`. Commands
 * still queued while it waits between two attempts are then never settled (ioredis flushes its
 * queue only on a socket close), so a wait on one must also listen to the run's abort signal.
 */
export function connectRedis(options: ConnectOptions): Redis {
  const max = options.maxRetryDelay ?? 5000;
  const where = redactUrl(options.url);
  let lastError = '';
  const client = new (ioredis().Redis)(options.url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times - 1, 16), max),
  });
  client.on('error', (err: Error) => {
    lastError = errorMessage(err);
  });
  client.on('reconnecting', (delay: number) => {
    options.log.warn(
      `Redis at \`${where}\` is not reachable (${lastError || 'connection closed'}) while ${options.purpose}; retrying in ${delay} ms`,
      { stage: options.stage },
    );
  });
  return client;
}

/**
 * Starts connecting `client` (from {@link connectRedis}) and resolves once the first attempt has
 * ended, connected or not. A failed attempt is not thrown: the client's own warning already names
 * it with its cause, and the client goes on retrying with commands queued, so the caller's first
 * command waits for the server instead of failing.
 */
export function startConnecting(client: Redis): Promise<void> {
  return client.connect().catch(() => {});
}

/**
 * The record of one entry: the value of `field` decoded (`json`: parsed, `raw`: the string), or
 * without `field` the whole entry as an object (`raw`: string values, `json`: each value
 * parsed). Throws on invalid JSON and on a missing `field`.
 */
export function decodeEntry(
  fields: readonly string[],
  field: string | undefined,
  format: RedisFormat,
): unknown {
  if (field !== undefined) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === field) {
        const v = fields[i + 1] as string;
        return format === 'json' ? JSON.parse(v) : v;
      }
    }
    throw new Error(`the entry has no field \`${field}\``);
  }
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const v = fields[i + 1] as string;
    out[fields[i] as string] = format === 'json' ? JSON.parse(v) : v;
  }
  return out;
}

/** A value as entry-field text: `json` as JSON (bigints as digits), `raw` as a string. */
function fieldText(value: unknown, format: RedisFormat): string {
  if (format === 'raw') {
    if (typeof value === 'string') return value;
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (value !== null && typeof value === 'object') return jsonText(value);
    return String(value);
  }
  return jsonText(value);
}

function jsonText(value: unknown): string {
  const text = stringifyJson(value);
  if (text === undefined) throw new Error(`a ${typeof value} cannot be written as JSON`);
  return text;
}

/**
 * The inverse of {@link decodeEntry}: the XADD field/value list of `record`. With `field`, one
 * field holding the whole record; without, one field per top-level property (the record must
 * then be a non-empty object).
 */
export function encodeEntry(record: unknown, field: string | undefined, format: RedisFormat): string[] {
  if (field !== undefined) return [field, fieldText(record, format)];
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new Error('without `field` a record must be an object (one entry field per property)');
  }
  const out: string[] = [];
  for (const [k, v] of Object.entries(record as Record<string, unknown>)) {
    if (v === undefined) continue;
    out.push(k, fieldText(v, format));
  }
  if (out.length === 0) throw new Error('an entry needs at least one field; the record has none');
  return out;
}
