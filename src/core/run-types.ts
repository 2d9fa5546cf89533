/**
 * The public shapes of a run ({@link RunOptions}, {@link RunHandle}, {@link RunTopology}), apart
 * from the runtime that implements them (`run.ts`).
 */
import type { CheckpointDriver } from './checkpointing.ts';
import type { Clock } from './clock.ts';
import type { GraphNode } from './graph.ts';
import type { MetricsSnapshot, SourceLag } from './metrics.ts';
import type { DeadLetter, Logger } from './stage.ts';

/** Options of {@link runGraph}. */
export interface RunOptions {
  /** Aborting it cancels the run (like `stop({ drain: false })`). */
  signal?: AbortSignal;
  /** Clock for every stage; inject a {@link ManualClock} in tests. Default: the system clock. */
  clock?: Clock;
  /**
   * Messages (batches or signals) each channel queues unless its edge says otherwise.
   * Default 2: with the sender's parked batch that is triple buffering per edge, and a batch
   * crosses the stages while still in the CPU cache (`npm run bench -- core` ran fastest at
   * 1–2, 20–30 % slower at 4–8).
   */
  channelCapacity?: number;
  /**
   * Maximum fraction (0–1) of records read that may become dead letters; above it the run
   * stops with an error. Checked once `errorRateMinRecords` records were read. Default: none.
   */
  maxErrorRate?: number;
  /** Records to read before `maxErrorRate` is enforced. Default 100. */
  errorRateMinRecords?: number;
  /** Logger for stages. Default: warnings and errors to stderr. */
  log?: Logger;
  /**
   * Checkpoints: the coordinator that decides when they happen and stores them (see
   * `src/checkpoint/coordinator.ts`). With it the run restores the newest intact checkpoint
   * before any data, injects barriers into the sources' outputs, snapshots operators at aligned
   * barriers and collects sink acknowledgements. Default: no checkpoints.
   */
  checkpoint?: CheckpointDriver;
  /**
   * Bytes of keyed state (window accumulators…) the run's operators may hold on the heap
   * together, as they estimate it (see `core/state-budget.ts`); past it the run fails with a
   * `SLUICE_STATE_LIMIT` error naming the stage, instead of running out of memory. Default: half
   * of V8's heap limit.
   */
  maxStateBytes?: number;
}

/** What a finished run reports. */
export type RunSummary = MetricsSnapshot;

/** A running pipeline. */
export interface RunHandle {
  /**
   * Settles when every stage has ended and every resource is closed: resolves with the final
   * metrics on success or user stop (`state` says which), rejects with the first error.
   */
  readonly done: Promise<RunSummary>;
  /**
   * Stops the run. `drain: true` (default): sources stop reading, what is in flight flows to
   * the sinks, which flush and commit. `drain: false`: everything is cancelled at once and
   * uncommitted output is discarded. Returns `done`.
   */
  stop(options?: { drain?: boolean }): Promise<RunSummary>;
  /** A snapshot of the run's metrics, cheap enough to call a few times a second. */
  metrics(): MetricsSnapshot;
  /**
   * The running graph: its stages and edges (after fusing consecutive record steps, with the
   * implicit edges into the dlq), for drawing it. Fixed for the run.
   */
  topology(): RunTopology;
  /**
   * How far behind its input each source that can tell is (Kafka: lag per partition and commit
   * age), keyed by source stage name. May ask the broker: call it at most every few seconds.
   */
  lag(): Promise<Readonly<Record<string, SourceLag>>>;
  /**
   * The latest dead letters (at most {@link DEAD_LETTER_SAMPLE_SIZE}, newest last) with secret
   * values redacted and each record cut to a short preview, for a dashboard.
   */
  deadLetterSample(): readonly DeadLetter[];
}

/** The running graph; see {@link RunHandle.topology}. */
export interface RunTopology {
  readonly pipeline: string;
  readonly stages: readonly {
    readonly name: string;
    readonly kind: GraphNode['kind'];
    readonly component: string;
  }[];
  readonly edges: readonly { readonly from: string; readonly port: string; readonly to: string }[];
  /** Name of the dlq sink, if any. */
  readonly dlq?: string | undefined;
}
