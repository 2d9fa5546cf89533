/**
 * The end of a byte range that another thread may move: a worker reads its range in pieces it
 * first claims ({@link RangeBounds.claim}), and the merging thread, once it has run out of work,
 * may take the unread tail of a worker's range for itself ({@link RangeBounds.shrink}), so that a
 * worker that is slower (later to start, descheduled by other processes) does not hold the whole
 * run up. The claimed position and the end sit in one `SharedArrayBuffer` behind a spin lock held
 * for a few instructions, so a piece is never both claimed and taken away.
 */

/** Where a range job may read next, and how far. */
export interface Bounds {
  /**
   * Claims the bytes from `at` up to at most `at + max` (never past the range's end) and returns
   * where the claim ends: `at` when the range ends at or before `at`.
   */
  claim(at: number, max: number): number;
  /** The range's end now (only ever moves down, to a line end). */
  end(): number;
}

/** Bounds no other thread changes: `[…, to)`. */
export function fixedBounds(to: number): Bounds {
  return { claim: (at, max) => Math.max(at, Math.min(at + max, to)), end: () => to };
}

/** Byte layout: an `Int32` lock, padding, then `BigInt64` claimed position and end. */
const BYTES = 24;

/** Bounds shared between the thread reading the range and the merging thread (see the module comment). */
export class RangeBounds implements Bounds {
  private readonly lock: Int32Array;
  private readonly at: BigInt64Array;

  /** Over `buffer` (from {@link RangeBounds.create} on another thread). */
  constructor(buffer: SharedArrayBuffer) {
    this.lock = new Int32Array(buffer, 0, 1);
    this.at = new BigInt64Array(buffer, 8, 2);
  }

  /** Fresh bounds of the range `[from, to)`. */
  static create(from: number, to: number): RangeBounds {
    const b = new RangeBounds(new SharedArrayBuffer(BYTES));
    Atomics.store(b.at, 0, BigInt(from));
    Atomics.store(b.at, 1, BigInt(to));
    return b;
  }

  /** The buffer to hand the reading thread. */
  get buffer(): SharedArrayBuffer {
    return this.lock.buffer as SharedArrayBuffer;
  }

  claim(at: number, max: number): number {
    this.acquire();
    try {
      const end = Number(Atomics.load(this.at, 1));
      if (at >= end) return at;
      const next = Math.min(at + max, end);
      if (BigInt(next) > Atomics.load(this.at, 0)) Atomics.store(this.at, 0, BigInt(next));
      return next;
    } finally {
      Atomics.store(this.lock, 0, 0);
    }
  }

  end(): number {
    return Number(Atomics.load(this.at, 1));
  }

  /** How far the reader has claimed. */
  claimed(): number {
    return Number(Atomics.load(this.at, 0));
  }

  /**
   * Moves the end down to `cut` if nothing at or after `cut` is claimed yet and `cut` is before
   * the end; `true` when it did (the bytes `[cut, old end)` are then the caller's to read).
   */
  shrink(cut: number): boolean {
    this.acquire();
    try {
      if (cut <= Number(Atomics.load(this.at, 0)) || cut >= Number(Atomics.load(this.at, 1))) return false;
      Atomics.store(this.at, 1, BigInt(cut));
      return true;
    } finally {
      Atomics.store(this.lock, 0, 0);
    }
  }

  private acquire(): void {
    // Held for a few instructions by either side: spinning costs less than waiting would.
    while (Atomics.compareExchange(this.lock, 0, 0, 1) !== 0);
  }
}
