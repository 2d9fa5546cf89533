/**
 * What both window algorithms (aligned buckets in `aligned-windows.ts`, merging sessions in
 * `session-windows.ts`) share with the operator (`window.ts`): the {@link WindowAlgorithm}
 * interface the operator drives, the state every window holds ({@link WinState}), and
 * {@link WindowCore} — reading a record's time and aggregate inputs, accumulators, results, late
 * events, dead letters and the counters of `metrics()`.
 */
import type { Aggregate } from '../aggregate/aggregate.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Batch, RecordMeta } from '../core/message.ts';
import type { StageContext } from '../core/stage.ts';
import { describeBadTimestamp } from './timestamp.ts';
import { type AddAll, addAll, type NewAccs, newAccs, type PrepareAll, prepareAll } from './window-kernels.ts';
import type { WindowPlan } from './window-options.ts';
import { iso, type ResultMaker, resultMaker, retraction, WindowKeys } from './window-records.ts';

/** What every window holds: its key, accumulators and emission state. */
export interface WinState {
  ck: string;
  keyRec: Readonly<Record<string, unknown>>;
  accs: unknown[];
  revision: number;
  /** Changed since its last result. */
  dirty: boolean;
  /** Queued in `WindowCore.pending` for an emission after the batch. */
  queued: boolean;
  /** Events since its last result (count trigger). */
  n: number;
}

/** One window in a `WindowSnapshot` (its format is fixed: checkpoints written before must restore). */
export interface SavedWindow {
  readonly ck: string;
  readonly key: Readonly<Record<string, unknown>>;
  readonly start: number;
  readonly end: number;
  readonly accs: readonly unknown[];
  readonly revision: number;
  readonly dirty: boolean;
  readonly closed: boolean;
  readonly n: number;
}

/**
 * A window algorithm: where events go and when windows fire and are dropped. The operator picks
 * one when it is built and calls it once per batch, signal or timer, never per record; results
 * go to `WindowCore.out`, which the operator sends after each call. Windows fire when the
 * watermark reaches `end − 1` and are dropped when it reaches `end − 1 + allowedLateness`.
 */
export interface WindowAlgorithm<T> {
  /**
   * Puts every record of `batch` into its windows, judging lateness against `wm` (the watermark
   * before the batch); `now` is the clock, also a record's time in processing time. A record it
   * cannot take goes to the late or the dead-letter output.
   */
  ingest(batch: Batch<T>, now: number, wm: number): void;
  /** Makes the results queued in `WindowCore.pending` (late updates, count firings) that are dirty. */
  drainPending(): void;
  /** The watermark moved to `wm`: fires windows whose end it reached, drops those past lateness. */
  advance(wm: number): void;
  /** Makes results of firings `advance` queued until `WindowCore.out` holds `limit` records or none is left. */
  fireSome(limit: number): void;
  /** Early results of every window that changed since its last result and has not fired. */
  earlyFiring(): void;
  /** End of the oldest open window (the next processing-time firing), if any. */
  firstEnd(): number | undefined;
  /** Every live window, for a snapshot. */
  save(): SavedWindow[];
  /** Replaces every window with `windows` (from {@link save}, possibly of an earlier build). */
  restore(windows: readonly SavedWindow[]): void;
}

/** The accumulators of a purged window. */
export const NO_ACCS: unknown[] = [];

/**
 * The operator's per-record machinery and output buffers, shared with its algorithm. Methods
 * called per record (`time`, `key`, `addTo`) allocate nothing on their good path. `out`,
 * `pending` and the late buffers are filled during one operator call and emptied at its end.
 */
export class WindowCore<T> {
  /** The operator's options, parsed. */
  readonly plan: WindowPlan;
  /** Reads the key of each record. */
  readonly keys: WindowKeys;
  /** `plan.aggs`: the aggregates, in result order. */
  readonly aggs: readonly Aggregate[];
  /** The stage context, set by the operator's `open`. */
  ctx!: StageContext;
  /** Results (and retractions) made during this call. */
  out: Record<string, unknown>[] = [];
  /** Windows with a result due after the batch (see {@link queue}). */
  pending: WinState[] = [];
  lateRecs: LateEvent<T>[] = [];
  lateMeta: (RecordMeta | undefined)[] = [];
  /** Live windows, late events and results so far, for `metrics()`. */
  openWindows = 0;
  lateCount = 0;
  results = 0;
  /** Characters of the last key read (for the state estimate). */
  keyChars = 0;
  /** The batch being ingested when `metas` left its meta unread, and the origin's meta then. */
  private lazy: Batch<T> | undefined;
  private shared: RecordMeta | undefined;
  /** Builds a result record; `values` holds the aggregate results while it runs. */
  private readonly makeResult: ResultMaker;
  private readonly values: unknown[];
  /** The prepared aggregate inputs of the current record (see {@link key}). */
  private readonly scratch: unknown[];
  /** The per-record aggregate work, generated for these aggregates (see `window-kernels.ts`). */
  private readonly prepareAll: PrepareAll;
  private readonly addAll: AddAll;
  /** Fresh accumulators, one per aggregate. */
  readonly newAccs: NewAccs;

  constructor(plan: WindowPlan) {
    this.plan = plan;
    this.keys = new WindowKeys(plan.keyFields, plan.keyFn);
    this.aggs = plan.aggs;
    this.scratch = new Array(plan.aggs.length);
    this.values = new Array(plan.aggs.length);
    this.makeResult = resultMaker(plan.keyFields, plan.names);
    this.prepareAll = prepareAll(plan.aggs, plan.getters);
    this.addAll = addAll(plan.aggs);
    this.newAccs = newAccs(plan.aggs);
  }

  /**
   * The meta `ingest` passes per record for `batch` (`m` of {@link time}, {@link key} and
   * {@link lateEvent}): `batch.meta`, or undefined when the batch has an `origin` and the time
   * is not read by a function of the record and its meta. Then the watermark sees the origin as
   * every record's meta, and `batch.meta[i]` is read only for a record that goes to the late or
   * the dead-letter output, so a byte source's batch never builds its meta on the good path (see
   * `io/positioned-batch.ts`). Called once per batch, before its records.
   */
  metas(batch: Batch<T>): readonly (RecordMeta | undefined)[] | undefined {
    const o = batch.origin;
    const p = this.plan;
    if (o === undefined || (p.extract !== undefined && p.timeField === undefined)) {
      this.lazy = undefined;
      this.shared = undefined;
      return batch.meta;
    }
    this.lazy = batch;
    const s = this.shared;
    if (s === undefined || s.source !== o.source || s.position?.partition !== o.partition)
      this.shared =
        o.partition === undefined
          ? { source: o.source }
          : { source: o.source, position: { partition: o.partition } };
    return undefined;
  }

  /** The meta of the `i`-th record of the batch being ingested, given `m` from {@link metas}. */
  private metaAt(m: RecordMeta | undefined, i: number): RecordMeta | undefined {
    return m ?? this.lazy?.meta?.[i];
  }

  /**
   * The event time of `r`, the `i`-th record of the batch (`now` in processing time), observed by
   * the watermark generator; NaN when unreadable, after sending `r` to the dead-letter output.
   */
  time(r: T, m: RecordMeta | undefined, i: number, now: number): number {
    const p = this.plan;
    let ts = now;
    if (p.extract !== undefined) {
      ts = p.extract(r, m);
      if (!Number.isFinite(ts)) {
        this.dead(r, describeBadTimestamp(p.timeField, r, p.timeFormat), this.metaAt(m, i), 'time');
        return Number.NaN;
      }
    }
    p.generator?.observeMeta(ts, m ?? this.shared, now);
    return ts;
  }

  /**
   * The key of `r` (the `i`-th record of the batch and `j`-th of its chunk, see `WindowKeys.lookAhead`) with its aggregate
   * inputs prepared for {@link addTo}; undefined, after sending `r` to the dead-letter output, when
   * it has no key or a value an aggregate cannot take. All inputs are prepared before any window
   * changes, so a bad value leaves no trace.
   */
  key(r: T, m: RecordMeta | undefined, i: number, j: number): string | undefined {
    const ck = this.keys.read(r, j);
    if (ck === undefined) {
      this.dead(r, this.keys.problem, this.metaAt(m, i), 'key');
      return undefined;
    }
    this.keyChars = ck.length;
    try {
      this.prepareAll(r, this.scratch);
    } catch (err) {
      this.ctx.deadLetter(r, err, this.metaAt(m, i));
      return undefined;
    }
    return ck;
  }

  /** Adds the inputs {@link key} prepared to `w`; queues it when the count trigger is due. */
  addTo(w: WinState, ts: number): void {
    this.addAll(w.accs, this.scratch, ts);
    w.dirty = true;
    const c = this.plan.countTrigger;
    if (c !== undefined && ++w.n >= c) this.queue(w);
  }

  /** Queues `w` (once) for a result after the batch, made by `WindowAlgorithm.drainPending`. */
  queue(w: WinState): void {
    if (!w.queued) {
      w.queued = true;
      this.pending.push(w);
    }
  }

  /** Appends the next result of `w` to `out`. */
  result(w: WinState, startIso: string, endIso: string): void {
    w.revision++;
    w.dirty = false;
    w.n = 0;
    this.results++;
    const aggs = this.aggs;
    const values = this.values;
    for (let j = 0; j < aggs.length; j++) values[j] = (aggs[j] as Aggregate).result(w.accs[j]);
    this.out.push(this.makeResult(w.keyRec, startIso, endIso, values, w.revision));
  }

  /** Appends a retraction of window `[start, end)` of `w`'s key to `out` (its next revision). */
  retract(w: WinState, start: number, end: number): void {
    w.revision++;
    this.results++;
    this.out.push(retraction(w.keyRec, start, end, w.revision));
  }

  /**
   * Sends `r`, the `i`-th record of the batch (event time `ts`), to the `late` output, or to the
   * dead-letter output without one: its newest window `[…, end)` (a `what`: window or session) was
   * dropped at watermark `wm`.
   */
  lateEvent(
    r: T,
    mi: RecordMeta | undefined,
    i: number,
    ts: number,
    wm: number,
    end: number,
    what: string,
  ): void {
    this.lateCount++;
    const m = this.metaAt(mi, i);
    const lateness = wm - (end - 1 + this.plan.lateness);
    if (this.plan.late === undefined) {
      this.dead(
        r,
        `the event (time ${iso(ts)}) is later than allowedLateness: the watermark is ${iso(wm)}, ${lateness} ms past the point its ${what} was dropped; set \`late:\` to send late events to a side output`,
        m,
        'late',
      );
      return;
    }
    this.lateRecs.push({ event: r, eventTime: iso(ts), watermark: iso(wm), latenessMs: lateness });
    this.lateMeta.push(m);
  }

  /** Sends `r` to the dead-letter output with a `SLUICE_RECORD` error (`reason`: `what`). */
  dead(r: unknown, message: string, m: RecordMeta | undefined, what: string): void {
    this.ctx.deadLetter(
      r,
      new SluiceError(ErrorCode.RECORD, message, { stage: this.ctx.name, reason: what }),
      m,
    );
  }

  /** `w` as a {@link SavedWindow} of bounds `[start, end)`. */
  save(w: WinState, start: number, end: number, closed: boolean): SavedWindow {
    const aggs = this.aggs;
    return {
      ck: w.ck,
      key: w.keyRec,
      start,
      end,
      accs: w.accs.map((a, j) => (aggs[j] as Aggregate).save(a)),
      revision: w.revision,
      dirty: w.dirty,
      closed,
      n: w.n,
    };
  }

  /** Loads the accumulators and emission state of `sw` into `w`. */
  load(w: WinState, sw: SavedWindow): void {
    const aggs = this.aggs;
    w.accs = sw.accs.map((a, j) => (aggs[j] as Aggregate).load(a));
    w.revision = sw.revision;
    w.dirty = sw.dirty;
    w.n = sw.n;
  }
}

/** A late event as sent to the `late` output. */
export interface LateEvent<T = unknown> {
  /** The event as it arrived. */
  readonly event: T;
  /** Its event time (ISO-8601 UTC). */
  readonly eventTime: string;
  /** The watermark it arrived behind (ISO-8601 UTC). */
  readonly watermark: string;
  /** How far behind the point where its windows were dropped, ms (watermark − window end + 1 − allowed lateness, of its newest window). */
  readonly latenessMs: number;
}
