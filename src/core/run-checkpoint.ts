/**
 * The runtime's side of checkpointing, outside the data path: restoring every stage from the
 * newest checkpoint before any data, and — without checkpoints — telling sources when every
 * sink has handled a barrier so they may commit what it covers.
 */
import type { CheckpointDriver } from './checkpointing.ts';
import { ErrorCode, SluiceError, wrapError } from './errors.ts';
import type { Graph, GraphNode } from './graph.ts';
import type { Batch, Position } from './message.ts';
import type { Logger, Sink, Source } from './stage.ts';

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
