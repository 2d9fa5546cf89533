/**
 * The call queue of the server-backed {@link StateBackend}s: one call at a time, each retried
 * across connection failures through the one retry policy (`core/retry.ts`), so a server restart
 * or failover delays checkpoints instead of failing the run.
 */
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { humanMs, retrying } from '../core/retry.ts';
import type { Logger } from '../core/stage.ts';

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
  /** Where the first failure of a retried call is reported, and that the server answers again. */
  readonly log?: Pick<Logger, 'warn'> | undefined;
  /** What to do about a failure that is not transient (bad password…); undefined: `see the cause`. */
  readonly hint: (err: unknown) => string | undefined;
  /** The structured context of the error a failed call rejects with. */
  readonly context: (err: unknown) => Record<string, unknown>;
}

/** The calls of one store: see {@link serialCalls}. */
export interface SerialCalls {
  /**
   * Runs `fn` after every earlier call has settled, retrying transient failures (one warning at
   * the first, one when the server answers again). Rejects with a `SLUICE_STAGE` error
   * ``<doing> in <where>: <cause>; <what to do>`` when it still fails — marked `retryable`, with
   * `unreachableMs` in its context, when the server stayed unreachable for `timeoutMs` (a
   * {@link SluiceError} from `fn` as it is) — and at once after {@link SerialCalls.close}.
   */
  run<T>(doing: string, fn: () => Promise<T>): Promise<T>;
  /** Refuses further calls and waits for those under way; true when it was already closed. */
  close(): Promise<boolean>;
}

/**
 * The call queue of a server-backed {@link StateBackend}: calls run one at a time, in call
 * order, each through `retrying` (100 ms doubling to 5 s, on the system clock), and a failure says what was done, where, and what to do.
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
        let failedAt: number | undefined;
        try {
          const value = await retrying(fn, {
            timeoutMs,
            retryable: isTransient,
            onFailure: async (err) => {
              failedAt ??= Date.now();
              await options.onFailure?.(err);
            },
            log: options.log,
            logEvery: 'first',
            what: `${doing} in ${where}`,
            hint: 'Checkpoints wait meanwhile; the data flows on',
          });
          // The warning of the first failure said it retries; this one closes the episode.
          if (failedAt !== undefined)
            options.log?.warn(
              `${where} answers again after ${humanMs(Date.now() - failedAt)}; ${doing} went through`,
            );
          return value;
        } catch (err) {
          if (err instanceof SluiceError) throw err;
          const transient = isTransient(err);
          const hint = transient
            ? `the server did not answer for ${humanMs(timeoutMs)} (\`checkpoint.storeTimeout\`); check that it runs and that \`checkpoint.store\` points at it`
            : (options.hint(err) ?? 'see the cause');
          // `retryable`: the store was unreachable, and a later attempt (the next run) can succeed.
          throw new SluiceError(
            ErrorCode.STAGE,
            `${doing} in ${where}: ${errorMessage(err)}; ${hint}`,
            transient ? { ...options.context(err), unreachableMs: timeoutMs } : options.context(err),
            { cause: err, retryable: transient },
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
