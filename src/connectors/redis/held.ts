/**
 * The entries a Redis source has handed on and not acknowledged yet, in hand-over order: a
 * queue with amortised O(1) push and drop-from-the-front (no `splice` per acknowledgement), and a
 * membership test that is built only when asked (claim passes and pending re-reads ask; the hot
 * path of new entries never does).
 */

/** One held entry. */
export interface HeldEntry {
  readonly stream: string;
  readonly id: string;
}

/** A FIFO of held entries; see the module comment. */
export class HeldEntries {
  #items: HeldEntry[] = [];
  #head = 0;
  /** `stream\nid` of every held entry; dropped on any change, rebuilt by `has`. */
  #index: Set<string> | undefined;

  /** Entries held. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Holds one more entry (the caller knows it is not held yet). */
  push(stream: string, id: string): void {
    this.#items.push({ stream, id });
    this.#index?.add(`${stream}\n${id}`);
  }

  /** True when `stream`/`id` is held. The first call after a drop indexes every held entry. */
  has(stream: string, id: string): boolean {
    if (this.#index === undefined) {
      const index = new Set<string>();
      for (let i = this.#head; i < this.#items.length; i++) {
        const h = this.#items[i] as HeldEntry;
        index.add(`${h.stream}\n${h.id}`);
      }
      this.#index = index;
    }
    return this.#index.has(`${stream}\n${id}`);
  }

  /** The ids of the first `n` held entries, grouped by stream (order kept within a stream). */
  firstByStream(n: number): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const end = Math.min(this.#items.length, this.#head + n);
    for (let i = this.#head; i < end; i++) {
      const h = this.#items[i] as HeldEntry;
      const list = out.get(h.stream);
      if (list === undefined) out.set(h.stream, [h.id]);
      else list.push(h.id);
    }
    return out;
  }

  /** Forgets the first `n` held entries (they were acknowledged). */
  drop(n: number): void {
    this.#head = Math.min(this.#items.length, this.#head + n);
    this.#index = undefined;
    // Compact once the dropped prefix is most of the array: amortised O(1) per entry.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
