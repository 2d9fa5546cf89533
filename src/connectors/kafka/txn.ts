/**
 * What the exactly-once `kafka` sink needs beyond `@platformatic/kafka`'s `Transaction`:
 *
 * - A link between the `kafka` sources and the exactly-once `kafka` sink of one run, so the sink
 *   can put the sources' consumed offsets into its transaction (it needs each source's group,
 *   topics, consumer and current position) and the sources stop committing offsets themselves.
 *   The link is one value per run, kept by the runtime (`StageContext.runScoped`).
 * - `TxnOffsetCommit` for many partitions at once, with metadata (the client's
 *   `Transaction.addOffset` sends one partition per request and no metadata).
 * - The metadata format that tags offsets committed in a transaction with their checkpoint id,
 *   so a restart can tell whether Kafka holds newer positions than the checkpoint store.
 * - Under partition scope, the group's committed offsets read once the transactions still open on
 *   them have ended (`require_stable`), so a new owner knows which stored state was published.
 */
import type { Consumer, Producer } from '@platformatic/kafka';
import { isCancellation } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';
import { doneEntry, partitionName, splitPartitionName } from '../../core/partitions.ts';
import { type RetryOptions, retrying } from '../../core/retry.ts';
import type { CommittedOffsets, StageContext } from '../../core/stage.ts';
import { brokerConnection, kafkaClient, rawApi } from './client.ts';
import { isTransientKafkaError, rootMessage } from './connection.ts';
import { commitAcrossRebalances, type GroupGenerations, type Membership } from './generations.ts';
import { coordinatorConnection, type OffsetCommitTopic, offsetCommitTopics } from './group.ts';
import { parsePosition } from './offsets.ts';
import { clientOptions, type KafkaConnection } from './security.ts';

/** An open transaction of a producer (the client does not export the class by name). */
export type KafkaTransaction = NonNullable<Producer<Buffer, Buffer, Buffer, Buffer>['transaction']>;

/** What a `kafka` source offers the exactly-once sink of its run. */
export interface KafkaSourceHandle {
  /** The source's stage name (the key of its position in a checkpoint). */
  readonly stage: string;
  readonly group: string;
  readonly topics: readonly string[];
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Brokers with TLS and SASL, for the sink's own requests about this source's group. */
  readonly connection: KafkaConnection;
  /** The connected consumer, or undefined while (re)connecting. */
  consumer(): Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** The source's position now (see `Source.position`). */
  position(): Position | undefined;
  /**
   * True unless partition `name` (`topic:partition`) was revoked from this member: a revoked
   * partition stays in the position until its state is stored, but its offset must not go into a
   * transaction (the group's offset would go back if its new owner committed further).
   */
  owns(name: string): boolean;
  /**
   * The generations the source's group member was confirmed in and what it owned in each, so a
   * commit refused for a stale generation can be sent again with the new one (`generations.ts`).
   * Undefined: no such retry.
   */
  readonly generations?: GroupGenerations | undefined;
}

interface RunLink {
  readonly sources: Map<string, KafkaSourceHandle>;
  /** Stage name of the exactly-once sink that commits the sources' offsets, if any. */
  committer: string | undefined;
}

/** The key of a run's {@link RunLink} in `StageContext.runScoped`. */
const RUN_LINK = Symbol('sluice.kafka.runLink');

type RunScope = Pick<StageContext, 'runScoped'>;

function linkOf(ctx: RunScope): RunLink {
  return ctx.runScoped(RUN_LINK, (): RunLink => ({ sources: new Map(), committer: undefined }));
}

/** Called by a `kafka` source in `open`: makes it known to an exactly-once sink of the same run. */
export function registerKafkaSource(ctx: RunScope, handle: KafkaSourceHandle): void {
  linkOf(ctx).sources.set(handle.stage, handle);
}

/** The `kafka` sources of the run `ctx` belongs to (complete once every stage is open). */
export function kafkaSourcesOf(ctx: RunScope): KafkaSourceHandle[] {
  return [...linkOf(ctx).sources.values()];
}

/**
 * Called by the exactly-once sink in `open` (sinks open before sources): from now on the
 * run's `kafka` sources leave offset commits to it. Returns the stage name of another sink that
 * claimed them first, or undefined.
 */
export function claimOffsetCommits(ctx: RunScope & Pick<StageContext, 'name'>): string | undefined {
  const link = linkOf(ctx);
  if (link.committer !== undefined && link.committer !== ctx.name) return link.committer;
  link.committer = ctx.name;
  return undefined;
}

/** True when an exactly-once sink of this run commits the offsets inside its transactions. */
export function offsetsCommittedBySink(ctx: RunScope | undefined): boolean {
  return ctx !== undefined && linkOf(ctx).committer !== undefined;
}

/**
 * Prefix of the offset metadata written in a transaction: `sluice-eos:<run>:<checkpoint id>[;<done>]`.
 * `<run>` names one job (kept in the sink's checkpoints): checkpoint ids start over after a job
 * finishes, so an id alone could be mistaken for one of an earlier job.
 */
const META_PREFIX = 'sluice-eos:';

/** The offset metadata for checkpoint `checkpointId` of job `run`, with the source's done entry. */
export function encodeTxnMetadata(run: string, checkpointId: number, done: string | undefined): string {
  const tag = `${META_PREFIX}${run}:${checkpointId}`;
  return done === undefined ? tag : `${tag};${done}`;
}

/** The job, checkpoint id and done entry of offset metadata written by {@link encodeTxnMetadata}. */
export function decodeTxnMetadata(
  metadata: string | null | undefined,
): { run: string; checkpointId: number; done: string | undefined } | undefined {
  if (typeof metadata !== 'string' || !metadata.startsWith(META_PREFIX)) return undefined;
  const rest = metadata.slice(META_PREFIX.length);
  const sep = rest.indexOf(';');
  const tag = sep < 0 ? rest : rest.slice(0, sep);
  const colon = tag.lastIndexOf(':');
  const checkpointId = Number(tag.slice(colon + 1));
  if (colon <= 0 || !Number.isSafeInteger(checkpointId)) return undefined;
  return { run: tag.slice(0, colon), checkpointId, done: sep < 0 ? undefined : rest.slice(sep + 1) };
}

/** One partition's offset to commit in a transaction. */
export interface TxnOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
}

/** The offsets a source position stands for, tagged with job `run` and `checkpointId`. */
export function offsetsOfPosition(position: Position, run: string, checkpointId: number): TxnOffset[] {
  return parsePosition(position).map((p) => {
    const done = doneEntry(position, partitionName(p.topic, p.partition));
    return {
      topic: p.topic,
      partition: p.partition,
      offset: p.offset,
      metadata: encodeTxnMetadata(run, checkpointId, done),
    };
  });
}

type Callback<T> = (error: Error | null, value: T) => void;
type TxnOffsetCommitApi = (
  connection: unknown,
  transactionalId: string,
  groupId: string,
  producerId: bigint,
  producerEpoch: number,
  generationId: number,
  memberId: string,
  groupInstanceId: string | null,
  topics: OffsetCommitTopic[],
  callback: Callback<unknown>,
) => void;
type RawApi = (connection: unknown, ...args: unknown[]) => void;

/** What the transaction requests retry on: the run's clock, signal and log. */
export type TxnRetryContext = Pick<StageContext, 'name' | 'clock' | 'log' | 'signal'>;

/**
 * How the transaction requests retry a coordinator that moves or loads (`isTransientKafkaError`):
 * backoff 200 ms → 3.2 s, given up after 6 s (then the caller aborts the transaction, or the
 * restart fails with the reason).
 */
function txnRetry(ctx: TxnRetryContext, what: string): RetryOptions {
  return {
    what,
    clock: ctx.clock,
    signal: ctx.signal,
    log: ctx.log,
    logEvery: 'first',
    logFields: { stage: ctx.name },
    retryable: isTransientKafkaError,
    minDelayMs: 200,
    maxDelayMs: 3200,
    timeoutMs: 6000,
  };
}

/**
 * Adds `offsets` of `source`'s group to the open transaction `txn` of `producer`
 * (`AddOffsetsToTxn`, then one `TxnOffsetCommit` for all partitions): they become the group's
 * committed offsets if and only if the transaction commits. The request carries the consumer's
 * generation and member id, so a member the group has already replaced (a zombie) cannot commit
 * (the broker answers `ILLEGAL_GENERATION` / `UNKNOWN_MEMBER_ID`). Retries coordinator moves and
 * loading for a few seconds (`txnRetry`); any other error rejects, and the caller must abort
 * the transaction.
 */
export async function sendOffsetsToTransaction(
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  txn: KafkaTransaction,
  source: KafkaSourceHandle,
  offsets: readonly TxnOffset[],
  ctx: TxnRetryContext,
): Promise<void> {
  if (offsets.length === 0) return;
  const consumer = source.consumer();
  if (consumer === undefined) {
    throw new Error(`the consumer of group \`${source.group}\` is not connected (it is reconnecting)`);
  }
  const from = source.generations?.current;
  await txn.addConsumer(consumer);
  const topics = offsetCommitTopics(offsets.map((o) => ({ ...o, leaderEpoch: -1 })));
  const what = `committing offsets of group \`${source.group}\` in transaction \`${txn.id}\``;
  const send = (member: Membership) =>
    retrying(
      async () => {
        const connection = await coordinatorConnection(
          producer,
          consumer,
          topics.map((t) => t.name),
        );
        const api = await rawApi<TxnOffsetCommitApi>(producer, 'TxnOffsetCommit');
        await new Promise<void>((resolve, reject) =>
          api(
            connection,
            txn.id,
            source.group,
            producer.producerId as bigint,
            producer.producerEpoch as number,
            member.generation,
            member.memberId,
            null,
            topics,
            (err) => (err ? reject(err) : resolve()),
          ),
        );
      },
      txnRetry(ctx, what),
    );
  try {
    await commitAcrossRebalances({
      partitions: offsets.map((o) => partitionName(o.topic, o.partition)),
      generations: source.generations,
      from,
      current: () => {
        const member = consumer.memberId;
        return { memberId: member ?? '', generation: member ? consumer.generationId : -1 };
      },
      send,
      group: source.group,
      clock: ctx.clock,
      signal: ctx.signal,
      log: ctx.log,
      logFields: { stage: ctx.name },
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw new Error(`${what}: ${rootMessage(err)}`, { cause: err });
  }
}

/** Calls a raw client API and resolves with its response. */
function call(api: RawApi, connection: unknown, ...args: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) =>
    api(connection, ...args, (err: Error | null, value: unknown) => (err ? reject(err) : resolve(value))),
  );
}

/**
 * Commits the transaction that `transactionalId` left open with producer id `producerId` and
 * epoch `producerEpoch` (`EndTxn`), as a restarted process does for the transaction a checkpoint
 * holds ready: the producer that opened it is gone, but the id and epoch are enough. Rejects
 * when the broker no longer has it open (aborted after `transactionTimeout`, or fenced by a
 * newer producer): its records are then lost from the output.
 */
export async function commitPreparedTransaction(
  producer: Producer<Buffer, Buffer, Buffer, Buffer>,
  transactionalId: string,
  producerId: bigint,
  producerEpoch: number,
  ctx: TxnRetryContext,
): Promise<void> {
  const connect = (broker: { host: string; port: number }) => brokerConnection(producer, broker);
  const api = (name: string) => rawApi<RawApi>(producer, name);
  await retrying(
    async () => {
      const cluster = await producer.metadata({ topics: [] });
      const any = cluster.brokers.values().next().value as { host: string; port: number };
      const found = (await call(await api('FindCoordinator'), await connect(any), 1, [transactionalId])) as {
        coordinators: { host: string; port: number }[];
      };
      const coordinator = found.coordinators[0] as { host: string; port: number };
      await call(
        await api('EndTxn'),
        await connect(coordinator),
        transactionalId,
        producerId,
        producerEpoch,
        true,
      );
    },
    txnRetry(ctx, `committing the prepared transaction \`${transactionalId}\``),
  );
}

/** True when `err` (or an error inside it) is the broker's `UNSTABLE_OFFSET_COMMIT`. */
function isUnstableOffsetCommit(err: unknown, depth = 0): boolean {
  if (depth > 5 || typeof err !== 'object' || err === null) return false;
  const e = err as { apiId?: unknown; errors?: unknown[]; cause?: unknown };
  if (e.apiId === 'UNSTABLE_OFFSET_COMMIT') return true;
  return (
    (e.errors ?? []).some((x) => isUnstableOffsetCommit(x, depth + 1)) ||
    isUnstableOffsetCommit(e.cause, depth + 1)
  );
}

/**
 * Longest wait for a transaction still open on a partition's offsets: Kafka's largest
 * `transaction.timeout.ms` by default (`transaction.max.timeout.ms`, 15 minutes); the broker aborts
 * an abandoned transaction by then.
 */
const OPEN_TRANSACTION_WAIT_MS = 15 * 60_000;

/**
 * Partition scope with an exactly-once sink: reads the offsets `source`'s group committed for the
 * partitions asked (`topic:partition`), with `require_stable` — while a transaction that put
 * offsets of one of them is still open (a member killed before committing it, which the broker
 * aborts after its `transactionTimeout`, or one being committed now) the broker answers
 * `UNSTABLE_OFFSET_COMMIT`, and the read is retried (one warning) until it ended, as Kafka
 * Streams' new task owners do (KIP-447). Its outcome then shows in the committed offset. Rejects
 * after 15 minutes or with any other broker error.
 */
export function stableCommittedOffsets(
  source: Pick<KafkaSourceHandle, 'connection' | 'clientId' | 'group'>,
  ctx: TxnRetryContext,
): CommittedOffsets {
  return async (partitions) => {
    const byTopic = new Map<string, number[]>();
    for (const name of partitions) {
      const { topic, partition } = splitPartitionName(name);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
    }
    const out = new Map<string, number>();
    if (byTopic.size === 0) return out;
    const { Admin } = await kafkaClient();
    const admin = new Admin({
      ...clientOptions({ ...source.connection, clientId: source.clientId }),
      connectTimeout: 5000,
      retries: 0,
    });
    const what = `reading the committed offsets of ${partitions.map((p) => `\`${p}\``).join(', ')} for group \`${source.group}\``;
    try {
      const groups = await retrying(
        () =>
          admin.listConsumerGroupOffsets({
            groups: [
              {
                groupId: source.group,
                topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
              },
            ],
            requireStable: true,
          }),
        {
          ...txnRetry(ctx, what),
          retryable: (err) => isUnstableOffsetCommit(err) || isTransientKafkaError(err),
          maxDelayMs: 2000,
          timeoutMs: OPEN_TRANSACTION_WAIT_MS,
          hint: () =>
            'A transaction with offsets of these partitions is still open (a member stopped before committing it?); its outcome says which stored state to resume from, and the broker aborts it after its `transactionTimeout`',
        },
      );
      for (const g of groups)
        for (const t of g.topics)
          for (const p of t.partitions)
            if (p.committedOffset >= 0n)
              out.set(partitionName(t.name, p.partitionIndex), Number(p.committedOffset));
      return out;
    } catch (err) {
      if (isCancellation(err)) throw err;
      throw new Error(`${what}: ${rootMessage(err)}`, { cause: err });
    } finally {
      await admin.close().catch(() => {});
    }
  };
}
