/**
 * The partial windows of a split-parallel window (see `split-window.ts`): how a range's fired
 * windows cross threads ({@link WindowPacker}: columns of bounds and key indices in typed arrays
 * the worker transfers, each key sent once, the accumulators in one flat array — far less for
 * structured clone to copy and rebuild than one object per window), and how the merging thread
 * merges them ({@link WindowMerger}: as they come, in file order of the ranges, so the merged
 * windows are there when the last range ends and no range's windows wait as objects).
 */
import type { Aggregate } from '../aggregate/aggregate.ts';
import type { SavedWindow, WinState } from './window-core.ts';

/** Windows of one range, packed by {@link WindowPacker}: window `i` is at index `i` of each column. */
export interface PackedWindows {
  /** Canonical keys new in this message, in order; key indices count those of earlier messages first. */
  readonly keys: readonly string[];
  /** The key record of each of {@link keys}. */
  readonly keyRecs: readonly Readonly<Record<string, unknown>>[];
  /** The index of each window's key among the range's keys so far. */
  readonly key: Int32Array;
  readonly start: Float64Array;
  readonly end: Float64Array;
  /** The saved accumulators (`Aggregate.save`), one per aggregate, window after window. */
  readonly accs: readonly unknown[];
}

/** Packs one range's windows, message after message (it remembers the keys it has sent). */
export class WindowPacker {
  private readonly ids = new Map<string, number>();

  /** `windows` as one message; {@link transfers} lists what to transfer with it. */
  pack(windows: readonly SavedWindow[]): PackedWindows {
    const n = windows.length;
    const keys: string[] = [];
    const keyRecs: Readonly<Record<string, unknown>>[] = [];
    const key = new Int32Array(n);
    const start = new Float64Array(n);
    const end = new Float64Array(n);
    const accs: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const w = windows[i] as SavedWindow;
      let id = this.ids.get(w.ck);
      if (id === undefined) {
        id = this.ids.size;
        this.ids.set(w.ck, id);
        keys.push(w.ck);
        keyRecs.push(w.key);
      }
      key[i] = id;
      start[i] = w.start;
      end[i] = w.end;
      for (const a of w.accs) accs.push(a);
    }
    return { keys, keyRecs, key, start, end, accs };
  }

  /** The buffers of `p` to transfer (not copy) with its message. */
  static transfers(p: PackedWindows): ArrayBuffer[] {
    return [p.key.buffer, p.start.buffer, p.end.buffer] as ArrayBuffer[];
  }
}

/** One bucket of merged windows: its bounds and its windows in the order their keys first came. */
export interface MergedBucket {
  readonly start: number;
  readonly end: number;
  readonly wins: Map<string, WinState>;
}

/**
 * Merges the windows of `ranges` byte ranges into buckets. Call {@link add} with a range's
 * windows in the order the range made them, and {@link done} once a range has no more; windows
 * of a range are merged as soon as every range before it is done (queued until then), so every
 * bucket holds its keys in the order a one-thread run meets them: ranges in file order, each in
 * its own order. Once every range is done, {@link buckets} gives the buckets in start order.
 */
export class WindowMerger {
  private readonly aggs: readonly Aggregate[];
  private readonly byStart = new Map<number, MergedBucket>();
  private readonly queued: (PackedWindows | readonly SavedWindow[])[][];
  private readonly finished: boolean[];
  /** Keys of each range's packed messages so far (canonical key, key record). */
  private readonly keys: { cks: string[]; recs: Readonly<Record<string, unknown>>[] }[];
  /** The first range not done: ranges before it are merged whole, its windows merge as they come. */
  private current = 0;

  constructor(aggs: readonly Aggregate[], ranges: number) {
    this.aggs = aggs;
    this.queued = Array.from({ length: ranges }, () => []);
    this.finished = new Array<boolean>(ranges).fill(false);
    this.keys = Array.from({ length: ranges }, () => ({ cks: [], recs: [] }));
  }

  /** Windows of range `range` (0-based), packed or as saved. */
  add(range: number, windows: PackedWindows | readonly SavedWindow[]): void {
    if (range === this.current) this.apply(range, windows);
    else (this.queued[range] as (PackedWindows | readonly SavedWindow[])[]).push(windows);
  }

  /** Range `range` has no more windows. */
  done(range: number): void {
    this.finished[range] = true;
    while (this.current < this.finished.length && this.finished[this.current] === true) {
      this.current++;
      const next = this.queued[this.current];
      if (next === undefined) break;
      for (const w of next) this.apply(this.current, w);
      this.queued[this.current] = [];
    }
  }

  /** The merged buckets in start order; only once every range is done. */
  buckets(): MergedBucket[] {
    if (this.current < this.finished.length) throw new Error('WindowMerger.buckets: a range is not done');
    return [...this.byStart.values()].sort((a, b) => a.start - b.start);
  }

  private apply(range: number, windows: PackedWindows | readonly SavedWindow[]): void {
    if (isSaved(windows)) {
      for (const sw of windows) this.merge(sw.ck, sw.key, sw.start, sw.end, sw.accs, 0);
      return;
    }
    const table = this.keys[range] as { cks: string[]; recs: Readonly<Record<string, unknown>>[] };
    for (const ck of windows.keys) table.cks.push(ck);
    for (const rec of windows.keyRecs) table.recs.push(rec);
    const width = this.aggs.length;
    for (let i = 0; i < windows.key.length; i++) {
      const k = windows.key[i] as number;
      const ck = table.cks[k] as string;
      this.merge(
        ck,
        table.recs[k] as Readonly<Record<string, unknown>>,
        windows.start[i] as number,
        windows.end[i] as number,
        windows.accs,
        i * width,
      );
    }
  }

  /** Merges one window (its saved accumulators at `accs[at…]`) into its bucket. */
  private merge(
    ck: string,
    keyRec: Readonly<Record<string, unknown>>,
    start: number,
    end: number,
    accs: readonly unknown[],
    at: number,
  ): void {
    const aggs = this.aggs;
    let b = this.byStart.get(start);
    if (b === undefined) {
      b = { start, end, wins: new Map() };
      this.byStart.set(start, b);
    }
    const w = b.wins.get(ck);
    if (w === undefined) {
      const loaded: unknown[] = new Array(aggs.length);
      for (let j = 0; j < aggs.length; j++) loaded[j] = (aggs[j] as Aggregate).load(accs[at + j]);
      b.wins.set(ck, { ck, keyRec, accs: loaded, revision: 0, dirty: true, queued: false, n: 0 });
    } else
      for (let j = 0; j < aggs.length; j++) {
        const g = aggs[j] as Aggregate;
        w.accs[j] = g.merge(w.accs[j], g.load(accs[at + j]));
      }
  }
}

function isSaved(w: PackedWindows | readonly SavedWindow[]): w is readonly SavedWindow[] {
  return Array.isArray(w);
}
