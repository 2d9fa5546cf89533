/**
 * Source lag read at most once per interval, however many readers ask (scrapes, dashboard
 * streams): the Kafka source asks the broker for end offsets on every `lag()` call.
 */
import type { SourceLag } from '../core/metrics.ts';

/** Least time between two lag requests to the sources, ms. */
export const LAG_REFRESH_MS = 2000;

/** Lag by source stage name, as `RunHandle.lag()` gives it. */
export type LagBySource = Readonly<Record<string, SourceLag>>;

/**
 * Wraps `lag` so it is called at most every `intervalMs`; between calls (and while one is in
 * flight) callers get the last answer. A failing call keeps the last answer.
 *
 * @example
 * const lag = cachedLag(() => handle.lag());
 * const byStage = await lag();
 */
export function cachedLag(
  lag: (() => Promise<LagBySource>) | undefined,
  intervalMs = LAG_REFRESH_MS,
): () => Promise<LagBySource> {
  let last: LagBySource = {};
  let at = Number.NEGATIVE_INFINITY;
  let pending: Promise<void> | undefined;
  return async () => {
    if (lag === undefined) return last;
    if (performance.now() - at >= intervalMs) {
      pending ??= lag()
        .then((l) => {
          last = l;
        })
        .catch(() => {})
        .finally(() => {
          at = performance.now();
          pending = undefined;
        });
      await pending;
    }
    return last;
  };
}
