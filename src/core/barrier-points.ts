/**
 * For sources that acknowledge upstream at barriers without checkpoints (Redis Streams, Pulsar):
 * which count of records handed on each barrier covers. A barrier emitted next covers what was
 * handed on before the last emit (the runtime sends a source's dead letters with its next emit,
 * not with a signal); when the sinks report barrier `id` complete, what it covers may be
 * acknowledged. Points of barriers never reported are dropped past a bound.
 */

/** Acknowledgement points kept for barriers not yet reported; older ones are dropped. */
const MAX_PENDING_BARRIERS = 64;

/** The acknowledgement point of each barrier in flight; see the module comment. */
export class BarrierPoints {
  /** Barriers made so far (their ids are 1, 2, …). */
  barriers = 0;
  /** The handed-on count at the last emit. */
  #emittedThrough = 0;
  /** Barrier id → handed-on count it covers. */
  readonly #pending = new Map<number, number>();

  /** Called at each emit with the count of records handed on so far. */
  emitted(handed: number): void {
    this.#emittedThrough = handed;
  }

  /** The id of a new barrier, covering what was handed on before the last emit. */
  next(): number {
    this.barriers++;
    this.#pending.set(this.barriers, this.#emittedThrough);
    if (this.#pending.size > MAX_PENDING_BARRIERS) {
      const oldest = this.#pending.keys().next().value as number;
      this.#pending.delete(oldest);
    }
    return this.barriers;
  }

  /**
   * Barrier `id` reached every sink: the handed-on count it covers, or undefined when its point
   * was dropped. Points of earlier barriers are dropped too (a later one covers them).
   */
  complete(id: number): number | undefined {
    let upTo: number | undefined;
    for (const k of [...this.#pending.keys()]) {
      if (k > id) break;
      if (k === id) upTo = this.#pending.get(k);
      this.#pending.delete(k);
    }
    return upTo;
  }
}
