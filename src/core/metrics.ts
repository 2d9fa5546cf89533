/**
 * Per-stage counters and the run-wide snapshot read by the run handle and the CLI status
 * line. Counters are bumped once per batch, never per record.
 */

/** Live counters of one stage, owned by the runtime. */
export class StageMetrics {
  /** Records received (operators, sinks) or produced (sources). */
  recordsIn = 0;
  /** Records emitted on any port (sinks: records written). */
  recordsOut = 0;
  /** Batches received. */
  batchesIn = 0;
  /** Batches emitted. */
  batchesOut = 0;
  /** Records sent to the dead-letter output by this stage. */
  deadLetters = 0;
  /** 1 if the stage failed as a whole. */
  errors = 0;

  readonly name: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly component: string;

  constructor(name: string, kind: 'source' | 'operator' | 'sink', component: string) {
    this.name = name;
    this.kind = kind;
    this.component = component;
  }
}

/** A frozen view of one stage. */
export interface StageSnapshot {
  readonly name: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly component: string;
  readonly recordsIn: number;
  /** Records emitted; for a sink, records written (those it sent to the DLQ, e.g. rows a database rejected, are not). */
  readonly recordsOut: number;
  readonly batchesIn: number;
  readonly batchesOut: number;
  readonly deadLetters: number;
  readonly errors: number;
  /** Milliseconds this stage spent blocked sending to full downstream channels (backpressure). */
  readonly blockedMs: number;
  /** Messages waiting in this stage's input channels. */
  readonly queued: number;
  /** Capacity of this stage's input channels, summed. */
  readonly queueCapacity: number;
  /** Records waiting in this stage's input channels. */
  readonly queuedRecords: number;
  /** Records discarded from this stage's input buffers by their `dropOldest` overflow policy. */
  readonly droppedRecords: number;
  /** What the stage itself reports (its `metrics()` hook), e.g. `ruleVersion`. */
  readonly custom?: Readonly<Record<string, number>>;
}

/** A frozen view of a whole run. */
export interface MetricsSnapshot {
  readonly pipeline: string;
  /** Run state: `running`, `draining`, `succeeded`, `failed`, `cancelled`. */
  readonly state: RunState;
  readonly elapsedMs: number;
  /** Records produced by all sources. */
  readonly recordsRead: number;
  /** Records written by all sinks except the dead-letter sink, less the rows a sink rejected to the DLQ. */
  readonly recordsWritten: number;
  /** Records sent to the dead-letter output. */
  readonly deadLetters: number;
  /** Records discarded by buffers whose overflow policy is `dropOldest` (on purpose, but lost). */
  readonly droppedRecords: number;
  /** Records queued in all channels right now. */
  readonly queuedRecords: number;
  /** Most records ever queued in all channels at once (sampled at every send). */
  readonly peakQueuedRecords: number;
  /** Source progress, when a source knows its total (bytes or records). */
  readonly progress?: { done: number; total?: number; unit: 'bytes' | 'records' } | undefined;
  readonly stages: readonly StageSnapshot[];
}

/** Lifecycle of a run. */
export type RunState = 'starting' | 'running' | 'draining' | 'succeeded' | 'failed' | 'cancelled';
