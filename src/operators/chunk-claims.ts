/**
 * {@link ChunkClaims}: the chunks of one worker's share of a batch, claimed by two threads at
 * once through a `SharedArrayBuffer` — the worker from the front, the calling thread from the
 * back — so each chunk runs exactly once and the two meet without a message between them.
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
 * const claims = ChunkClaims.create(100); // chunks of 4 records
 * claims.claimBack(claims.chunks - 1); // true: the caller runs records 96–99
 * ChunkClaims.from(claims.buffer, 100).claimFront(24); // false in the worker: stop there
 */
export class ChunkClaims {
  /** The shared state, one `Int32` per chunk; post it to the worker with the records. */
  readonly buffer: SharedArrayBuffer;
  /** Records in the share. */
  readonly length: number;
  /** Records per chunk (the last may hold fewer). */
  readonly size: number;
  /** Number of chunks. */
  readonly chunks: number;
  private readonly state: Int32Array;

  private constructor(buffer: SharedArrayBuffer, length: number) {
    this.buffer = buffer;
    this.length = length;
    this.size = Math.max(1, Math.ceil(length / MAX_CHUNKS));
    this.chunks = Math.ceil(length / this.size);
    this.state = new Int32Array(buffer);
  }

  /** New claims, every chunk free, for a share of `length` records. */
  static create(length: number): ChunkClaims {
    return new ChunkClaims(new SharedArrayBuffer(4 * MAX_CHUNKS), length);
  }

  /** The claims another thread created, over the same `buffer` and `length`. */
  static from(buffer: SharedArrayBuffer, length: number): ChunkClaims {
    return new ChunkClaims(buffer, length);
  }

  /** The worker's claim on `chunk`; false when the calling thread has it. */
  claimFront(chunk: number): boolean {
    return Atomics.compareExchange(this.state, chunk, FREE, WORKER) === FREE;
  }

  /** The calling thread's claim on `chunk`; false when the worker has it. */
  claimBack(chunk: number): boolean {
    return Atomics.compareExchange(this.state, chunk, FREE, CALLER) === FREE;
  }

  /** Index of the first record of `chunk` (`length` for `chunks`). */
  recordsBefore(chunk: number): number {
    return Math.min(this.length, chunk * this.size);
  }
}
