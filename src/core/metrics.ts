/**
 * Per-stage counters and the run-wide snapshot read by the run handle and the CLI status
 * line. Counters are bumped once per batch, never per record.
 */

/**
 * Upper bounds (ms) of the latency histogram buckets: fixed, so every stage's histogram can be
 * exported as one Prometheus histogram and merged across runs.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000,
];

/** A latency histogram over {@link LATENCY_BUCKETS_MS}; `observe` is called once per batch or flush. */
export class LatencyHistogram {
  /** Observations per bucket (not cumulative); the last entry counts those above every bound. */
  readonly counts: number[] = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  /** Sum of every observation, ms. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** Records one duration in milliseconds. */
  observe(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[i] as number)) i++;
    (this.counts as number[])[i] = (this.counts[i] as number) + 1;
    this.sum += ms;
    this.count++;
  }

  /** A copy, for a snapshot. */
  snapshot(): HistogramSnapshot {
    return { buckets: LATENCY_BUCKETS_MS, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** A frozen {@link LatencyHistogram}: per-bucket (non-cumulative) counts over `buckets` (ms), plus one above. */
export interface HistogramSnapshot {
  readonly buckets: readonly number[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

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
  /** Dead letters of this stage per error code (a handful of codes, never per key). */
  readonly deadLettersByCode = new Map<string, number>();
  /** Time the stage took per input batch (`process` or `write`); none for sources. */
  readonly batchLatency = new LatencyHistogram();
  /** Sinks: time to make what was written durable at a checkpoint barrier (`onSignal(barrier)`). */
  readonly flushLatency = new LatencyHistogram();
  /** The last event-time watermark the stage emitted (sources, operators) or received (sinks), epoch ms. */
  watermark = Number.NEGATIVE_INFINITY;

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
  /** Dead letters per error code. */
  readonly deadLettersByCode?: Readonly<Record<string, number>>;
  /** Latest event-time watermark (epoch ms) the stage emitted, or received for a sink; absent before the first. */
  readonly watermark?: number;
  /** Time per input batch (operators and sinks). */
  readonly batchLatency?: HistogramSnapshot;
  /** Sinks: time per checkpoint-barrier flush. */
  readonly flushLatency?: HistogramSnapshot;
}

/** A frozen view of one edge (one bounded channel) of the running graph. */
export interface ChannelSnapshot {
  readonly from: string;
  /** The output port of `from`: `out`, a side output name, or `dlq`. */
  readonly port: string;
  readonly to: string;
  /** Messages queued now. */
  readonly queued: number;
  /** Messages it holds at most. */
  readonly capacity: number;
  /** Records queued now. */
  readonly queuedRecords: number;
  /** Milliseconds senders spent blocked on it because it was full (backpressure), in total. */
  readonly blockedMs: number;
}

/** Checkpoint counters, when the run takes checkpoints. */
export interface CheckpointSnapshot {
  readonly completed: number;
  readonly failed: number;
  /** Id of the last completed (or restored) checkpoint; 0 for none. */
  readonly lastId: number;
  /** Trigger to durable, ms, of the last completed checkpoint. */
  readonly lastDurationMs: number;
  /** Serialised operator state of the last completed checkpoint, bytes. */
  readonly lastStateBytes: number;
  /** Milliseconds since the last checkpoint completed; absent before the first. */
  readonly ageMs?: number;
}

/** What a partitioned source (Kafka) reports about how far behind its input it is. */
export interface SourceLag {
  /** Per partition (`topic:partition`): records between the source's position and the end of the partition. */
  readonly partitions: readonly PartitionLag[];
  /** Milliseconds since the source last committed its position upstream; absent before the first commit. */
  readonly commitAgeMs?: number | undefined;
}

/** One partition's lag; see {@link SourceLag}. */
export interface PartitionLag {
  /** `topic:partition`. */
  readonly partition: string;
  /** The next offset the source resumes from (its position). */
  readonly position: number;
  /** The broker's end offset (high watermark or last stable offset). */
  readonly end: number;
  /** `end - position`, never negative. */
  readonly lag: number;
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
  /** Every edge of the running graph (those to the dlq included), with what it holds now. */
  readonly channels?: readonly ChannelSnapshot[];
  /** Checkpoint counters; absent when the run takes none. */
  readonly checkpoint?: CheckpointSnapshot;
}

/** Lifecycle of a run. */
export type RunState = 'starting' | 'running' | 'draining' | 'succeeded' | 'failed' | 'cancelled';
