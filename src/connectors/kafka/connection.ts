/**
 * What the Kafka source and sink share: the broker list, classifying client failures (the broker
 * is not there; a request worth sending again), and waiting for a broker with the run's retry
 * policy instead of failing the run.
 */
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { isRetryable, retryableError, retrying } from '../../core/retry.ts';
import type { StageContext } from '../../core/stage.ts';
import { type KafkaConnection, securityFailure } from './security.ts';

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

/**
 * The hint of a retry warning. A listener that requires client certificates closes the
 * connection of a client without one after the handshake, which looks like a broker going away.
 */
function clientCertificateHint(connection: KafkaConnection | undefined): string {
  const tls = connection?.tls;
  const noCert = tls !== undefined && (tls === true || tls.cert === undefined);
  return noCert
    ? 'Start the broker or fix `brokers`; if the listener requires client certificates, set `tls.cert` and `tls.key`'
    : 'Start the broker or fix `brokers`';
}

/** Options of {@link waitForBrokers}. */
export interface BrokerWaitOptions {
  /** Longest wait between two attempts, ms (the first wait is 250 ms, doubling). */
  readonly maxDelayMs: number;
  /** Also give up (resolve undefined) when this signal aborts: the run asked to stop. */
  readonly stopSignal?: AbortSignal | undefined;
  /**
   * Fail (a `SLUICE_STAGE` error naming the brokers and `connectTimeout`) once the attempts have
   * failed for this many ms in a row. Default: wait until stopped.
   */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * TLS and SASL of the connection: a refusal waiting does not fix (wrong credentials, an
   * untrusted certificate, plaintext on a TLS listener…) fails at once with one line saying
   * which and what to do (`security.ts`).
   */
  readonly connection?: KafkaConnection | undefined;
}

/**
 * Classifies a client failure once, where it is caught: "no broker could be reached" (see
 * {@link isConnectionError}) becomes a retryable `SLUICE_STAGE` error naming the brokers; any
 * other failure is returned as it is.
 */
export function brokerFailure(err: unknown, brokers: readonly string[]): unknown {
  if (err instanceof SluiceError || !isConnectionError(err)) return err;
  return retryableError(`Kafka at \`${brokers.join(',')}\` is not reachable: ${rootMessage(err)}`, err, {
    brokers: brokers.join(','),
  });
}

/** True for a failure {@link brokerFailure} classified as "the brokers are not reachable". */
function isBrokerUnreachable(err: unknown): boolean {
  return err instanceof SluiceError && err.retryable;
}

/**
 * True when a Kafka request that failed with `err` may succeed if sent again a moment later: the
 * brokers were not reachable, or the client marks the error `canRetry` (a coordinator that moved
 * or is loading, concurrent transactions, a request timeout).
 */
export function isTransientKafkaError(err: unknown): boolean {
  return isConnectionError(err) || isRetryable(err);
}

/**
 * Runs `attempt` until it succeeds, waiting for the brokers while it fails because they cannot
 * be reached (so a pipeline started before its broker simply waits for it): the run's retry
 * policy (`core/retry.ts`) on the run's clock, one warning per failed attempt naming `what` and
 * the brokers, backoff from 250 ms to `maxDelayMs`. Any other error is thrown at once. Resolves
 * undefined when `stopSignal` aborts first; rejects with a cancellation when the run is
 * cancelled, and with a `SLUICE_STAGE` error once `connectTimeoutMs` has passed.
 */
export async function waitForBrokers<T>(
  what: string,
  brokers: readonly string[],
  ctx: Pick<StageContext, 'name' | 'clock' | 'log' | 'signal'>,
  attempt: () => Promise<T>,
  options: BrokerWaitOptions,
): Promise<T | undefined> {
  const stop = options.stopSignal;
  try {
    return await retrying(
      async () => {
        try {
          return await attempt();
        } catch (err) {
          throw securityFailure(err, options.connection ?? { brokers }) ?? brokerFailure(err, brokers);
        }
      },
      {
        what,
        clock: ctx.clock,
        signal: stop === undefined ? ctx.signal : AbortSignal.any([ctx.signal, stop]),
        retryable: isBrokerUnreachable,
        minDelayMs: 250,
        maxDelayMs: options.maxDelayMs,
        timeoutMs: options.connectTimeoutMs,
        log: ctx.log,
        logFields: { stage: ctx.name },
        hint: clientCertificateHint(options.connection),
        giveUp: (err, attempts, spent) =>
          new SluiceError(
            ErrorCode.STAGE,
            `Kafka at \`${brokers.join(',')}\` was not reachable while ${what}: ${attempts} attempts in ${Math.round(spent)} ms failed (last: ${rootMessage(err)}), and \`connectTimeout\` is ${options.connectTimeoutMs} ms. Start the broker, fix \`brokers\`, or raise \`connectTimeout\``,
            { brokers: brokers.join(','), attempts },
          ),
      },
    );
  } catch (err) {
    if (stop?.aborted && !ctx.signal.aborted) return undefined;
    throw err;
  }
}
