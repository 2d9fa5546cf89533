/**
 * Time as a dependency: stages read time and sleep through a {@link Clock} so tests can
 * inject a manual one and never assert on wall-clock timing.
 */

import { offAbort, onAbort } from './abort-waiters.ts';

/** A source of time and of abortable sleeps. */
export interface Clock {
  /** Current time in milliseconds (epoch for the system clock; arbitrary origin for a manual one). */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, or rejects with the signal's reason when `signal`
   * aborts first. A sleep of 0 or less resolves on the next turn.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Longest delay `setTimeout` takes (2^31 − 1 ms, about 24.8 days); a longer one fires after
 * 1 ms with only a warning, so longer sleeps are made of several timers.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real clock (`Date.now`, `setTimeout`). Timers are cleared on abort. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const until = Date.now() + Math.max(0, ms);
      let timer: ReturnType<typeof setTimeout>;
      // One listener per signal (abort-waiters.ts), not one per sleep: removed listeners of
      // Node's EventTarget chain later ones into old space (a throttle sleeps per record).
      const wait =
        signal === undefined
          ? undefined
          : onAbort(signal, () => {
              clearTimeout(timer);
              reject(signal.reason);
            });
      const arm = (left: number) => {
        timer = setTimeout(
          () => {
            const rest = until - Date.now();
            if (rest > 0 && left > MAX_TIMER_MS) return arm(rest);
            if (wait !== undefined) offAbort(wait);
            resolve();
          },
          Math.min(Math.max(0, left), MAX_TIMER_MS),
        );
      };
      arm(ms);
    });
  },
};

/**
 * A clock that only moves when told to, for tests. `sleep` resolves when `advance` moves
 * time past its deadline.
 *
 * @example
 * const clock = new ManualClock(0);
 * const slept = clock.sleep(100);
 * clock.advance(100); // `slept` resolves
 */
export class ManualClock implements Clock {
  private time: number;
  private sleepers: { until: number; resolve: () => void }[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== entry);
        reject(signal?.reason);
      };
      const entry = {
        until: this.time + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Moves time forward by `ms` and wakes every sleeper whose deadline has passed. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.sleepers.filter((s) => s.until <= this.time);
    this.sleepers = this.sleepers.filter((s) => s.until > this.time);
    for (const s of due) s.resolve();
  }

  /** Number of sleeps still waiting (lets a test know a stage has gone to sleep). */
  get pendingSleeps(): number {
    return this.sleepers.length;
  }
}
