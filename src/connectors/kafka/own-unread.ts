/**
 * What this member has not read of its own partitions, asked when the `idleTimeout` of the
 * `kafka` source passes. The idle timeout measures time without a record, not whether the input
 * is read: a fetch that makes no progress (a client bug: see `read-committed.ts`), a slow broker
 * or a rejoin can all give seconds without a record while records wait between this member's
 * position and the end of its partitions. Ending then is silent data loss, so the source ends
 * only when {@link unreadOwned} finds nothing, and {@link OwnUnreadWait} says how long to wait
 * and what to say meanwhile.
 *
 * The end is taken at the isolation level in use. Under `read_committed` it is the last stable
 * offset (LSO): records past it belong to a transaction still open, which read_committed cannot
 * read until it commits or aborts. When the LSO stands below the high watermark and this member
 * has read up to it, an open transaction holds the rest back (often one whose producer was
 * killed: the broker aborts it after its transaction timeout); the source waits for it, bounded,
 * with a warning naming the partition.
 */
import { partitionName } from '../../core/partitions.ts';
import { byTopic } from './offsets.ts';

/** Kafka's isolation levels as the protocol numbers them. */
const READ_UNCOMMITTED = 0;
const READ_COMMITTED = 1;

/** What {@link unreadOwned} needs of the consumer (the `@platformatic/kafka` Consumer has it). */
export interface EndOffsets {
  /** Per topic, the end offset of each partition: `timestamp: -1n` at `isolationLevel` (1: the LSO). */
  listOffsets(options: {
    topics: string[];
    timestamp?: bigint;
    isolationLevel?: number;
  }): Promise<Map<string, bigint[]>>;
}

/** A partition this member owns and has not read to its end. */
export interface OwnUnread {
  /** `topic:partition`. */
  readonly partition: string;
  /** The next offset this member reads, or undefined when it does not know it yet. */
  readonly position: number | undefined;
  /** The end at the isolation level (the LSO under read_committed). */
  readonly end: number;
  /** The high watermark (the end of the log, open transactions included). */
  readonly highWatermark: number;
  /**
   * True when the member read up to the LSO and an open transaction holds the records past it
   * (read_committed only); false when records it can read wait unread.
   */
  readonly heldByTransaction: boolean;
}

/**
 * Of `owned` (partitions this member owns), those with records between `positions` (the next
 * offset to read, per partition; missing: not known yet, counted unread unless the partition is
 * empty) and the end at `isolation`, plus, under read_committed, those read to an LSO that an open
 * transaction holds below the high watermark.
 */
export async function unreadOwned(
  consumer: EndOffsets,
  owned: ReadonlySet<string>,
  positions: ReadonlyMap<string, number>,
  isolation: 'read_committed' | 'read_uncommitted',
): Promise<OwnUnread[]> {
  if (owned.size === 0) return [];
  const topics = byTopic(owned).map((t) => t.topic);
  const highs = await consumer.listOffsets({ topics, timestamp: -1n, isolationLevel: READ_UNCOMMITTED });
  const stables =
    isolation === 'read_committed'
      ? await consumer.listOffsets({ topics, timestamp: -1n, isolationLevel: READ_COMMITTED })
      : highs;
  const out: OwnUnread[] = [];
  for (const [topic, list] of highs) {
    list.forEach((high, p) => {
      const name = partitionName(topic, p);
      if (!owned.has(name)) return;
      const highWatermark = Number(high);
      const end = Number(stables.get(topic)?.[p] ?? high);
      const position = positions.get(name);
      const behind = position === undefined ? highWatermark > 0 : position < end;
      const held = !behind && end < highWatermark && isolation === 'read_committed';
      if (behind || held)
        out.push({ partition: name, position, end, highWatermark, heldByTransaction: held });
    });
  }
  return out;
}

/**
 * One line naming what is unread of this member's partitions.
 *
 * @example
 * describeOwnUnread([{ partition: 'o:1', position: 2026, end: 5417, highWatermark: 5417, heldByTransaction: false }]);
 * // '3391 messages in `o:1` (position 2026, end 5417)'
 */
export function describeOwnUnread(list: readonly OwnUnread[]): string {
  return list
    .slice(0, 8)
    .map((u) => {
      const at = u.position === undefined ? 'position not known yet' : `position ${u.position}`;
      if (u.heldByTransaction)
        return `\`${u.partition}\` (${at}, last stable offset ${u.end}, high watermark ${u.highWatermark}: ${u.highWatermark - u.end} messages behind an open transaction)`;
      const count = u.position === undefined ? '' : `${u.end - u.position} messages in `;
      return `${count}\`${u.partition}\` (${at}, end ${u.end})`;
    })
    .concat(list.length > 8 ? [`and ${list.length - 8} more partitions`] : [])
    .join(', ');
}

/** What the source does after asking {@link unreadOwned} on its idle timeout. */
export type OwnUnreadVerdict =
  /** Nothing of its own is unread (or an open transaction held it past the bound): the input may end. */
  | { readonly action: 'end'; readonly warn?: string }
  /** Keep reading and ask again later; log `info` / `warn` when set (once per episode). */
  | { readonly action: 'wait'; readonly info?: string; readonly warn?: string }
  /** Records it can read stayed unread past the bound: fail the run rather than end it as finished. */
  | { readonly action: 'fail'; readonly message: string };

/** The bounds of an {@link OwnUnreadWait}, in ms. */
export interface OwnUnreadLimits {
  /** Longest this member waits for readable records of its own partitions to arrive. */
  readonly stalled: number;
  /** Longest it waits for an open transaction to end (the producer's transaction timeout and a margin). */
  readonly transaction: number;
}

/**
 * Decides, each time the idle timeout finds something of this member's partitions unread, whether
 * to wait, end or fail, and what to say. An episode starts at the first such finding and ends
 * with {@link reset} (a record arrived: the input is not idle any more).
 *
 * @example
 * const wait = new OwnUnreadWait({ stalled: 30_000, transaction: 70_000 });
 * const verdict = wait.decide(await unreadOwned(consumer, owned, positions, 'read_committed'), now);
 */
export class OwnUnreadWait {
  private readonly limits: OwnUnreadLimits;
  /** When the current episode of each kind started (undefined: none under way). */
  private readonly since: { stalled?: number | undefined; transaction?: number | undefined } = {};

  constructor(limits: OwnUnreadLimits) {
    this.limits = limits;
  }

  /** A record arrived: what was unread is being read; the next finding starts a new episode. */
  reset(): void {
    this.since.stalled = undefined;
    this.since.transaction = undefined;
  }

  /** Starts (or goes on with) an episode of `kind` at `now`: whether it is new, and how long it lasts. */
  private episode(kind: keyof OwnUnreadLimits, now: number): { first: boolean; over: number | undefined } {
    const first = this.since[kind] === undefined;
    const since = this.since[kind] ?? now;
    this.since[kind] = since;
    const waited = now - since;
    return { first, over: waited >= this.limits[kind] ? waited : undefined };
  }

  /** The verdict for `unread` (from {@link unreadOwned}) found at `now` (ms). */
  decide(unread: readonly OwnUnread[], now: number): OwnUnreadVerdict {
    const readable = unread.filter((u) => !u.heldByTransaction);
    const held = unread.filter((u) => u.heldByTransaction);
    if (readable.length > 0) {
      const { first, over } = this.episode('stalled', now);
      if (over !== undefined) {
        return {
          action: 'fail',
          message: `no record arrived for ${over} ms while this member's partitions hold records it can read: ${describeOwnUnread(readable)}. Ending as finished would lose them, so the run fails instead; a restart resumes from the last commit. If it happens again, the broker or the client is not returning these records (check the broker's log)`,
        };
      }
      return waiting(
        first,
        'info',
        `Idle for \`idleTimeout\`, but this member has not read ${describeOwnUnread(readable)}; reading on (up to ${this.limits.stalled} ms without a record)`,
      );
    }
    this.since.stalled = undefined;
    if (held.length === 0) {
      this.since.transaction = undefined;
      return { action: 'end' };
    }
    const { first, over } = this.episode('transaction', now);
    if (over !== undefined) {
      return {
        action: 'end',
        warn: `Ending on \`idleTimeout\` while open transactions still hold back ${describeOwnUnread(held)} after ${over} ms: read_committed cannot read those records until their transaction commits; the next run reads them if it does`,
      };
    }
    return waiting(
      first,
      'warn',
      `Idle for \`idleTimeout\`, but an open transaction holds back ${describeOwnUnread(held)}; waiting up to ${this.limits.transaction} ms for it to commit or abort (a killed producer's transaction is aborted by the broker after its transaction timeout)`,
    );
  }
}

/** A `wait` verdict that says `line` (at `level`) only at the start of an episode (`first`). */
function waiting(first: boolean, level: 'info' | 'warn', line: string): OwnUnreadVerdict {
  return first ? { action: 'wait', [level]: line } : { action: 'wait' };
}
