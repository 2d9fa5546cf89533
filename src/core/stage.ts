/**
 * The three kinds of stage — {@link Source}, {@link Operator}, {@link Sink} — and what the
 * runtime hands them: an {@link Emitter} to send downstream and a {@link StageContext}.
 *
 * Contract common to all stages (the runtime guarantees it):
 * - `open(ctx)` is called once, before any data, sinks first. The context is valid for the
 *   whole run and may be stored.
 * - Data and signal calls on one stage are never concurrent: the next call starts after the
 *   promise returned by the previous one settled.
 * - `close()` is called exactly once at the end of the run — after success, failure or
 *   cancellation, and even if `open` threw — and must release every resource (files,
 *   sockets, timers). It must not throw for a resource already released.
 */

import type { Clock } from './clock.ts';
import type { Batch, Position, RecordMeta, Signal } from './message.ts';
import type { SourceLag } from './metrics.ts';

/** Sends batches and signals downstream. Every `await` on it is where backpressure happens. */
export interface Emitter<T> {
  /**
   * Sends `batch` to every stage connected to `port` (default `out`). Resolves when every
   * downstream channel accepted it; await it before producing more. The batch must not be
   * changed afterwards. An empty batch is ignored.
   */
  emit(batch: Batch<T>, port?: string): Promise<void>;
  /** Sends a control signal to every output port, in order with the data. */
  signal(signal: Signal): Promise<void>;
}

/**
 * Optional gauges and counters a stage reports beside the runtime's own (e.g. a rule set's
 * `ruleVersion` and `ruleRejects`). Called whenever a metrics snapshot is taken (a few times
 * a second): must be cheap and must not throw. Names are camelCase and fixed per stage type.
 */
export type StageMetricsHook = () => Readonly<Record<string, number>>;

/** Minimal structured logger (pino-compatible subset). */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** What a stage gets from the runtime. Valid for the whole run. */
export interface StageContext {
  /** This stage's unique name in the pipeline (used in metrics, logs and dead letters). */
  readonly name: string;
  /** Aborted when the run is cancelled or failed; every wait of the stage must listen to it. */
  readonly signal: AbortSignal;
  /**
   * Aborted when the run is asked to stop gracefully (drain). A source stops reading, emits what
   * it already read, then returns normally from `run`; downstream stages then see their inputs
   * end early (see {@link Sink.finish}).
   */
  readonly stopSignal: AbortSignal;
  /** The run's clock; stages read time and sleep only through it. */
  readonly clock: Clock;
  /** The run's logger. */
  readonly log: Logger;
  /**
   * Sends one failed record to the dead-letter output, wrapped with `error`, this stage's name
   * and the record's origin (`meta`). The pipeline keeps flowing. Throws (failing the stage)
   * when no `dlq` output is configured or the maximum error rate is exceeded.
   */
  deadLetter(record: unknown, error: unknown, meta?: RecordMeta): void;
  /**
   * True when the run takes checkpoints: the runtime injects the barriers and commits source
   * positions (`Source.commit`) after each completed checkpoint, so a source must not emit
   * barriers of its own (their ids would collide), and a sink's `onSignal(barrier)` must make
   * what it wrote restorable (`Sink.snapshot`).
   */
  readonly checkpointing: boolean;
  /**
   * Checkpointing, for exactly-once sinks that store source positions with their data: the
   * position of every source at barrier `id` (what the checkpoint will resume from), keyed by
   * source stage name. Complete once barrier `id` has reached this stage (alignment makes every
   * source record its position first), so a sink calls it in `onSignal(barrier)`. Undefined for
   * an id no longer in flight, or when the runtime does not offer it (the property is absent).
   */
  readonly checkpointPositions?: (id: number) => Readonly<Record<string, Position | undefined>> | undefined;
  /**
   * Checkpointing, for a source about to give input up (a Kafka member whose partitions are
   * revoked): starts a checkpoint now, sends its barrier from this source at its current
   * `position()`, and resolves true once that checkpoint is stored and committed (sources'
   * `commit`, sinks' `commitCheckpoint`); false when `signal` aborted first or the checkpoint
   * failed. Call it only from a source's `run`, outside `out.emit`, while `position()` is exact.
   * Absent without checkpoints.
   */
  readonly checkpointNow?: (signal: AbortSignal) => Promise<boolean>;
  /**
   * Scale-out (`checkpoint: { scope: partition }`): keyed state scoped per source partition and
   * kept in a store that every process of the consumer group shares. Absent otherwise.
   */
  readonly partitionState?: PartitionStateAccess;
  /**
   * The one value of this run for `key`, made by `init` on the first call from any stage of the
   * run: how stages of one run find each other (e.g. the exactly-once Kafka sink and the Kafka
   * sources whose offsets it commits). Contract:
   * - Every stage of one run gets the same value for the same key; two runs never share one, and
   *   the value is dropped with the run. `init` runs at most once per key per run.
   * - Call it from `open` on (never from a factory: the run does not exist yet). Stages open
   *   sinks first, then operators, then sources, so what a sink records in `open` is there when
   *   a source opens; what a source records in `open` is complete once `run` starts (a sink
   *   reads it later, e.g. in `onSignal`, `restore` or `committedPositions`).
   * - Keys are module-private symbols, so unrelated stages never meet by accident.
   */
  runScoped<T>(key: symbol, init: () => T): T;
}

/**
 * A fresh {@link StageContext.runScoped} for one run: what the runtime, and test harnesses that
 * build their own contexts, put in every context of that run.
 *
 * @example
 * const runScoped = runScope();
 * const ctxA = { ...rest, runScoped }, ctxB = { ...rest, runScoped }; // one run, one scope
 */
export function runScope(): StageContext['runScoped'] {
  const values = new Map<symbol, unknown>();
  return <T>(key: symbol, init: () => T): T => {
    if (values.has(key)) return values.get(key) as T;
    const value = init();
    values.set(key, value);
    return value;
  };
}

/** Where a partition resumes, as stored with its state (see {@link PartitionStateAccess.load}). */
export interface PartitionResume {
  /** The first offset the stored state does not cover. */
  readonly offset: number;
  /** Records done beyond `offset` (the source's `#done` entry, see `core/partitions.ts`), when some are. */
  readonly done?: string | undefined;
}

/**
 * Reads a consumer group's committed offsets of `partitions` (`topic:partition` → offset; absent:
 * no commit), after any transaction still open on them ended. See {@link PartitionStateAccess.load}.
 */
export type CommittedOffsets = (partitions: readonly string[]) => Promise<ReadonlyMap<string, number>>;

/**
 * Partition-scoped state in a store shared by the processes of one consumer group: each
 * partition's operator state is stored together with the offset it covers, under
 * `<group>/<topic>/<partition>`, so state and offset always match and move together.
 *
 * Partitions are named as a partitioned source names them (`topic:partition`, the keys of its
 * position; see `core/partitions.ts`, the contract of a source that declares the
 * `partitionedPositions` capability). Contract:
 * - The source calls `load` for partitions it was assigned, before emitting any of their
 *   records, and resumes each at the returned offset (absent: no stored state, start where the
 *   group's commit says). Each call makes a new *generation* of those partitions.
 * - A partition-scoped operator, on the first record of a partition whose `generation` differs
 *   from the one its slice was built at, drops that slice and rebuilds it from `loaded` (undefined:
 *   start empty). Its snapshot holds only the partitions in the checkpoint's source positions.
 *   At the end of its input it finishes only the partitions `owned()` (a revoked partition's
 *   windows are the new owner's to fire), including those it got no record of since their load.
 */
export interface PartitionStateAccess {
  /**
   * Loads the stored state of `partitions` for consumer group `group`; resolves with where each
   * resumes. A source whose offsets an exactly-once sink commits in its transactions passes
   * `committed`: the stored state is then taken only as far as the group's committed offsets
   * (the state of a checkpoint whose transaction never committed is dropped).
   */
  load(
    group: string,
    partitions: readonly string[],
    committed?: CommittedOffsets,
  ): Promise<Map<string, PartitionResume>>;
  /** How many times `partition` was loaded in this process (0: never). */
  generation(partition: string): number;
  /** The state operator stage `stage` had for `partition` at its latest load (deserialised), or undefined. */
  loaded(stage: string, partition: string): unknown;
  /** Source: the partitions this process is assigned now; called after every rebalance. */
  assign(partitions: Iterable<string>): void;
  /** The partitions last passed to `assign`. */
  owned(): ReadonlySet<string>;
}

/**
 * The source positions an exactly-once sink committed with its data: checkpoint `checkpointId`'s
 * positions, keyed by source stage name. See {@link Sink.committedPositions}.
 */
export interface CommittedPositions {
  readonly checkpointId: number;
  readonly sources: Readonly<Record<string, Position | undefined>>;
}

/** What a source gets: a {@link StageContext}, whose `stopSignal` tells it to stop reading. */
export type SourceContext = StageContext;

/** Produces batches. Knows its position, so a run can resume where it stopped. */
export interface Source<T = unknown> {
  /** Called once before `run`. */
  open?(ctx: SourceContext): void | Promise<void>;
  /**
   * Called once. Emits batches until the input ends or `ctx.stopSignal` aborts, then returns;
   * the runtime closes the outputs (end of stream). Throwing fails the run.
   */
  run(out: Emitter<T>, ctx: SourceContext): Promise<void>;
  /** Stage-specific metrics for the run's snapshot; see {@link StageMetricsHook}. */
  metrics?: StageMetricsHook;
  /**
   * Current position, when the source has one: for progress, and for checkpoints — the runtime
   * calls it right after an `emit` resolved or was started, and the value must then be the
   * position *after every record emitted so far*, so a restart from it re-emits none of them
   * and skips none after them. Must be structured-cloneable (it is stored in the checkpoint).
   */
  position?(): Position | undefined;
  /**
   * Checkpointing: called once after `open` and before `run` when the run resumes from a
   * checkpoint, with the `position()` this source had at that checkpoint's barrier. `run` must
   * then start right after it. Throwing fails the run (a source that cannot resume must not
   * silently start over).
   */
  restore?(position: Position): void | Promise<void>;
  /**
   * Checkpointing: called after a checkpoint holding `position` is stored durably (in checkpoint
   * order, once per checkpoint): commit the position upstream (Kafka offsets, a DB cursor). May
   * run while `run` is emitting. A rejection is logged and the run goes on — the checkpoint,
   * not the upstream commit, is what a restart resumes from.
   */
  commit?(position: Position): void | Promise<void>;
  /**
   * Delivery acknowledgement, for sources that commit positions (Kafka offsets). Called by the
   * runtime when barrier `id`, which this source emitted with `out.signal(barrier(id))`, has
   * been handled by every sink — the `dlq` sink included — that is, each sink's
   * `onSignal(barrier)` resolved, so every record the source emitted before the barrier has
   * been written, or is held in operator state that checkpoint `id` covers. The source may then
   * commit the positions it had when it emitted the barrier, and never earlier.
   *
   * Called at most once per id, in increasing order; an id may be skipped (a later one covers
   * it). Never called after the run failed or was cancelled. A rejection fails the run. A
   * runtime that does not call it leaves the source to commit at a clean end of input only.
   */
  onBarrierComplete?(id: number): void | Promise<void>;
  /**
   * A record this source emitted was sent to the dead-letter output by a later stage: an operator
   * or a sink called `ctx.deadLetter(record, error, meta)` with the record's meta, whose `source`
   * is this stage's name (its own dead letters are not reported back). Called synchronously from
   * that call, so before the barrier that follows the record reaches the sinks: a source that
   * settles each message on its own (Pulsar's individual acks, a queue's visibility timeout) can
   * negatively acknowledge it (at once, or at that barrier or checkpoint) instead of acknowledging
   * it, and have the broker deliver it again. A record that failed after its message was settled
   * (one held in a window that fires later) is reported too; the source ignores what it no longer
   * holds. The dead letter is written to the `dlq` output all the same. Must be cheap and must
   * not throw (a throw is logged and ignored).
   */
  recordFailed?(meta: RecordMeta, error: unknown): void;
  /**
   * True when the input cannot be read again (a pipe, a terminal): `restore` cannot go back to a
   * position, so under checkpoints the runtime requires the write-ahead log (which replays what
   * was read after the checkpoint) and fails at start without it.
   */
  readonly readOnce?: boolean;
  /**
   * True when `position()` is exact whenever the source is not inside `out.emit` — it never
   * counts records it holds but has not emitted. The runtime may then send a checkpoint barrier
   * for it while it waits for input (on the coordinator's timer, `CheckpointDriver.barrierTimerMs`),
   * so an idle source still takes checkpoints on the interval. Its next `emit` waits for that
   * barrier to be sent. A source whose position can run ahead of what it emitted while it waits
   * (it holds a partial batch) declares it too, with {@link Source.idleBarrierReady}.
   */
  readonly idleBarriers?: boolean;
  /**
   * With `idleBarriers`: asked on the coordinator's timer, synchronously, right before a barrier
   * would be sent for this source while it is not inside `out.emit`. True when `position()` is
   * exact at this moment (it counts no record the source holds but has not emitted: a partial
   * batch it is still filling, results of in-partition steps not emitted yet); the runtime then
   * sends the due barrier with that position. False: no barrier now — the runtime asks again on
   * its next tick, and the source's next `emit` carries the due barrier. Must be cheap and must
   * not throw. Absent: always ready, as `idleBarriers` alone promises.
   */
  idleBarrierReady?(): boolean;
  /**
   * How far behind the end of its input the source is, for partitioned sources that can ask
   * (Kafka: end offsets minus the source's position, per partition, and the age of its last
   * commit). Called by metrics readers (a `/metrics` scrape, the dashboard), at most a few times
   * a second, concurrently with `run`; may ask the broker. Resolves undefined when not connected.
   * A rejection only leaves the lag out of that read.
   */
  lag?(): Promise<SourceLag | undefined>;
  /** Progress as bytes or records done of a known total, when the source knows it. */
  progress?(): { done: number; total?: number; unit: 'bytes' | 'records' } | undefined;
  /** See the stage contract above. */
  close?(): void | Promise<void>;
}

/** Batch in, batch(es) out. May keep state, emit to side ports (`emit(b, 'late')`) and dead-letter records. */
export interface Operator<I = unknown, O = unknown> {
  /** Called once before any data. */
  open?(ctx: StageContext): void | Promise<void>;
  /**
   * Called once per input batch, in order. Per-record work is a synchronous loop; await `out.emit`.
   * `input` is the name of the input the batch arrived on when the graph names it (the edge's
   * `input`, e.g. a join's `left` or `right`; see `Graph.connect`), else undefined. Batches of
   * one input keep their order; batches of different inputs interleave in arrival order.
   */
  process(batch: Batch<I>, out: Emitter<O>, input?: string): void | Promise<void>;
  /**
   * Called once when the named input `input` has ended (its upstream closed), while the others
   * may still deliver; for the last input to end it comes before `finish`. Only for named inputs
   * (see `process`). A stage uses it to stop waiting for that input (e.g. a join's watermark no
   * longer held back by a side that can send nothing more).
   */
  endInput?(input: string, out: Emitter<O>): void | Promise<void>;
  /**
   * Called for each control signal, in order with the data. For watermarks the runtime passes
   * the minimum over all inputs, only when it advances. Without this method the signal is
   * forwarded unchanged.
   */
  onSignal?(signal: Signal, out: Emitter<O>): void | Promise<void>;
  /** Stage-specific metrics for the run's snapshot; see {@link StageMetricsHook}. */
  metrics?: StageMetricsHook;
  /**
   * The clock time at which `onTimer` wants to be called next, or undefined for none. Asked
   * after every call into the operator.
   */
  nextTimer?(): number | undefined;
  /** Called when the clock reaches `nextTimer()` (e.g. flush a micro-batch after max wait). */
  onTimer?(now: number, out: Emitter<O>): void | Promise<void>;
  /** Called once when every input has ended: emit what is still buffered. */
  finish?(out: Emitter<O>): void | Promise<void>;
  /**
   * Checkpointing: called when checkpoint barrier `checkpointId` has arrived on every input —
   * right after `onSignal` handled the barrier when the operator has `onSignal` (so what it
   * flushes before forwarding the barrier is not in its state any more), else just before the
   * runtime forwards it. Returns the operator's state as a structured-cloneable value
   * (plain objects, arrays, Map, Set, bigint, typed arrays; `KeyedStateStore.snapshot()` for
   * keyed state). It is serialised before the next call into the operator, so it may share
   * structure with the live state. Throwing fails the run.
   */
  snapshot?(checkpointId: number): unknown;
  /**
   * Checkpointing: called once after `open` and before any data when the run resumes from a
   * checkpoint, with what `snapshot` returned then.
   */
  restore?(state: unknown): void | Promise<void>;
  /** See the stage contract above. */
  close?(): void | Promise<void>;
}

/** Writes batches somewhere. */
export interface Sink<T = unknown> {
  /**
   * True when, once `onSignal(barrier)` resolved, every record written before the barrier is
   * durable at the destination and survives a crash of this process (a Kafka producer that
   * got its acks, a committed database transaction, a pipe the reader has taken). Without
   * checkpoints, sources commit their positions at a barrier only when every sink says so
   * (`Source.onBarrierComplete`); otherwise they commit at a clean end only.
   */
  readonly durableOnBarrier?: boolean;
  /** Called once before any data; fail here on a bad destination, before a source starts. */
  open?(ctx: StageContext): void | Promise<void>;
  /**
   * Called once per batch, in order. Resolve when the batch is handed to the destination.
   * A record the sink cannot write (its format cannot hold it, the destination refuses it) goes
   * to `ctx.deadLetter`, and the others are written; a rejection fails the run. A sink that
   * throws a `SLUICE_RECORD` error must not have written any of the batch: as the dlq, the
   * runtime then writes the batch again with every letter reduced (see {@link DeadLetter}).
   */
  write(batch: Batch<T>): void | Promise<void>;
  /**
   * Called for each control signal. A barrier means: make everything written before it durable
   * (flush, fsync), then resolve — resolving is the acknowledgement the checkpoint waits for.
   */
  onSignal?(signal: Signal): void | Promise<void>;
  /**
   * Checkpointing: called after `onSignal` resolved for barrier `checkpointId` (or at once, when
   * there is no `onSignal`). Returns what a restart needs to find the output as it was at the
   * barrier (e.g. the committed length of a file), structured-cloneable; it is stored in the
   * checkpoint and handed to `restore`.
   */
  snapshot?(checkpointId: number): unknown | Promise<unknown>;
  /**
   * Checkpointing: called once after `open` and before any data when the run resumes from a
   * checkpoint, with what `snapshot` returned then (undefined when the checkpoint has nothing
   * for this sink). An exactly-once sink drops output written after that checkpoint here.
   */
  restore?(state: unknown): void | Promise<void>;
  /**
   * Checkpointing: called once checkpoint `checkpointId` is stored durably, in checkpoint order;
   * commit what was pre-committed at its barrier (a transaction). May run while `write` is
   * pending. A rejection is logged and the run goes on.
   */
  commitCheckpoint?(checkpointId: number): void | Promise<void>;
  /**
   * Checkpointing, exactly-once sinks that keep source positions in the destination (a
   * `sluice_sink_offsets` table): called once after `open` and `restore` and before any source is
   * restored or runs. Returns the newest checkpoint whose data the destination holds committed,
   * with the positions stored in the same transaction, or undefined when it holds none. When
   * no checkpoint was restored, or the restored one is older, the runtime resumes each source
   * named here from these positions (the destination is the truth: e.g. the checkpoint folder
   * was lost). A rejection fails the run.
   */
  committedPositions?(): Promise<CommittedPositions | undefined>;
  /** Stage-specific metrics for the run's snapshot; see {@link StageMetricsHook}. */
  metrics?: StageMetricsHook;
  /**
   * The first phase of a two-phase end, for a sink whose output must appear together with the
   * other outputs of the run or not at all (the `file` sink: a run that fails while committing
   * its main output must not leave a side output committed). Called once when every input ended
   * (normally, or early after a draining stop), before `finish`: do everything that can fail —
   * flush, fsync, check that the destination can be replaced — and make nothing visible.
   *
   * The runtime then waits until every sink of the run that has `prepare` has prepared, and only
   * then calls their `finish`, which should only publish (a rename). When any stage fails or the
   * run is cancelled before that, no `finish` is called: `close` discards, and every final
   * destination is as it was. A sink may send dead letters from `prepare` but not from `finish`:
   * its output to the dlq is closed once it prepared, so that the dlq sink can prepare too.
   * Sinks without `prepare` finish on their own, as soon as their input ends.
   */
  prepare?(): void | Promise<void>;
  /**
   * Called once when every input ended normally: flush and commit (e.g. rename a temp file);
   * with `prepare`, only after every preparing sink of the run prepared (see {@link prepare}).
   * Also after a draining stop (`ctx.stopSignal` aborted), when the input may have ended early:
   * then a sink must not pass what it holds off as a complete output (the `file` sink keeps it
   * under its temporary name with checkpoints, else under a `.partial` name), and an
   * exactly-once sink must not commit what no checkpoint covers (the next run resumes from the
   * last checkpoint and writes it again).
   */
  finish?(): void | Promise<void>;
  /** See the stage contract above. Not preceded by `finish` on failure or cancellation: discard uncommitted output. */
  close?(): void | Promise<void>;
}

/**
 * A dead letter as written to the `dlq` output.
 *
 * The dlq sink gets letters as records and may reject one like any sink (`ctx.deadLetter`, or a
 * `write` that throws a `SLUICE_RECORD` error before writing any of the batch): the runtime then
 * writes that letter once more, reduced — `error` cut to its code, message and `dlqError` (why
 * the dlq rejected it), `record` replaced by a preview text of at most 4 KiB, `reduced: true`.
 * Only when the dlq rejects the reduced letter too does the run fail. So a record that cannot be
 * handled never stops a run that has a dlq, whatever the dlq sink is.
 */
export interface DeadLetter {
  /** What went wrong: stable code, message and context (line, field…). */
  readonly error: Readonly<Record<string, unknown>> & { readonly code: string; readonly message: string };
  /** Name of the stage that failed the record. */
  readonly stage: string;
  /** Name of the source the record came from, when known. */
  readonly source?: string;
  /** Its position in that source, when known. */
  readonly position?: Position;
  /**
   * The failed record (or the raw text, for a parse error, cut to 4 KiB); in a reduced letter,
   * a text of at most 4 KiB showing the start of the record.
   */
  readonly record: unknown;
  /** True when the dlq could not write the letter as it was and got this reduced one instead. */
  readonly reduced?: true;
  /** When it failed (ISO-8601 UTC). */
  readonly time: string;
}
