/**
 * The Kafka source's `lag()` hook (`Source.lag`, read by `/metrics` and the dashboard): per
 * owned partition, the broker's end offset (high watermark) minus the source's position (the
 * next offset it resumes from), and the age of the source's last offset commit.
 */

import type { Position } from '../../core/message.ts';
import type { PartitionLag, SourceLag } from '../../core/metrics.ts';
import { isOffsetEntry, splitPartitionName } from '../../core/partitions.ts';
import { byTopic } from './offsets.ts';

/** What {@link kafkaLag} needs of the consumer. */
export interface EndOffsets {
  listOffsets(options: { topics: string[]; timestamp?: bigint }): Promise<Map<string, bigint[]>>;
}

/**
 * Asks the broker for the end offsets of the partitions in `position` and returns the lag of
 * each; undefined while there is no consumer (not connected yet, reconnecting, closed).
 * `lastCommitAt` is the wall-clock time of the last commit (undefined: none yet).
 */
export async function kafkaLag(
  consumer: EndOffsets | undefined,
  position: Position,
  lastCommitAt: number | undefined,
): Promise<SourceLag | undefined> {
  if (consumer === undefined) return undefined;
  const points = new Map<string, number>();
  for (const [name, offset] of Object.entries(position as Record<string, unknown>)) {
    if (isOffsetEntry(name) && typeof offset === 'number') points.set(name, offset);
  }
  const commitAgeMs = lastCommitAt === undefined ? undefined : Math.max(0, Date.now() - lastCommitAt);
  if (points.size === 0) return { partitions: [], commitAgeMs };
  const ends = await consumer.listOffsets({
    topics: byTopic(points.keys()).map((t) => t.topic),
    timestamp: -1n,
  });
  const partitions: PartitionLag[] = [];
  for (const [name, at] of points) {
    const { topic, partition } = splitPartitionName(name);
    const end = ends.get(topic)?.[partition];
    if (end === undefined) continue;
    const e = Number(end);
    partitions.push({ partition: name, position: at, end: e, lag: Math.max(0, e - at) });
  }
  partitions.sort((a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0));
  return { partitions, commitAgeMs };
}
