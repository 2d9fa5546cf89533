/**
 * When the `pulsar` source acknowledges a message: never before the sinks have what it became.
 * Each message handed on (emitted, or dead-lettered) is held in order; with checkpoints, `commit`
 * acknowledges the messages a stored checkpoint counted; without, the source's own barriers mark
 * points that `onBarrierComplete` acknowledges through. Acks are individual (one frame per
 * message), so a message of one key held for a checkpoint never holds back another key's.
 */
import { BarrierPoints } from '../../core/barrier-points.ts';

/** Sends one ack; false when it could not be sent (the socket is closed: the message comes again). */
export type SendAck = (messageId: string) => boolean;

/** The held messages and their acknowledgement; see the module comment. */
export class HeldAcks {
  #ids: string[] = [];
  #head = 0;
  /** Messages acknowledged so far. */
  acked = 0;
  /** Messages of this run handed on so far (emitted or dead-lettered): `position().handed`. */
  handed = 0;
  /** The point each barrier in flight covers (without checkpoints). */
  readonly #points = new BarrierPoints();
  /** Acks that could not be sent (the socket was closed); those messages are delivered again. */
  unsent = 0;

  /** Messages handed on and not acknowledged. */
  get size(): number {
    return this.#ids.length - this.#head;
  }

  /**
   * True while message `messageId` is held (handed on, not acknowledged yet). Searched from the
   * newest: a record that fails in a step is usually among the last handed on; one no longer held
   * (its message settled before a window fired it) costs a scan of what is held.
   */
  holds(messageId: string): boolean {
    return this.#ids.lastIndexOf(messageId) >= this.#head;
  }

  /** The ids held (handed on, not acknowledged), oldest first. */
  heldIds(): string[] {
    return this.#ids.slice(this.#head);
  }

  /** Holds a message handed on. */
  hold(messageId: string): void {
    this.#ids.push(messageId);
    this.handed++;
  }

  /** Called at each emit: a barrier emitted next covers everything handed on so far. */
  emitted(): void {
    this.#points.emitted(this.handed);
  }

  /** Barriers emitted (without checkpoints). */
  get barriers(): number {
    return this.#points.barriers;
  }

  /** Without checkpoints: the id of a new barrier, acknowledging what was emitted before it once complete. */
  nextBarrier(): number {
    return this.#points.next();
  }

  /** Barrier `id` reached every sink: acknowledges what was emitted before it (earlier points are dropped). */
  barrierComplete(id: number, send: SendAck): void {
    const upTo = this.#points.complete(id);
    if (upTo !== undefined) this.through(upTo, send);
  }

  /**
   * Acknowledges the held messages up to the `upTo`-th handed on in this run. A message whose ack
   * cannot be sent is dropped from the held list all the same: the broker delivers it again.
   */
  through(upTo: number, send: SendAck): void {
    const n = Math.min(upTo - this.acked, this.size);
    for (let i = 0; i < n; i++) {
      if (!send(this.#ids[this.#head + i] as string)) this.unsent++;
    }
    if (n <= 0) return;
    this.#head += n;
    this.acked += n;
    if (this.#head > 4096 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#head = 0;
    }
  }
}
