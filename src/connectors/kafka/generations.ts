/**
 * Offsets committed in a transaction across a rebalance of the classic group protocol, as the Java
 * producer's `sendOffsetsToTransaction(offsets, consumer.groupMetadata())` does with the consumer's
 * current group metadata.
 *
 * A `TxnOffsetCommit` carries the member id and generation of the consumer whose offsets it
 * commits, and the broker refuses it (`ILLEGAL_GENERATION`) once the group is in a newer
 * generation. The consumer learns its new generation from its JoinGroup response, so a request
 * sent while that response is on its way — every join of a cooperative rebalance, two per member
 * when partitions move — carries the old one: in `partition-eos.kafka.it.test.ts` a member failed
 * in ~2 of 10 runs at a checkpoint taken while the other member joined.
 *
 * {@link GroupGenerations} keeps, per partition, the generation since which this member has owned
 * it without a break: it is told each generation the member is confirmed in and what it owns then
 * (after every join, and at the revoke step of a cooperative round, where the member is in the new
 * generation and still owns what it is about to give up: nobody else owns those until it rejoins).
 * {@link commitAcrossRebalances} sends the request again with the newer generation once the
 * member is confirmed in one — but only when every partition of the request stayed this member's
 * from the generation its offsets were taken in (same member id, consecutive generations, the
 * partition owned in each). Otherwise the partition may have had another owner meanwhile, who read
 * from the last committed offsets: committing the transaction would publish its records twice, so
 * the commit fails (the caller aborts the transaction; the run fails and a restart resumes from the
 * last committed checkpoint), as Kafka Streams' `TaskMigratedException` closes such tasks.
 */
import type { Clock } from '../../core/clock.ts';
import { cancelledError, isCancellation } from '../../core/errors.ts';
import type { Logger } from '../../core/stage.ts';
import { rootMessage } from './connection.ts';

/** A member of a consumer group in one generation. */
export interface Membership {
  readonly memberId: string;
  readonly generation: number;
}

interface Confirmed extends Membership {
  /** Per partition owned (`topic:partition`), the generation since which it is owned without a break. */
  readonly since: ReadonlyMap<string, number>;
}

/**
 * The generations one group member is confirmed in, and since when it owns each partition; see the
 * module comment. Fed by the consumer (`consumer.ts`), read by the exactly-once sink (`txn.ts`).
 */
export class GroupGenerations {
  /** Longest a commit waits for the member to be confirmed in a newer generation, ms (the group's rebalance timeout and a margin). */
  readonly waitMs: number;
  private last: Confirmed | undefined;
  private waiters: (() => void)[] = [];

  constructor(waitMs: number) {
    this.waitMs = waitMs;
  }

  /**
   * The member `memberId` is in `generation` and owns `partitions` (names `topic:partition`) there.
   * Called after every join and at the revoke step of a cooperative round; an older generation than
   * the last one confirmed is ignored.
   */
  confirm(memberId: string | null | undefined, generation: number, partitions: Iterable<string>): void {
    if (!memberId || generation < 0) return;
    const before = this.last;
    if (before !== undefined && before.memberId === memberId && generation < before.generation) return;
    // Owned without a break only across consecutive generations of the same member: a generation
    // it was not seen in may have given the partition to another member.
    const follows =
      before !== undefined &&
      before.memberId === memberId &&
      (generation === before.generation || generation === before.generation + 1);
    const since = new Map<string, number>();
    for (const name of partitions) {
      const was = follows ? before.since.get(name) : undefined;
      since.set(name, was ?? generation);
    }
    this.last = { memberId, generation, since };
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The membership last confirmed, or undefined before the first join. */
  get current(): Membership | undefined {
    const c = this.last;
    return c === undefined ? undefined : { memberId: c.memberId, generation: c.generation };
  }

  /**
   * Of `partitions`, those this member has not owned without a break since `from` (its member id and
   * a generation it was confirmed in) up to the membership last confirmed: their offsets must not be
   * committed with the current generation. All of them when the member id changed.
   */
  lostSince(partitions: readonly string[], from: Membership): string[] {
    const c = this.last;
    if (c === undefined || c.memberId !== from.memberId) return [...partitions];
    return partitions.filter((name) => {
      const since = c.since.get(name);
      return since === undefined || since > from.generation;
    });
  }

  /**
   * Resolves true once a membership newer than `generation` (or of another member id than
   * `memberId`) is confirmed; false after `ms` first. Rejects when `signal` aborts.
   */
  async newerThan(
    memberId: string,
    generation: number,
    ms: number,
    clock: Clock,
    signal: AbortSignal,
  ): Promise<boolean> {
    const newer = () => {
      const c = this.last;
      return c !== undefined && (c.memberId !== memberId || c.generation > generation);
    };
    const local = new AbortController();
    const timer = clock.sleep(ms, AbortSignal.any([signal, local.signal])).then(
      () => 'late' as const,
      () => 'aborted' as const,
    );
    try {
      while (!newer()) {
        let wake = () => {};
        const confirmed = new Promise<'confirmed'>((resolve) => {
          wake = () => resolve('confirmed');
          this.waiters.push(wake);
        });
        const woke = await Promise.race([confirmed, timer]);
        this.waiters = this.waiters.filter((w) => w !== wake);
        if (signal.aborted) throw cancelledError(signal.reason);
        if (woke !== 'confirmed') return newer();
      }
      return true;
    } finally {
      local.abort();
    }
  }
}

/** The broker's codes that say the request's generation is no longer the group's. */
const STALE_GENERATION = new Set(['ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS', 'STALE_MEMBER_EPOCH']);

/**
 * True when `err` (or an error inside it, as the client nests them) is the broker's answer that the
 * request's group generation is stale (`ILLEGAL_GENERATION`, `REBALANCE_IN_PROGRESS`,
 * `STALE_MEMBER_EPOCH`). `UNKNOWN_MEMBER_ID` is not: the member was removed from the group.
 */
export function isStaleGeneration(err: unknown, depth = 0): boolean {
  if (depth > 5 || typeof err !== 'object' || err === null) return false;
  const e = err as { apiId?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.apiId === 'string' && STALE_GENERATION.has(e.apiId)) return true;
  return (
    (e.errors ?? []).some((x) => isStaleGeneration(x, depth + 1)) || isStaleGeneration(e.cause, depth + 1)
  );
}

/** Options of {@link commitAcrossRebalances}. */
export interface AcrossRebalancesOptions {
  /** The partitions (`topic:partition`) whose offsets the request commits. */
  readonly partitions: readonly string[];
  /** The member's confirmed generations; undefined: no retry on a stale generation. */
  readonly generations: GroupGenerations | undefined;
  /**
   * `generations.current` when the offsets were chosen (their partitions owned then, as the source
   * saw them): read it before any await. Undefined: no retry on a stale generation.
   */
  readonly from: Membership | undefined;
  /** The member id and generation the consumer has now: what the first request carries (asked when it is sent). */
  current(): Membership;
  /** Sends the request as `member`; rejects with the broker's error. */
  send(member: Membership): Promise<void>;
  /** The group, for messages. */
  readonly group: string;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly log?: Pick<Logger, 'info'> | undefined;
  readonly logFields?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Sends a request that commits offsets as a group member (`options.send`), and again with the newer
 * generation each time the broker answers that the group moved on ({@link isStaleGeneration}) —
 * once the member is confirmed in a newer generation and only if every partition stayed its own
 * (see the module comment). Rejects with the broker's error otherwise, with an error naming the
 * partitions that changed owner, or when no newer generation came within `generations.waitMs`.
 */
export async function commitAcrossRebalances(options: AcrossRebalancesOptions): Promise<void> {
  const { generations, from, partitions, clock, signal, group } = options;
  const waitMs = generations?.waitMs ?? 0;
  const deadline = clock.now() + waitMs;
  let sent: Membership | undefined;
  for (;;) {
    sent ??= options.current();
    try {
      await options.send(sent);
      return;
    } catch (err) {
      if (isCancellation(err) || !isStaleGeneration(err) || generations === undefined || from === undefined)
        throw err;
      const newer = await generations.newerThan(
        sent.memberId,
        sent.generation,
        Math.max(0, deadline - clock.now()),
        clock,
        signal,
      );
      if (!newer)
        throw new Error(
          `group \`${group}\` did not finish its rebalance within ${waitMs} ms (the offsets were sent with generation ${sent.generation}: ${rootMessage(err)})`,
        );
      const now = generations.current as Membership;
      const lost = generations.lostSince(partitions, from);
      if (lost.length > 0)
        throw new Error(
          `${lost.map((p) => `\`${p}\``).join(', ')} may have had another owner while group \`${group}\` rebalanced (member \`${from.memberId}\` generation ${from.generation} → member \`${now.memberId}\` generation ${now.generation}), so these offsets and the records they cover cannot be committed (${rootMessage(err)})`,
        );
      options.log?.info(
        `Group \`${group}\` moved to generation ${now.generation} while offsets were committed with generation ${sent.generation}; committing them again with the new one (this member kept ${partitions.map((p) => `\`${p}\``).join(', ')})`,
        { group, ...options.logFields },
      );
      sent = now;
    }
  }
}
