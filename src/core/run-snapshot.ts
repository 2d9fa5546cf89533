/**
 * The run's metrics snapshot (`RunHandle.metrics()` and the final summary): per-stage counters
 * plus what the channels into each stage hold, totals, and the first source's progress.
 */
import type { Channel } from './channel.ts';
import type { CheckpointDriver } from './checkpointing.ts';
import type { Graph, GraphNode } from './graph.ts';
import type { Message } from './message.ts';
import type {
  ChannelSnapshot,
  CheckpointSnapshot,
  MetricsSnapshot,
  RunState,
  StageMetrics,
  StageSnapshot,
} from './metrics.ts';

/** What a snapshot is made from. */
export interface SnapshotInputs {
  readonly graph: Graph;
  readonly state: RunState;
  readonly elapsedMs: number;
  readonly stageMetrics: ReadonlyMap<string, StageMetrics>;
  readonly inputs: ReadonlyMap<string, readonly Channel<Message>[]>;
  readonly outputs: ReadonlyMap<string, ReadonlyMap<string, readonly Channel<Message>[]>>;
  readonly deadLetters: number;
  readonly peakQueuedRecords: number;
  /** Every channel with its edge. */
  readonly channels?: readonly { from: string; port: string; to: string; ch: Channel<Message> }[];
  /** The checkpoint coordinator's counters, when the run takes checkpoints. */
  readonly checkpoint?: CheckpointDriver['stats'];
  /** The run clock's time now (checkpoint age). */
  readonly now?: number;
}

/**
 * The records a source took from its input: those it emitted, unless its `metrics()` reports
 * `inputRecords` (a source that emits something else than what it read, such as the split-parallel
 * window's results).
 */
function sourceInputRecords(m: StageMetrics, node: GraphNode | undefined): number {
  const reported = node === undefined ? undefined : customMetrics(node).custom?.inputRecords;
  return typeof reported === 'number' ? reported : m.recordsOut;
}

/** Records the sources read so far (`nodes`: the graph's, for sources that report their input). */
export function recordsRead(
  stageMetrics: ReadonlyMap<string, StageMetrics>,
  nodes?: ReadonlyMap<string, GraphNode>,
): number {
  let read = 0;
  for (const [id, m] of stageMetrics) if (m.kind === 'source') read += sourceInputRecords(m, nodes?.get(id));
  return read;
}

/**
 * Records the sources took from their input: those they emitted plus those they could not
 * decode (sent to the DLQ). What `maxErrorRate` divides by, so an input whose every line is
 * malformed counts as all failed, not as nothing read.
 */
export function recordsTaken(
  stageMetrics: ReadonlyMap<string, StageMetrics>,
  nodes?: ReadonlyMap<string, GraphNode>,
): number {
  let taken = 0;
  for (const [id, m] of stageMetrics)
    if (m.kind === 'source') taken += sourceInputRecords(m, nodes?.get(id)) + m.deadLetters;
  return taken;
}

/** A stage's own metrics, if it reports any; a hook that throws is reported as missing. */
function customMetrics(node: GraphNode): { custom?: Readonly<Record<string, number>> } {
  const hook = node.stage.metrics;
  if (hook === undefined) return {};
  try {
    return { custom: hook.call(node.stage) };
  } catch {
    return {};
  }
}

/** Builds the snapshot; cheap enough to call a few times a second. */
export function runSnapshot(s: SnapshotInputs): MetricsSnapshot {
  const stages: StageSnapshot[] = [];
  let written = 0;
  let queuedRecords = 0;
  let droppedRecords = 0;
  for (const [id, m] of s.stageMetrics) {
    const ins = s.inputs.get(id) ?? [];
    const outs = [...(s.outputs.get(id)?.values() ?? [])].flat();
    let queued = 0;
    let capacity = 0;
    let qRecords = 0;
    let dropped = 0;
    for (const ch of ins) {
      queued += ch.size;
      capacity += ch.capacity;
      qRecords += ch.queuedWeight;
      dropped += ch.droppedWeight;
    }
    queuedRecords += qRecords;
    droppedRecords += dropped;
    // A sink's dead letters (rows a database rejected) were handed to it but not written.
    const out = m.kind === 'sink' ? Math.max(0, m.recordsOut - m.deadLetters) : m.recordsOut;
    if (m.kind === 'sink' && id !== s.graph.dlqNode) written += out;
    stages.push({
      name: id,
      kind: m.kind,
      component: m.component,
      recordsIn: m.recordsIn,
      recordsOut: out,
      batchesIn: m.batchesIn,
      batchesOut: m.batchesOut,
      deadLetters: m.deadLetters,
      errors: m.errors,
      blockedMs: outs.reduce((sum, ch) => sum + ch.blockedMs, 0),
      queued,
      queueCapacity: capacity,
      queuedRecords: qRecords,
      droppedRecords: dropped,
      ...customMetrics(s.graph.nodes.get(id) as GraphNode),
      ...(m.deadLettersByCode.size > 0 ? { deadLettersByCode: Object.fromEntries(m.deadLettersByCode) } : {}),
      ...(m.watermark !== Number.NEGATIVE_INFINITY ? { watermark: m.watermark } : {}),
      ...(m.kind !== 'source' ? { batchLatency: m.batchLatency.snapshot() } : {}),
      ...(m.kind === 'sink' ? { flushLatency: m.flushLatency.snapshot() } : {}),
    });
  }
  let progress: MetricsSnapshot['progress'];
  for (const node of s.graph.nodes.values()) {
    if (node.kind === 'source' && node.stage.progress) {
      progress = node.stage.progress();
      break;
    }
  }
  return {
    pipeline: s.graph.name,
    state: s.state,
    elapsedMs: s.elapsedMs,
    recordsRead: recordsRead(s.stageMetrics, s.graph.nodes),
    recordsWritten: written,
    deadLetters: s.deadLetters,
    droppedRecords,
    queuedRecords,
    peakQueuedRecords: s.peakQueuedRecords,
    progress,
    stages,
    ...(s.channels !== undefined ? { channels: s.channels.map(channelSnapshot) } : {}),
    ...(s.checkpoint !== undefined ? { checkpoint: checkpointSnapshot(s.checkpoint, s.now) } : {}),
  };
}

function channelSnapshot(e: {
  from: string;
  port: string;
  to: string;
  ch: Channel<Message>;
}): ChannelSnapshot {
  return {
    from: e.from,
    port: e.port,
    to: e.to,
    queued: e.ch.size,
    capacity: e.ch.capacity,
    queuedRecords: e.ch.queuedWeight,
    blockedMs: e.ch.blockedMs,
  };
}

function checkpointSnapshot(
  c: NonNullable<CheckpointDriver['stats']>,
  now: number | undefined,
): CheckpointSnapshot {
  const at = c.lastCompletedAt ?? 0;
  return {
    completed: c.completed,
    failed: c.failed,
    lastId: c.lastId,
    lastDurationMs: c.lastDurationMs,
    lastStateBytes: c.lastStateBytes,
    ...(at > 0 && now !== undefined ? { ageMs: Math.max(0, now - at) } : {}),
  };
}
