/**
 * The entries a Redis source has handed on and not acknowledged yet, in hand-over order: a
 * queue with amortised O(1) push and drop-from-the-front (no `splice` per acknowledgement), a
 * membership test that is built only when asked (claim passes and pending re-reads ask; the hot
 * path of new entries never does), and a compact text of every held id that a checkpoint stores,
 * so that a restore can tell the entries its checkpoint already covers from those it does not.
 */

/** One held entry. */
export interface HeldEntry {
  readonly stream: string;
  readonly id: string;
}

/** Most held ids {@link HeldEntries.text} lists (about 20 bytes each); beyond, it gives up. */
export const MAX_LISTED = 50_000;

/** A FIFO of held entries; see the module comment. */
export class HeldEntries {
  readonly #streams: ReadonlyMap<string, number>;
  #items: HeldEntry[] = [];
  #head = 0;
  /** `stream\nid` of every held entry; dropped on any change, rebuilt by `has`. */
  #index: Set<string> | undefined;
  /** `<stream index>.<id>,` per held entry, in order: what {@link text} returns. */
  #text = '';
  /** Length of each held entry's part of `#text`, parallel to `#items`. */
  #lengths: number[] = [];

  /** `streams`: every stream an entry may come from (the text names them by index). */
  constructor(streams: readonly string[]) {
    this.#streams = new Map(streams.map((s, i) => [s, i]));
  }

  /** Entries held. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Holds one more entry (the caller knows it is not held yet). */
  push(stream: string, id: string): void {
    this.#items.push({ stream, id });
    this.#index?.add(`${stream}\n${id}`);
    const part = `${this.#streams.get(stream) ?? -1}.${id},`;
    this.#text += part;
    this.#lengths.push(part.length);
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
    const end = Math.min(this.#items.length, this.#head + n);
    let cut = 0;
    for (let i = this.#head; i < end; i++) cut += this.#lengths[i] as number;
    this.#text = this.#text.slice(cut);
    this.#head = end;
    this.#index = undefined;
    // Compact once the dropped prefix is most of the array: amortised O(1) per entry.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#lengths = this.#lengths.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Every held id as compact text (`0.1700000000000-0,1.1700000000001-3,`: stream index, id),
   * or undefined when more than {@link MAX_LISTED} are held. O(1): the text is kept up to date.
   */
  text(): string | undefined {
    return this.size > MAX_LISTED ? undefined : this.#text;
  }
}

/** The ids a {@link HeldEntries.text} lists, by stream; unknown stream indexes are ignored. */
export function parseHeldText(text: string, streams: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const part of text.split(',')) {
    const dot = part.indexOf('.');
    if (dot < 0) continue;
    const stream = streams[Number(part.slice(0, dot))];
    if (stream === undefined) continue;
    let ids = out.get(stream);
    if (ids === undefined) {
      ids = new Set();
      out.set(stream, ids);
    }
    ids.add(part.slice(dot + 1));
  }
  return out;
}
