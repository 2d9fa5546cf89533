/**
 * The partitions of a `kafka` source: which ones this group member owns, an offset tracker for
 * each one it read (`offsets.ts`), where the ones not read yet resume, and what a rebalance
 * changes. The source's `position()` is built here.
 *
 * A rebalance is a diff of the member's partitions before and after (`update`):
 * - Without partition scope, a revoked partition is forgotten at once — its tracker, and, through
 *   `onForget`, its uncommitted progress — so no stale offset is committed later (the new owner
 *   re-reads from the last commit: duplicates, never a gap).
 * - With partition scope (`checkpoint: { scope: partition }`), a revoked partition stays in the
 *   position until a checkpoint covering everything emitted of it is committed (`release`), so
 *   its state is stored with the right offset first.
 */

import type { Position } from '../../core/message.ts';
import { DONE_SUFFIX, partitionName, splitPartitionName } from '../../core/partitions.ts';
import type { PartitionResume, PartitionStateAccess } from '../../core/stage.ts';
import {
  type CommitPoint,
  decodeDone,
  encodeDone,
  MAX_SPAN,
  PartitionOffsets,
  type ResumePoint,
} from './offsets.ts';
import type { KafkaMessage } from './records.ts';

/** One partition this source read, with its offset tracker. */
export interface Tracked {
  readonly topic: string;
  readonly partition: number;
  readonly offsets: PartitionOffsets;
  /** The leader epoch of its newest message, sent with its commits. */
  leaderEpoch: number;
}

/** A commit point of one partition, ready to commit. */
export interface PartitionCommit extends CommitPoint {
  readonly topic: string;
  readonly partition: number;
  readonly leaderEpoch: number;
}

/** The partitions of one `kafka` source; see the module comment. */
export class Assignment {
  /** Offset trackers of the partitions read so far, by `topic:partition`. */
  readonly tracked = new Map<string, Tracked>();
  /** Where partitions not read yet resume (a checkpoint, stored partition state, the group's commit metadata). */
  readonly resume = new Map<string, ResumePoint>();
  /** Partition scope: partitions whose stored state was loaded in this process. */
  private readonly loaded = new Set<string>();
  /** Partition scope: revoked partitions kept until a checkpoint covering them is committed. */
  private readonly releasing = new Set<string>();
  /** Partitions this member owns; undefined until the first assignment and after a lost connection. */
  private assigned: Set<string> | undefined;
  /** `partitionName(topic, partition)`, made once per partition (not once per message). */
  private readonly names = new Map<string, string[]>();
  /** Partitions revoked so far (a metric). */
  revoked = 0;
  /** Changes of the owned partitions so far: a check that spans an `await` compares it before and after. */
  changes = 0;

  private readonly scope: () => PartitionStateAccess | undefined;
  private readonly onForget: (name: string) => void;

  /**
   * `scope`: the run's partition-scoped state, read when a rebalance comes (undefined: no
   * partition scope). `onForget(name)`: a revoked partition was forgotten; drop what is kept
   * for it elsewhere (its last commit, its pending commit points).
   */
  constructor(scope: () => PartitionStateAccess | undefined, onForget: (name: string) => void) {
    this.scope = scope;
    this.onForget = onForget;
  }

  /** True when the member owns no partition (none assigned yet, or the group gave it none). */
  get idle(): boolean {
    return this.assigned === undefined || this.assigned.size === 0;
  }

  /** True unless the partition was revoked from this member (true before the first assignment). */
  owns(name: string): boolean {
    return this.assigned === undefined || this.assigned.has(name);
  }

  /** The partitions assigned now, or undefined before the first assignment. */
  get owned(): ReadonlySet<string> | undefined {
    return this.assigned;
  }

  /** The name of partition `partition` of `topic` (cached: called once per message). */
  nameOf(topic: string, partition: number): string {
    let byPartition = this.names.get(topic);
    if (byPartition === undefined) {
      byPartition = [];
      this.names.set(topic, byPartition);
    }
    let name = byPartition[partition];
    if (name === undefined) {
      name = partitionName(topic, partition);
      byPartition[partition] = name;
    }
    return name;
  }

  /** A rebalance (or the first join): the member owns `now`. See the module comment. */
  update(now: Set<string>): void {
    const scope = this.scope();
    // After a reconnect the partitions still tracked are the ones to compare with.
    const before =
      this.assigned ??
      (scope !== undefined && this.tracked.size > 0 ? new Set(this.tracked.keys()) : undefined);
    if (
      this.assigned === undefined ||
      this.assigned.size !== now.size ||
      [...now].some((n) => !this.assigned?.has(n))
    )
      this.changes++;
    for (const name of now) this.releasing.delete(name);
    scope?.assign(now);
    if (before !== undefined) {
      for (const name of before) {
        if (now.has(name)) continue;
        this.revoked++;
        if (scope !== undefined) {
          // Its state is stored with the next checkpoint (which covers what was emitted of it), then released.
          if (this.tracked.has(name)) this.releasing.add(name);
          else this.loaded.delete(name);
          continue;
        }
        this.tracked.delete(name);
        this.onForget(name);
      }
    }
    this.assigned = now;
  }

  /** The connection was lost: the next join says what is owned (the trackers stay, to skip re-deliveries). */
  lost(): void {
    this.assigned = undefined;
  }

  /** The tracker of `m`'s partition `name`, made on its first message (at its resume point, if any). */
  trackerOf(name: string, m: KafkaMessage): Tracked {
    let t = this.tracked.get(name);
    if (t === undefined) {
      const r = this.resume.get(name);
      this.resume.delete(name);
      t = {
        topic: m.topic,
        partition: m.partition,
        offsets:
          r !== undefined ? new PartitionOffsets(r.offset, r.done) : new PartitionOffsets(Number(m.offset)),
        leaderEpoch: m.leaderEpoch,
      };
      this.tracked.set(name, t);
    }
    t.leaderEpoch = m.leaderEpoch;
    return t;
  }

  /** True when some partition's span reached {@link MAX_SPAN}: reading more would outgrow the commit metadata. */
  spanFull(): boolean {
    for (const t of this.tracked.values()) if (t.offsets.span >= MAX_SPAN) return true;
    return false;
  }

  /** The commit point of every tracked partition. */
  commitPoints(): PartitionCommit[] {
    const out: PartitionCommit[] = [];
    for (const t of this.tracked.values()) {
      out.push({
        topic: t.topic,
        partition: t.partition,
        leaderEpoch: t.leaderEpoch,
        ...t.offsets.commitPoint(),
      });
    }
    return out;
  }

  /** The leader epoch last seen on partition `name`, or -1. */
  leaderEpochOf(name: string): number {
    return this.tracked.get(name)?.leaderEpoch ?? -1;
  }

  /**
   * The source position (`core/partitions.ts`): each partition's low watermark, plus its done
   * entry when records finished beyond a gap; partitions not read yet at their resume point.
   */
  position(): Position {
    const pos: Record<string, number | string> = {};
    for (const [name, r] of this.resume) {
      pos[name] = r.offset;
      const done = encodeDone(r.offset, r.done);
      if (done !== undefined) pos[`${name}${DONE_SUFFIX}`] = done;
    }
    for (const [name, t] of this.tracked) {
      const point = t.offsets.commitPoint();
      pos[name] = point.offset;
      if (point.metadata !== undefined) pos[`${name}${DONE_SUFFIX}`] = point.metadata;
    }
    return pos;
  }

  /**
   * Partition scope, after checkpoint `position` was committed: releases the revoked partitions
   * it covers with all that was emitted of them.
   */
  release(position: Position): void {
    for (const name of this.releasing) {
      const t = this.tracked.get(name);
      if (t !== undefined && position[name] !== t.offsets.commitPoint().offset) continue;
      this.releasing.delete(name);
      this.tracked.delete(name);
      this.loaded.delete(name);
      this.onForget(name);
    }
  }

  /** Partition scope: the assigned partitions whose state is not loaded yet (and `name`, if given). */
  toLoad(name?: string): string[] {
    const todo = name === undefined ? [] : [name];
    for (const n of this.assigned ?? [])
      if (n !== name && !this.tracked.has(n) && !this.loaded.has(n)) todo.push(n);
    return todo;
  }

  /** True when partition `name` must have its state loaded before its first record is emitted. */
  needsLoad(name: string): boolean {
    return !this.tracked.has(name) && !this.loaded.has(name);
  }

  /** Partition scope: the state of `names` was loaded; each resumes at its stored offset (if any). */
  loadedState(names: readonly string[], stored: ReadonlyMap<string, PartitionResume>): void {
    for (const name of names) {
      this.loaded.add(name);
      const r = stored.get(name);
      if (r !== undefined) this.resumeAt(name, r.offset, decodeDone(r.done, r.offset));
    }
  }

  /** Partition `name`, not read yet, resumes at `offset`, skipping the offsets in `done`. */
  resumeAt(name: string, offset: number, done: Set<number>): void {
    this.resume.set(name, { ...splitPartitionName(name), offset, done });
  }
}
