/**
 * What the Kafka source and sink share: the broker list, telling "the broker is not there"
 * from other failures, and waiting for a broker with backoff instead of failing the run.
 */
import { cancelledError, ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import type { StageContext } from '../../core/stage.ts';

/** Brokers as the config takes them: `host:port`, a list of them, or one comma-separated string. */
export type BrokersInput = string | readonly string[];

/** The broker list as `host:port` strings; a bare host gets port 9092. */
export function brokerList(brokers: BrokersInput): string[] {
  const list = typeof brokers === 'string' ? brokers.split(',') : [...brokers];
  return list
    .map((b) => b.trim())
    .filter((b) => b.length > 0)
    .map((b) => (/:\d+$/.test(b) ? b : `${b}:9092`));
}

/**
 * True when `err` says that no broker could be reached or a request timed out (broker down,
 * restarting or not started yet), as opposed to a configuration or protocol error that
 * waiting will not fix.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    hasErrorCode(err, 'PLT_KFK_NETWORK') ||
    hasErrorCode(err, 'PLT_KFK_TIMEOUT') ||
    /Cannot connect to any broker/.test(err.message)
  );
}

/**
 * True when `err`, or an error it aggregates (`errors`, `cause`, a few levels deep), has `code`.
 * The client's own `findErrorBy` does this but would load the whole client to classify an error.
 */
function hasErrorCode(err: unknown, code: string, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 6) return false;
  const e = err as { code?: unknown; errors?: unknown; cause?: unknown };
  if (e.code === code) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => hasErrorCode(inner, code, depth + 1))) return true;
  return hasErrorCode(e.cause, code, depth + 1);
}

/** The innermost message of a client error (the client nests the useful one a few levels down). */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 5; depth++) {
    const inner = (e as { errors?: unknown[] } | undefined)?.errors?.[0] ?? (e as { cause?: unknown })?.cause;
    if (inner === undefined || inner === null) break;
    e = inner;
  }
  return errorMessage(e);
}

/** Options of {@link withBrokerRetry}. */
export interface RetryOptions {
  /** First wait after a failed attempt, in ms. Doubles after each failure. */
  initialDelay: number;
  /** Longest wait between attempts, in ms. */
  maxDelay: number;
  /** Also give up (return undefined) when this signal aborts: the run asked to stop. */
  stopSignal?: AbortSignal;
  /**
   * Fail (a `SLUICE_STAGE` error naming the brokers) once the attempts have failed for this
   * many ms. Default: retry until stopped.
   */
  giveUpAfter?: number;
}

/**
 * Runs `attempt` until it succeeds. While it fails with a connection error, logs one warning
 * per attempt naming `what` and the brokers, then waits with exponential backoff (so a
 * pipeline started before its broker simply waits for it). Any other error is thrown at once.
 * Returns undefined when `options.stopSignal` aborts first; throws a cancellation when the
 * run is cancelled, and a `SLUICE_STAGE` error once `options.giveUpAfter` ms have passed.
 */
export async function withBrokerRetry<T>(
  what: string,
  brokers: readonly string[],
  ctx: StageContext,
  attempt: () => Promise<T>,
  options: RetryOptions,
): Promise<T | undefined> {
  let delay = options.initialDelay;
  const startedAt = ctx.clock.now();
  for (let n = 1; ; n++) {
    if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    if (options.stopSignal?.aborted) return undefined;
    try {
      return await attempt();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      const spent = ctx.clock.now() - startedAt;
      if (options.giveUpAfter !== undefined && spent + delay > options.giveUpAfter) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `Kafka at \`${brokers.join(',')}\` was not reachable while ${what}: ${n} attempts in ${Math.round(spent)} ms failed (last: ${rootMessage(err)}), and \`connectTimeout\` is ${options.giveUpAfter} ms. Start the broker, fix \`brokers\`, or raise \`connectTimeout\``,
          { brokers: brokers.join(','), attempts: n },
        );
      }
      ctx.log.warn(
        `Kafka at \`${brokers.join(',')}\` is not reachable while ${what} (attempt ${n}: ${rootMessage(err)}); retrying in ${Math.round(delay)} ms. Start the broker or fix \`brokers\``,
        { stage: ctx.name, attempt: n },
      );
    }
    const wake = options.stopSignal ? AbortSignal.any([ctx.signal, options.stopSignal]) : ctx.signal;
    try {
      await ctx.clock.sleep(delay, wake);
    } catch {
      if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
      return undefined;
    }
    delay = Math.min(options.maxDelay, delay * 2);
  }
}
