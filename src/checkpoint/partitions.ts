/**
 * Partition-scoped checkpoints for scale-out (`checkpoint: { scope: partition }`): several
 * processes with the same pipeline and consumer group share a topic's partitions, and each
 * partition's keyed state moves with the partition through a store they all open (an LMDB
 * folder on one machine).
 *
 * Layout: `partitions/<group>/<topic>/<partition>` → one v8-serialised {@link PartitionEntry}:
 * the partition's offset and, per partition-scoped operator stage, that operator's serialised
 * slice of state. Every completed checkpoint writes the entries of the partitions whose offset
 * moved, all in one atomic write, before the offsets are committed to Kafka — so the group's
 * committed offset is never ahead of the stored state.
 *
 * Every entry is a consistent pair (state after exactly the records before its offset), so
 * restoring any of them and replaying the partition from its offset gives the same results:
 * a stale entry costs only re-processing (duplicate, identical outputs), never a wrong state.
 * An entry is not overwritten by one with a smaller offset (a member that lost the partition
 * writes its last state after the new owner went further).
 */
import { deserialize, serialize } from 'node:v8';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Position } from '../core/message.ts';
import { doneEntry, isOffsetEntry, splitPartitionName } from '../core/partitions.ts';
import type { Logger, PartitionResume, PartitionStateAccess } from '../core/stage.ts';
import type { StateBackend } from '../state/backend.ts';
import { deserializeState, serializeState } from './serial.ts';

const PREFIX = 'partitions/';

/** What is stored per partition. */
export interface PartitionEntry {
  readonly version: 1;
  /** The checkpoint (of the writing process) it came from. */
  readonly checkpoint: number;
  /** The first offset the state does not cover. */
  readonly offset: number;
  /** Records done beyond `offset`, when some are. */
  readonly done?: string | undefined;
  /** Per operator stage: its serialised slice (`v8.serialize`). */
  readonly operators: Map<string, Uint8Array>;
}

/**
 * What a partition-scoped operator returns from `snapshot`: one state per partition (`topic:partition`).
 * The coordinator serialises and stores each slice with its partition's offset.
 */
export class PartitionSlices {
  readonly slices: Map<string, unknown>;
  constructor(slices: Map<string, unknown>) {
    this.slices = slices;
  }
}

/** Serialises each slice of a {@link PartitionSlices} snapshot. */
export function serializeSlices(s: PartitionSlices): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [p, state] of s.slices) out.set(p, serializeState(state, `the state of partition \`${p}\``));
  return out;
}

/** The store key of a partition (`topic:partition`) of `group`. */
function entryKey(group: string, partition: string): string {
  const { topic, partition: n } = splitPartitionName(partition);
  return `${PREFIX}${group}/${topic}/${n}`;
}

function decodeEntry(key: string, bytes: Uint8Array): PartitionEntry {
  let e: PartitionEntry;
  try {
    e = deserialize(bytes) as PartitionEntry;
  } catch (err) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `reading partition state \`${key}\`: ${errorMessage(err)}; delete that entry (or the checkpoint folder and the group's offsets) to start the partition over`,
      { key },
    );
  }
  if (e?.version !== 1 || typeof e.offset !== 'number' || !(e.operators instanceof Map)) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `reading partition state \`${key}\`: not a partition entry (version 1); is the checkpoint folder shared with another program?`,
      { key },
    );
  }
  return e;
}

/**
 * The partition store of one process: what the Kafka source loads on assignment, what
 * partition-scoped operators rebuild their slices from, and what the checkpoint coordinator
 * saves at each completed checkpoint. One source per pipeline in this mode.
 *
 * @example
 * const states = new PartitionStates(await lmdbBackend({ dir: '/shared/orders/partitions' }), console);
 * const resume = await states.load('orders', ['orders:0', 'orders:1']);
 */
export class PartitionStates implements PartitionStateAccess {
  readonly backend: StateBackend;
  private readonly log: Logger;
  private group: string | undefined;
  private readonly generations = new Map<string, number>();
  /** The source's current assignment. */
  private owning: ReadonlySet<string> = new Set();
  /** Per partition: the operator slices of its latest load. */
  private readonly loads = new Map<string, Map<string, Uint8Array>>();
  /** Per partition: the offset this process last loaded or wrote (unchanged offsets are not written again). */
  private readonly known = new Map<string, number>();
  /** Counters for metrics and tests. */
  readonly stats = { loaded: 0, written: 0, stale: 0 };

  constructor(backend: StateBackend, log: Logger) {
    this.backend = backend;
    this.log = log;
  }

  async load(group: string, partitions: readonly string[]): Promise<Map<string, PartitionResume>> {
    if (this.group !== undefined && this.group !== group) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `partition-scoped checkpoints take one consumer group per pipeline, got \`${this.group}\` and \`${group}\``,
      );
    }
    this.group = group;
    const out = new Map<string, PartitionResume>();
    for (const p of partitions) {
      const key = entryKey(group, p);
      const bytes = await this.backend.read(key);
      this.generations.set(p, (this.generations.get(p) ?? 0) + 1);
      if (bytes === undefined) {
        this.loads.delete(p);
        this.known.delete(p);
        continue;
      }
      const e = decodeEntry(key, bytes);
      this.loads.set(p, e.operators);
      this.known.set(p, e.offset);
      this.stats.loaded++;
      out.set(p, e.done === undefined ? { offset: e.offset } : { offset: e.offset, done: e.done });
    }
    return out;
  }

  generation(partition: string): number {
    return this.generations.get(partition) ?? 0;
  }

  assign(partitions: Iterable<string>): void {
    this.owning = new Set(partitions);
  }

  owned(): ReadonlySet<string> {
    return this.owning;
  }

  loaded(stage: string, partition: string): unknown {
    const bytes = this.loads.get(partition)?.get(stage);
    return bytes === undefined
      ? undefined
      : deserializeState(bytes, `the state of stage \`${stage}\` for partition \`${partition}\``);
  }

  /** The serialised slice `stage` had at `partition`'s latest load (for an operator that has not rebuilt it yet). */
  loadedBytes(stage: string, partition: string): Uint8Array | undefined {
    return this.loads.get(partition)?.get(stage);
  }

  /**
   * Stores checkpoint `checkpointId`: for each partition in the sources' positions whose offset
   * moved, its offset and every partition-scoped stage's slice (the operator's, or the slice
   * loaded for it when the operator has not seen the partition since). One atomic write.
   */
  async save(
    checkpointId: number,
    sources: ReadonlyMap<string, Position | undefined>,
    slices: ReadonlyMap<string, ReadonlyMap<string, Uint8Array>>,
  ): Promise<void> {
    const group = this.group;
    if (group === undefined) return; // no partition loaded yet: nothing owned
    const writes = new Map<string, Uint8Array | null>();
    const offsets = new Map<string, number>();
    for (const pos of sources.values()) {
      if (pos === undefined) continue;
      for (const [p, value] of Object.entries(pos)) {
        if (!isOffsetEntry(p)) continue;
        const offset = Number(value);
        const done = doneEntry(pos, p);
        if (this.known.get(p) === offset && done === undefined) continue;
        const key = entryKey(group, p);
        const before = await this.backend.read(key);
        if (before !== undefined && decodeEntry(key, before).offset > offset) {
          // Another member went further with this partition since: its entry stays.
          this.stats.stale++;
          continue;
        }
        const operators = new Map<string, Uint8Array>();
        for (const [stage, byPartition] of slices) {
          const bytes = byPartition.get(p) ?? this.loadedBytes(stage, p);
          if (bytes !== undefined) operators.set(stage, bytes);
        }
        const entry: PartitionEntry = {
          version: 1,
          checkpoint: checkpointId,
          offset,
          ...(typeof done === 'string' ? { done } : {}),
          operators,
        };
        writes.set(key, serialize(entry));
        offsets.set(p, offset);
      }
    }
    if (writes.size === 0) return;
    await this.backend.write(writes);
    for (const [p, offset] of offsets) this.known.set(p, offset);
    this.stats.written += writes.size;
    this.log.info(`Stored the state of ${writes.size} partitions of group \`${group}\``, {
      checkpoint: checkpointId,
    });
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.backend.close();
  }
}
