/**
 * {@link ChunkClaims}: the chunks of one worker's share of a batch, claimed by two threads at
 * once through a `SharedArrayBuffer` — the worker from the front, the calling thread from the
 * back — so each chunk runs exactly once and the two meet without a message between them.
 * One buffer per worker holds a ring of such claim sets ({@link ChunkClaims.ring}), shared
 * once when the worker starts: a `SharedArrayBuffer` in every task message made each
 * `postMessage` several times dearer (bench/README.md, parallel).
 */

/** A chunk's state in the shared array. */
const FREE = 0;
const WORKER = 1;
const CALLER = 2;

/** At most this many chunks per share: small enough that a claim is cheap, fine enough to balance. */
export const MAX_CHUNKS = 32;

/**
 * The claims over `length` records cut into chunks of {@link ChunkClaims.size}. The worker
 * calls {@link claimFront} for chunk 0, 1, … and stops at the first it does not get; the
 * calling thread calls {@link claimBack} for the last chunk, the one before, … and stops at
 * the first it does not get. Because each side stops at its first refusal, the worker's
 * chunks are a prefix and the caller's a suffix, with nothing between: the worker reports how
 * many records it did ({@link ChunkClaims.recordsBefore} of its first refused chunk), and the
 * rest is the caller's. Both sides may run at the same time (the claim is an atomic
 * compare-and-exchange).
 *
 * @example
 * const ring = ChunkClaims.ring(3);
 * const claims = new ChunkClaims(ring, 0, 100).reset(); // chunks of 4 records
 * claims.claimBack(claims.chunks - 1); // true: the caller runs records 96–99
 * new ChunkClaims(ring, 0, 100).claimFront(24); // false in the worker: stop there
 */
export class ChunkClaims {
  /** Which claim set of the ring this is. */
  readonly slot: number;
  /** Records in the share. */
  readonly length: number;
  /** Records per chunk (the last may hold fewer). */
  readonly size: number;
  /** Number of chunks. */
  readonly chunks: number;
  private readonly state: Int32Array;
  /** Index of chunk 0 in `state`. */
  private readonly base: number;

  /**
   * The claim set `slot` of `ring` (a buffer from {@link ChunkClaims.ring}) for a share of
   * `length` records, as both threads see it. The calling thread {@link reset}s it before it
   * posts the share, and reuses a slot only once the worker has answered the task that used
   * it last.
   */
  constructor(ring: SharedArrayBuffer, slot: number, length: number) {
    this.state = new Int32Array(ring);
    if (!Number.isInteger(slot) || slot < 0 || (slot + 1) * MAX_CHUNKS > this.state.length)
      throw new RangeError(`claim slot ${slot} is outside a ring of ${this.state.length / MAX_CHUNKS}`);
    this.slot = slot;
    this.base = slot * MAX_CHUNKS;
    this.length = length;
    this.size = Math.max(1, Math.ceil(length / MAX_CHUNKS));
    this.chunks = Math.ceil(length / this.size);
  }

  /** A buffer for `slots` claim sets, to share with one worker when it starts. */
  static ring(slots: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * MAX_CHUNKS * slots);
  }

  /** Marks every chunk free again (the calling thread, before it posts the share). */
  reset(): this {
    this.state.fill(FREE, this.base, this.base + MAX_CHUNKS);
    return this;
  }

  /** The worker's claim on `chunk`; false when the calling thread has it. */
  claimFront(chunk: number): boolean {
    return Atomics.compareExchange(this.state, this.base + chunk, FREE, WORKER) === FREE;
  }

  /** The calling thread's claim on `chunk`; false when the worker has it. */
  claimBack(chunk: number): boolean {
    return Atomics.compareExchange(this.state, this.base + chunk, FREE, CALLER) === FREE;
  }

  /** Index of the first record of `chunk` (`length` for `chunks`). */
  recordsBefore(chunk: number): number {
    return Math.min(this.length, chunk * this.size);
  }
}
