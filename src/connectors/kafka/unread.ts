/**
 * What the group has not read yet in partitions this member does not own, asked when the
 * `idleTimeout` of the `kafka` source passes. After a crash a killed member keeps its partitions
 * until its session times out; a member that ended on its idle timeout meanwhile would report a
 * finished input having read a fraction of the topic. So the source keeps waiting (the partitions
 * come to it when the dead member is expired) while this says something is unread, up to a bound,
 * and past it ends with a warning that names what is unread ({@link describeUnread}).
 */
import { partitionName } from '../../core/partitions.ts';
import type { KafkaStart } from './source.ts';

/** What {@link unreadElsewhere} needs of the consumer (the `@platformatic/kafka` Consumer has it). */
export interface GroupOffsets {
  listOffsets(options: { topics: string[]; timestamp?: bigint }): Promise<Map<string, bigint[]>>;
  listCommittedOffsets(options: {
    topics: { topic: string; partitions: number[] }[];
  }): Promise<Map<string, bigint[]>>;
}

/** A partition the group has not read to its end. */
export interface UnreadPartition {
  /** `topic:partition`. */
  readonly partition: string;
  /** The group's committed offset (where its next owner starts), or undefined when it has none. */
  readonly committed: number | undefined;
  /** The end offset (high watermark). */
  readonly end: number;
  /** Messages between where the next owner starts and the end (transaction markers included). */
  readonly unread: number;
}

/**
 * The partitions of `topics` that this member does not own (`owned`) and that hold messages the
 * group has not committed: committed offset below the end, or no commit and a `start` that reads
 * old messages (`earliest`, a time: counted from the partition's beginning). With `start: latest`
 * a partition without a commit counts as read (its next owner starts at the end).
 */
export async function unreadElsewhere(
  consumer: GroupOffsets,
  topics: readonly string[],
  owned: ReadonlySet<string>,
  start: KafkaStart,
): Promise<UnreadPartition[]> {
  const ends = await consumer.listOffsets({ topics: [...topics], timestamp: -1n });
  const others: { topic: string; partitions: number[] }[] = [];
  for (const [topic, list] of ends) {
    const partitions = list.map((_, p) => p).filter((p) => !owned.has(partitionName(topic, p)));
    if (partitions.length > 0) others.push({ topic, partitions });
  }
  if (others.length === 0) return [];
  const commits = await consumer.listCommittedOffsets({ topics: others });
  const needBeginnings = start !== 'latest';
  const beginnings = needBeginnings
    ? await consumer.listOffsets({ topics: others.map((o) => o.topic), timestamp: -2n })
    : undefined;
  const out: UnreadPartition[] = [];
  for (const { topic, partitions } of others) {
    for (const p of partitions) {
      const end = Number(ends.get(topic)?.[p] ?? 0n);
      const commit = commits.get(topic)?.[p] ?? -1n;
      const committed = commit >= 0n ? Number(commit) : undefined;
      const from = committed ?? (beginnings !== undefined ? Number(beginnings.get(topic)?.[p] ?? 0n) : end);
      if (from < end) out.push({ partition: partitionName(topic, p), committed, end, unread: end - from });
    }
  }
  return out;
}

/**
 * One line naming what is unread, for the warning of a source that ends anyway.
 *
 * @example
 * describeUnread([{ partition: 'orders:3', committed: 800, end: 2000, unread: 1200 }]);
 * // '1200 messages in 1 partition: `orders:3` (committed 800, end 2000)'
 */
export function describeUnread(list: readonly UnreadPartition[]): string {
  const total = list.reduce((s, u) => s + u.unread, 0);
  const shown = list
    .slice(0, 8)
    .map(
      (u) =>
        `\`${u.partition}\` (${u.committed === undefined ? 'no commit' : `committed ${u.committed}`}, end ${u.end})`,
    );
  const more = list.length > 8 ? `, and ${list.length - 8} more` : '';
  return `${total} messages in ${list.length} partition${list.length === 1 ? '' : 's'}: ${shown.join(', ')}${more}`;
}
