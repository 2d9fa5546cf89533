/**
 * The run's metrics as a stream, for library users who export them elsewhere (OpenTelemetry,
 * StatsD, a log): one snapshot every interval while the run lasts, and the final one at its end.
 */
import type { MetricsSnapshot } from '../core/metrics.ts';

/** What {@link watchRun} reads: a `RunHandle`, or anything with the same two members. */
export interface WatchedRun {
  metrics(): MetricsSnapshot;
  readonly done: Promise<unknown>;
}

/** Options of {@link watchRun}. */
export interface WatchOptions {
  /** Time between two snapshots, ms. Default 1000. */
  readonly intervalMs?: number;
  /** Ends the stream early (the run goes on). */
  readonly signal?: AbortSignal;
}

/**
 * Yields `handle.metrics()` every `intervalMs` until the run ends, then its last snapshot
 * (whether the run succeeded or failed: the stream never throws for the run's error). Breaking
 * out of the loop or aborting `signal` stops it.
 *
 * @example
 * const handle = pipeline.run();
 * for await (const m of watchRun(handle, { intervalMs: 5000 })) {
 *   console.log(`${m.recordsRead} read, ${m.deadLetters} dead letters`);
 * }
 */
export async function* watchRun(
  handle: WatchedRun,
  options: WatchOptions = {},
): AsyncGenerator<MetricsSnapshot> {
  const interval = options.intervalMs ?? 1000;
  let ended = false;
  const finished = handle.done.then(
    () => {
      ended = true;
    },
    () => {
      ended = true;
    },
  );
  while (!ended && options.signal?.aborted !== true) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, interval);
    });
    const aborted = new Promise<void>((resolve) =>
      options.signal?.addEventListener('abort', () => resolve(), { once: true }),
    );
    await Promise.race([tick, finished, aborted]);
    clearTimeout(timer);
    if (isAborted(options.signal)) return;
    yield handle.metrics();
  }
}

/** Read through a call so the compiler does not narrow `aborted` across the `await`. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
