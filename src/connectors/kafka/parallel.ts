/**
 * In-partition parallel processing for the `kafka` source (`parallel`): one asynchronous step
 * runs on many records of a partition at once, and its results leave in completion order, so a
 * slow record (a remote call that hangs) does not hold back the records after it — while the
 * commit never passes it.
 *
 * Guarantees:
 * - At most `concurrency` records are in the step at once (running or waiting for their lane).
 * - `mode` says what may overlap: `key` (the default) — records of one message key never
 *   overlap and finish in offset order (records without a key are unconstrained); `partition` —
 *   records of one partition one at a time (partitions in parallel); `unordered` — anything.
 * - A record counts as done in its partition's offset tracker (`offsets.ts`) once its result was
 *   emitted (or it was dead-lettered), and only the tracker's contiguous low watermark is ever
 *   committed: a stuck record holds its partition's commit at its offset while the records after
 *   it finish. The records done past it travel with the commit (as metadata, or in the
 *   checkpoint), so a restart redoes only the unfinished ones. A partition whose finished records
 *   would span more than the metadata can describe (`MAX_SPAN`) stops being read until the
 *   stuck record finishes.
 * - A failed step dead-letters its record; the partition keeps flowing.
 */
import type { RecordMeta } from '../../core/message.ts';
import type { Emitter, StageContext } from '../../core/stage.ts';
import type { Assignment } from './assignment.ts';

/** What may overlap in a parallel step; see the module comment. */
export type KafkaParallelMode = 'key' | 'partition' | 'unordered';

/**
 * The per-record step run in parallel: resolves to the record to emit, an array of records
 * (each emitted with the input record's meta), or `undefined` / `null` for none; a rejection
 * (or a throw) dead-letters the record. `signal` aborts when the run is cancelled.
 */
export type KafkaRecordStep = (record: unknown, meta: RecordMeta, signal: AbortSignal) => unknown;

/** `parallel` of the `kafka` source: how many records of a partition the step may process at once. */
export interface KafkaParallelOptions {
  /** What may overlap; default `key`. */
  readonly mode?: KafkaParallelMode | undefined;
  /** Most records in the step at once (≥ 1); default 16. */
  readonly concurrency?: number | undefined;
  /**
   * The step. In a pipeline file it is the pipeline's first step (a `module:` step exporting a
   * per-record function), which then runs inside the source.
   */
  readonly step: KafkaRecordStep;
}

/** A record waiting for or running the step. */
interface Job {
  /** Its partition's name. */
  readonly partition: string;
  readonly offset: number;
  readonly record: unknown;
  readonly meta: RecordMeta;
  /** Jobs of one lane run one at a time, in order; undefined: no constraint. */
  readonly lane: string | undefined;
}

/** A job whose step settled. */
interface Finished {
  readonly job: Job;
  readonly ok: boolean;
  readonly value: unknown;
}

/** Schedules the step on records and emits what finished; see the module comment. */
export class InPartitionParallel {
  readonly mode: KafkaParallelMode;
  readonly concurrency: number;
  /** Lanes with a job running: the jobs waiting behind it. */
  private readonly lanes = new Map<string, Job[]>();
  private finished: Finished[] = [];
  private running = 0;
  private waiting = 0;

  private readonly options: KafkaParallelOptions;
  private readonly assignment: Assignment;
  private readonly ctx: () => StageContext;
  private readonly wake: () => void;

  /** `wake`: called when a step settles (wakes the read loop). */
  constructor(
    options: KafkaParallelOptions,
    assignment: Assignment,
    ctx: () => StageContext,
    wake: () => void,
  ) {
    this.options = options;
    this.assignment = assignment;
    this.ctx = ctx;
    this.wake = wake;
    this.mode = options.mode ?? 'key';
    this.concurrency = options.concurrency ?? 16;
  }

  /** Records in the step or waiting for their lane. */
  get inFlight(): number {
    return this.running + this.waiting;
  }

  /** True while records are in flight or finished and not emitted yet. */
  get busy(): boolean {
    return this.running + this.waiting > 0 || this.finished.length > 0;
  }

  /** True when finished records wait to be emitted. */
  get ready(): boolean {
    return this.finished.length > 0;
  }

  /** True while the step may take another record: room in flight, and every partition's span fits the metadata. */
  hasRoom(): boolean {
    return this.running + this.waiting < this.concurrency && !this.assignment.spanFull();
  }

  /** Starts (or queues behind its lane) the step on the record at `offset` of `partition`, admitted to its tracker. */
  dispatch(partition: string, offset: number, record: unknown, meta: RecordMeta): void {
    const lane =
      this.mode === 'partition'
        ? partition
        : this.mode === 'key' && meta.key !== undefined
          ? `${partition}\u0000${meta.key}`
          : undefined;
    const job: Job = { partition, offset, record, meta, lane };
    if (lane === undefined) {
      this.start(job);
      return;
    }
    const queue = this.lanes.get(lane);
    if (queue !== undefined) {
      queue.push(job);
      this.waiting++;
      return;
    }
    this.lanes.set(lane, []);
    this.start(job);
  }

  /**
   * Emits the finished steps' results in completion order (failures to the dlq) and returns how
   * many records finished. Each counts as done in its tracker before the emit, so the
   * `position()` read during the emit covers it; a record of a partition revoked meanwhile (or
   * already done before a reconnect) is dropped.
   */
  async emitFinished(out: Emitter<unknown>): Promise<{ finished: number; emitted: number }> {
    if (this.finished.length === 0) return { finished: 0, emitted: 0 };
    const done = this.finished;
    this.finished = [];
    const ctx = this.ctx();
    const records: unknown[] = [];
    const meta: RecordMeta[] = [];
    for (const f of done) {
      const t = this.assignment.tracked.get(f.job.partition);
      if (t === undefined || !t.offsets.complete(f.job.offset)) continue;
      if (!f.ok) {
        ctx.deadLetter(f.job.record, f.value, f.job.meta);
        continue;
      }
      if (f.value === undefined || f.value === null) continue;
      if (Array.isArray(f.value)) {
        for (const v of f.value) {
          records.push(v);
          meta.push(f.job.meta);
        }
        continue;
      }
      records.push(f.value);
      meta.push(f.job.meta);
    }
    if (records.length > 0) await out.emit({ kind: 'batch', records, meta });
    return { finished: done.length, emitted: records.length };
  }

  private start(job: Job): void {
    this.running++;
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(this.options.step(job.record, job.meta, this.ctx().signal));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (value) => this.settled(job, true, value),
      (err: unknown) => this.settled(job, false, err),
    );
  }

  private settled(job: Job, ok: boolean, value: unknown): void {
    this.running--;
    this.finished.push({ job, ok, value });
    if (job.lane !== undefined) {
      const next = this.lanes.get(job.lane)?.shift();
      if (next !== undefined) {
        this.waiting--;
        this.start(next);
      } else this.lanes.delete(job.lane);
    }
    this.wake();
  }
}
