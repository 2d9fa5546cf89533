/**
 * Session windows as a {@link WindowAlgorithm}: each key's sessions (kept and merged by
 * {@link MergingSessions}), and heaps of their fire and purge times. An event opens the session
 * `[ts, ts + gap)` of its key, which merges with every session it overlaps; a merge that moves a
 * session's start, or swallows one already shown, retracts the results shown under the old
 * `windowStart`. An event is late only when it merges with nothing and its own session would be
 * dropped already.
 */
import type { Aggregate } from '../aggregate/aggregate.ts';
import type { Batch, RecordMeta } from '../core/message.ts';
import { type MergeFunction, MergingSessions, type Session } from './session-merging.ts';
import type { SavedWindow, WindowAlgorithm, WindowCore, WinState } from './window-core.ts';
import { CHUNK, iso } from './window-records.ts';

/** A session window. */
interface Win extends WinState, Session {
  /** The watermark passed its end (at least one on-time result was due). */
  closed: boolean;
}

interface HeapEntry {
  readonly t: number;
  readonly w: Win;
  /** The session's end when pushed: an entry whose session has moved since is stale. */
  readonly end: number;
}

/** A min-heap by `t`, for session fire and purge times (entries are checked on pop). */
class TimeHeap {
  private readonly a: HeapEntry[] = [];
  peek(): HeapEntry | undefined {
    return this.a[0];
  }
  push(e: HeapEntry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as HeapEntry).t <= e.t) break;
      a[i] = a[p] as HeapEntry;
      i = p;
    }
    a[i] = e;
  }
  pop(): HeapEntry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && (a[r] as HeapEntry).t < (a[l] as HeapEntry).t ? r : l;
      if ((a[c] as HeapEntry).t >= last.t) break;
      a[i] = a[c] as HeapEntry;
      i = c;
    }
    a[i] = last;
    return top;
  }
  clear(): void {
    this.a.length = 0;
  }
}

/** Keyed session windows with inactivity gap `gap` ms; see the module comment. */
export class SessionWindowSet<T> implements WindowAlgorithm<T> {
  private readonly sessions = new MergingSessions<Win>();
  private readonly fireHeap = new TimeHeap();
  private readonly purgeHeap = new TimeHeap();
  /** Folds merged sessions into the target (made once: `merge` is called per merging event). */
  private readonly absorb: MergeFunction<Win>;

  private readonly core: WindowCore<T>;
  /** Inactivity gap, ms. */
  private readonly gap: number;

  constructor(core: WindowCore<T>, gap: number) {
    this.core = core;
    this.gap = gap;
    this.absorb = (hits, start) => this.absorbInto(hits, start);
  }

  ingest(batch: Batch<T>, now: number, wm: number): void {
    const core = this.core;
    const records = batch.records;
    const meta = core.metas(batch);
    const keys = core.keys;
    const n = records.length;
    for (let c0 = 0; c0 < n; c0 += CHUNK) {
      const c1 = Math.min(c0 + CHUNK, n);
      if (keys.keyFields !== undefined) keys.lookAhead(records, c0, c1);
      for (let i = c0; i < c1; i++) {
        const r = records[i] as T;
        const m = meta?.[i];
        const ts = core.time(r, m, i, now);
        if (Number.isNaN(ts)) continue;
        const ck = core.key(r, m, i, i - c0);
        if (ck !== undefined) this.add(r, m, i, ck, ts, wm);
      }
    }
  }

  /** Adds the event at `ts` (inputs prepared) to its key's session, merging those it overlaps. */
  private add(r: T, m: RecordMeta | undefined, i: number, ck: string, ts: number, wm: number): void {
    const core = this.core;
    const end = ts + this.gap;
    const hits = this.sessions.overlapping(ck, ts, end);
    if (hits === undefined) {
      if (end - 1 + core.plan.lateness <= wm) {
        core.lateEvent(r, m, i, ts, wm, end, 'session');
        return;
      }
      const w = this.newSession(ck, core.keys.keyRec ?? core.keys.record(r), ts, end);
      core.addTo(w, ts);
      this.sessions.insert(w);
      this.schedule(w);
      if (end - 1 <= wm) this.closeLate(w);
      return;
    }
    const grew = this.sessions.merge(hits, ts, end, this.absorb);
    const w = hits[0] as Win;
    core.addTo(w, ts);
    if (grew) this.schedule(w);
    if (w.end - 1 <= wm) this.closeLate(w);
    else w.closed = false;
  }

  /**
   * A new open session `[start, end)` of key `ck` (not yet in the set). Its `WinState` fields are
   * written out as in `AlignedWindowSet.newWindow`, not shared through a spread: one literal per
   * window type builds each window in one step with one hidden class.
   */
  private newSession(ck: string, keyRec: Readonly<Record<string, unknown>>, start: number, end: number): Win {
    this.core.openWindows++;
    return {
      ck,
      keyRec,
      accs: this.core.newAccs(),
      revision: 0,
      dirty: false,
      queued: false,
      n: 0,
      start,
      end,
      closed: false,
      alive: true,
    };
  }

  /**
   * The {@link MergeFunction}: `hits[0]` takes the accumulators, event counts and highest revision
   * of the others; results shown under a `windowStart` that no longer exists are retracted.
   */
  private absorbInto(hits: readonly Win[], start: number): void {
    const core = this.core;
    const aggs = core.aggs;
    const w = hits[0] as Win;
    for (let k = 1; k < hits.length; k++) {
      const s = hits[k] as Win;
      for (let j = 0; j < aggs.length; j++) w.accs[j] = (aggs[j] as Aggregate).merge(w.accs[j], s.accs[j]);
      if (s.revision > w.revision) w.revision = s.revision;
      w.n += s.n;
      if (s.revision > 0) core.retract(s, s.start, s.end);
      core.openWindows--;
    }
    if (start < w.start && w.revision > 0) core.retract(w, w.start, w.end);
  }

  /** A session that is already past its end: its result goes out after this batch. */
  private closeLate(w: Win): void {
    w.closed = true;
    this.core.queue(w);
  }

  private schedule(w: Win): void {
    this.fireHeap.push({ t: w.end - 1, w, end: w.end });
    this.purgeHeap.push({ t: w.end - 1 + this.core.plan.lateness, w, end: w.end });
  }

  drainPending(): void {
    const core = this.core;
    const pending = core.pending as Win[];
    if (pending.length === 0) return;
    for (const w of pending) {
      w.queued = false;
      if (w.dirty && w.alive) core.result(w, iso(w.start), iso(w.end));
    }
    core.pending = [];
  }

  advance(wm: number): void {
    const core = this.core;
    const { fireHeap, purgeHeap } = this;
    for (let e = fireHeap.peek(); e !== undefined && e.t <= wm; e = fireHeap.peek()) {
      fireHeap.pop();
      const w = e.w;
      if (!w.alive || w.end !== e.end) continue;
      w.closed = true;
      if (w.dirty) core.result(w, iso(w.start), iso(w.end));
    }
    for (let e = purgeHeap.peek(); e !== undefined && e.t <= wm; e = purgeHeap.peek()) {
      purgeHeap.pop();
      const w = e.w;
      if (!w.alive || w.end !== e.end) continue;
      core.openWindows--;
      this.sessions.retire(w);
    }
  }

  /** Sessions fire as `advance` reaches them: nothing is queued. */
  fireSome(): void {}

  earlyFiring(): void {
    const core = this.core;
    for (const list of this.sessions.lists())
      for (const w of list) if (w.dirty && !w.closed) core.result(w, iso(w.start), iso(w.end));
  }

  /** Sessions are event time only. */
  firstEnd(): number | undefined {
    return undefined;
  }

  save(): SavedWindow[] {
    const windows: SavedWindow[] = [];
    for (const list of this.sessions.lists())
      for (const w of list) windows.push(this.core.save(w, w.start, w.end, w.closed));
    return windows;
  }

  restore(windows: readonly SavedWindow[]): void {
    const core = this.core;
    this.sessions.clear();
    this.fireHeap.clear();
    this.purgeHeap.clear();
    for (const sw of windows) {
      const w = this.newSession(sw.ck, sw.key, sw.start, sw.end);
      w.closed = sw.closed;
      core.load(w, sw);
      this.sessions.insert(w);
      this.schedule(w);
    }
  }
}
