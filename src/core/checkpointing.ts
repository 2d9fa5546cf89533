/**
 * The checkpointing port of the runtime: what `run.ts` drives ({@link CheckpointDriver}) and the
 * values that cross it. The runtime owns this interface; `src/checkpoint/` implements it
 * (`CheckpointCoordinator`), so the core never imports the layer above it.
 */
import type { Batch, Position } from './message.ts';
import type { PartitionStateAccess } from './stage.ts';

/** A checkpoint as it is stored and loaded. */
export interface CheckpointData {
  /** Checkpoint id: increases across restarts of one pipeline. */
  readonly id: number;
  /** When it completed (the coordinator's clock, epoch ms). */
  readonly completedAt: number;
  /** Per source stage: the position after the last record before the barrier. */
  readonly sources: Readonly<Record<string, Position | undefined>>;
  /** Per sink stage: what its `snapshot` returned (structured-cloneable). */
  readonly sinks: Readonly<Record<string, unknown>>;
  /** Per operator stage: its serialised snapshot (`v8.serialize`). */
  readonly operators: ReadonlyMap<string, Uint8Array>;
}

/** A checkpoint loaded for a restart, with operator state already deserialised. */
export interface RestoredCheckpoint {
  readonly id: number;
  /** Per source stage: where to resume. */
  readonly sources: Readonly<Record<string, Position | undefined>>;
  /** Per sink stage: what its `snapshot` returned. */
  readonly sinks: Readonly<Record<string, unknown>>;
  /** Per operator stage: what its `snapshot` returned. */
  readonly operators: ReadonlyMap<string, unknown>;
}

/** The stages taking part in checkpoints and how to commit a completed one. */
export interface CheckpointParticipants {
  /** Source stage names: each injects every barrier. */
  readonly sources: readonly string[];
  /** Sink stage names that receive barriers: each must acknowledge every barrier. */
  readonly sinks: readonly string[];
  /**
   * Called once per stored checkpoint, in id order, after it is durable: commit source
   * positions upstream and sink transactions. A rejection is logged; the checkpoint stays valid.
   */
  commit(checkpoint: CheckpointData): Promise<void>;
}

/** What the runtime calls; implemented by {@link CheckpointCoordinator}. */
export interface CheckpointDriver {
  /** Loads the newest intact checkpoint; called once, after every stage is open and before data. */
  restore(): Promise<RestoredCheckpoint | undefined>;
  /** Starts coordinating; called once, after `restore` and before any source runs. */
  begin(participants: CheckpointParticipants): void;
  /**
   * Called after source `stage` emitted a batch of `records` records. Returns the id of the
   * barrier the runtime must send on the source's outputs now (then it calls `sourceBarrier`),
   * or undefined.
   */
  barrierDue(stage: string, records: number): number | undefined;
  /**
   * How often the runtime asks `barrierDue(stage, 0)` for a source that is not emitting (one that
   * declares `idleBarriers`), so that a source waiting for input still takes checkpoints on the
   * interval and a checkpoint another source began still gets its barrier. Undefined: only after
   * batches (e.g. checkpoints by record count only). Optional.
   */
  barrierTimerMs?(): number | undefined;
  /**
   * Asks for a checkpoint before the interval is up: the next `barrierDue` starts one (unless one
   * is in flight). For a source about to give input up (`StageContext.checkpointNow`). Optional.
   */
  requestCheckpoint?(): void;
  /**
   * Resolves true once checkpoint `id` (or a later one) is stored and committed upstream (the
   * `commit` of {@link CheckpointParticipants} resolved); false when it failed or the run
   * finished first. Optional, with `requestCheckpoint`.
   */
  whenCommitted?(id: number): Promise<boolean>;
  /** Source `stage` sent barrier `id`; `position` is its position after the records before it. */
  sourceBarrier(id: number, stage: string, position: Position | undefined): void;
  /**
   * The source positions recorded so far for checkpoint `id` while it is in flight (every
   * source's, once barrier `id` has been aligned downstream of all of them), or undefined when
   * `id` is not the pending checkpoint. Backs `StageContext.checkpointPositions`. Optional.
   */
  positionsOf?(id: number): Readonly<Record<string, Position | undefined>> | undefined;
  /** Source `stage` ended at `position`: later barriers are not expected from it. */
  sourceEnded(stage: string, position: Position | undefined): void;
  /**
   * Operator `stage` snapshotted at barrier `id`. The value is serialised before this returns,
   * so the operator may change its state right after. Throws when it cannot be serialised.
   */
  operatorSnapshot(id: number, stage: string, state: unknown): void;
  /** Sink `stage` flushed everything before barrier `id`; `state` is what its `snapshot` returned. */
  sinkAcked(id: number, stage: string, state: unknown): void;
  /**
   * The run ended. Waits for a checkpoint being stored; on `succeeded` deletes every checkpoint
   * (the job is done: the next run starts from scratch). Closes the store.
   */
  finish(outcome: 'succeeded' | 'stopped' | 'failed'): Promise<void>;
  /**
   * Present when the write-ahead log is on: logs a batch source `stage` is about to send, with
   * its position after the batch. The runtime awaits it before sending the batch.
   */
  walAppend?(stage: string, batch: Batch<unknown>, position: Position | undefined): Promise<void>;
  /**
   * Present when the write-ahead log is on: the batches logged after checkpoint `restoredId`,
   * in order; the runtime sends each again before its source runs and resumes the source from
   * the last position logged.
   */
  walReplay?(restoredId: number | undefined): AsyncIterable<WalEntry>;
  /**
   * Present with partition-scoped checkpoints (scale-out): the store stages load partition
   * state from when partitions are assigned; handed to every stage as `partitionState`.
   */
  readonly partitionState?: PartitionStateAccess;
  /**
   * Counters for metrics (read at every metrics snapshot): checkpoints completed and failed, and
   * the last one's id, duration, state size and completion time on the run's clock (0: none yet).
   * Optional.
   */
  readonly stats?: {
    readonly completed: number;
    readonly failed: number;
    readonly lastId: number;
    readonly lastDurationMs: number;
    readonly lastStateBytes: number;
    readonly lastCompletedAt?: number;
  };
}

/** One entry of the write-ahead log: a batch a source sent, and its position after it. */
export interface WalEntry {
  readonly stage: string;
  readonly batch: Batch<unknown>;
  readonly position: Position | undefined;
}
