/**
 * What every two-input join operator shares: telling its inputs apart (`left`, `right`: the names
 * of the edges into it), reading each record's key and event time (a record without them is
 * dead-lettered), judging lateness against the watermark as it stood before the batch, the merged
 * watermark ({@link JoinWatermarks}), the `late` output, timers for idle sides, emitting results
 * after every call, and checkpoints of the watermark. A subclass holds the state that matches:
 * {@link JoinAlgorithm}.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { INPUT_PARTITIONS, InputPartitions } from '../core/input-partitions.ts';
import { type Batch, batchOf, type RecordMeta, type Signal, watermark } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';
import { describeBadTimestamp } from '../time/timestamp.ts';
import { type JoinPlan, joinPorts } from './options.ts';
import { JoinWatermarks, type SavedJoinWatermarks } from './watermarks.ts';

/** The two input names of a join: the `input` of each edge into it (`Graph.connect`). */
export const JOIN_INPUTS = ['left', 'right'] as const;

/** One side of a join. */
export type JoinSide = (typeof JOIN_INPUTS)[number];

/** A record that came after the watermark had passed it, as the `late` output gets it. */
export interface LateJoinRecord {
  /** The input it came on: `left` or `right`. */
  readonly side: JoinSide;
  readonly event: unknown;
  /** Its event time (epoch ms). */
  readonly eventTime: number;
  /** The join's watermark when it came. */
  readonly watermark: number;
}

/** Results per emitted batch at most. */
const RESULT_BATCH = 4096;

/**
 * The state a join keeps, driven by {@link JoinOperator}: one call at a time, records already
 * checked (key and time readable, not late), results pushed with `emit`.
 */
export interface JoinAlgorithm {
  /** A record of `side` with `key` at event time `time` (> the watermark). */
  add(side: JoinSide, key: string, time: number, record: unknown, meta: RecordMeta | undefined): void;
  /** The watermark moved to `wm`: emit what it completes, drop what can match nothing any more. */
  advance(wm: number): void;
  /**
   * The side whose late records the algorithm still takes (a table's changes: a late version
   * still serves the left records that wait), or undefined: late records of both sides go to the
   * `late` output. Such a record is counted as late and passed to {@link add} with a time at or
   * before the watermark.
   */
  readonly takesLate?: JoinSide;
  /** Records held, for the metrics. */
  readonly held: number;
  /** Structured-cloneable state for a checkpoint. */
  save(): unknown;
  /** Rebuilds {@link save}'s state. */
  load(state: unknown): void;
}

/** What {@link JoinOperator.snapshot} returns; version 1 is the only format. */
export interface JoinSnapshot {
  readonly version: 1;
  readonly kind: string;
  readonly wm: number;
  readonly forwarded: number;
  /** The two sides' watermark generators (opaque). */
  readonly watermarks: unknown;
  /** The buffered records or the table (opaque). */
  readonly state: unknown;
}

/** Collects results in emission order; the algorithms push, the operator sends. */
export class JoinResults {
  records: Record<string, unknown>[] = [];
  metas: (RecordMeta | undefined)[] = [];
  count = 0;
  private readonly as: JoinPlan['as'];

  constructor(as: JoinPlan['as']) {
    this.as = as;
  }

  /** A result of `left` with `right` (null: no match, in a left outer join); meta of the left record. */
  push(left: unknown, right: unknown, meta: RecordMeta | undefined): void {
    this.records.push({ [this.as.left]: left, [this.as.right]: right });
    this.metas.push(meta);
    this.count++;
  }
}

/**
 * The operator around one `JoinAlgorithm`; see the module comment. Time model as the
 * window's: the watermark advances once per batch, and every record of a batch is judged against
 * the watermark as it stood before the batch — a record whose time is at or before it is late.
 */
export class JoinOperator implements Operator<unknown, Record<string, unknown>> {
  /** Side ports it may emit on (the `late` output when configured). */
  readonly ports: readonly string[];
  /** The top-level fields it reads: every one (results carry whole records). */
  readonly readsFields = undefined;
  private readonly plan: JoinPlan;
  private readonly results: JoinResults;
  private readonly algorithm: JoinAlgorithm;
  private readonly kind: string;
  private ctx!: StageContext;
  private marks!: JoinWatermarks;
  private wm = Number.NEGATIVE_INFINITY;
  private forwarded = Number.NEGATIVE_INFINITY;
  private late: unknown[] = [];
  private lateMeta: (RecordMeta | undefined)[] = [];
  private lateCount = 0;

  /** @param kind names the algorithm in snapshots (a checkpoint of one kind never restores another) */
  constructor(plan: JoinPlan, kind: string, make: (results: JoinResults) => JoinAlgorithm) {
    this.plan = plan;
    this.kind = kind;
    this.ports = joinPorts(plan);
    this.results = new JoinResults(plan.as);
    this.algorithm = make(this.results);
  }

  open(ctx: StageContext): void {
    this.ctx = ctx;
    this.marks = new JoinWatermarks(this.plan, ctx.clock.now());
    this.marks.attach(ctx.runScoped(INPUT_PARTITIONS, () => new InputPartitions()));
  }

  metrics(): { joinHeld: number; joinResults: number; lateEvents: number } {
    return { joinHeld: this.algorithm.held, joinResults: this.results.count, lateEvents: this.lateCount };
  }

  /** The current watermark (epoch ms; −Infinity before the first one). */
  get currentWatermark(): number {
    return this.wm;
  }

  process(batch: Batch<unknown>, out: Emitter<Record<string, unknown>>, input?: string): Promise<void> {
    const side = sideOf(input, this.ctx.name);
    const plan = this.plan;
    const keyOf = plan.key[side];
    const timeOf = plan.time[side];
    const now = this.ctx.clock.now();
    const wm = this.wm;
    const { records, meta } = batch;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const m = meta?.[i];
      const time = timeOf(record, m);
      if (Number.isNaN(time)) {
        this.ctx.deadLetter(
          record,
          new SluiceError(
            ErrorCode.RECORD,
            `join \`${this.ctx.name}\`: ${side} record: ${describeBadTimestamp(plan.timeField[side], record, plan.timeFormat)}`,
            { stage: this.ctx.name },
          ),
          m,
        );
        continue;
      }
      const key = keyOf(record, m);
      if (key === undefined) {
        this.ctx.deadLetter(
          record,
          new SluiceError(
            ErrorCode.RECORD,
            `join \`${this.ctx.name}\`: the ${side} record has no key \`${plan.keyText[side]}\`; give every record its key, or filter keyless records out before the join`,
            { stage: this.ctx.name },
          ),
          m,
        );
        continue;
      }
      this.marks.observe(side, time, m, now);
      if (time <= wm) {
        this.lateCount++;
        if (this.algorithm.takesLate === side) {
          this.algorithm.add(side, key, time, record, m);
          continue;
        }
        const lateRecord: LateJoinRecord = { side, event: record, eventTime: time, watermark: wm };
        if (plan.late === undefined) {
          this.ctx.deadLetter(
            lateRecord,
            new SluiceError(
              ErrorCode.RECORD,
              `join \`${this.ctx.name}\`: late ${side} record (time ${time} ≤ watermark ${wm}); name a \`late\` output to keep late records apart, or raise \`watermark.maxOutOfOrder\``,
              { stage: this.ctx.name },
            ),
            m,
          );
        } else {
          this.late.push(lateRecord);
          this.lateMeta.push(m);
        }
        continue;
      }
      this.algorithm.add(side, key, time, record, m);
    }
    this.moveTo(this.marks.current(now));
    return this.flush(out);
  }

  onSignal(signal: Signal, out: Emitter<Record<string, unknown>>): Promise<void> {
    if (signal.kind === 'barrier') return out.signal(signal);
    this.marks.upstreamMark(signal.time);
    this.moveTo(this.marks.current(this.ctx.clock.now()));
    return this.flush(out);
  }

  endInput(input: string, out: Emitter<Record<string, unknown>>): Promise<void> {
    this.marks.end(sideOf(input, this.ctx.name));
    this.moveTo(this.marks.current(this.ctx.clock.now()));
    return this.flush(out);
  }

  nextTimer(): number | undefined {
    return this.marks.nextIdleCheck();
  }

  onTimer(now: number, out: Emitter<Record<string, unknown>>): Promise<void> {
    this.moveTo(this.marks.current(now));
    return this.flush(out);
  }

  finish(out: Emitter<Record<string, unknown>>): Promise<void> {
    // A stop is not the end of the input: what the join holds is not complete. Under checkpoints
    // it is in the last checkpoint (the next run goes on); without, it is dropped rather than
    // emitted as if no match could come (no left-outer result with nulls that a match would contradict).
    if (this.ctx.stopSignal.aborted) return Promise.resolve();
    this.moveTo(Number.POSITIVE_INFINITY);
    return this.flush(out);
  }

  snapshot(): JoinSnapshot {
    return {
      version: 1,
      kind: this.kind,
      wm: this.wm,
      forwarded: this.forwarded,
      watermarks: this.marks.save(),
      state: this.algorithm.save(),
    };
  }

  restore(state: unknown): void {
    const s = state as JoinSnapshot;
    if (s?.version !== 1 || s.kind !== this.kind)
      throw new SluiceError(
        ErrorCode.STAGE,
        `restoring a ${this.kind} join: its saved state is ${JSON.stringify({ version: s?.version ?? null, kind: s?.kind ?? null })}, this build reads version 1 of a ${this.kind} join; delete the checkpoint folder to start over`,
      );
    this.wm = s.wm;
    this.forwarded = s.forwarded;
    this.marks.load(s.watermarks as SavedJoinWatermarks, this.ctx.clock.now());
    this.algorithm.load(s.state);
  }

  private moveTo(wm: number): void {
    if (wm <= this.wm) return;
    this.wm = wm;
    this.algorithm.advance(wm);
  }

  /** Sends what this call produced: results, then late records, then the watermark when it moved. */
  private async flush(out: Emitter<Record<string, unknown>>): Promise<void> {
    const r = this.results;
    if (r.records.length > 0) {
      const recs = r.records;
      const metas = r.metas;
      r.records = [];
      r.metas = [];
      const hasMeta = metas.some((m) => m !== undefined);
      for (let i = 0; i < recs.length; i += RESULT_BATCH) {
        const end = Math.min(recs.length, i + RESULT_BATCH);
        await out.emit(
          hasMeta ? batchOf(recs.slice(i, end), metas.slice(i, end)) : batchOf(recs.slice(i, end)),
        );
      }
    }
    if (this.late.length > 0) {
      const recs = this.late;
      const metas = this.lateMeta;
      this.late = [];
      this.lateMeta = [];
      await out.emit(batchOf(recs as Record<string, unknown>[], metas), this.plan.late);
    }
    if (this.wm > this.forwarded && this.wm !== Number.POSITIVE_INFINITY) {
      this.forwarded = this.wm;
      await out.signal(watermark(this.wm));
    }
  }
}

function sideOf(input: string | undefined, stage: string): JoinSide {
  if (input === 'left' || input === 'right') return input;
  throw new SluiceError(
    ErrorCode.STAGE,
    `join \`${stage}\` got a batch on ${input === undefined ? 'an unnamed input' : `input \`${input}\``}; connect its two inputs as \`left\` and \`right\` (\`Stream.join\` does)`,
    { stage },
  );
}
