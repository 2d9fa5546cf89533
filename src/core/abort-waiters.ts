/**
 * Waiting on an abort signal without one `addEventListener` per wait. The runtime waits on its
 * run's signal several times per batch (a stage's call, a parked send, a reader waiting for
 * input); each wait used to add an `abort` listener and remove it when done.
 *
 * Why not that: Node's `EventTarget` keeps listeners in a linked list, and a removed listener
 * keeps its `next` and its callback. Once one such listener has reached old space (every live
 * one does at a mark-compact), it keeps the listener added after it alive through every
 * scavenge: that one survives, is promoted, and keeps the next… a chain that promotes every
 * wait's callback and what it holds (a parked send's batch, with its records) until the next
 * mark-compact, which starts it again. Measured on the 200 MB vs-go CSV → filter → window run of
 * the bundle: ~420 KB promoted per scavenge after the first mark-compact (~440 MB per run, 8
 * mark-compacts, ~160 MiB peak), against ~20 KB before it. Here each signal gets one listener,
 * and a wait takes a slot in a plain array that is emptied when the wait ends: nothing that has
 * ended stays reachable from it.
 */

/** The waits on one signal: one `abort` listener, and a slot per wait. */
class Waiters {
  private readonly slots: ((() => void) | undefined)[] = [];
  /** Free slot indices, reused before the array grows. */
  private readonly free: number[] = [];

  constructor(signal: AbortSignal) {
    signal.addEventListener('abort', () => this.fire(), { once: true });
  }

  add(fn: () => void): number {
    const i = this.free.pop();
    if (i !== undefined) {
      this.slots[i] = fn;
      return i;
    }
    this.slots.push(fn);
    return this.slots.length - 1;
  }

  /** Frees `slot` if it still holds `fn` (a second call, after the slot was reused, does nothing). */
  remove(slot: number, fn: () => void): void {
    if (slot < 0 || this.slots[slot] !== fn) return;
    this.slots[slot] = undefined;
    this.free.push(slot);
  }

  /** Calls every wait's function once, in the order of their slots, and forgets them. */
  private fire(): void {
    const fns = this.slots.filter((f) => f !== undefined);
    this.slots.length = 0;
    this.free.length = 0;
    for (const f of fns) f();
  }
}

const bySignal = new WeakMap<AbortSignal, Waiters>();

/** A wait registered with {@link onAbort}: pass it to {@link offAbort} when the wait ends. */
export interface AbortWait {
  readonly signal: AbortSignal;
  readonly slot: number;
  readonly fn: () => void;
}

/**
 * Calls `fn` once when `signal` aborts, unless {@link offAbort} is called first. When `signal`
 * has aborted already, `fn` runs in a microtask.
 *
 * @example
 * const wait = onAbort(signal, () => reject(signal.reason));
 * work.then(() => offAbort(wait));
 */
export function onAbort(signal: AbortSignal, fn: () => void): AbortWait {
  if (signal.aborted) {
    queueMicrotask(fn);
    return { signal, slot: -1, fn };
  }
  let w = bySignal.get(signal);
  if (w === undefined) {
    w = new Waiters(signal);
    bySignal.set(signal, w);
  }
  return { signal, slot: w.add(fn), fn };
}

/** Ends a wait from {@link onAbort}: its function will not be called. Calling it again does nothing. */
export function offAbort(wait: AbortWait): void {
  bySignal.get(wait.signal)?.remove(wait.slot, wait.fn);
}
