/**
 * Consumer-group offsets beyond what `@platformatic/kafka`'s `Consumer.commit` offers: committing
 * with metadata (the client always sends `null`), and reading committed offsets with their
 * metadata. The `kafka` source keeps the completion state past a stuck record there
 * (see `offsets.ts`), so a restart does not process again what was already done.
 */
import type { Consumer } from '@platformatic/kafka';
import { partitionName } from '../../core/partitions.ts';
import { brokerConnection, kafkaClient, rawApi } from './client.ts';
import { clientOptions, type KafkaConnection } from './security.ts';

/** One partition's offset to commit, with its metadata (null: none). */
export interface GroupOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly leaderEpoch: number;
  readonly metadata: string | null;
}

/** One topic of an `OffsetCommit` / `TxnOffsetCommit` request, as the client's API takes it. */
export interface OffsetCommitTopic {
  name: string;
  partitions: {
    partitionIndex: number;
    committedOffset: bigint;
    committedLeaderEpoch: number;
    committedMetadata: string | null;
  }[];
}

/** `offsets` grouped by topic for an `OffsetCommit` / `TxnOffsetCommit` request. */
export function offsetCommitTopics(offsets: readonly GroupOffset[]): OffsetCommitTopic[] {
  const topics = new Map<string, OffsetCommitTopic>();
  for (const o of offsets) {
    let t = topics.get(o.topic);
    if (t === undefined) {
      t = { name: o.topic, partitions: [] };
      topics.set(o.topic, t);
    }
    t.partitions.push({
      partitionIndex: o.partition,
      committedOffset: BigInt(o.offset),
      committedLeaderEpoch: o.leaderEpoch,
      committedMetadata: o.metadata,
    });
  }
  return [...topics.values()];
}

type Callback<T> = (error: Error | null, value: T) => void;
type OffsetCommitApi = (
  connection: unknown,
  groupId: string,
  generationId: number,
  memberId: string,
  groupInstanceId: string | null,
  topics: OffsetCommitTopic[],
  callback: Callback<unknown>,
) => void;

/**
 * `base`'s connection (a consumer's or a producer's) to the coordinator of `consumer`'s group,
 * for a raw group request; `topics` are those of the request (the metadata asked for).
 */
export async function coordinatorConnection(
  base: Pick<Consumer<Buffer, Buffer, Buffer, Buffer>, 'metadata'>,
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  topics: string[],
): Promise<unknown> {
  const coordinator = await consumer.findGroupCoordinator();
  const cluster = await base.metadata({ topics });
  const broker = cluster.brokers.get(coordinator);
  if (broker === undefined)
    throw new Error(
      `the coordinator ${coordinator} of group \`${consumer.groupId}\` is not in the cluster metadata`,
    );
  return brokerConnection(base, broker);
}

/**
 * Commits `offsets` for the consumer's group as its current member (classic protocol: the
 * generation and member id the consumer joined with), each with its metadata. Rejects with the
 * broker's error (e.g. `ILLEGAL_GENERATION` during a rebalance); the caller retries later.
 */
export async function commitWithMetadata(
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  offsets: readonly GroupOffset[],
): Promise<void> {
  if (offsets.length === 0) return;
  const connection = await coordinatorConnection(consumer, consumer, [
    ...new Set(offsets.map((o) => o.topic)),
  ]);
  const api = await rawApi<OffsetCommitApi>(consumer, 'OffsetCommit');
  await new Promise<void>((resolve, reject) =>
    api(
      connection,
      consumer.groupId,
      consumer.generationId,
      consumer.memberId ?? '',
      null,
      offsetCommitTopics(offsets),
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

/** A committed offset and its metadata. */
export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string | null;
}

/**
 * The offsets group `group` committed for `topics`, with their metadata, keyed by
 * `topic:partition` (partitions without a commit are absent).
 */
export async function readCommitted(
  brokers: readonly string[] | KafkaConnection,
  clientId: string,
  group: string,
  topics: readonly string[],
): Promise<Map<string, CommittedOffset>> {
  const { Admin } = await kafkaClient();
  const connection = 'brokers' in brokers ? brokers : { brokers };
  const admin = new Admin({
    ...clientOptions({ ...connection, clientId }),
    connectTimeout: 5000,
    retries: 2,
  });
  try {
    const groups = await admin.listConsumerGroupOffsets({ groups: [group] });
    const out = new Map<string, CommittedOffset>();
    const wanted = new Set(topics);
    for (const g of groups) {
      for (const t of g.topics) {
        if (!wanted.has(t.name)) continue;
        for (const p of t.partitions) {
          if (p.committedOffset < 0n) continue;
          out.set(partitionName(t.name, p.partitionIndex), {
            offset: Number(p.committedOffset),
            metadata: p.metadata ?? null,
          });
        }
      }
    }
    return out;
  } finally {
    await admin.close().catch(() => {});
  }
}
