/**
 * Retrying a store operation across connection failures, with exponential backoff up to a
 * deadline: what the server-backed {@link StateBackend}s do when the network or the server
 * goes away for a while (a restart, a failover).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';

/** Options of {@link retrying}. */
export interface RetryOptions {
  /** How long (ms) to keep trying from the first failure; then the last error is thrown. */
  readonly timeoutMs: number;
  /** True for failures worth another attempt (connection lost, server starting…). */
  readonly isTransient: (err: unknown) => boolean;
  /** Called after each transient failure, before waiting (e.g. to drop a broken connection). */
  readonly onFailure?: ((err: unknown) => void | Promise<void>) | undefined;
  /** Where the first failure of an episode is reported. */
  readonly log?: Pick<Logger, 'warn'> | undefined;
  /** Names the operation and the server in the warning, e.g. ``writing state at `host:5432/db` ``. */
  readonly what: string;
  /** First delay (ms), doubled after each failure up to `maxDelayMs`. Default 100. */
  readonly minDelayMs?: number;
  /** Default 5000. */
  readonly maxDelayMs?: number;
}

/**
 * Runs `fn` until it resolves, retrying transient failures with backoff (100 ms doubling to
 * 5 s) until `timeoutMs` has passed since the first failure. Resolves with `fn`'s value;
 * rejects with the first non-transient error, or the last error once the deadline is over.
 * `fn` must be safe to run again after a failure (store writes are: they set keys to values).
 */
export async function retrying<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const max = options.maxDelayMs ?? 5000;
  let delay = options.minDelayMs ?? 100;
  let firstFailure: number | undefined;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!options.isTransient(err)) throw err;
      const now = Date.now();
      if (firstFailure === undefined) {
        firstFailure = now;
        options.log?.warn(
          `${options.what} failed (${errorMessage(err)}); retrying for up to ${Math.round(options.timeoutMs / 1000)} s`,
        );
      }
      await options.onFailure?.(err);
      if (now - firstFailure >= options.timeoutMs) throw err;
      await sleep(Math.min(delay, Math.max(0, firstFailure + options.timeoutMs - now)));
      delay = Math.min(max, delay * 2);
    }
  }
}

/** Options of {@link serialCalls}. */
export interface SerialCallsOptions {
  /** Names the store in messages, e.g. ``PostgreSQL `host:5432/db`, table `t`, namespace `n` ``. */
  readonly where: string;
  /** How long (ms) each call is retried from its first failure. */
  readonly timeoutMs: number;
  /** True for failures worth another attempt (connection lost, server starting…). */
  readonly isTransient: (err: unknown) => boolean;
  /** Called after each transient failure, before waiting (e.g. to drop a broken connection). */
  readonly onFailure?: ((err: unknown) => void | Promise<void>) | undefined;
  /** Where the first failure of a retried call is reported. */
  readonly log?: Pick<Logger, 'warn'> | undefined;
  /** What to do about a failure that is not transient (bad password…); undefined: `see the cause`. */
  readonly hint: (err: unknown) => string | undefined;
  /** The structured context of the error a failed call rejects with. */
  readonly context: (err: unknown) => Record<string, unknown>;
}

/** The calls of one store: see {@link serialCalls}. */
export interface SerialCalls {
  /**
   * Runs `fn` after every earlier call has settled, retrying transient failures. Rejects with a
   * `SLUICE_STAGE` error ``<doing> in <where>: <cause>; <what to do>`` when it still fails (a
   * {@link SluiceError} from `fn` as it is), and at once after {@link SerialCalls.close}.
   */
  run<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /** Refuses further calls and waits for those under way; true when it was already closed. */
  close(): Promise<boolean>;
}

/**
 * The call queue of a server-backed {@link StateBackend}: calls run one at a time, in call
 * order, each through {@link retrying}, and a failure says what was done, where, and what to do.
 *
 * @example
 * const calls = serialCalls({ where, timeoutMs: 60_000, isTransient, hint: () => undefined, context: () => ({}) });
 * await calls.run('reading state', () => client.get(key));
 */
export function serialCalls(options: SerialCallsOptions): SerialCalls {
  const { where, timeoutMs, isTransient } = options;
  let closed = false;
  let tail: Promise<unknown> = Promise.resolve();
  return {
    run<T>(doing: string, fn: () => Promise<T>): Promise<T> {
      if (closed)
        return Promise.reject(
          new SluiceError(ErrorCode.STAGE, `${doing} in ${where}: the state store is closed`),
        );
      const attempt = async () => {
        try {
          return await retrying(fn, {
            timeoutMs,
            isTransient,
            onFailure: options.onFailure,
            log: options.log,
            what: `${doing[0]?.toUpperCase()}${doing.slice(1)} in ${where}`,
          });
        } catch (err) {
          if (err instanceof SluiceError) throw err;
          const hint = isTransient(err)
            ? `the server did not answer for ${Math.round(timeoutMs / 1000)} s; check that it runs and that \`checkpoint.store\` points at it`
            : (options.hint(err) ?? 'see the cause');
          throw new SluiceError(
            ErrorCode.STAGE,
            `${doing} in ${where}: ${errorMessage(err)}; ${hint}`,
            options.context(err),
            { cause: err },
          );
        }
      };
      const p = tail.then(attempt, attempt);
      tail = p.catch(() => {});
      return p;
    },
    async close() {
      if (closed) return true;
      closed = true;
      await tail;
      return false;
    },
  };
}
