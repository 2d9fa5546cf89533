/**
 * The checkpoint coordinator: decides when a checkpoint is due, collects what each stage
 * contributes to it, stores it when every sink has acknowledged it, and only then lets sources
 * commit their positions upstream (Flink's asynchronous barrier snapshots).
 *
 * The runtime (`src/core/run.ts`) drives it through {@link CheckpointDriver}, the port it owns
 * (`src/core/checkpointing.ts`); one checkpoint is
 * in flight at a time:
 *
 *   1. After a source emits a batch, the runtime asks `barrierDue(source)`. When the interval
 *      (time or records) has passed, checkpoint n begins; every source gets barrier n after its
 *      next batch, and its `position()` at that moment is recorded. A source that is idle
 *      (waiting for input) is asked on a timer (`barrierTimerMs`), so it still checkpoints on the
 *      interval and never holds up a checkpoint another source began.
 *   2. Operators snapshot when barrier n has arrived on all their inputs (the runtime aligns);
 *      the runtime hands the state to `operatorSnapshot`, which serialises it at once.
 *   3. Sinks flush on barrier n and acknowledge with `sinkAcked` (with their own state, e.g. a
 *      committed file length).
 *   4. When every sink has acknowledged n, the checkpoint is stored (blobs, then metadata) and,
 *      once durable, `commit` is called: sources commit positions upstream, sinks commit
 *      pending transactions. A crash before the metadata is written leaves checkpoint n - 1 in
 *      force; a crash after it but before the commit replays from n, which the sources'
 *      positions in the checkpoint (not the upstream commit) make exact.
 */
import type {
  CheckpointData,
  CheckpointDriver,
  CheckpointParticipants,
  RestoredCheckpoint,
  WalEntry,
} from '../core/checkpointing.ts';
import type { Clock } from '../core/clock.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Batch, Position } from '../core/message.ts';
import type { Logger, PartitionStateAccess } from '../core/stage.ts';
import { PartitionSlices, type PartitionStates, serializeSlices } from './partitions.ts';
import { deserializeState, serializeState } from './serial.ts';
import type { CheckpointStore } from './store.ts';
import type { WriteAheadLog } from './wal.ts';

/** Test hooks around the commit point; each may throw or kill the process. */
export interface CoordinatorHooks {
  /** After checkpoint `id` is stored and before positions are committed. */
  afterStore?(id: number): void;
  /** After a successful run's sinks finished, before its checkpoints are deleted. */
  beforeClear?(): void;
}

/** Options of {@link CheckpointCoordinator}. */
export interface CoordinatorOptions {
  readonly store: CheckpointStore;
  /** Time between checkpoints (ms, on `clock`). Default 10 s. `0`: only `everyRecords` triggers. */
  readonly intervalMs?: number;
  /** Also trigger after this many source records since the last trigger. Default: never. */
  readonly everyRecords?: number;
  readonly clock: Pick<Clock, 'now'>;
  readonly log: Logger;
  readonly hooks?: CoordinatorHooks;
  /** Opt-in write-ahead log, truncated after each completed checkpoint. */
  readonly wal?: WriteAheadLog;
  /**
   * Partition-scoped checkpoints (scale-out): each completed checkpoint is stored per source
   * partition in this shared store instead of as one checkpoint of the pipeline; nothing is
   * restored at start (partitions are loaded when assigned) and nothing is deleted at the end.
   */
  readonly partitions?: PartitionStates;
}

/** Counters of a coordinator. */
export interface CheckpointStats {
  completed: number;
  failed: number;
  lastId: number;
  /** Trigger to durable, ms, of the last completed checkpoint. */
  lastDurationMs: number;
  /** Serialised operator state of the last completed checkpoint, bytes. */
  lastStateBytes: number;
  /** Time spent serialising operator state (blocking the operators), last checkpoint, ms. */
  lastSerializeMs: number;
  /** When the last checkpoint completed, on the coordinator's clock (ms); 0 for none yet. */
  lastCompletedAt: number;
}

interface Pending {
  readonly id: number;
  readonly startedAt: number;
  readonly sources: Map<string, Position | undefined>;
  readonly operators: Map<string, Uint8Array>;
  readonly sinks: Map<string, unknown>;
  /** Partition-scoped operators: stage → partition → serialised slice. */
  readonly slices: Map<string, Map<string, Uint8Array>>;
  serializeMs: number;
}

/**
 * Coordinates checkpoints of one run. See the module comment for the protocol.
 *
 * @example
 * const coordinator = new CheckpointCoordinator({
 *   store: new CheckpointStore(await lmdbBackend({ dir: '.sluice/orders' })),
 *   intervalMs: 10_000,
 *   clock: systemClock,
 *   log: console,
 * });
 * pipeline.run({ checkpoint: coordinator });
 */
export class CheckpointCoordinator implements CheckpointDriver {
  private readonly store: CheckpointStore;
  private readonly intervalMs: number;
  private readonly everyRecords: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly log: Logger;
  private readonly hooks: CoordinatorHooks;
  private readonly wal: WriteAheadLog | undefined;
  private readonly partitions: PartitionStates | undefined;
  readonly partitionState?: PartitionStateAccess;
  private participants: CheckpointParticipants | undefined;
  private nextId = 1;
  private nextAt = 0;
  private recordsSince = 0;
  private pending: Pending | undefined;
  /** Stored-and-committed chain: one checkpoint completes at a time, in id order. */
  private completing: Promise<void> = Promise.resolve();
  private busy = false;
  private readonly ended = new Map<string, Position | undefined>();
  private finished = false;
  /** A checkpoint was asked for (`requestCheckpoint`): the next `barrierDue` starts one. */
  private requested = false;
  /** The newest checkpoint stored and committed upstream. */
  private committedId = 0;
  /** `whenCommitted` callers, by checkpoint id. */
  private readonly commitWaiters = new Map<number, ((ok: boolean) => void)[]>();
  /**
   * A checkpoint the disk refused (`SLUICE_DISK_FULL`), or a server store that stayed unreachable
   * past `storeTimeout` (its calls are retried until then): a full disk does not heal by itself,
   * and an outage that long should not pass unseen while nothing is committed, so the run stops —
   * at the next batch of a source (`barrierDue`) or at its end (`finish`) — with that one error;
   * the checkpoint before stays in force for the next run.
   */
  private fatal: SluiceError | undefined;
  /** Counters for metrics and benchmarks. */
  readonly stats: CheckpointStats = {
    completed: 0,
    failed: 0,
    lastId: 0,
    lastDurationMs: 0,
    lastStateBytes: 0,
    lastSerializeMs: 0,
    lastCompletedAt: 0,
  };

  constructor(options: CoordinatorOptions) {
    this.store = options.store;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.everyRecords = options.everyRecords ?? 0;
    this.clock = options.clock;
    this.log = options.log;
    this.hooks = options.hooks ?? {};
    this.wal = options.wal;
    this.partitions = options.partitions;
    if (options.partitions !== undefined) this.partitionState = options.partitions;
    if (this.wal !== undefined) {
      const wal = this.wal;
      this.walAppend = (stage, batch, position) =>
        wal.append({
          stage,
          batch: batch.meta === undefined ? { kind: 'batch', records: batch.records } : batch,
          position,
        } satisfies WalEntry);
      this.walReplay = (restoredId) => this.replayWal(wal, restoredId);
    }
  }

  walAppend?: (stage: string, batch: Batch<unknown>, position: Position | undefined) => Promise<void>;
  walReplay?: (restoredId: number | undefined) => AsyncIterable<WalEntry>;

  private async *replayWal(wal: WriteAheadLog, restoredId: number | undefined): AsyncGenerator<WalEntry> {
    let n = 0;
    for await (const e of wal.replay(restoredId)) {
      n++;
      yield e as WalEntry;
    }
    wal.resumeAfter(restoredId);
    if (n > 0) this.log.info(`Replaying ${n} batches from the write-ahead log`);
  }

  /** The id the next checkpoint will get. */
  get upcomingId(): number {
    return this.nextId;
  }

  async restore(): Promise<RestoredCheckpoint | undefined> {
    // Partition-scoped: state is loaded per partition when the source is assigned it.
    if (this.partitions !== undefined) return undefined;
    const ids = await this.store.ids();
    // Ids never repeat, even past half-written checkpoints, so a stale blob is never mistaken for a new one.
    this.nextId = (ids[ids.length - 1] ?? 0) + 1;
    const cp = await this.store.latest();
    if (cp === undefined) return undefined;
    const operators = new Map<string, unknown>();
    for (const [stage, bytes] of cp.operators)
      operators.set(stage, deserializeState(bytes, `checkpoint ${cp.id}: the state of stage \`${stage}\``));
    this.stats.lastId = cp.id;
    return { id: cp.id, sources: cp.sources, sinks: cp.sinks, operators };
  }

  begin(participants: CheckpointParticipants): void {
    this.participants = participants;
    this.nextAt = this.clock.now() + this.intervalMs;
  }

  barrierDue(stage: string, records: number): number | undefined {
    if (this.fatal !== undefined) throw this.fatal;
    const p = this.pending;
    if (p !== undefined) return p.sources.has(stage) ? undefined : p.id;
    this.recordsSince += records;
    if (this.busy || this.participants === undefined || this.finished) return undefined;
    const byTime = this.intervalMs > 0 && this.clock.now() >= this.nextAt;
    const byCount = this.everyRecords > 0 && this.recordsSince >= this.everyRecords;
    if (!byTime && !byCount && !this.requested) return undefined;
    this.requested = false;
    const now = this.clock.now();
    this.pending = {
      id: this.nextId++,
      startedAt: now,
      sources: new Map(this.ended),
      operators: new Map(),
      sinks: new Map(),
      slices: new Map(),
      serializeMs: 0,
    };
    this.busy = true;
    this.recordsSince = 0;
    this.nextAt = now + this.intervalMs;
    return this.pending.id;
  }

  requestCheckpoint(): void {
    this.requested = true;
  }

  whenCommitted(id: number): Promise<boolean> {
    if (this.committedId >= id) return Promise.resolve(true);
    if (this.finished) return Promise.resolve(false);
    return new Promise((resolve) => {
      const list = this.commitWaiters.get(id) ?? [];
      list.push(resolve);
      this.commitWaiters.set(id, list);
    });
  }

  /** Settles the `whenCommitted` callers of checkpoints up to `id` (all of them when `id` is undefined). */
  private settleWaiters(id: number | undefined, ok: boolean): void {
    for (const [k, list] of this.commitWaiters) {
      if (id !== undefined && k > id) continue;
      this.commitWaiters.delete(k);
      for (const resolve of list) resolve(ok);
    }
  }

  barrierTimerMs(): number | undefined {
    // Checked more often than the interval, so an idle source's barrier is late by a second at most.
    return this.intervalMs > 0 ? Math.min(this.intervalMs, 1000) : undefined;
  }

  sourceBarrier(id: number, stage: string, position: Position | undefined): void {
    if (this.pending?.id === id) this.pending.sources.set(stage, position);
    // The WAL starts a new segment at the barrier, so segments before it can go when n completes.
    this.wal?.rotate(id);
  }

  positionsOf(id: number): Readonly<Record<string, Position | undefined>> | undefined {
    const p = this.pending;
    return p === undefined || p.id !== id ? undefined : Object.fromEntries(p.sources);
  }

  sourceEnded(stage: string, position: Position | undefined): void {
    this.ended.set(stage, position);
    const p = this.pending;
    if (p !== undefined && !p.sources.has(stage)) p.sources.set(stage, position);
  }

  operatorSnapshot(id: number, stage: string, state: unknown): void {
    const p = this.pending;
    if (p === undefined || p.id !== id) return;
    const t = performance.now();
    // Partition scope stores each partition's slice with its offset; otherwise the slices are one state.
    if (this.partitions !== undefined && state instanceof PartitionSlices)
      p.slices.set(stage, serializeSlices(state));
    else p.operators.set(stage, serializeState(state, `checkpoint ${id}: the state of stage \`${stage}\``));
    p.serializeMs += performance.now() - t;
  }

  sinkAcked(id: number, stage: string, state: unknown): void {
    const p = this.pending;
    const parts = this.participants;
    if (p === undefined || p.id !== id || parts === undefined) return;
    p.sinks.set(stage, state);
    if (p.sinks.size < parts.sinks.length) return;
    this.pending = undefined;
    this.completing = this.completing
      .then(() => this.complete(p, parts))
      .catch((err) => this.log.warn(`Checkpoint \`${p.id}\` failed: ${errorMessage(err)}`));
  }

  private async complete(p: Pending, parts: CheckpointParticipants): Promise<void> {
    const data: CheckpointData = {
      id: p.id,
      completedAt: this.clock.now(),
      sources: Object.fromEntries(p.sources),
      sinks: Object.fromEntries(p.sinks),
      operators: p.operators,
    };
    try {
      if (this.partitions !== undefined) await this.partitions.save(p.id, p.sources, p.slices);
      else await this.store.save(data);
    } catch (err) {
      this.stats.failed++;
      this.busy = false;
      this.settleWaiters(p.id, false);
      const cause = err instanceof SluiceError && err.cause instanceof SluiceError ? err.cause : err;
      if (cause instanceof SluiceError && cause.code === ErrorCode.DISK_FULL) {
        this.fatal = new SluiceError(
          ErrorCode.DISK_FULL,
          `checkpoint ${p.id} could not be stored: ${cause.message}`,
          { ...cause.context, checkpoint: p.id },
          { cause },
        );
        return;
      }
      if (cause instanceof SluiceError && cause.retryable && cause.context.unreachableMs !== undefined) {
        // The store stayed away past `storeTimeout`: stop here rather than run on without
        // checkpoints (positions uncommitted, outputs unpublished) for as long as it is away.
        const last = this.stats.lastId;
        this.fatal = new SluiceError(
          ErrorCode.STAGE,
          `checkpoint ${p.id} could not be stored: ${cause.message}. The run stops; once the store is back, the next run resumes from ${last > 0 ? `checkpoint ${last}` : 'the start (no checkpoint was stored)'}`,
          { ...cause.context, checkpoint: p.id, resumesFrom: last },
          { cause },
        );
        return;
      }
      this.log.warn(`Checkpoint \`${p.id}\` failed: ${errorMessage(err)}; the previous one stays in force`, {
        checkpoint: p.id,
      });
      return;
    }
    try {
      this.hooks.afterStore?.(p.id);
    } catch (err) {
      // A test hook standing in for a crash: the checkpoint is stored, nothing is committed.
      this.busy = false;
      this.settleWaiters(p.id, false);
      this.log.warn(`Checkpoint \`${p.id}\` stored but not committed: ${errorMessage(err)}`);
      return;
    }
    let bytes = 0;
    for (const b of p.operators.values()) bytes += b.length;
    this.stats.completed++;
    this.stats.lastId = p.id;
    this.stats.lastDurationMs = this.clock.now() - p.startedAt;
    this.stats.lastStateBytes = bytes;
    this.stats.lastSerializeMs = p.serializeMs;
    this.stats.lastCompletedAt = this.clock.now();
    this.busy = false;
    try {
      await parts.commit(data);
      this.committedId = p.id;
      this.settleWaiters(p.id, true);
    } catch (err) {
      this.settleWaiters(p.id, false);
      this.log.warn(`Committing checkpoint \`${p.id}\` upstream failed: ${errorMessage(err)}`, {
        checkpoint: p.id,
      });
    }
    try {
      await this.wal?.truncateBefore(p.id);
    } catch (err) {
      this.log.warn(
        `Truncating the write-ahead log after checkpoint \`${p.id}\` failed: ${errorMessage(err)}`,
      );
    }
  }

  async finish(outcome: 'succeeded' | 'stopped' | 'failed'): Promise<void> {
    this.finished = true;
    this.pending = undefined;
    try {
      await this.completing;
      this.settleWaiters(undefined, false);
      if (this.fatal !== undefined) throw this.fatal;
      // Partition-scoped state is shared with the other members of the group: it outlives a run.
      if (outcome === 'succeeded' && this.partitions === undefined) {
        this.hooks.beforeClear?.();
        await this.store.clear();
        await this.wal?.clear();
      }
    } finally {
      await this.wal?.close();
      await this.store.backend.close();
    }
  }
}
