/**
 * The one place that decides which offsets of a `kafka` source reach the consumer group. An
 * offset is never committed before the records it covers reached every sink; which event says
 * so depends on the run, and there are exactly three cases:
 *
 * 1. **Checkpoints** (`ctx.checkpointing`): the runtime injects the barriers; the coordinator
 *    calls the source's `commit(position)` once the checkpoint holding that position is stored
 *    → {@link OffsetCommitter.checkpointStored}. A failure is logged: the checkpoint, not the
 *    group, is what a restart resumes from.
 * 2. **No checkpoints**: after a batch, at most once per `commitInterval`, the source emits its
 *    own barrier; {@link OffsetCommitter.barrier} keeps every partition's commit point for it,
 *    and {@link OffsetCommitter.barrierComplete} (the runtime's `onBarrierComplete`, once every
 *    sink made the records before it durable) commits them.
 *
 *    In both, at a clean end ({@link OffsetCommitter.final}: the input ended or, without
 *    checkpoints, a draining stop) everything emitted is committed — the sinks have finished.
 *    Not after a failure or cancellation, not at a draining stop under checkpoints (the group
 *    must not be ahead of the checkpoints a restart resumes from), and never with partition
 *    scope (nor ahead of the stored partition state).
 * 3. **An exactly-once `kafka` sink in the run** (`txn.ts`): the sink puts the offsets of each
 *    checkpoint into its transaction, so they are committed if and only if the output is. This
 *    committer then commits nothing, in any of the cases above.
 *
 * Beside these, partition scope gives each newly assigned partition the group never committed a
 * commit at its start ({@link OffsetCommitter.commitStarts}; see there why). Commits carry the
 * done records beyond a stuck one as metadata (classic protocol: `group.ts`), and a commit that
 * changes nothing for a partition is skipped.
 */
import type { Consumer } from '@platformatic/kafka';
import type { Position } from '../../core/message.ts';
import { doneEntry, partitionName, splitPartitionName } from '../../core/partitions.ts';
import type { Logger, SourceContext } from '../../core/stage.ts';
import type { Assignment, PartitionCommit } from './assignment.ts';
import { rootMessage } from './connection.ts';
import { commitWithMetadata, type GroupOffset } from './group.ts';
import { byTopic, parsePosition } from './offsets.ts';

/** Commit points kept for barriers not yet reported; older ones are dropped (a later one covers them). */
const MAX_PENDING_BARRIERS = 64;

/** What an {@link OffsetCommitter} needs from its source. */
export interface CommitterDeps {
  readonly group: string;
  readonly groupProtocol: 'consumer' | 'classic';
  /** The source's `start` (see `KafkaStart`), for {@link OffsetCommitter.commitStarts}. */
  readonly start: 'earliest' | 'latest' | 'committed' | number;
  readonly assignment: Assignment;
  /** The connected consumer, or undefined while (re)connecting: nothing is committed then. */
  consumer(): Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** True when an exactly-once sink of the run commits the offsets (case 3). */
  committedBySink(): boolean;
  /** The run's log and the source's stage name. */
  log(): { log: Logger; stage: string };
}

/** Commits a `kafka` source's offsets; see the module comment for when. */
export class OffsetCommitter {
  /** Commits made (each covers every partition with progress). */
  commits = 0;
  /** Commits that failed (each logged; a later one covers the same offsets). */
  errors = 0;
  /** Own barriers emitted (case 2). */
  barriers = 0;
  /** Commit points to commit when barrier `id` completes. */
  /** Wall-clock time (ms) of the last successful commit, for the commit-age metric; undefined before. */
  lastCommitAt: number | undefined;
  private readonly pending = new Map<number, PartitionCommit[]>();
  /** The newest barrier whose commit was made ({@link barrierComplete}). */
  private completed = 0;
  /** {@link whenCommitted} calls waiting for a barrier. */
  private readonly waiting = new Set<{ id: number; resolve: () => void }>();
  /** Last commit per partition (offset and metadata): a commit that changes nothing is skipped. */
  private readonly committed = new Map<string, { offset: number; metadata: string | undefined }>();

  private readonly deps: CommitterDeps;

  constructor(deps: CommitterDeps) {
    this.deps = deps;
  }

  /** Partition `name` was revoked or released: forget its last commit and its pending points. */
  forget(name: string): void {
    this.committed.delete(name);
    for (const list of this.pending.values()) {
      const i = list.findIndex((c) => partitionName(c.topic, c.partition) === name);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /**
   * Case 2: keeps every partition's commit point for a new barrier and returns its id, or
   * undefined when no partition was read (no barrier needed).
   */
  barrier(): number | undefined {
    if (this.deps.assignment.tracked.size === 0) return undefined;
    const id = ++this.barriers;
    this.pending.set(id, this.deps.assignment.commitPoints());
    if (this.pending.size > MAX_PENDING_BARRIERS)
      this.pending.delete(this.pending.keys().next().value as number);
    return id;
  }

  /** Case 2: barrier `id` reached every sink; commits what was kept for it (older ids are covered). */
  async barrierComplete(id: number): Promise<void> {
    let points: PartitionCommit[] | undefined;
    for (const k of [...this.pending.keys()]) {
      if (k > id) break;
      if (k === id) points = this.pending.get(k);
      this.pending.delete(k);
    }
    if (points !== undefined) await this.commit(points);
    this.completed = Math.max(this.completed, id);
    for (const w of [...this.waiting]) {
      if (w.id > id) continue;
      this.waiting.delete(w);
      w.resolve();
    }
  }

  /**
   * Case 2: resolves once barrier `id` (or a later one) completed and its commit was made (or
   * failed, logged), or after `timeoutMs` (the sinks may never acknowledge, e.g. a file sink),
   * or when `signal` aborts. Resolves true when the commit came.
   */
  async whenCommitted(
    id: number,
    timeoutMs: number,
    clock: SourceContext['clock'],
    signal: AbortSignal,
  ): Promise<boolean> {
    if (this.completed >= id) return true;
    const local = new AbortController();
    let waiter: { id: number; resolve: () => void } | undefined;
    const done = new Promise<boolean>((resolve) => {
      waiter = { id, resolve: () => resolve(true) };
      this.waiting.add(waiter);
    });
    try {
      return await Promise.race([
        done,
        clock.sleep(timeoutMs, AbortSignal.any([signal, local.signal])).then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      local.abort();
      if (waiter !== undefined) this.waiting.delete(waiter);
    }
  }

  /** Case 1: the checkpoint holding `position` is stored; commits it and releases what it covers. */
  async checkpointStored(position: Position): Promise<void> {
    const { assignment } = this.deps;
    const points: PartitionCommit[] = parsePosition(position).map((p) => {
      const name = partitionName(p.topic, p.partition);
      return {
        topic: p.topic,
        partition: p.partition,
        offset: p.offset,
        metadata: doneEntry(position, name),
        leaderEpoch: assignment.leaderEpochOf(name),
      };
    });
    await this.commit(points);
    assignment.release(position);
  }

  /**
   * Cases 1 and 2 at the end of the run (the source's `close`): when the run ended cleanly (see
   * the module comment), commits everything emitted, giving up after `timeoutMs` (the next run
   * re-reads what was not committed).
   */
  async final(
    run: Pick<SourceContext, 'signal' | 'stopSignal' | 'checkpointing' | 'partitionState' | 'clock'>,
    timeoutMs: number,
  ): Promise<void> {
    // Reached only after every stage ended; with the run not aborted, the sinks finished.
    const clean =
      !run.signal.aborted &&
      !(run.checkpointing && run.stopSignal.aborted) &&
      run.partitionState === undefined;
    if (!clean || this.deps.consumer() === undefined || this.deps.assignment.tracked.size === 0) return;
    const local = new AbortController();
    const { log, stage } = this.deps.log();
    await Promise.race([
      this.commit(this.deps.assignment.commitPoints()),
      run.clock.sleep(timeoutMs, local.signal).then(
        () =>
          log.warn(
            `Committing final offsets of group \`${this.deps.group}\` timed out; a restart re-reads them`,
            {
              stage,
            },
          ),
        () => {},
      ),
    ]);
    local.abort();
  }

  /**
   * Partition scope: gives each of `names` (newly assigned) that the group never committed a
   * commit at its start — its resume point, else, with `start: earliest`, the partition's first
   * offset. Why: the client keeps its fetch position of a partition it lost, and when the
   * partition comes back without a committed offset it resumes from that stale position — past
   * records it had read ahead and dropped. A committed offset overrides it. (`latest` without a
   * stored offset is left alone: committing "the end now" could skip records produced since the
   * stream looked.) Best effort: a failure is logged, not fatal.
   */
  async commitStarts(names: readonly string[]): Promise<void> {
    const c = this.deps.consumer();
    const { start, assignment } = this.deps;
    if (c === undefined || typeof start === 'number' || start === 'committed') return;
    if (start === 'latest') names = names.filter((k) => assignment.resume.has(k));
    if (names.length === 0) return;
    try {
      const commits = await c.listCommittedOffsets({ topics: byTopic(names) });
      const missing = names.filter((k) => {
        const { topic, partition } = splitPartitionName(k);
        return (commits.get(topic)?.[partition] ?? -1n) < 0n;
      });
      if (missing.length === 0) return;
      const ends = await c.listOffsets({ topics: byTopic(missing).map((t) => t.topic), timestamp: -2n });
      await c.commit({
        offsets: missing.map((k) => {
          const { topic, partition } = splitPartitionName(k);
          const r = assignment.resume.get(k);
          return {
            topic,
            partition,
            offset: r !== undefined ? BigInt(r.offset) : (ends.get(topic)?.[partition] ?? 0n),
            leaderEpoch: -1,
          };
        }),
      });
    } catch (err) {
      const { log, stage } = this.deps.log();
      log.warn(
        `Committing the start offsets of ${names.map((k) => `\`${k}\``).join(', ')} for group \`${this.deps.group}\` failed: ${rootMessage(err)}; a partition that comes back to this member may resume late`,
        { stage },
      );
    }
  }

  /** Commits `points` of owned partitions that moved, unless an exactly-once sink commits them. */
  private async commit(points: readonly PartitionCommit[]): Promise<void> {
    const c = this.deps.consumer();
    if (c === undefined || this.deps.committedBySink()) return;
    const todo: PartitionCommit[] = [];
    for (const p of points) {
      const name = partitionName(p.topic, p.partition);
      const owned = this.deps.assignment.owned;
      if (owned !== undefined && !owned.has(name)) continue;
      const last = this.committed.get(name);
      if (last !== undefined && last.offset > p.offset) continue;
      if (last !== undefined && last.offset === p.offset && last.metadata === p.metadata) continue;
      todo.push(p);
    }
    if (todo.length === 0) return;
    try {
      if (todo.some((p) => p.metadata !== undefined) && this.deps.groupProtocol === 'classic') {
        await commitWithMetadata(
          c,
          todo.map(
            (p): GroupOffset => ({
              topic: p.topic,
              partition: p.partition,
              offset: p.offset,
              leaderEpoch: p.leaderEpoch,
              metadata: p.metadata ?? null,
            }),
          ),
        );
      } else {
        await c.commit({
          offsets: todo.map((p) => ({
            topic: p.topic,
            partition: p.partition,
            offset: BigInt(p.offset),
            leaderEpoch: p.leaderEpoch,
          })),
        });
      }
    } catch (err) {
      // Not fatal: a later commit covers these offsets, and a restart re-reads them (at-least-once).
      this.errors++;
      const where = todo.map((p) => `\`${p.topic}\` partition ${p.partition} offset ${p.offset}`).join(', ');
      const { log, stage } = this.deps.log();
      log.warn(
        `Committing offsets of group \`${this.deps.group}\` (${where}) failed: ${rootMessage(err)}; they are committed with the next barrier, or re-read after a restart`,
        { stage },
      );
      return;
    }
    for (const p of todo)
      this.committed.set(partitionName(p.topic, p.partition), { offset: p.offset, metadata: p.metadata });
    this.commits++;
    this.lastCommitAt = Date.now();
  }
}
