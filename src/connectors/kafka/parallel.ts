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
 * - Before partitions are given up (a rebalance), {@link InPartitionParallel.finishInFlight} lets
 *   the records in the step finish and emits them, so the commit or checkpoint that hands the
 *   partitions over covers every record processed of them. A result that comes after its
 *   partition was given up is dropped (its next owner processes the record again): emitted, it
 *   would reach the sinks after that commit — a duplicate, or a later transaction's.
 */
import type { Clock } from '../../core/clock.ts';
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

/** Records still in the step after {@link InPartitionParallel.finishInFlight} gave up, by partition. */
export type Unfinished = ReadonlyMap<string, readonly number[]>;

/**
 * `unfinished` for a log line: each partition with its first offsets, e.g.
 * "`events:0` offsets 12, 15; `events:3` offset 40".
 *
 * @example
 * describeUnfinished(new Map([['events:0', [12, 15]]])); // '`events:0` offsets 12, 15'
 */
export function describeUnfinished(unfinished: Unfinished, most = 5): string {
  return [...unfinished]
    .map(([name, offsets]) => {
      const shown = offsets.slice(0, most).join(', ');
      const more = offsets.length > most ? ` and ${offsets.length - most} more` : '';
      return `\`${name}\` offset${offsets.length === 1 ? '' : 's'} ${shown}${more}`;
    })
    .join('; ');
}

/** Schedules the step on records and emits what finished; see the module comment. */
export class InPartitionParallel {
  readonly mode: KafkaParallelMode;
  readonly concurrency: number;
  /** Lanes with a job running: the jobs waiting behind it. */
  private readonly lanes = new Map<string, Job[]>();
  private finished: Finished[] = [];
  /** Jobs in the step (running, or waiting in a lane), for {@link finishInFlight}'s warning. */
  private readonly jobs = new Set<Job>();
  private running = 0;
  private waiting = 0;
  /** Set while {@link finishInFlight} waits: called when a step settles. */
  private settledWaiter: (() => void) | undefined;

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
    this.jobs.add(job);
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
      // Given up meanwhile: its next owner processes it (under partition scope the tracker stays until released).
      if (!this.assignment.owns(f.job.partition)) continue;
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

  /**
   * Partitions are about to be given up: waits for every record in the step to finish, emitting
   * results as they come (as {@link emitFinished}), for at most `timeoutMs` or until `signal`
   * aborts. All records, not only those of the partitions given up: the client does not say which
   * ones go before it asks for the commit. Resolves with the records still in the step when it
   * gave up (empty when all finished) — the caller names them in a warning.
   */
  async finishInFlight(
    out: Emitter<unknown>,
    timeoutMs: number,
    clock: Clock,
    signal: AbortSignal,
  ): Promise<{ emitted: number; unfinished: Unfinished }> {
    const deadline = clock.now() + timeoutMs;
    let emitted = 0;
    for (;;) {
      emitted += (await this.emitFinished(out)).emitted;
      const left = deadline - clock.now();
      if (this.jobs.size === 0 || signal.aborted || left <= 0) break;
      if (this.finished.length > 0) continue;
      await this.whenSettled(left, clock, signal);
    }
    const unfinished = new Map<string, number[]>();
    for (const job of this.jobs) {
      const offsets = unfinished.get(job.partition) ?? [];
      offsets.push(job.offset);
      unfinished.set(job.partition, offsets);
    }
    for (const offsets of unfinished.values()) offsets.sort((a, b) => a - b);
    return { emitted, unfinished };
  }

  /**
   * Resolves when a step settles next (at once when one finished and was not emitted yet), after
   * `ms`, or when `signal` aborts; never rejects. For waiting on the steps alone, e.g. while the
   * run stops and the consumer's waits return at once.
   */
  async whenSettled(ms: number, clock: Clock, signal: AbortSignal): Promise<void> {
    if (this.finished.length > 0 || this.jobs.size === 0) return;
    const local = new AbortController();
    await new Promise<void>((resolve) => {
      this.settledWaiter = resolve;
      clock.sleep(ms, AbortSignal.any([signal, local.signal])).then(resolve, resolve);
    });
    this.settledWaiter = undefined;
    local.abort();
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
    this.jobs.delete(job);
    this.finished.push({ job, ok, value });
    if (job.lane !== undefined) {
      const next = this.lanes.get(job.lane)?.shift();
      if (next !== undefined) {
        this.waiting--;
        this.start(next);
      } else this.lanes.delete(job.lane);
    }
    this.settledWaiter?.();
    this.wake();
  }
}
