/**
 * The runtime's side of checkpointing: restoring every stage from the newest checkpoint before
 * any data, delivering an aligned barrier to an operator or sink (snapshot, acknowledgement),
 * barriers for idle sources on the coordinator's timer, and — without checkpoints — telling
 * sources when every sink has handled a barrier so they may commit what it covers.
 */
import type { CheckpointDriver } from './checkpointing.ts';
import type { Clock } from './clock.ts';
import { ErrorCode, SluiceError, wrapError } from './errors.ts';
import type { Graph, GraphNode } from './graph.ts';
import { type Barrier, type Batch, barrier, type Position } from './message.ts';
import { untilAborted } from './sending.ts';
import type { Emitter, Logger, Sink, Source } from './stage.ts';

/**
 * Loads the newest intact checkpoint and hands each stage its part (sources their position,
 * operators and sinks their state), collects the write-ahead log's entries to replay, then
 * starts the coordinator. Runs after every stage is open and before any data. Resolves with the
 * batches to send again per source stage, before its `run`.
 */
export async function restoreCheckpoint(
  graph: Graph,
  checkpoint: CheckpointDriver,
  log: Logger,
): Promise<Map<string, Batch<unknown>[]>> {
  const replay = new Map<string, Batch<unknown>[]>();
  for (const node of graph.nodes.values()) {
    if (node.kind === 'source' && node.stage.readOnce === true && checkpoint.walAppend === undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `source \`${node.id}\` (${node.component}) cannot be read again, so a checkpoint could not resume it: turn on the write-ahead log (\`checkpoint: { wal: true }\`), which replays what was read after the last checkpoint, or run without checkpoints`,
        { stage: node.id },
      );
    }
  }
  const restored = await checkpoint.restore();
  const positions = new Map<string, Position | undefined>();
  if (restored !== undefined) for (const [k, v] of Object.entries(restored.sources)) positions.set(k, v);
  if (checkpoint.walReplay !== undefined) {
    for await (const entry of checkpoint.walReplay(restored?.id)) {
      const list = replay.get(entry.stage) ?? [];
      list.push(entry.batch);
      replay.set(entry.stage, list);
      positions.set(entry.stage, entry.position);
    }
  }
  const sources: string[] = [];
  const sinks: string[] = [];
  // Sinks first: an exactly-once sink settles its transactions in `restore`, then may hold
  // positions newer than the checkpoint's (e.g. the checkpoint folder was lost).
  for (const node of graph.nodes.values()) {
    if (node.kind !== 'sink') continue;
    const where = `restoring stage \`${node.id}\` from checkpoint ${restored?.id}`;
    try {
      sinks.push(node.id);
      if (restored !== undefined) await node.stage.restore?.(restored.sinks[node.id]);
      const held = await node.stage.committedPositions?.();
      if (held !== undefined && held.checkpointId > (restored?.id ?? 0)) {
        for (const [src, pos] of Object.entries(held.sources)) if (pos !== undefined) positions.set(src, pos);
        log.warn(
          `Resuming from the positions sink \`${node.id}\` committed with checkpoint ${held.checkpointId}, newer than the checkpoint store's ${restored?.id ?? 'none'}`,
        );
      }
    } catch (err) {
      throw wrapError(where, err, { stage: node.id, component: node.component });
    }
  }
  for (const node of graph.nodes.values()) {
    const where = `restoring stage \`${node.id}\` from checkpoint ${restored?.id}`;
    try {
      if (node.kind === 'source') {
        sources.push(node.id);
        const pos = positions.get(node.id);
        if (pos !== undefined) {
          if (node.stage.restore === undefined) {
            throw new SluiceError(
              ErrorCode.STAGE,
              `source \`${node.id}\` (${node.component}) cannot resume from a position; delete the checkpoint folder to start over`,
              { stage: node.id },
            );
          }
          await node.stage.restore(pos);
        }
      } else if (node.kind === 'operator') {
        const state = restored?.operators.get(node.id);
        if (state === undefined) continue;
        if (node.stage.restore === undefined) {
          log.warn(
            `Stage \`${node.id}\` has state in checkpoint ${restored?.id} but cannot restore it; it starts empty`,
          );
        } else await node.stage.restore(state);
      }
    } catch (err) {
      throw wrapError(where, err, { stage: node.id, component: node.component });
    }
  }
  if (restored !== undefined) log.info(`Restored checkpoint \`${restored.id}\``, { checkpoint: restored.id });
  checkpoint.begin({
    sources,
    sinks,
    commit: async (data) => {
      for (const id of sources) {
        const stage = (graph.nodes.get(id) as GraphNode).stage as Source;
        const pos = data.sources[id];
        if (pos !== undefined) await stage.commit?.(pos);
      }
      for (const id of sinks)
        await ((graph.nodes.get(id) as GraphNode).stage as Sink).commitCheckpoint?.(data.id);
    },
  });
  return replay;
}

/**
 * Without checkpoints: counts the sinks (the dlq sink included) that handled each barrier, and
 * says when all have. Only used when no operator holds state (which only a checkpoint covers)
 * and every sink is durable at a barrier.
 */
export class BarrierAcks {
  private readonly acks = new Map<number, number>();
  private readonly sinks: number;

  /** @param sinks how many sinks must handle each barrier */
  constructor(sinks: number) {
    this.sinks = sinks;
  }

  /** Sink handled barrier `id`: true when it was the last of them. */
  handled(id: number): boolean {
    const done = (this.acks.get(id) ?? 0) + 1;
    if (done < this.sinks) {
      this.acks.set(id, done);
      return false;
    }
    this.acks.delete(id);
    return true;
  }
}

/** Checkpointing: where a source is, for barriers sent while it idles (see {@link sendIdleBarriers}). */
export interface SourceTurn {
  emitting: boolean;
  idleBarrier: Promise<void> | undefined;
  ended: boolean;
}

/** What {@link sendIdleBarriers} needs from the run. */
export interface IdleBarrierDeps {
  readonly clock: Clock;
  /** Ends the timer (the sources ended, the run stops or is cancelled). */
  readonly signal: AbortSignal;
  emitterFor(node: Extract<GraphNode, { kind: 'source' }>): Emitter<unknown>;
  turnOf(id: string): SourceTurn;
  /** True while the source's write-ahead-log batches are sent again. */
  replaying(id: string): boolean;
}

/**
 * The coordinator's timer path: every `barrierTimerMs`, a source that declares `idleBarriers`
 * and is not inside `emit` (it waits for input) and says its position is exact
 * (`idleBarrierReady`, when it has it) is asked `barrierDue(id, 0)`, and gets the due barrier
 * with its current position — so an idle source still takes checkpoints on the
 * interval, and one another source began completes. Resolves when `deps.signal` aborts; rejects
 * when sending a barrier fails.
 */
export async function sendIdleBarriers(
  graph: Graph,
  checkpoint: CheckpointDriver,
  deps: IdleBarrierDeps,
): Promise<void> {
  const every = checkpoint.barrierTimerMs?.();
  if (every === undefined) return;
  const sources = [...graph.nodes.values()].filter(
    (n): n is Extract<GraphNode, { kind: 'source' }> => n.kind === 'source' && n.stage.idleBarriers === true,
  );
  if (sources.length === 0) return;
  const emitters = new Map(sources.map((n) => [n.id, deps.emitterFor(n)]));
  while (!deps.signal.aborted) {
    try {
      await deps.clock.sleep(every, deps.signal);
    } catch {
      return;
    }
    for (const node of sources) {
      const turn = deps.turnOf(node.id);
      if (turn.emitting || turn.ended || turn.idleBarrier !== undefined || deps.replaying(node.id)) continue;
      // Its position may count records it holds but has not emitted: the next tick, or its next emit.
      if (node.stage.idleBarrierReady?.() === false) continue;
      const due = checkpoint.barrierDue(node.id, 0);
      if (due === undefined) continue;
      checkpoint.sourceBarrier(due, node.id, node.stage.position?.());
      const sent = (emitters.get(node.id) as Emitter<unknown>).signal(barrier(due));
      turn.idleBarrier = sent.finally(() => {
        turn.idleBarrier = undefined;
      });
      await turn.idleBarrier;
    }
  }
}

/** What {@link deliverAlignedBarrier} needs from the run. */
export interface BarrierDeps {
  readonly out: Emitter<unknown>;
  readonly checkpoint: CheckpointDriver;
  /** The run's cancellation. */
  readonly signal: AbortSignal;
  /** Sends the dead letters the stage produced. */
  afterCall(): Promise<void>;
}

/**
 * Barrier `b` has arrived on every input of `node`. Operator: its `onSignal` handles (and
 * forwards) the barrier, then it snapshots; without `onSignal` it snapshots and the runtime
 * forwards. Sink: flushes in `onSignal`, then its `snapshot` and the acknowledgement go to
 * the coordinator.
 */
export async function deliverAlignedBarrier(
  node: Exclude<GraphNode, { kind: 'source' }>,
  b: Barrier,
  deps: BarrierDeps,
): Promise<void> {
  const { out, checkpoint, signal } = deps;
  if (node.kind === 'sink') {
    const sink = node.stage;
    const r = sink.onSignal?.(b);
    if (r !== undefined) await untilAborted(r, signal);
    // Dead letters the sink produced while flushing belong to this checkpoint (and the dlq
    // sink writes what it rejected before its snapshot, which must cover them).
    await deps.afterCall();
    let state: unknown;
    if (sink.snapshot !== undefined) state = await untilAborted(Promise.resolve(sink.snapshot(b.id)), signal);
    checkpoint.sinkAcked(b.id, node.id, state);
    await out.signal(b);
    return;
  }
  const op = node.stage;
  if (op.onSignal !== undefined) {
    const r = op.onSignal(b, out);
    if (r !== undefined) await untilAborted(r, signal);
    if (op.snapshot !== undefined) checkpoint.operatorSnapshot(b.id, node.id, op.snapshot(b.id));
  } else {
    if (op.snapshot !== undefined) checkpoint.operatorSnapshot(b.id, node.id, op.snapshot(b.id));
    await out.signal(b);
  }
  await deps.afterCall();
}
