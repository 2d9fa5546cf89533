/**
 * A bounded cache of short ASCII strings (up to 12 bytes) found by their bytes read as three
 * 32-bit words: the projected JSON Lines reader's interning of wanted values (`json-project.ts`).
 * A country code or an event type is then one shared string, whose hash V8 keeps, so the
 * window's key lookups by it skip hashing a fresh string each line. The hit test is three word
 * comparisons, no loop and no string comparison: measured on the vs-go JSONL run, `InternCache`
 * (a byte-hash loop and `startsWith`) took 62 ms for 1.6 M lookups.
 */

/** Longest string held, in bytes. */
export const SHORT_STRING_BYTES = 12;

/** After this many lookups of a field, one that mostly misses stops being looked up. */
const SAMPLE = 2048;

/** Per length n (0…12) and word k (0…2): the mask of the word's bytes that are the string's (index `3n + k`). */
const MASKS = Int32Array.from({ length: 3 * (SHORT_STRING_BYTES + 1) }, (_, i) => {
  const inWord = Math.min(4, Math.max(0, Math.floor(i / 3) - 4 * (i % 3)));
  return inWord === 4 ? -1 : (1 << (8 * inWord)) - 1;
});

/** Per-field counters of a {@link ShortStrings}: lookups, hits, and 1 while the field is looked up. */
export interface ShortStringCounters {
  readonly lookups: Uint32Array;
  readonly hits: Uint32Array;
  readonly on: Uint8Array;
}

/** A hash of a short string's three masked words and length (see {@link MASKS}). */
function wordsHash(w0: number, w1: number, w2: number, n: number): number {
  const h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca77) ^ n, 0x27d4eb2f);
  return h ^ (h >>> 15);
}

/**
 * A direct-mapped table of short strings by their bytes; a collision replaces the slot, so it
 * never holds more than `slots` strings. A field whose values repeat less than one time in two
 * after {@link SAMPLE} lookups (ids, amounts) is switched off: {@link get} then only slices.
 *
 * @example
 * const line = Buffer.from('"DE",');
 * const cache = new ShortStrings(1);
 * const view = new DataView(line.buffer, line.byteOffset, line.length);
 * cache.get(view, 1, 2, line.toString('latin1'), 1, 0); // 'DE'
 */
export class ShortStrings {
  /** Per slot: the three words of its string's bytes (masked) and its length + 1 (0: empty). */
  private readonly words: Int32Array;
  private readonly strings: string[];
  private readonly mask: number;
  /** Per field: lookups and hits so far, and 1 while it is looked up. */
  private readonly lookups: Uint32Array;
  private readonly hits: Uint32Array;
  private readonly on: Uint8Array;

  /**
   * A cache for `fields` fields (numbered from 0) of `slots` strings (a power of two). `counters`:
   * per-field lookups, hits and on-switches to count in (shared with another cache of the same
   * fields, as the CSV `InternCache` does), instead of its own.
   */
  constructor(fields: number, slots = 1024, counters?: ShortStringCounters) {
    this.words = new Int32Array(4 * slots);
    this.strings = new Array<string>(slots).fill('');
    this.mask = slots - 1;
    this.lookups = counters?.lookups ?? new Uint32Array(fields);
    this.hits = counters?.hits ?? new Uint32Array(fields);
    this.on = counters?.on ?? new Uint8Array(fields).fill(1);
  }

  /**
   * The string of the `n` ASCII bytes (n ≤ {@link SHORT_STRING_BYTES}) at `from` in `view`,
   * which are the characters `text[at, at + n)`: the one held when present, else that slice of
   * `text` (a copy: V8 copies slices under 13 characters), then held. `field` numbers the field
   * for the hit-rate switch. Needs 12 bytes readable from `from`; when fewer are, the slice.
   */
  get(
    view: DataView<ArrayBufferLike>,
    from: number,
    n: number,
    text: string,
    at: number,
    field: number,
  ): string {
    if (this.on[field] !== 1 || from + SHORT_STRING_BYTES > view.byteLength) return text.slice(at, at + n);
    const w0 = view.getInt32(from, true) & (MASKS[3 * n] as number);
    const w1 = view.getInt32(from + 4, true) & (MASKS[3 * n + 1] as number);
    const w2 = view.getInt32(from + 8, true) & (MASKS[3 * n + 2] as number);
    const slot = wordsHash(w0, w1, w2, n) & this.mask;
    const words = this.words;
    const w = 4 * slot;
    const seen = ++this.lookups[field]!;
    if (words[w] === w0 && words[w + 1] === w1 && words[w + 2] === w2 && words[w + 3] === n + 1) {
      this.hits[field]!++;
      return this.strings[slot] as string;
    }
    if (seen >= SAMPLE && 2 * this.hits[field]! < seen) this.on[field] = 0;
    const v = text.slice(at, at + n);
    words[w] = w0;
    words[w + 1] = w1;
    words[w + 2] = w2;
    words[w + 3] = n + 1;
    this.strings[slot] = v;
    return v;
  }
}
