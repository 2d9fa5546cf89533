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
 *
 * Exactly-once into Kafka (the sink commits the sources' offsets inside its transaction, and
 * commits that transaction only after the checkpoint is stored): a member killed between the two
 * leaves an entry whose offset is *ahead* of what its aborted transaction published — the entry
 * says records are done whose output is gone. So each entry also keeps the version it replaced
 * (`previous`, written by a checkpoint whose transaction had committed), and when the sink commits
 * the offsets, `load` is given the group's committed offsets — read with `require_stable`, so a
 * transaction still open is waited for and its outcome known — and takes the newest version not
 * ahead of them (see {@link chooseVersion}); a version ahead is dropped from the store, so the
 * next writer keeps a committed one as `previous`. The committed offset moves only inside the
 * transaction that holds the output, so it is the truth of what was published. (Committing the
 * transaction first and storing second instead would leave, after a crash between the two,
 * published output with no state matching it: a window's count would be lost, not repeated.
 * Committing the dead member's transaction on its behalf, as the pipeline scope's restart does,
 * needs its producer id and epoch, which live in the sink's state, not in the partition's.)
 */
import { deserialize, serialize } from 'node:v8';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Position } from '../core/message.ts';
import { doneEntry, isOffsetEntry, splitPartitionName } from '../core/partitions.ts';
import type { CommittedOffsets, Logger, PartitionResume, PartitionStateAccess } from '../core/stage.ts';
import type { StateBackend } from '../state/backend.ts';
import { deserializeState, serializeState } from './serial.ts';

const PREFIX = 'partitions/';

/** One stored state of a partition: its offset and operator slices. */
export interface PartitionVersion {
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
 * What is stored per partition: the newest version, and the one it replaced. `previous` was added
 * without a new `version` number: entries written before it simply have none, and an older Sluice
 * reading a newer entry ignores it.
 */
export interface PartitionEntry extends PartitionVersion {
  readonly version: 1;
  /** The version this one replaced (with a smaller offset), if any. */
  readonly previous?: PartitionVersion | undefined;
}

/**
 * Which stored version of a partition to resume from, given the offset its group committed in the
 * sink's transactions (`committed`; undefined: none, e.g. expired — the entry is trusted as is):
 * the newest version whose offset is not ahead of `committed`. A version ahead was stored by a
 * checkpoint whose transaction never committed: resuming from it would skip records whose output
 * is not published. `chosen` undefined: start the partition over from `committed` with no state.
 *
 * @example
 * chooseVersion({ version: 1, checkpoint: 3, offset: 90, operators, previous: { checkpoint: 2, offset: 60, operators } }, 60);
 * // { chosen: the checkpoint 2 version, dropped: [the checkpoint 3 version] }
 */
export function chooseVersion(
  entry: PartitionEntry,
  committed: number | undefined,
): { chosen: PartitionVersion | undefined; dropped: PartitionVersion[] } {
  const versions: PartitionVersion[] = [entry];
  if (entry.previous !== undefined) versions.push(entry.previous);
  if (committed === undefined) return { chosen: entry, dropped: [] };
  const dropped = versions.filter((v) => v.offset > committed);
  return { chosen: versions.find((v) => v.offset <= committed), dropped };
}

/** `v` alone, as the newest version of an entry (its own `previous` dropped). */
function entryOf(v: PartitionVersion, previous?: PartitionVersion): PartitionEntry {
  return {
    version: 1,
    checkpoint: v.checkpoint,
    offset: v.offset,
    ...(v.done !== undefined ? { done: v.done } : {}),
    operators: v.operators,
    ...(previous !== undefined ? { previous } : {}),
  };
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
  const p = e?.previous;
  if (
    e?.version !== 1 ||
    typeof e.offset !== 'number' ||
    !(e.operators instanceof Map) ||
    (p !== undefined && (typeof p?.offset !== 'number' || !(p.operators instanceof Map)))
  ) {
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
  readonly stats = { loaded: 0, written: 0, stale: 0, rolledBack: 0 };

  constructor(backend: StateBackend, log: Logger) {
    this.backend = backend;
    this.log = log;
  }

  /**
   * Loads the stored state of `partitions` (see `PartitionStateAccess.load`). With `committed`
   * (exactly-once: the sink commits the offsets in its transactions), the group's committed offsets
   * are read first — after any transaction still open on them ended, so a checkpoint being stored
   * by the previous owner is complete — and each partition resumes from the version
   * {@link chooseVersion} picks; versions ahead of the commit are deleted from the store.
   */
  async load(
    group: string,
    partitions: readonly string[],
    committed?: CommittedOffsets,
  ): Promise<Map<string, PartitionResume>> {
    if (this.group !== undefined && this.group !== group) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `partition-scoped checkpoints take one consumer group per pipeline, got \`${this.group}\` and \`${group}\``,
      );
    }
    this.group = group;
    const commits = committed === undefined ? undefined : await committed(partitions);
    const out = new Map<string, PartitionResume>();
    for (const p of partitions) {
      const key = entryKey(group, p);
      const bytes = await this.backend.read(key);
      this.generations.set(p, (this.generations.get(p) ?? 0) + 1);
      const e = bytes === undefined ? undefined : decodeEntry(key, bytes);
      const v = e === undefined || commits === undefined ? e : await this.rollBack(key, p, e, commits.get(p));
      if (v === undefined) {
        this.loads.delete(p);
        this.known.delete(p);
        continue;
      }
      this.loads.set(p, v.operators);
      this.known.set(p, v.offset);
      this.stats.loaded++;
      // Committed past the state (see `rollBack`): the partition's position starts at the
      // committed offset, so a checkpoint before its next record commits that offset again instead
      // of moving the group back to the state's (a later owner would read those records again and
      // publish their output twice). The done entry is dropped then: it is the source's, written
      // relative to the stored offset, and what it lists is below the committed offset anyway (the
      // commit that moved past the state is a contiguous low watermark taken after it).
      const at = commits?.get(p);
      if (at !== undefined && at > v.offset) out.set(p, { offset: at });
      else out.set(p, v.done === undefined ? { offset: v.offset } : { offset: v.offset, done: v.done });
    }
    return out;
  }

  /**
   * The version of `p`'s entry `e` to resume from, given the group's committed offset; the
   * versions ahead of it (their transaction never committed) are deleted from the store first.
   */
  private async rollBack(
    key: string,
    p: string,
    e: PartitionEntry,
    committed: number | undefined,
  ): Promise<PartitionVersion | undefined> {
    const { chosen, dropped } = chooseVersion(e, committed);
    if (dropped.length > 0) {
      await this.backend.write(new Map([[key, chosen === undefined ? null : serialize(entryOf(chosen))]]));
      this.stats.rolledBack++;
      const from = dropped.map((v) => `offset ${v.offset} (checkpoint ${v.checkpoint})`).join(', ');
      this.log.warn(
        `Partition \`${p}\` of group \`${this.group}\`: the state stored at ${from} was dropped, because the transaction of that checkpoint never committed (its member stopped between storing and committing); the partition resumes from the group's committed offset ${committed}${chosen === undefined ? ' with no state' : ' with the state stored there'}`,
        { partition: p },
      );
    } else if (chosen !== undefined && committed !== undefined && chosen.offset < committed) {
      // The source's stream starts at the group's committed offset (under partition scope no
      // checkpoint position is restored: the consumer reads in `committed` mode), and `load` gives
      // that offset as the partition's resume offset: the records between are not read again.
      this.log.warn(
        `Partition \`${p}\` of group \`${this.group}\`: the group committed offset ${committed}, past the stored state (offset ${chosen.offset}); reading and the partition's position resume at ${committed}, so the records between are not read again and the partition's state goes on without them (their output was written by the transaction that committed ${committed})`,
        { partition: p },
      );
    }
    return chosen;
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
        const bytes = await this.backend.read(key);
        const before = bytes === undefined ? undefined : decodeEntry(key, bytes);
        if (before !== undefined && before.offset > offset) {
          // Another member went further with this partition since: its entry stays.
          this.stats.stale++;
          continue;
        }
        const operators = new Map<string, Uint8Array>();
        for (const [stage, byPartition] of slices) {
          const bytes = byPartition.get(p) ?? this.loadedBytes(stage, p);
          if (bytes !== undefined) operators.set(stage, bytes);
        }
        const entry = entryOf(
          { checkpoint: checkpointId, offset, ...(typeof done === 'string' ? { done } : {}), operators },
          // The version replaced stays as `previous` (one at the same offset is only re-written).
          before === undefined ? undefined : before.offset < offset ? entryOf(before) : before.previous,
        );
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
