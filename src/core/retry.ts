/**
 * The one retry policy of Sluice: exponential backoff on the run's clock, cancellable through the
 * run's `AbortSignal`, with one log wording. A connector only answers "can a retry help with this
 * error?" — through the `retryable` flag of a {@link SluiceError}, a client's own `canRetry`, or
 * a classifier it passes (Vector's `RetryLogic::is_retriable_error`, platformatic/kafka's
 * per-class `canRetry`).
 */
import { type Clock, systemClock } from './clock.ts';
import { cancelledError, ErrorCode, errorMessage, SluiceError } from './errors.ts';
import type { Logger } from './stage.ts';

/** How long and how often to retry. */
export interface RetryPolicy {
  /** First wait after a failure, ms; doubled after each failure up to `maxDelayMs`. Default 100. */
  readonly minDelayMs?: number | undefined;
  /** Longest wait between two attempts, ms. Default 5000. */
  readonly maxDelayMs?: number | undefined;
  /**
   * Give up once the failures have lasted this long (ms from the first failure): the last error
   * is thrown (through `giveUp` when given). Default: retry until the signal aborts.
   */
  readonly timeoutMs?: number | undefined;
}

/** Options of {@link retrying}. */
export interface RetryOptions extends RetryPolicy {
  /**
   * What is being done and where, as a gerund phrase for messages: ``writing to PostgreSQL
   * `db:5432/app` `` gives "Writing to PostgreSQL `db:5432/app` failed (…); retrying in 200 ms".
   */
  readonly what: string;
  /** Time and sleeps (the run's clock, so tests drive retries with a manual one). Default the system clock. */
  readonly clock?: Clock | undefined;
  /** Cancels the retries: the wait ends at once and `retrying` rejects with a cancellation error. */
  readonly signal?: AbortSignal | undefined;
  /** True for failures a retry can help with. Default {@link isRetryable}. */
  readonly retryable?: ((err: unknown) => boolean) | undefined;
  /** Where retries are reported: one warning per failed attempt (`every`) or per episode (`first`). */
  readonly log?: Pick<Logger, 'warn'> | undefined;
  /** Default `every`. */
  readonly logEvery?: 'every' | 'first' | undefined;
  /** Fields added to each warning (stage, server…). */
  readonly logFields?: Readonly<Record<string, unknown>> | undefined;
  /**
   * The setting that bounds `timeoutMs`, named in warnings: `giving up after 2 min, \`retryTimeout\``,
   * so the user knows what to raise.
   */
  readonly setting?: string | undefined;
  /**
   * What the user can do while it fails (`start the broker or fix \`brokers\``), or what is
   * waiting on the retry, appended to each warning; a function is asked at each warning.
   */
  readonly hint?: string | (() => string | undefined) | undefined;
  /** Called after each retryable failure, before the wait (e.g. to drop a broken connection). */
  readonly onFailure?: ((err: unknown, attempt: number) => void | Promise<void>) | undefined;
  /**
   * Builds the error thrown once `timeoutMs` has passed, from the last failure, the number of
   * attempts and the time spent (ms). Default: the last error as it is.
   */
  readonly giveUp?: ((err: unknown, attempts: number, spentMs: number) => unknown) | undefined;
}

/**
 * True when `err` says a retry can help: a `retryable: true` flag (set on {@link SluiceError}s
 * by connectors) or a client's own `canRetry: true` (as platformatic/kafka's errors carry), on
 * the error or on an error it wraps (`cause`, `errors`). Anything else is not retryable.
 */
export function isRetryable(err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 6) return false;
  const e = err as { retryable?: unknown; canRetry?: unknown; cause?: unknown; errors?: unknown };
  if (e.retryable === true || e.canRetry === true) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isRetryable(inner, depth + 1))) return true;
  return isRetryable(e.cause, depth + 1);
}

/**
 * The wait before attempt `attempt + 1` after `attempt` failures in a row: `minDelayMs` (default
 * 100) doubling to `maxDelayMs` (default 5000). The one backoff schedule, also for clients that
 * reconnect by themselves and only ask for a delay (ioredis' `retryStrategy`).
 */
export function backoffDelay(attempt: number, policy: RetryPolicy = {}): number {
  const min = policy.minDelayMs ?? 100;
  const max = policy.maxDelayMs ?? 5000;
  return Math.min(max, min * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/** A duration for messages: `250 ms`, `5 s`, `2 min`. */
export function humanMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} min`;
}

/**
 * Runs `fn` until it resolves, waiting after each retryable failure with exponential backoff
 * (`minDelayMs` doubling to `maxDelayMs`). Resolves with `fn`'s value; rejects at once with a
 * failure that is not retryable, with the last failure (or `giveUp`'s error) once `timeoutMs` has
 * passed since the first failure, and with a `SLUICE_CANCELLED` error when `signal` aborts.
 * `fn` gets the attempt number (1, 2, …) and must be safe to run again after a failure.
 *
 * @example
 * const rows = await retrying(() => client.query(sql), {
 *   what: 'reading `events` from PostgreSQL `db:5432/app`',
 *   clock: ctx.clock, signal: ctx.signal, log: ctx.log, timeoutMs: 60_000,
 *   retryable: isTransientPgError,
 * });
 */
export async function retrying<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const retryable = options.retryable ?? isRetryable;
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw cancelledError(options.signal.reason);
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.signal?.aborted) throw cancelledError(options.signal.reason);
      if (!retryable(err)) throw err;
      const now = clock.now();
      firstFailure ??= now;
      const spent = now - firstFailure;
      const timeout = options.timeoutMs;
      if (timeout !== undefined && spent >= timeout) {
        throw options.giveUp === undefined ? err : options.giveUp(err, attempt, spent);
      }
      const delay = backoffDelay(attempt, options);
      const wait = timeout === undefined ? delay : Math.min(delay, timeout - spent);
      if (options.log !== undefined && (attempt === 1 || options.logEvery !== 'first')) {
        const setting = options.setting === undefined ? '' : `, \`${options.setting}\``;
        const limit = timeout === undefined ? '' : `, giving up after ${humanMs(timeout)}${setting}`;
        const said = typeof options.hint === 'function' ? options.hint() : options.hint;
        const hint = said === undefined || said === '' ? '' : `. ${said}`;
        options.log.warn(
          `${capitalise(options.what)} failed (${errorMessage(err)}); retrying in ${humanMs(wait)} (attempt ${attempt + 1}${limit})${hint}`,
          { ...options.logFields, attempt: attempt + 1 },
        );
      }
      await options.onFailure?.(err, attempt);
      try {
        await clock.sleep(wait, options.signal);
      } catch {
        throw cancelledError(options.signal?.reason);
      }
    }
  }
}

function capitalise(s: string): string {
  return s.length === 0 ? s : `${s[0]?.toUpperCase()}${s.slice(1)}`;
}

/**
 * A {@link SluiceError} that says a retry can help (connection lost, server starting…), for
 * connectors that classify a client's failure once where it is caught.
 */
export function retryableError(
  message: string,
  cause: unknown,
  context: Record<string, unknown> = {},
): SluiceError {
  return new SluiceError(ErrorCode.STAGE, message, context, { cause, retryable: true });
}
