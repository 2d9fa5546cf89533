/**
 * Retrying a store operation across connection failures, with exponential backoff up to a
 * deadline: what the server-backed {@link StateBackend}s do when the network or the server
 * goes away for a while (a restart, a failover).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../core/errors.ts';
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
