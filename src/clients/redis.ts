/**
 * The Redis client every Redis user of Sluice shares (the `redis` source and sink; the state
 * backend loads `ioredis` through {@link ioredis}): a connection that reconnects with backoff and
 * says so, with the URL's password kept out of messages.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { SluiceError } from '../core/errors.ts';
import { errorMessage } from '../core/errors.ts';
import { backoffDelay } from '../core/retry.ts';
import type { Logger } from '../core/stage.ts';
import { redactUrl } from '../core/url.ts';
import { type RedisFields, redisConnectFailure, redisTlsOptions } from './redis-tls.ts';
import type { TlsConfig } from './tls.ts';

// `ioredis` is loaded on the first connection, not with this module: it adds ~23 MB of RSS to
// every process that loads the component registry (measured: 41 → 64 MB for the import alone).
// It is CommonJS, so `require` loads it synchronously.
const require = createRequire(import.meta.url);
/** The `ioredis` module, loaded on first use. */
export const ioredis = () => require('ioredis') as typeof import('ioredis');

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
  /** TLS settings (`rediss://` alone means TLS with the system's CAs); see `redis-tls.ts`. */
  readonly tls?: TlsConfig | true | undefined;
  /** The settings messages name (default `url` and `tls`). */
  readonly fields?: RedisFields | undefined;
}

/** The diagnosis of each client's first failed attempt, for {@link startConnecting}. */
const firstFailure = new WeakMap<Redis, Promise<SluiceError | undefined>>();

/**
 * A client for `url` that connects lazily (`await client.connect()`), retries with the one
 * backoff schedule (`backoffDelay`: 100 ms doubling to `maxRetryDelay`) forever while it is not closed, logs one warning per
 * failed attempt, and keeps commands queued meanwhile (`maxRetriesPerRequest: null`), so a
 * Redis restart delays the run instead of failing it. Close it with `disconnect()`. Commands
 * still queued while it waits between two attempts are then never settled (ioredis flushes its
 * queue only on a socket close), so a wait on one must also listen to the run's abort signal.
 */
export function connectRedis(options: ConnectOptions): Redis {
  const max = options.maxRetryDelay ?? 5000;
  const where = redactUrl(options.url);
  let lastError = '';
  const tls = redisTlsOptions(options.url, options.tls);
  const client = new (ioredis().Redis)(options.url, {
    ...(tls !== undefined ? { tls } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectTimeout: 5000,
    // ioredis owns the reconnect (it keeps the commands queued meanwhile); the delays are the
    // one backoff schedule of `core/retry.ts`.
    retryStrategy: (times) => backoffDelay(times, { maxDelayMs: max }),
  });
  let everReady = false;
  client.once('ready', () => {
    everReady = true;
  });
  client.on('error', (err: Error) => {
    lastError = errorMessage(err);
    if (everReady || firstFailure.has(client)) return;
    // The first attempt failed: a refusal that waiting will not fix ends the reconnects.
    const diagnosis = redisConnectFailure(err, options.url, options.tls, options.fields).then((fatal) => {
      if (fatal !== undefined) client.disconnect();
      return fatal;
    });
    firstFailure.set(client, diagnosis);
  });
  client.on('reconnecting', async (delay: number) => {
    // Not when the first failure is a refusal that ends the reconnects (said once, by the caller).
    if ((await firstFailure.get(client)) !== undefined) return;
    options.log.warn(
      `Redis at \`${where}\` is not reachable (${lastError || 'connection closed'}) while ${options.purpose}; retrying in ${delay} ms`,
      { stage: options.stage },
    );
  });
  return client;
}

/**
 * Starts connecting `client` (from {@link connectRedis}) and resolves once the first attempt has
 * ended, connected or not. A failed attempt that waiting may fix (the server down or restarting)
 * is not thrown: the client's own warning already names it with its cause, and the client goes on
 * retrying with commands queued, so the caller's first command waits for the server instead of
 * failing. A refusal that waiting will not fix (an untrusted certificate, a wrong password, TLS
 * on one side only) rejects with a `SLUICE_CONFIG` error saying what to do, and the client is
 * disconnected.
 */
export async function startConnecting(client: Redis): Promise<void> {
  try {
    await client.connect();
  } catch {
    const fatal = await firstFailure.get(client);
    if (fatal !== undefined) throw fatal;
  }
}
