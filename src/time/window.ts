/**
 * The window operator: keyed tumbling, sliding and session windows in event time (or
 * tumbling windows in processing time), with watermark-driven firing, early and count
 * triggers, allowed lateness with *update* results, a `late` side output, and purging once
 * the watermark passes a window's end plus the allowed lateness.
 *
 * Result records hold the key fields by name, `windowStart` and `windowEnd` (ISO-8601 UTC), the
 * aggregate fields by name, `revision` (1 for a window's first result, 2, 3 … for each later
 * one) and `update` (true when the result replaces one emitted before), so a sink can upsert
 * on key + `windowStart`. A stop before the end of the input fires nothing under checkpoints
 * (open windows are in the checkpoint; the next run fires them) and, without checkpoints, emits
 * the open windows with `partial: true` (their counts cover only what was read before the stop).
 * When a late event merges session windows that were already
 * emitted, the sessions that no longer exist under their `windowStart` get a retraction: the
 * key fields, `windowStart`, `windowEnd`, the next `revision`, `update: true` and
 * `retracted: true` — delete that row.
 *
 * Time model. The watermark is the larger of the step's own (generated from the event times
 * it sees, per source partition, merged by minimum, and held back while a partition a source
 * owns has not delivered yet, see {@link WatermarkGenerator}) and the upstream in-band
 * watermark. It advances once per batch: every record of a batch is judged against the
 * watermark as it stood before the batch. A window `[start, end)` fires when the
 * watermark reaches `end − 1`; it is kept `allowedLateness` longer, during which a late event
 * updates it and an update is emitted after the batch; once the watermark reaches
 * `end − 1 + allowedLateness` it is dropped. An event whose every window is dropped already
 * goes to the `late` output (or, without one, to the dead-letter output: never silently).
 *
 * Layout. This file is the operator (watermark, timers, emission, snapshots); it drives one
 * `WindowAlgorithm` (`window-core.ts`, with what both algorithms share), chosen when it is built:
 * `AlignedWindowSet` (`aligned-windows.ts`, tumbling and sliding buckets) or `SessionWindowSet`
 * (`session-windows.ts`, over `MergingSessions` in `session-merging.ts`). Options and their one
 * validation are in `window-options.ts`, keys and result records in `window-records.ts`.
 */

import { accumulatorBytes, SMALL_ACCUMULATOR_BYTES } from '../aggregate/aggregate.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { INPUT_PARTITIONS, InputPartitions } from '../core/input-partitions.ts';
import { type Batch, batchOf, type Signal, watermark } from '../core/message.ts';
import type { FieldUse } from '../core/projection.ts';
import type { SplitInput, SplitOperator } from '../core/split.ts';
import type { Emitter, Operator, Source, StageContext } from '../core/stage.ts';
import { type StateBudget, stateBudgetOf } from '../core/state-budget.ts';
import { AlignedWindowSet } from './aligned-windows.ts';
import { SessionWindowSet } from './session-windows.ts';
import { splitWindowSource } from './split-window.ts';
import type { WatermarkGenerator } from './watermark.ts';
import { type SavedWindow, type WindowAlgorithm, WindowCore } from './window-core.ts';
import { type WindowOptions, type WindowPlan, windowPlan, windowPorts } from './window-options.ts';

export type { LateEvent, SavedWindow } from './window-core.ts';
export {
  type DurationInput,
  type KeyValue,
  RESULT_FIELDS,
  type WindowOptions,
  windowPorts,
} from './window-options.ts';

/**
 * Estimated heap bytes of one window besides its key and accumulators: the window object, its
 * accumulator array, its slots in the key map and the bucket, and the key record (measured ~250 B
 * with a 10-character key and `count()`).
 */
const WINDOW_OVERHEAD_BYTES = 260;

/** Results per emitted batch at most (pending updates may add up to one input batch's worth). */
const RESULT_BATCH = 4096;

/**
 * Builds a window operator; see the module comment for the time model and result shape.
 * Throws a `SLUICE_CONFIG` error listing every problem of `options`.
 *
 * @example
 * stream.via(windowOperator({
 *   key: ['country', 'event_type'], time: 'ts', tumbling: '1m',
 *   watermark: { maxOutOfOrder: '5m' }, allowedLateness: '1h',
 *   aggregate: { count: 'count()', amount: 'sum(amount)', p99: 'percentile(risk, 0.99)' },
 *   late: 'late',
 * }));
 */
export function windowOperator<T = unknown>(options: WindowOptions<T>): WindowOperator<T> {
  return new WindowOperator<T>(windowPlan(options), options);
}

/**
 * The window operator; build it with {@link windowOperator}. It owns the watermark, the timers
 * and the emission of what its algorithm (aligned buckets or merging sessions, chosen once here)
 * produced: after every call, results in batches of at most `RESULT_BATCH`, then late events,
 * then the watermark when it moved.
 */
export class WindowOperator<T = unknown> implements Operator<T, Record<string, unknown>>, SplitOperator {
  /** Side ports it may emit on (the `late` output when configured). */
  readonly ports: readonly string[];
  /**
   * The top-level fields of an input record it reads (see `FieldReader` in `core/projection.ts`),
   * or undefined when a key or time function may read any or the `late` output passes records on.
   */
  readonly readsFields: readonly string[] | undefined;
  /**
   * Its time field as an `epochMillis` use (see `FieldUse`) when it reads it only as a time in the
   * `auto` format, where an ISO-8601 string and its epoch ms are the same time.
   */
  readonly fieldUses: ReadonlyMap<string, FieldUse> | undefined;
  private readonly p: WindowPlan;
  private readonly core: WindowCore<T>;
  private readonly windows: WindowAlgorithm<T>;
  /** The effective watermark (−Infinity until known). */
  private wm = Number.NEGATIVE_INFINITY;
  private upstream = Number.NEGATIVE_INFINITY;
  private forwarded = Number.NEGATIVE_INFINITY;
  private nextEarly: number | undefined;
  private budget: StateBudget | undefined;
  /** Estimated bytes of one window's accumulators. */
  private readonly accBytes: number;
  /** Set when a stop (not the end of the input) fires the open windows: results are partial. */
  private cutShort = false;
  /** The state budget's report words (see `reportState`), for a per-window estimate of `usageFor` bytes. */
  private usageFor = -1;
  private perKey = '';
  private readonly remedies: readonly string[];
  /** The options it was built from (what a split job's worker threads rebuild it with). */
  private readonly options: WindowOptions<T> | undefined;
  /** Why it runs on one thread although it asked for more (see {@link notSplit}). */
  private oneThread: string | undefined;

  /** Use {@link windowOperator}; `p` comes from `windowPlan` (of `options`, when given). */
  constructor(p: WindowPlan, options?: WindowOptions<T>) {
    this.p = p;
    this.options = options;
    this.ports = windowPorts(p);
    this.readsFields = fieldsRead(p);
    this.fieldUses = fieldUses(p, this.readsFields);
    this.core = new WindowCore<T>(p);
    const a = p.assigner;
    this.windows =
      a.kind === 'session' ? new SessionWindowSet(this.core, a.gap) : new AlignedWindowSet(this.core, a);
    this.accBytes = accumulatorBytes(p.aggs);
    this.remedies = [
      'shorten the window (or its `allowedLateness`) so fewer windows are open at once',
      'filter records before the window, or key by fewer distinct values',
      p.aggs.some((a) => (a.bytes ?? 0) > 500)
        ? 'drop or cheapen the large aggregates (`percentile`, `distinct`, `hdrPercentile`)'
        : 'split the input by key over several runs',
    ];
  }

  /** Threads it asked for (`parallelism`, `auto` resolved). */
  get parallelism(): number {
    return this.p.parallelism;
  }

  /** The source running it split-parallel over `input` (see `split-window.ts`), or why it cannot. */
  splitSource(input: SplitInput, source: Source): Source | string {
    return splitWindowSource(input, {
      options: this.options as WindowOptions | undefined,
      plan: this.p,
      operator: this as unknown as Operator<unknown, Record<string, unknown>>,
      source,
    });
  }

  /** Logged at `open`: it runs on one thread, and why. */
  notSplit(reason: string): void {
    this.oneThread = reason;
  }

  open(ctx: StageContext): void {
    this.core.ctx = ctx;
    if (this.oneThread !== undefined)
      ctx.log.warn(`Window \`${ctx.name}\` runs on one thread: ${this.oneThread}.`);
    // Partition scope runs one window per partition: each sees its one partition, in order.
    if (ctx.partitionState === undefined)
      this.p.generator?.attach(ctx.runScoped(INPUT_PARTITIONS, () => new InputPartitions()));
    this.budget = stateBudgetOf(ctx);
    if (this.p.early !== undefined) this.nextEarly = ctx.clock.now() + this.p.early;
  }

  metrics(): { windowsOpen: number; lateEvents: number; windowResults: number } {
    const c = this.core;
    return { windowsOpen: c.openWindows, lateEvents: c.lateCount, windowResults: c.results };
  }

  /** The current watermark (epoch ms; −Infinity before the first one). */
  get currentWatermark(): number {
    return this.wm;
  }

  process(batch: Batch<T>, out: Emitter<Record<string, unknown>>): Promise<void> {
    const p = this.p;
    const now = this.core.ctx.clock.now();
    const wm = p.processingTime ? now - 1 : this.wm;
    if (p.processingTime && wm > this.wm) {
      this.advance(wm);
      this.fireAll(); // before this batch's events can change those windows
    }
    this.windows.ingest(batch, now, wm);
    this.reportState();
    if (!p.processingTime) {
      const gen = p.generator;
      const next = Math.max(gen === undefined ? Number.NEGATIVE_INFINITY : gen.current(now), this.upstream);
      if (next > this.wm) this.advance(next);
    }
    return this.flush(out);
  }

  /**
   * Reports the live windows and their estimated bytes to the run's state budget, which throws
   * a `SLUICE_STATE_LIMIT` error past `maxKeys` or the run's `maxStateBytes`. Once per batch.
   */
  private reportState(): void {
    const budget = this.budget;
    if (budget === undefined) return;
    const core = this.core;
    const perWindow = WINDOW_OVERHEAD_BYTES + 2 * core.keyChars + this.accBytes;
    const p = this.p;
    // The words of the report are made again only when the per-window estimate changed (they
    // were a string join per batch: 2–3 % of a CSV → window run).
    if (this.usageFor !== perWindow) {
      this.usageFor = perWindow;
      this.perKey = `~${perWindow} B per window: ${p.names.map((n, j) => `${n} ${p.aggs[j]?.bytes ?? SMALL_ACCUMULATOR_BYTES} B`).join(', ')}, key and bookkeeping ${perWindow - this.accBytes} B`;
    }
    budget.report(this.core.ctx.name, {
      keys: core.openWindows,
      bytes: core.openWindows * perWindow,
      noun: 'open windows',
      perKey: this.perKey,
      maxKeys: p.maxKeys,
      remedies: this.remedies,
    });
  }

  /** Moves the watermark to `wm`: fires windows whose end it reached, drops those past lateness. */
  private advance(wm: number): void {
    this.fireAll();
    this.wm = wm;
    // Results queued during the batch (late updates, count firings) go before the firings they
    // may duplicate; a window already emitted and clean is not emitted again.
    this.windows.drainPending();
    this.windows.advance(wm);
  }

  private fireAll(): void {
    this.windows.fireSome(Number.POSITIVE_INFINITY);
  }

  /** Sends what this call produced: results, then late events, then the watermark. */
  private async flush(out: Emitter<Record<string, unknown>>): Promise<void> {
    const core = this.core;
    this.windows.drainPending();
    for (;;) {
      this.windows.fireSome(RESULT_BATCH);
      if (core.out.length === 0) break;
      const recs = core.out;
      core.out = [];
      if (this.cutShort) for (const r of recs) r.partial = true;
      await out.emit(batchOf(recs));
    }
    if (core.lateRecs.length > 0) {
      const recs = core.lateRecs;
      const metas = core.lateMeta;
      core.lateRecs = [];
      core.lateMeta = [];
      await out.emit(batchOf(recs as unknown as Record<string, unknown>[], metas), this.p.late);
    }
    if (this.wm > this.forwarded && this.wm !== Number.POSITIVE_INFINITY) {
      this.forwarded = this.wm;
      await out.signal(watermark(this.wm));
    }
  }

  onSignal(signal: Signal, out: Emitter<Record<string, unknown>>): Promise<void> | void {
    if (signal.kind === 'barrier') return out.signal(signal);
    if (this.p.processingTime) return;
    if (signal.time > this.upstream) this.upstream = signal.time;
    if (this.upstream > this.wm) this.advance(this.upstream);
    return this.flush(out);
  }

  nextTimer(): number | undefined {
    let t = this.nextEarly;
    const p = this.p;
    if (p.processingTime) {
      const end = this.windows.firstEnd();
      if (end !== undefined && (t === undefined || end < t)) t = end;
    } else if (p.generator !== undefined) {
      const idle = p.generator.nextIdleCheck(this.core.ctx.clock.now());
      if (idle !== undefined && (t === undefined || idle < t)) t = idle;
    }
    return t;
  }

  onTimer(now: number, out: Emitter<Record<string, unknown>>): Promise<void> {
    const p = this.p;
    if (p.processingTime) {
      if (now - 1 > this.wm) this.advance(now - 1);
    } else if (p.generator !== undefined) {
      const next = Math.max(p.generator.current(now), this.upstream);
      if (next > this.wm) this.advance(next);
    }
    if (this.nextEarly !== undefined && now >= this.nextEarly) {
      // Early results of every window that changed since its last result and has not closed.
      this.fireAll();
      this.windows.earlyFiring();
      this.nextEarly = now + (p.early as number);
    }
    return this.flush(out);
  }

  finish(out: Emitter<Record<string, unknown>>): Promise<void> {
    const ctx = this.core.ctx;
    if (ctx.stopSignal.aborted) {
      // A stop is not the end of the input: windows still open are not complete. Under
      // checkpoints they are in the last checkpoint and the next run fires them; without, they
      // are emitted marked `partial: true`, never as final results.
      if (ctx.checkpointing) return Promise.resolve();
      this.cutShort = true;
    }
    // End of input: nothing more can arrive, so every window gets its final result.
    this.advance(Number.POSITIVE_INFINITY);
    this.budget?.release(this.core.ctx.name);
    return this.flush(out);
  }

  /** Checkpoint state: watermarks and every live window with its saved accumulators. */
  snapshot(): WindowSnapshot {
    return {
      version: 1,
      wm: this.wm,
      upstream: this.upstream,
      forwarded: this.forwarded,
      generator: this.p.generator?.save(),
      windows: this.windows.save(),
    };
  }

  /** Rebuilds the state {@link WindowOperator.snapshot} returned. */
  restore(state: unknown): void {
    const s = state as WindowSnapshot;
    if (s?.version !== 1)
      throw new SluiceError(
        ErrorCode.STAGE,
        `restoring a window: its saved state has version ${JSON.stringify(s?.version ?? null)}, this build reads version 1; delete the checkpoint folder to start over`,
      );
    this.wm = s.wm;
    this.upstream = s.upstream;
    this.forwarded = s.forwarded;
    if (s.generator !== undefined) this.p.generator?.load(s.generator, this.core.ctx?.clock.now() ?? 0);
    this.core.openWindows = 0;
    this.windows.restore(s.windows);
  }
}

/** See {@link WindowOperator.readsFields}. A dotted path reads its first segment, or the whole name as a key. */
function fieldsRead(p: WindowPlan): readonly string[] | undefined {
  if (p.late !== undefined || p.keyFn !== undefined) return undefined;
  if (!p.processingTime && p.timeField === undefined) return undefined;
  const names = [...(p.keyFields ?? []), ...p.aggs.map((a) => a.field)];
  if (!p.processingTime) names.push(p.timeField);
  const out = new Set<string>();
  for (const n of names) {
    if (n === undefined) continue;
    out.add(n);
    if (n.includes('.')) out.add(n.slice(0, n.indexOf('.')));
  }
  return [...out];
}

/** See {@link WindowOperator.fieldUses}. */
function fieldUses(p: WindowPlan, reads: readonly string[] | undefined): Map<string, FieldUse> | undefined {
  const t = p.timeField;
  if (reads === undefined || p.processingTime || t === undefined || p.timeFormat !== 'auto') return undefined;
  // Read otherwise too (as a key or an aggregate's input), or through a path: it stays as it is.
  if (t.includes('.') || p.keyFields?.includes(t) || p.aggs.some((a) => a.field === t)) return undefined;
  return new Map([[t, 'epochMillis']]);
}

/** What {@link WindowOperator.snapshot} returns (structured-cloneable; version 1 is the only format). */
export interface WindowSnapshot {
  readonly version: 1;
  readonly wm: number;
  readonly upstream: number;
  readonly forwarded: number;
  readonly generator: ReturnType<WatermarkGenerator['save']> | undefined;
  readonly windows: readonly SavedWindow[];
}
