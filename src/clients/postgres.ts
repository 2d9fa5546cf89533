/**
 * The `pg` client library (and `pg-copy-streams`), loaded on first use rather than with the connector modules: the
 * component registry lists the PostgreSQL source and sink, and a process that never talks to
 * PostgreSQL should not pay for the client (~11 MB of RSS for the import alone, measured: 41 →
 * 52 MB). `pg` is CommonJS, so `require` loads it synchronously where a connector needs it.
 * Also what the PostgreSQL source, sink and state backend share about its errors and URLs.
 */
import { createRequire } from 'node:module';
import type Pg from 'pg';
import type * as PgCopy from 'pg-copy-streams';
import type { Clock } from '../core/clock.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { humanMs, retrying } from '../core/retry.ts';
import type { Logger } from '../core/stage.ts';
import { redactUrl } from '../core/url.ts';

const require = createRequire(import.meta.url);
let lib: typeof Pg | undefined;
let copyLib: typeof PgCopy | undefined;

/** The `pg` module; the first call loads it. */
export function pgLib(): typeof Pg {
  lib ??= require('pg') as typeof Pg;
  return lib;
}

/** The `pg-copy-streams` module (COPY … FROM STDIN); the first call loads it. */
export function pgCopyLib(): typeof PgCopy {
  copyLib ??= require('pg-copy-streams') as typeof PgCopy;
  return copyLib;
}

/**
 * An error of the `pg` client: `code` is the server's SQLSTATE or node's own code
 * (`ECONNREFUSED`); the other fields are the server's error report, when it sent one.
 */
export interface PgError extends Error {
  code?: string;
  where?: string;
  detail?: string;
  hint?: string;
  constraint?: string;
  column?: string;
}

/**
 * Failures worth another attempt on a new connection: network errors, the server shutting down
 * or starting, serialization failures and deadlocks, lack of resources. The one test the
 * PostgreSQL source, sink and state backend retry on; Sluice's own errors never are.
 */
export function isTransientPgError(err: unknown): boolean {
  if (err instanceof SluiceError) return false;
  const code = (err as PgError | null)?.code;
  if (typeof code === 'string') {
    // 08 connection exception, 53 insufficient resources, 57P admin shutdown / cannot connect now,
    // 40001 serialization failure, 40P01 deadlock; node's own ECONNREFUSED, ECONNRESET, EPIPE…
    if (/^(08|53|57P)/.test(code) || code === '40001' || code === '40P01') return true;
    if (/^E[A-Z]+$/.test(code)) return true;
  }
  return /Connection terminated|connection.*(closed|ended|lost)|not queryable|timeout|ECONN|EPIPE/i.test(
    errorMessage(err),
  );
}

/** `host:port` and database of a connection URL, for messages (never the password). */
export function serverOf(url: string): { address: string; database: string } {
  try {
    // Parsed without its user-info: a password that would be misread must not become the host.
    const u = new URL(redactUrl(url));
    const host = u.hostname === '' ? 'localhost' : u.hostname;
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username);
    return { address: `${host}:${u.port === '' ? '5432' : u.port}`, database };
  } catch {
    return { address: '(unparsable URL)', database: '' };
  }
}

/** Options of {@link retryingPg}. */
export interface PgRetryOptions {
  /** The server's connection URL (only its address and database are named). */
  readonly url: string;
  /** What is being done, as a gerund phrase naming the object: ``writing to `transactions` ``. */
  readonly doing: string;
  /** Names the whole operation in the final error: ``writing to table `t` at postgres://…``. */
  readonly where: string;
  /** How long (ms) failures are retried, from the first one. */
  readonly timeoutMs: number;
  /** The setting `timeoutMs` comes from (`retryTimeout`, `connectTimeout`), named in messages. */
  readonly setting: string;
  /** The run's clock and signal: retries wait on the clock; an abort ends them (`SLUICE_CANCELLED`). */
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly log: Pick<Logger, 'warn'>;
  /** Fields added to each warning. */
  readonly logFields?: Readonly<Record<string, unknown>> | undefined;
  /** What waits on the retry, appended to each warning (asked at each one). */
  readonly hint?: (() => string | undefined) | undefined;
  /** Called after each transient failure, before the wait: drop the broken connection here. */
  readonly onFailure?: ((err: unknown) => void | Promise<void>) | undefined;
  /** Structured context of the final error. */
  readonly context?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Runs `fn` through the one retry policy ({@link retrying}) with PostgreSQL's answer to "can a
 * retry help?" ({@link isTransientPgError}) and its wording, shared by the `postgres` source and
 * sink: each retry warns ``Waiting for PostgreSQL at `host:port` (database `db`): <doing> failed
 * (…); retrying in 400 ms (attempt 3, giving up after 2 min, `retryTimeout`)``, the first success
 * after failures warns ``Reconnected to PostgreSQL at …``, and when `timeoutMs` has passed it
 * rejects with a `SLUICE_STAGE` error naming the server, the setting and what to do. A failure
 * that is not transient is thrown as it is, at once.
 *
 * @example
 * const rows = await retryingPg((n) => query(sql), {
 *   url, doing: 'reading table `orders`', where, timeoutMs: 120_000, setting: 'retryTimeout',
 *   clock: ctx.clock, signal: ctx.signal, log: ctx.log, onFailure: dropConnection,
 * });
 */
export async function retryingPg<T>(
  fn: (attempt: number) => Promise<T>,
  options: PgRetryOptions,
): Promise<T> {
  const server = serverOf(options.url);
  const pgAt = `PostgreSQL at \`${server.address}\` (database \`${server.database}\`)`;
  const started = options.clock.now();
  return retrying(
    async (attempt) => {
      const result = await fn(attempt);
      if (attempt > 1) {
        // A warning too, so that the end of the incident shows wherever its start did.
        options.log.warn(
          `Reconnected to ${pgAt}: ${options.doing} succeeded at attempt ${attempt} after ${humanMs(options.clock.now() - started)}`,
          options.logFields,
        );
      }
      return result;
    },
    {
      what: `waiting for ${pgAt}: ${options.doing}`,
      clock: options.clock,
      signal: options.signal,
      log: options.log,
      logFields: { ...options.logFields, server: server.address },
      retryable: isTransientPgError,
      timeoutMs: options.timeoutMs,
      setting: options.setting,
      hint: options.hint,
      onFailure: async (err) => {
        try {
          await options.onFailure?.(err);
        } catch {
          // dropping a broken connection may fail too; the next attempt opens a new one
        }
      },
      giveUp: (err, attempts, spent) =>
        new SluiceError(
          ErrorCode.STAGE,
          `${options.where}: ${pgAt} still failed after ${attempts} attempts in ${humanMs(spent)} (\`${options.setting}\` is ${humanMs(options.timeoutMs)}): ${errorMessage(err)}; check that the server is running and reachable at that address, or raise \`${options.setting}\``,
          {
            ...options.context,
            server: server.address,
            database: server.database,
            sqlState: (err as PgError | null)?.code,
          },
          { cause: err },
        ),
    },
  );
}
