/**
 * Turns of the event loop for a run whose sources never wait on I/O (an in-memory or generated
 * source feeding CPU-bound steps). Channel hand-offs resolve promises, which run as microtasks,
 * so such a run could keep the thread from timers, sockets and signals until it ends: `/metrics`
 * and the dashboard unanswered, the status line frozen, Ctrl-C unheard. The runtime asks
 * {@link LoopTurns.due} after each batch a source emits; when it says yes the source waits for
 * one `setImmediate` — by then every step downstream has drained what it could, and the loop has
 * run its timers and I/O. A source that waits on I/O gives the loop its turns anyway; for it
 * the check costs one clock read per batch.
 */

/** Least time between two turns forced on busy sources, ms. */
export const LOOP_TURN_INTERVAL_MS = 50;

/** Decides when a busy run gives the event loop a turn; see the module comment. */
export class LoopTurns {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private last: number;

  /** `now` reads a monotonic clock in ms (tests may inject one). */
  constructor(intervalMs = LOOP_TURN_INTERVAL_MS, now: () => number = () => performance.now()) {
    this.intervalMs = intervalMs;
    this.now = now;
    this.last = now();
  }

  /**
   * True at most once per `intervalMs`: the caller should then await {@link nextTurn} before
   * going on. Called once per emitted batch, never per record.
   */
  due(): boolean {
    const t = this.now();
    if (t - this.last < this.intervalMs) return false;
    this.last = t;
    return true;
  }
}

/** Resolves after the event loop ran its timers and I/O once (`setImmediate`). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
