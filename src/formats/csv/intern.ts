/**
 * A bounded cache of short strings, so repeated field values (country codes, statuses, currency
 * codes) are one shared string instead of a fresh copy per row. A retained record then costs a
 * pointer per such field rather than a string header plus its characters.
 */
import type { Buffer } from 'node:buffer';
import { SHORT_STRING_BYTES, ShortStrings } from '../short-strings.ts';

/** How the intern cache is sized; see {@link CsvOptions.intern}. */
export interface InternOptions {
  /** Fields longer than this (in bytes) are never interned. Default 24. */
  readonly maxLength?: number;
  /** Slots in the table (rounded up to a power of two). Default 4096. */
  readonly entries?: number;
}

/** After this many lookups in a column, a column that mostly misses stops being interned. */
const SAMPLE = 2048;

/**
 * A direct-mapped string table keyed by a hash of the field's characters. A collision replaces
 * the slot, so the table never grows past `entries` strings. Columns whose hit rate is under
 * one half after {@link SAMPLE} or more lookups (ids, timestamps, free text) are switched off so they do
 * not pay for hashing nor evict the values that do repeat.
 *
 * @example
 * const cache = new InternCache({ entries: 1024 });
 * const s = 'x,US,y';
 * cache.get(s, Buffer.from(s, 'latin1'), 2, 4, 0) === cache.get(s, Buffer.from(s, 'latin1'), 2, 4, 0); // true
 */
export class InternCache {
  readonly maxLength: number;
  private readonly table: (string | undefined)[];
  private readonly mask: number;
  /** Per column: 1 while interning pays, 0 once switched off. */
  readonly enabled: Uint8Array;
  private readonly lookups: Uint32Array;
  private readonly hits: Uint32Array;
  /**
   * Values of up to 12 bytes (see {@link getShort}), counted in this cache's counters. The CSV
   * row loop asks it directly (one call fewer per field, measured ~3 % of a range's CPU).
   */
  readonly short: ShortStrings;
  /** A view of the last buffer {@link getShort} read, and that buffer. */
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  private viewOf: Buffer | undefined;

  constructor(options: InternOptions = {}, columns = 256) {
    this.maxLength = options.maxLength ?? 24;
    let size = 16;
    while (size < (options.entries ?? 4096)) size *= 2;
    this.table = new Array<string | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.enabled = new Uint8Array(columns).fill(1);
    this.lookups = new Uint32Array(columns);
    this.hits = new Uint32Array(columns);
    this.short = new ShortStrings(columns, size, {
      lookups: this.lookups,
      hits: this.hits,
      on: this.enabled,
    });
  }

  /** Lookups and hits so far, over all columns (for metrics and tests). */
  stats(): { lookups: number; hits: number } {
    let lookups = 0;
    let hits = 0;
    for (let i = 0; i < this.lookups.length; i++) {
      lookups += this.lookups[i]!;
      hits += this.hits[i]!;
    }
    return { lookups, hits };
  }

  /**
   * The string for characters `[a, b)` of `s` (a latin1 view of `bytes`, which must be ASCII in
   * that range), from the table when present. `col` is the column index, for the hit-rate switch;
   * for a column switched off it is the plain slice of `s`, without hashing.
   *
   * One call site makes every string that is not found: the CSV decoder calls this for every
   * short field of the cache's columns, so when a column is switched off mid-run its values keep
   * going through code that ran from the start (a first call from a new site would throw the
   * decoder's optimised code away).
   */
  get(s: string, bytes: Buffer, a: number, b: number, col: number): string {
    const on = this.enabled[col] === 1;
    if (on && b - a <= SHORT_STRING_BYTES && a + SHORT_STRING_BYTES <= bytes.length)
      return this.getShort(s, bytes, a, b - a, col);
    let slot = 0;
    if (on) {
      let h = 0x811c9dc5;
      for (let i = a; i < b; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
      slot = (h ^ (h >>> 15)) & this.mask;
      const cand = this.table[slot];
      const n = ++this.lookups[col]!;
      if (cand !== undefined && cand.length === b - a && sameBytes(cand, bytes, a)) {
        this.hits[col]!++;
        return cand;
      }
      if (n >= SAMPLE && this.hits[col]! * 2 < n) this.enabled[col] = 0;
    }
    // A slice of 13+ characters would be a V8 "sliced string" pinning the whole chunk; the table
    // outlives chunks, so its entries are fresh copies (a switched-off column's values are slices,
    // as the decoder's other values are).
    const v = on && b - a >= 13 ? bytes.toString('latin1', a, b) : s.slice(a, b);
    if (on) this.table[slot] = v;
    return v;
  }

  /**
   * {@link get} of a value of `n` ≤ 12 bytes with 12 bytes readable from `a`: found by its bytes
   * read as three 32-bit words (`ShortStrings`, as the JSON Lines reader finds values), so a hit
   * is three word comparisons, no byte loop and no string comparison. Measured on the vs-go CSV
   * range (country and event type): the byte hash and comparison took ~20 % of the row loop.
   */
  private getShort(s: string, bytes: Buffer, a: number, n: number, col: number): string {
    let view = this.view;
    if (this.viewOf !== bytes) {
      view = this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      this.viewOf = bytes;
    }
    return this.short.get(view, a, n, s, a, col);
  }
}

/**
 * Whether the characters of `cand` are bytes `[a, a + cand.length)` of `bytes` (ASCII there).
 * A loop rather than `s.startsWith(cand, a)` on the window's string: for the 2–10 character
 * values interned, the builtin call cost ~9 % of the CSV row loop (vs-go file profile), the loop
 * a fraction of it.
 */
function sameBytes(cand: string, bytes: Buffer, a: number): boolean {
  for (let k = 0; k < cand.length; k++) if (cand.charCodeAt(k) !== bytes[a + k]) return false;
  return true;
}
