/**
 * Tumbling and sliding windows as a {@link WindowAlgorithm}. Windows are aligned to a grid
 * (`offset + k × step`, each `size` long; tumbling: `step = size`), so windows of every key that
 * share a start form one {@link Bucket}, which fires — and later is dropped — as a whole. An event
 * belongs to `size / step` windows; it is late when the newest of them is dropped already.
 *
 * The live windows of a key form a list from newest to oldest start (`older`/`newer`), whose head
 * is in `latest`: an event finds its window with one map lookup (in order, the head is its window).
 * One map rather than one per bucket: a key's new window updates its entry, or reuses its purged
 * last window in place (a husk, see `purge`), instead of inserting into a fresh map every window
 * length — with many keys and few events per key and window, that churn (map growth, new objects
 * promoted and then dropped) was most of the cost.
 */
import type { Aggregate } from '../aggregate/aggregate.ts';
import type { Batch } from '../core/message.ts';
import type { SlidingWindows, TumblingWindows } from './assigners.ts';
import { KeyTable } from './key-table.ts';
import {
  NO_ACCS,
  type SavedWindow,
  type WindowAlgorithm,
  type WindowCore,
  type WinState,
} from './window-core.ts';
import { CHUNK, iso } from './window-records.ts';

/** A tumbling or sliding window: one key in one {@link Bucket} (closed once the bucket fired). */
interface AlignedWin extends WinState {
  /** Its bucket; {@link PURGED} for a husk. */
  b: Bucket;
  older: AlignedWin | undefined;
  newer: AlignedWin | undefined;
  /** For a husk: the purge (count) that made it one; {@link GONE} once it is out of `latest`. */
  diedAt: number;
}

/** `AlignedWin.diedAt` of a window taken out of `latest` (which a key's next window never reuses). */
const GONE = -1;

/** Whether `w`, once its key's entry in `latest`, still is (see `WindowKeys.lookAhead`'s hints). */
const isLatest = (w: AlignedWin): boolean => w.newer === undefined && w.diedAt !== GONE;

/** Tumbling/sliding windows that share a start: one per key, in creation order. */
interface Bucket {
  readonly start: number;
  readonly end: number;
  readonly startIso: string;
  readonly endIso: string;
  readonly wins: AlignedWin[];
  fired: boolean;
}

/** A bucket being fired: its results are made from window `next` on; `gone`: purge them too. */
interface Firing {
  readonly b: Bucket;
  readonly gone: boolean;
  next: number;
}

/** The bucket of a husk: a purged window kept for its key's next window (see `purge`). */
const PURGED: Bucket = {
  start: Number.NEGATIVE_INFINITY,
  end: Number.NEGATIVE_INFINITY,
  startIso: '',
  endIso: '',
  wins: [],
  fired: true,
};

/** Keyed tumbling or sliding windows of `assigner`; see the module comment. */
export class AlignedWindowSet<T> implements WindowAlgorithm<T> {
  /** Window length, the step between window starts, and the grid's offset, ms. */
  private readonly size: number;
  private readonly step: number;
  private readonly offset: number;
  // Buckets by window start, their starts in ascending order, and each key's newest live window.
  private readonly buckets = new Map<number, Bucket>();
  private starts: number[] = [];
  private lastBucket: Bucket | undefined;
  private readonly latest = new KeyTable<AlignedWin>();
  /** Husks (see `purge`) made by the last purge of buckets, and by the one before. */
  private husks: AlignedWin[] = [];
  private oldHusks: AlignedWin[] = [];
  /** Purges of buckets so far (numbers the husks' generations). */
  private purges = 0;
  /** Every aggregate's accumulator is a number (count, sum…): a husk keeps its array. */
  private readonly numericAccs: boolean;
  /** The newest window of each key of the current chunk, as `WindowKeys.lookAhead` found it. */
  private readonly heads: (AlignedWin | undefined)[] = new Array(CHUNK);
  /** Buckets whose results are still to be made (see `advance`), in order. */
  private firing: Firing[] = [];

  private readonly core: WindowCore<T>;

  constructor(core: WindowCore<T>, assigner: TumblingWindows | SlidingWindows) {
    this.core = core;
    this.size = assigner.size;
    this.step = assigner.kind === 'sliding' ? assigner.slide : assigner.size;
    this.offset = assigner.offset;
    this.numericAccs = core.aggs.every((g) => typeof g.create() === 'number');
  }

  ingest(batch: Batch<T>, now: number, wm: number): void {
    const core = this.core;
    const records = batch.records;
    const meta = core.metas(batch);
    const keys = core.keys;
    const kf = keys.keyFields;
    const { size, step, offset, heads, latest } = this;
    const lateness = core.plan.lateness;
    const tumbling = step === size;
    const n = records.length;
    // Records go in chunks, each in two passes: the first computes the keys and looks up their
    // newest windows, the second does the work (see `WindowKeys.lookAhead`).
    for (let c0 = 0; c0 < n; c0 += CHUNK) {
      const c1 = Math.min(c0 + CHUNK, n);
      if (kf !== undefined) keys.lookAhead(records, c0, c1, latest, heads, isLatest);
      for (let i = c0; i < c1; i++) {
        const r = records[i] as T;
        const m = meta?.[i];
        const ts = core.time(r, m, i, now);
        if (Number.isNaN(ts)) continue;
        // Its newest window, by floor division rather than `%` (several times cheaper). The
        // quotient can round up to the next integer only for a fractional time: step back then.
        let start = Math.floor((ts - offset) / step) * step + offset;
        if (start > ts) start -= step;
        // Late: every window of the event is dropped already.
        if (start + size - 1 + lateness <= wm) {
          core.lateEvent(r, m, i, ts, wm, start + size, 'window');
          continue;
        }
        const ck = core.key(r, m, i, i - c0);
        if (ck === undefined) continue;
        // The head `lookAhead` found, unless a record before it in the chunk made a newer one.
        let head = kf === undefined ? undefined : heads[i - c0];
        if (head === undefined || head.newer !== undefined) head = latest.get(ck);
        // Tumbling, into the key's newest window (nearly every event): what `add` would do.
        if (tumbling && head !== undefined && head.b.start === start) {
          core.addTo(head, ts);
          if (head.b.fired) core.queue(head);
          continue;
        }
        this.add(r, ck, ts, start, wm, head);
      }
    }
  }

  /**
   * Adds the prepared inputs to every window of the event at `ts` whose newest window starts at
   * `start` (tumbling: that one; sliding: `size / slide` of them, except those dropped already),
   * creating the windows that do not exist yet.
   */
  private add(r: T, ck: string, ts: number, start: number, wm: number, head: AlignedWin | undefined): void {
    const { size, step, core } = this;
    const lateness = core.plan.lateness;
    const keyRec = core.keys.keyRec;
    // Walk the key's windows (newest first) alongside the event's windows (newest first).
    let w = head;
    let newer: AlignedWin | undefined;
    for (let s = start; s > ts - size; s -= step) {
      if (s + size - 1 + lateness <= wm) break; // older windows of a sliding event are dropped too
      while (w !== undefined && w.b.start > s) {
        newer = w;
        w = w.older;
      }
      if (w === undefined || w.b.start !== s) {
        if (w !== undefined && w.b === PURGED)
          w = this.revive(w, keyRec, s); // w is the head
        else {
          // The key's record is shared by all its windows; only a key's first window builds it.
          const kr = keyRec ?? (newer ?? w)?.keyRec ?? core.keys.record(r);
          w = this.newWindow(ck, kr, s, newer, w);
        }
      }
      core.addTo(w, ts);
      if (w.b.fired) core.queue(w);
      newer = w;
      w = w.older;
    }
  }

  /** The bucket of windows starting at `start`, created when missing. */
  private bucketAt(start: number): Bucket {
    let b = this.lastBucket;
    if (b === undefined || b.start !== start) {
      b = this.buckets.get(start) ?? this.newBucket(start, start + this.size);
      this.lastBucket = b;
    }
    return b;
  }

  /** A new window of key `ck` starting at `start`, linked between `newer` and `older`. */
  private newWindow(
    ck: string,
    keyRec: Readonly<Record<string, unknown>>,
    start: number,
    newer: AlignedWin | undefined,
    older: AlignedWin | undefined,
  ): AlignedWin {
    const b = this.bucketAt(start);
    const w: AlignedWin = {
      ck,
      keyRec,
      accs: this.core.newAccs(),
      revision: 0,
      dirty: false,
      queued: false,
      n: 0,
      b,
      older,
      newer,
      diedAt: 0,
    };
    b.wins.push(w);
    if (older !== undefined) older.newer = w;
    if (newer !== undefined) newer.older = w;
    else this.latest.set(ck, w);
    this.core.openWindows++;
    return w;
  }

  /**
   * Reuses a husk (see `purge`) as its key's new window starting at `start`: no allocation, and
   * its entry in `latest` stays as it is.
   */
  private revive(
    w: AlignedWin,
    keyRec: Readonly<Record<string, unknown>> | undefined,
    start: number,
  ): AlignedWin {
    const b = this.bucketAt(start);
    if (keyRec !== undefined) w.keyRec = keyRec;
    if (w.accs === NO_ACCS) w.accs = this.core.newAccs();
    else {
      const aggs = this.core.aggs;
      const accs = w.accs;
      for (let j = 0; j < aggs.length; j++) accs[j] = (aggs[j] as Aggregate).create();
    }
    w.revision = 0;
    w.dirty = false;
    w.queued = false;
    w.n = 0;
    w.b = b;
    b.wins.push(w);
    this.core.openWindows++;
    return w;
  }

  /**
   * Takes a purged window out of its key's list. Buckets are purged oldest first, so `w` is its
   * key's oldest window. When it is also the newest — the key had no event since — it stays in
   * `latest` as a husk that the key's next window reuses (no map delete and re-insert, no new
   * object); husks not reused within one more bucket purge are deleted by `dropHusks`.
   */
  private purge(w: AlignedWin): void {
    const { newer, older } = w;
    if (older !== undefined) older.newer = newer;
    if (newer !== undefined) newer.older = older;
    else if (older !== undefined) this.latest.set(w.ck, older);
    if (newer !== undefined || older !== undefined) {
      // Gone for good, but a pair's hint (see `WindowKeys.lookAhead`) may still hold it until the
      // pair's next event: unlinked, it keeps neither its dropped bucket (and through it every
      // window of that bucket) nor its neighbours alive.
      w.b = PURGED;
      w.newer = undefined;
      w.older = undefined;
      w.diedAt = GONE;
      return;
    }
    w.b = PURGED;
    w.older = undefined;
    // Accumulators that are objects (sketches…) are released now; numbers are simply reset on reuse.
    if (!this.numericAccs) w.accs = NO_ACCS;
    w.diedAt = this.purges;
    this.husks.push(w);
  }

  /**
   * Called after each purge of buckets: deletes the husks of the purge before this one that were
   * not reused since, so `latest` holds only keys seen within about two bucket lengths.
   */
  private dropHusks(): void {
    const old = this.oldHusks;
    const epoch = this.purges - 1;
    for (const h of old)
      if (h.b === PURGED && h.diedAt === epoch) {
        this.latest.delete(h.ck);
        h.diedAt = GONE;
      }
    old.length = 0;
    this.oldHusks = this.husks;
    this.husks = old;
    this.purges++;
  }

  private newBucket(start: number, end: number): Bucket {
    const b: Bucket = { start, end, startIso: iso(start), endIso: iso(end), wins: [], fired: false };
    this.buckets.set(start, b);
    const s = this.starts;
    if (s.length === 0 || (s[s.length - 1] as number) < start) s.push(start);
    else {
      let lo = 0;
      let hi = s.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((s[mid] as number) < start) lo = mid + 1;
        else hi = mid;
      }
      s.splice(lo, 0, start);
    }
    return b;
  }

  drainPending(): void {
    const core = this.core;
    const pending = core.pending as AlignedWin[];
    if (pending.length === 0) return;
    for (const w of pending) {
      w.queued = false;
      if (w.dirty) core.result(w, w.b.startIso, w.b.endIso);
    }
    core.pending = [];
  }

  /**
   * Buckets fire once the watermark reaches their end and are dropped once it passes their
   * allowed lateness too (a prefix of the fired ones, as buckets are sorted and equally long).
   * Firing is queued: `fireSome` makes the results in bounded batches, each emitted before the
   * next is made, so a bucket of many keys is never one huge batch (which would outlive the
   * young generation); a bucket that fires and is dropped at once gets one pass over its windows.
   */
  advance(wm: number): void {
    const lateness = this.core.plan.lateness;
    const starts = this.starts;
    let drop = 0;
    for (let i = 0; i < starts.length; i++) {
      if ((this.buckets.get(starts[i] as number) as Bucket).end - 1 + lateness > wm) break;
      drop++;
    }
    if (drop > 0) this.dropHusks(); // before this purge makes new husks
    for (let i = 0; i < starts.length; i++) {
      const b = this.buckets.get(starts[i] as number) as Bucket;
      if (b.end - 1 > wm) break;
      const gone = i < drop;
      if (!b.fired) {
        b.fired = true;
        this.firing.push({ b, gone, next: 0 });
      } else if (gone) for (const w of b.wins) this.purge(w);
      if (!gone) continue;
      this.buckets.delete(b.start);
      this.core.openWindows -= b.wins.length;
      if (this.lastBucket === b) this.lastBucket = undefined;
    }
    if (drop > 0) this.starts = starts.slice(drop);
  }

  fireSome(limit: number): void {
    const firing = this.firing;
    const core = this.core;
    while (firing.length > 0 && core.out.length < limit) {
      const f = firing[0] as Firing;
      const { b, gone } = f;
      const wins = b.wins;
      let i = f.next;
      for (; i < wins.length && core.out.length < limit; i++) {
        const w = wins[i] as AlignedWin;
        if (w.dirty) core.result(w, b.startIso, b.endIso);
        if (gone) this.purge(w);
      }
      f.next = i;
      if (i === wins.length) firing.shift();
    }
  }

  /**
   * For a split-parallel worker (see `split-window.ts`), instead of {@link fireSome}: every
   * window of the buckets {@link advance} fired, saved (partial accumulators, in the order their
   * keys first appeared), purging those past lateness. A fired bucket's results are then made
   * by the thread that merges the splits.
   */
  takeFired(): SavedWindow[] {
    const saved: SavedWindow[] = [];
    for (const { b, gone } of this.firing)
      for (const w of b.wins) {
        saved.push(this.core.save(w, b.start, b.end, false));
        if (gone) this.purge(w);
      }
    this.firing = [];
    return saved;
  }

  earlyFiring(): void {
    for (const start of this.starts) {
      const b = this.buckets.get(start) as Bucket;
      if (b.fired) continue;
      for (const w of b.wins) if (w.dirty) this.core.result(w, b.startIso, b.endIso);
    }
  }

  firstEnd(): number | undefined {
    const first = this.starts[0];
    return first === undefined ? undefined : (this.buckets.get(first) as Bucket).end;
  }

  save(): SavedWindow[] {
    const windows: SavedWindow[] = [];
    for (const b of this.buckets.values())
      for (const w of b.wins) windows.push(this.core.save(w, b.start, b.end, b.fired));
    return windows;
  }

  restore(windows: readonly SavedWindow[]): void {
    this.buckets.clear();
    this.starts = [];
    this.lastBucket = undefined;
    this.latest.clear();
    this.core.keys.forgetHints();
    this.firing = [];
    this.husks = [];
    this.oldHusks = [];
    // Oldest first, so each window becomes the head of its key's list.
    for (const sw of [...windows].sort((x, y) => x.start - y.start)) {
      const w = this.newWindow(sw.ck, sw.key, sw.start, undefined, this.latest.get(sw.ck));
      if (sw.closed) w.b.fired = true;
      this.core.load(w, sw);
    }
  }
}
