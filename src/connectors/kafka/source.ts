/**
 * The `kafka` source: a consumer-group member that reads one or more topics with
 * `@platformatic/kafka`, decodes each message value (`json`, `text` or `raw` bytes) and emits
 * batches whose `meta` carries the message's origin: `position` = `{ topic, partition, offset }`,
 * `key`, `timestamp` (the Kafka timestamp, epoch ms) and `headers`.
 *
 * Every partition has an offset tracker (`offsets.ts`): a record is *done* once it is emitted
 * (or dead-lettered), and what may be committed is the tracker's low watermark. The source's
 * `position()` is that watermark per partition (`{ 'topic:0': 42, … }`) plus, when records
 * finished out of order, the done records beyond it (`'topic:0#done'`). Records the group
 * re-delivers after a rejoin (the client rewinds every partition to the committed offset) are
 * recognised by offset and skipped, so they are not emitted twice.
 *
 * Delivery is at-least-once, and exactly-once into state and sinks under checkpoints. Offsets
 * are never committed before the records they cover have reached every sink:
 * - With checkpoints (`ctx.checkpointing`) the runtime injects the barriers; the coordinator calls
 *   `commit(position)` once the checkpoint holding it is stored, and `restore(position)` on a
 *   restart, after which the source resumes exactly at the checkpoint's offsets (skipping the
 *   records the checkpoint marks done).
 * - Without checkpoints, after a batch, at most once per `commitInterval`, the source emits its
 *   own barrier `id` and keeps every partition's commit point; `onBarrierComplete(id)` commits
 *   them. A runtime that does not report barriers leaves the commit to a clean end.
 * - When the input ends cleanly (idle timeout, or a draining stop without checkpoints), `close`
 *   commits everything emitted. A failed or cancelled run commits nothing more.
 * - Partitions revoked by a rebalance are forgotten at once: their buffered and in-flight
 *   records are dropped and their uncommitted progress is not committed later (the new owner
 *   re-reads from the last commit, which can only cause duplicates, never a gap).
 *
 * Parallelism inside a partition (opt-in, TypeScript API): with `asyncStep` the source runs that
 * function on every record, at most `maxInFlight` at once, and emits the results as they
 * complete. `ordering` says what may overlap: `partition` (records of a partition one at a
 * time; partitions in parallel), `key` (records of one key never overtake each other), or
 * `unordered`. Only the contiguous low watermark is committed; the records done beyond a stuck
 * one travel in the commit metadata (or the checkpoint), so a restart does not redo them.
 *
 * A message whose value is not valid JSON (`format: json`) goes to the `dlq` output with its
 * original bytes and its topic, partition and offset; the partition keeps flowing. A broker
 * that cannot be reached at start or mid-run is waited for with backoff, one warning per try.
 */
import { isUtf8 } from 'node:buffer';
import type { Consumer, Message, MessagesStream } from '@platformatic/kafka';
import { cancelledError, ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import { barrier, type Position, type RecordMeta } from '../../core/message.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import { JsonShapes, parseJsonBytes } from '../../formats/json-shape.ts';
import { kafkaClient } from './client.ts';
import { isConnectionError, rootMessage, waitForBrokers } from './connection.ts';
import { commitWithMetadata, type GroupOffset, readCommitted } from './group.ts';
import {
  byTopic,
  type CommitPoint,
  DONE_SUFFIX,
  decodeDone,
  encodeDone,
  MAX_SPAN,
  PartitionOffsets,
  parsePosition,
  positionKey,
  splitKey,
} from './offsets.ts';
import { fixReadCommitted } from './read-committed.ts';
import { offsetsCommittedBySink, registerKafkaSource } from './txn.ts';

/** How a message value becomes a record. */
export type KafkaValueFormat = 'json' | 'text' | 'raw';

/**
 * Where each partition starts. `earliest` / `latest`: at the group's committed offset, or, for
 * a partition the group never committed, at its first / next new message (Kafka's
 * `auto.offset.reset`). `committed`: only at committed offsets; a partition without one fails
 * the run. A number: the first message with a timestamp at or after that epoch-ms time,
 * ignoring committed offsets (a replay).
 */
export type KafkaStart = 'earliest' | 'latest' | 'committed' | number;

/**
 * What may run at the same time with an `asyncStep`: records of one partition one at a time
 * (`partition`), records of one key one at a time (`key`; records without a key are
 * unconstrained), or anything (`unordered`).
 */
export type KafkaOrdering = 'partition' | 'key' | 'unordered';

/**
 * Per-record asynchronous work run inside the source (see `asyncStep`). Resolves to the record
 * to emit, or `undefined` to emit nothing for it; a rejection dead-letters the record. `signal`
 * aborts when the run is cancelled.
 */
export type KafkaAsyncStep = (record: unknown, meta: RecordMeta, signal: AbortSignal) => unknown;

/** Config of {@link kafkaSource} (the parsed YAML config). */
export interface KafkaSourceOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  /** Topics to read. */
  topics: string[];
  /** Consumer group id. */
  group: string;
  /** Where partitions start; see {@link KafkaStart}. */
  start: KafkaStart;
  /** How values are decoded. */
  format: KafkaValueFormat;
  /** Most records per emitted batch. */
  batchSize: number;
  /** Longest a partial batch waits for more messages, in ms. */
  maxWait: number;
  /** Least time between two commit barriers, in ms. */
  commitInterval: number;
  /** End the input after this many ms without a message (undefined: never, until stopped). */
  idleTimeout?: number | undefined;
  /** `consumer` (KIP-848, incremental, Kafka ≥ 4.0) or `classic`. */
  groupProtocol: 'consumer' | 'classic';
  /** Client id the broker logs; default `sluice`. */
  clientId?: string | undefined;
  /** Read only committed transactions (default) or also open and aborted ones. */
  isolation?: 'read_committed' | 'read_uncommitted' | undefined;
  /** Longest wait between two attempts to reach the broker, in ms. */
  maxRetryDelay?: number | undefined;
  /**
   * Give up reaching the brokers after this many ms of failed attempts in a row (at start or
   * after losing them mid-run), failing the run. Default: keep retrying until stopped.
   */
  connectTimeout?: number | undefined;
  /**
   * Classic protocol: how long the group waits for a silent member (a killed process) before its
   * partitions go to the others, ms. Default 10 000; the broker accepts 6 000 – 300 000 by default.
   */
  sessionTimeout?: number | undefined;
  /**
   * Opt-in parallel processing inside partitions: run this on every record (at most
   * `maxInFlight` at once, overlapping as `ordering` allows) and emit its results in completion
   * order. Default: none (records are emitted in partition order as read).
   */
  asyncStep?: KafkaAsyncStep | undefined;
  /** What may overlap with an `asyncStep`; default `partition`. */
  ordering?: KafkaOrdering | undefined;
  /** Most records read and not finished with an `asyncStep`; default 64. */
  maxInFlight?: number | undefined;
}

/** How long a commit may take at the end of a run before it is given up (the next run re-reads). */
const COMMIT_TIMEOUT_MS = 10_000;
/** Most bytes one fetch returns (a partition gets half); at least one record batch always comes. */
const FETCH_MAX_BYTES = 1 << 20;
/** Commit points kept for barriers not yet reported; older ones are dropped (a later one covers them). */
const MAX_PENDING_BARRIERS = 64;

type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/**
 * The record of one message value; throws when `json` is not valid JSON. `shapes`: the JSON
 * shapes seen so far by this source (values of one topic tend to share them).
 */
function decodeValue(format: KafkaValueFormat, value: Buffer | undefined, shapes: JsonShapes): unknown {
  if (format === 'raw') return value ?? null;
  if (value === undefined || value === null) return null;
  return format === 'text' ? value.toString('utf8') : parseJsonBytes(value, shapes);
}

/** A dead letter's record: the message's bytes, as text when they are valid UTF-8, else base64. */
export function undecodableRecord(message: {
  key?: Buffer | undefined;
  value?: Buffer | undefined;
}): Record<string, string | null> {
  const value = message.value ?? null;
  const out: Record<string, string | null> = {};
  if (message.key) out.key = message.key.toString('utf8');
  if (value === null) out.value = null;
  else if (isUtf8(value)) out.value = value.toString('utf8');
  else out.valueBase64 = value.toString('base64');
  return out;
}

/** A {@link Source} reading Kafka; see {@link kafkaSource}. */
export interface KafkaSource extends Source<unknown> {
  /** Commits made so far (each covers every partition with progress). */
  readonly commits: number;
}

/** One partition this source tracks. */
interface Tracked {
  readonly topic: string;
  readonly partition: number;
  readonly offsets: PartitionOffsets;
  leaderEpoch: number;
}

/** A commit point of one partition, ready to commit. */
interface PartitionCommit extends CommitPoint {
  readonly topic: string;
  readonly partition: number;
  readonly leaderEpoch: number;
}

/** A record waiting for or running its `asyncStep`. */
interface Job {
  readonly key: string;
  readonly offset: number;
  readonly record: unknown;
  readonly meta: RecordMeta;
  readonly lane: string | undefined;
}

/** A finished `asyncStep`. */
interface Finished {
  readonly job: Job;
  readonly ok: boolean;
  readonly value: unknown;
}

/**
 * A source that reads `options.topics` as member of consumer group `options.group`.
 *
 * @example
 * const source = kafkaSource({
 *   brokers: ['127.0.0.1:9092'], topics: ['events'], group: 'etl', start: 'earliest',
 *   format: 'json', batchSize: 1024, maxWait: 50, commitInterval: 1000, groupProtocol: 'classic',
 * });
 * await new Pipeline('etl').from(source).to(fileSink({ path: 'out.jsonl', format: 'jsonl' })).run().done;
 */
export function kafkaSource(options: KafkaSourceOptions): KafkaSource {
  const { brokers, topics, group, format, batchSize, maxWait, commitInterval } = options;
  const step = options.asyncStep;
  const ordering = options.ordering ?? 'partition';
  const maxInFlight = options.maxInFlight ?? 64;
  const clientId = options.clientId ?? 'sluice';
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `\`maxInFlight\` must be a whole number ≥ 1, not ${maxInFlight}`);
  }
  let ctx: SourceContext;
  const shapes = new JsonShapes();
  let consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  let stream: Stream | undefined;
  let streamError: Error | undefined;
  let ended = false;
  /** Offset trackers of the partitions read so far, by `topic:partition`. */
  const tracked = new Map<string, Tracked>();
  /** Where partitions not read yet resume (from a checkpoint or the group's commit metadata). */
  const resume = new Map<string, { topic: string; partition: number; offset: number; done: Set<number> }>();
  /** Commit points to commit when barrier `id` completes. */
  const pending = new Map<number, PartitionCommit[]>();
  /** Last commit per partition (offset and metadata): a commit that changes nothing is skipped. */
  const committed = new Map<string, { offset: number; metadata: string | undefined }>();
  /** Partitions this member owns; `undefined` until the first assignment. */
  let assigned: Set<string> | undefined;
  /**
   * Partition-scoped state (`ctx.partitionState`): partitions whose stored state was loaded,
   * and revoked partitions kept until a checkpoint covering everything emitted of them is stored.
   */
  const loaded = new Set<string>();
  const releasing = new Set<string>();
  let restored = false;
  let barrierId = 0;
  let commits = 0;
  let commitErrors = 0;
  let reconnects = 0;
  let revoked = 0;
  let records = 0;
  let skipped = 0;

  // `asyncStep` scheduling: lanes hold records waiting behind a running one of the same lane.
  const lanes = new Map<string, Job[]>();
  const finished: Finished[] = [];
  let running = 0;
  let waiting = 0;

  const onAssignment = (): void => {
    const now = new Set<string>();
    for (const a of consumer?.assignments ?? [])
      for (const p of a.partitions) now.add(positionKey(a.topic, p));
    const scoped = ctx?.partitionState !== undefined;
    // After a reconnect the partitions still tracked are the ones to compare with.
    const before = assigned ?? (scoped && tracked.size > 0 ? new Set(tracked.keys()) : undefined);
    for (const key of now) releasing.delete(key);
    if (scoped) ctx.partitionState?.assign(now);
    if (before !== undefined) {
      for (const key of before) {
        if (now.has(key)) continue;
        if (scoped) {
          // Its state is stored with the next checkpoint (which covers what was emitted of it), then released.
          revoked++;
          if (tracked.has(key)) releasing.add(key);
          else loaded.delete(key);
          continue;
        }
        // Revoked: forget progress that is not committed, so no stale offset is committed later.
        revoked++;
        tracked.delete(key);
        committed.delete(key);
        for (const list of pending.values()) {
          const i = list.findIndex((c) => positionKey(c.topic, c.partition) === key);
          if (i >= 0) list.splice(i, 1);
        }
      }
    }
    assigned = now;
  };

  function commitPoints(): PartitionCommit[] {
    const out: PartitionCommit[] = [];
    for (const t of tracked.values()) {
      out.push({
        topic: t.topic,
        partition: t.partition,
        leaderEpoch: t.leaderEpoch,
        ...t.offsets.commitPoint(),
      });
    }
    return out;
  }

  async function commitAll(points: readonly PartitionCommit[]): Promise<void> {
    const c = consumer;
    // An exactly-once kafka sink commits the offsets inside its transactions.
    if (c === undefined || offsetsCommittedBySink(ctx)) return;
    const todo: PartitionCommit[] = [];
    for (const p of points) {
      const key = positionKey(p.topic, p.partition);
      if (assigned !== undefined && !assigned.has(key)) continue;
      const last = committed.get(key);
      if (last !== undefined && last.offset > p.offset) continue;
      if (last !== undefined && last.offset === p.offset && last.metadata === p.metadata) continue;
      todo.push(p);
    }
    if (todo.length === 0) return;
    try {
      if (todo.some((p) => p.metadata !== undefined) && options.groupProtocol === 'classic') {
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
      commitErrors++;
      const where = todo.map((p) => `\`${p.topic}\` partition ${p.partition} offset ${p.offset}`).join(', ');
      ctx.log.warn(
        `Committing offsets of group \`${group}\` (${where}) failed: ${rootMessage(err)}; they are committed with the next barrier, or re-read after a restart`,
        { stage: ctx.name },
      );
      return;
    }
    for (const p of todo)
      committed.set(positionKey(p.topic, p.partition), { offset: p.offset, metadata: p.metadata });
    commits++;
  }

  /**
   * The offsets a stream must start from when the group's commits are not to be trusted (they
   * are ahead of the checkpoint being restored): the checkpoint's where it has one, else the
   * committed offset, else the start mode's end of the partition.
   */
  async function manualOffsets(
    c: Consumer<Buffer, Buffer, Buffer, Buffer>,
  ): Promise<{ topic: string; partition: number; offset: bigint }[]> {
    const ends = await c.listOffsets({ topics, timestamp: options.start === 'latest' ? -1n : -2n });
    const commitsByTopic = await c.listCommittedOffsets({
      topics: topics.map((topic) => ({
        topic,
        partitions: (ends.get(topic) ?? []).map((_, i) => i),
      })),
    });
    const out: { topic: string; partition: number; offset: bigint }[] = [];
    for (const [topic, list] of ends) {
      list.forEach((end, partition) => {
        const r = resume.get(positionKey(topic, partition));
        const commit = commitsByTopic.get(topic)?.[partition] ?? -1n;
        out.push({
          topic,
          partition,
          offset: r !== undefined ? BigInt(r.offset) : commit >= 0n ? commit : end,
        });
      });
    }
    return out;
  }

  /** True when the group committed past a restored checkpoint for some partition. */
  async function commitsAhead(c: Consumer<Buffer, Buffer, Buffer, Buffer>): Promise<boolean> {
    if (resume.size === 0) return false;
    const commitsByTopic = await c.listCommittedOffsets({ topics: byTopic(resume.keys()) });
    for (const r of resume.values()) {
      const commit = commitsByTopic.get(r.topic)?.[r.partition] ?? -1n;
      if (commit > BigInt(r.offset)) return true;
    }
    return false;
  }

  async function connect(): Promise<Stream | undefined> {
    return waitForBrokers(
      `joining group \`${group}\` for ${topics.map((t) => `\`${t}\``).join(', ')}`,
      brokers,
      ctx,
      async () => {
        if (step !== undefined && !restored && resume.size === 0) {
          // Records done beyond a stuck one before the last run stopped: skip them when read.
          for (const [key, c] of await readCommitted(brokers, clientId, group, topics)) {
            const done = decodeDone(c.metadata, c.offset);
            if (done.size === 0) continue;
            resume.set(key, { ...splitKey(key), offset: c.offset, done });
          }
        }
        const { Consumer: KafkaConsumer } = await kafkaClient();
        const c = new KafkaConsumer<Buffer, Buffer, Buffer, Buffer>({
          clientId,
          groupId: group,
          bootstrapBrokers: brokers,
          autocommit: false,
          isolationLevel: options.isolation === 'read_uncommitted' ? 0 : 1,
          maxWaitTime: Math.max(10, Math.min(maxWait, 500)),
          highWaterMark: Math.max(batchSize * 4, 4096),
          // The client's default (50 MB per fetch) parks hundreds of thousands of messages in memory
          // behind a backlog; they outlive young-generation GC. 1 MB per fetch: ~25 % less CPU per
          // record and ~40 % less peak RSS in `bench/kafka.ts`, same throughput.
          maxBytes: FETCH_MAX_BYTES,
          maxBytesPerPartition: FETCH_MAX_BYTES / 2,
          connectTimeout: 5000,
          retries: 2,
          retryDelay: 250,
          ...(options.groupProtocol === 'consumer'
            ? { groupProtocol: 'consumer' as const }
            : {
                sessionTimeout: options.sessionTimeout ?? 10_000,
                heartbeatInterval: 1000,
                rebalanceTimeout: Math.max(20_000, options.sessionTimeout ?? 0),
              }),
        });
        try {
          if (options.isolation !== 'read_uncommitted') await fixReadCommitted(c);
          c.on('consumer:group:join', onAssignment);
          c.on('consumer:group:rebalance', onAssignment);
          let mode: 'committed' | 'manual' = 'committed';
          let offsets: { topic: string; partition: number; offset: bigint }[] | undefined;
          if (restored && (await commitsAhead(c))) {
            // The checkpoint, not the group's commit, says where the state stands.
            mode = 'manual';
            offsets = await manualOffsets(c);
            ctx.log.warn(
              `The group \`${group}\` committed offsets past the checkpoint being restored; reading from the checkpoint's offsets`,
              { stage: ctx.name },
            );
          } else if (typeof options.start === 'number' && !restored) {
            mode = 'manual';
            offsets = await offsetsAt(c, topics, options.start);
          }
          const s = await c.consume({
            topics,
            autocommit: false,
            mode,
            ...(offsets ? { offsets } : {}),
            fallbackMode:
              options.start === 'latest' ? 'latest' : options.start === 'committed' ? 'fail' : 'earliest',
          });
          consumer = c;
          onAssignment();
          return s;
        } catch (err) {
          await c.close(true).catch(() => {});
          throw err;
        }
      },
      {
        maxDelayMs: options.maxRetryDelay ?? 10_000,
        stopSignal: ctx.stopSignal,
        connectTimeoutMs: options.connectTimeout,
      },
    );
  }

  /** Wakes the read loop from {@link waitForData}; set while it waits. */
  let wakeUp: (() => void) | undefined;

  /** Resolves when the stream has data, ends or fails, a step finishes, after `ms`, or when the run stops. */
  async function waitForData(s: Stream | undefined, ms: number, forData = true): Promise<void> {
    if (finished.length > 0 || streamError !== undefined || ended) return;
    if (forData && s !== undefined && s.readableLength > 0) return;
    const local = new AbortController();
    const signal = AbortSignal.any([ctx.signal, ctx.stopSignal, local.signal]);
    const wake = new Promise<void>((resolve) => {
      wakeUp = resolve;
    });
    try {
      await Promise.race([wake, ctx.clock.sleep(ms, signal).catch(() => {})]);
    } finally {
      wakeUp = undefined;
      local.abort();
    }
  }

  async function emitBarrier(out: Emitter<unknown>): Promise<void> {
    if (tracked.size === 0) return;
    barrierId++;
    pending.set(barrierId, commitPoints());
    if (pending.size > MAX_PENDING_BARRIERS) {
      const oldest = pending.keys().next().value as number;
      pending.delete(oldest);
    }
    await out.signal(barrier(barrierId));
  }

  function attach(s: Stream): void {
    streamError = undefined;
    ended = false;
    // A listener keeps an error from being thrown as unhandled; the read loop handles it.
    s.on('error', (err: Error) => {
      streamError = err;
      wakeUp?.();
    });
    s.on('end', () => {
      ended = true;
      wakeUp?.();
    });
    // Stays attached for the stream's life: the client fetches only while the stream is read
    // (`readableFlowing` not null), and removing the last `readable` listener resets it to null.
    s.on('readable', () => wakeUp?.());
  }

  async function reconnect(err: Error): Promise<Stream | undefined> {
    reconnects++;
    ctx.log.warn(
      `Kafka consumer of group \`${group}\` lost its connection (${rootMessage(err)}); reconnecting. Records after the last commit are read again and skipped`,
      { stage: ctx.name },
    );
    const old = consumer;
    consumer = undefined;
    // The trackers stay: the new session starts at the last commit, and what was emitted since is skipped.
    assigned = undefined;
    await stream?.close().catch(() => {});
    await old?.close(true).catch(() => {});
    const s = await connect();
    if (s !== undefined) attach(s);
    return s;
  }

  /** `positionKey(topic, partition)`, made once per partition (not once per message). */
  const partitionKeys = new Map<string, string[]>();
  function keyOf(topic: string, partition: number): string {
    let byPartition = partitionKeys.get(topic);
    if (byPartition === undefined) {
      byPartition = [];
      partitionKeys.set(topic, byPartition);
    }
    let key = byPartition[partition];
    if (key === undefined) {
      key = positionKey(topic, partition);
      byPartition[partition] = key;
    }
    return key;
  }

  /**
   * Partition-scoped state: loads the stored state of every assigned partition not loaded yet
   * (and of `key`), and resumes each at its stored offset. Done as soon as partitions are
   * assigned, not at their first message: a partition read to its end still has state to finish.
   */
  async function loadAssigned(key?: string): Promise<void> {
    const todo = key === undefined ? [] : [key];
    for (const k of assigned ?? []) if (k !== key && !tracked.has(k) && !loaded.has(k)) todo.push(k);
    if (todo.length === 0) return;
    const stored = await (ctx.partitionState as NonNullable<SourceContext['partitionState']>).load(
      group,
      todo,
    );
    for (const k of todo) {
      loaded.add(k);
      const r = stored.get(k);
      if (r === undefined) continue;
      resume.set(k, { ...splitKey(k), offset: r.offset, done: decodeDone(r.done, r.offset) });
    }
    await commitStarts(todo);
    if (stored.size > 0) {
      ctx.log.info(
        `Loaded the stored state of ${[...stored.keys()].map((k) => `\`${k}\``).join(', ')} for group \`${group}\``,
        { stage: ctx.name },
      );
    }
  }

  /**
   * Partition-scoped state: gives each of `keys` (newly assigned) that the group never committed
   * a commit at its start — the stored offset, else, with `start: earliest`, the partition's
   * first offset. Why: the client keeps its fetch position of a partition it lost, and when the partition
   * comes back without a committed offset it resumes from that stale position — past records
   * it had read ahead and dropped. A committed offset overrides it. (`latest` without a stored
   * offset is left alone: committing "the end now" could skip records produced since the
   * stream looked.) Best effort: a failure is logged, not fatal.
   */
  async function commitStarts(keys: readonly string[]): Promise<void> {
    const c = consumer;
    if (c === undefined || typeof options.start === 'number' || options.start === 'committed') return;
    if (options.start === 'latest') keys = keys.filter((k) => resume.has(k));
    if (keys.length === 0) return;
    try {
      const commits = await c.listCommittedOffsets({ topics: byTopic(keys) });
      const missing = keys.filter((k) => {
        const { topic, partition } = splitKey(k);
        return (commits.get(topic)?.[partition] ?? -1n) < 0n;
      });
      if (missing.length === 0) return;
      const ends = await c.listOffsets({ topics: byTopic(missing).map((t) => t.topic), timestamp: -2n });
      await c.commit({
        offsets: missing.map((k) => {
          const { topic, partition } = splitKey(k);
          const r = resume.get(k);
          return {
            topic,
            partition,
            offset: r !== undefined ? BigInt(r.offset) : (ends.get(topic)?.[partition] ?? 0n),
            leaderEpoch: -1,
          };
        }),
      });
    } catch (err) {
      ctx.log.warn(
        `Committing the start offsets of ${keys.map((k) => `\`${k}\``).join(', ')} for group \`${group}\` failed: ${rootMessage(err)}; a partition that comes back to this member may resume late`,
        { stage: ctx.name },
      );
    }
  }

  /** The tracker of `m`'s partition, made on its first message. */
  function trackerOf(key: string, m: KafkaMessage): Tracked {
    let t = tracked.get(key);
    if (t === undefined) {
      const r = resume.get(key);
      resume.delete(key);
      t = {
        topic: m.topic,
        partition: m.partition,
        offsets:
          r !== undefined ? new PartitionOffsets(r.offset, r.done) : new PartitionOffsets(Number(m.offset)),
        leaderEpoch: m.leaderEpoch,
      };
      tracked.set(key, t);
    }
    t.leaderEpoch = m.leaderEpoch;
    return t;
  }

  function metaOf(source: string, m: KafkaMessage, offset: number): RecordMeta {
    const meta: {
      source: string;
      position: { topic: string; partition: number; offset: number };
      key?: string;
      timestamp: number;
      headers?: Record<string, string>;
    } = {
      source,
      position: { topic: m.topic, partition: m.partition, offset },
      timestamp: Number(m.timestamp),
    };
    if (m.key) meta.key = m.key.toString('utf8');
    if (m.headerEntries.length > 0) {
      const headers: Record<string, string> = {};
      for (const [k, v] of m.headerEntries) headers[k.toString('utf8')] = v ? v.toString('utf8') : '';
      meta.headers = headers;
    }
    return meta;
  }

  function deadLetterUndecodable(m: KafkaMessage, offset: number, meta: RecordMeta, err: unknown): void {
    ctx.deadLetter(
      undecodableRecord(m),
      new SluiceError(
        ErrorCode.PARSE,
        `invalid JSON in topic \`${m.topic}\` partition ${m.partition} offset ${offset}: ${(err as Error).message}; the message went to the dlq with its bytes`,
        { topic: m.topic, partition: m.partition, offset },
      ),
      meta,
    );
  }

  function startJob(job: Job): void {
    running++;
    let result: Promise<unknown>;
    try {
      result = Promise.resolve((step as KafkaAsyncStep)(job.record, job.meta, ctx.signal));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (value) => jobDone(job, true, value),
      (err: unknown) => jobDone(job, false, err),
    );
  }

  function jobDone(job: Job, ok: boolean, value: unknown): void {
    running--;
    finished.push({ job, ok, value });
    if (job.lane !== undefined) {
      const queue = lanes.get(job.lane);
      const next = queue?.shift();
      if (next !== undefined) {
        waiting--;
        startJob(next);
      } else lanes.delete(job.lane);
    }
    wakeUp?.();
  }

  function dispatch(job: Job): void {
    if (job.lane === undefined) {
      startJob(job);
      return;
    }
    const queue = lanes.get(job.lane);
    if (queue !== undefined) {
      queue.push(job);
      waiting++;
      return;
    }
    lanes.set(job.lane, []);
    startJob(job);
  }

  /** True while the `asyncStep` may take another record: room in flight, and every span fits the metadata. */
  function hasRoom(): boolean {
    if (running + waiting >= maxInFlight) return false;
    for (const t of tracked.values()) if (t.offsets.span >= MAX_SPAN) return false;
    return true;
  }

  /**
   * Emits the finished steps: results in completion order, failures to the dlq. Each record
   * counts as done (in its tracker) before the emit, so `position()` read during it covers it.
   */
  async function emitFinished(out: Emitter<unknown>): Promise<number> {
    if (finished.length === 0) return 0;
    const done = finished.splice(0, finished.length);
    const batchRecords: unknown[] = [];
    const batchMeta: RecordMeta[] = [];
    for (const f of done) {
      const t = tracked.get(f.job.key);
      // Revoked meanwhile (the new owner processes it again), or already finished before a reconnect.
      if (t === undefined || !t.offsets.complete(f.job.offset)) continue;
      if (!f.ok) {
        ctx.deadLetter(f.job.record, f.value, f.job.meta);
        continue;
      }
      if (f.value === undefined) continue;
      batchRecords.push(f.value);
      batchMeta.push(f.job.meta);
    }
    if (batchRecords.length > 0) {
      records += batchRecords.length;
      await out.emit({ kind: 'batch', records: batchRecords, meta: batchMeta });
    }
    return done.length;
  }

  return {
    get commits() {
      return commits;
    },
    open(c) {
      ctx = c;
      registerKafkaSource(c, {
        stage: c.name,
        group,
        topics,
        brokers,
        clientId,
        consumer: () => consumer,
        position: () => this.position?.(),
      });
    },
    restore(position) {
      let points: ReturnType<typeof parsePosition>;
      try {
        points = parsePosition(position);
      } catch (err) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `restoring the kafka source of group \`${group}\`: ${(err as Error).message}; delete the checkpoint folder to start over`,
          { group },
          { cause: err },
        );
      }
      restored = true;
      for (const p of points) resume.set(positionKey(p.topic, p.partition), p);
    },
    async run(out, c) {
      ctx = c;
      stream = await connect();
      if (stream === undefined) return;
      attach(stream);
      const source = ctx.name;
      let lastBarrierAt = ctx.clock.now();
      let lastDataAt = ctx.clock.now();
      /** Messages were taken since the last barrier, so the next one has offsets to commit. */
      let progressed = false;
      let stopping = false;
      for (;;) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        if (ctx.stopSignal.aborted) stopping = true;
        const busy = running + waiting > 0 || finished.length > 0;
        // Stopping: read nothing more, but let the steps in flight finish and emit their results.
        if (stopping && !busy) break;
        const s: Stream = stream;
        if (!stopping && streamError !== undefined) {
          const err: Error = streamError;
          if (!isConnectionError(err)) {
            throw wrapError(
              `reading ${topics.map((t) => `\`${t}\``).join(', ')} as group \`${group}\``,
              err,
              {
                topics,
                group,
              },
            );
          }
          const next = await reconnect(err);
          if (next === undefined) {
            stopping = true;
            continue;
          }
          stream = next;
          // Time without a broker is not idleness: the idle timeout counts from the reconnect.
          lastDataAt = ctx.clock.now();
          continue;
        }
        if (ended && !busy) break;
        if (ctx.partitionState !== undefined) await loadAssigned();
        const batchRecords: unknown[] = [];
        const batchMeta: RecordMeta[] = [];
        let consumed = 0;
        const firstAt = ctx.clock.now();
        // Fill one batch: synchronous reads while data is buffered, a bounded wait when not.
        while (!stopping && !ended && batchRecords.length < batchSize && (step === undefined || hasRoom())) {
          const m = s.read() as KafkaMessage | null;
          if (m === null) {
            const waited = ctx.clock.now() - firstAt;
            if (step !== undefined || batchRecords.length === 0 || waited >= maxWait || streamError) break;
            await waitForData(s, maxWait - waited);
            if (ctx.stopSignal.aborted) break;
            continue;
          }
          const key = keyOf(m.topic, m.partition);
          if (assigned !== undefined && !assigned.has(key)) continue; // revoked: the new owner reads it
          if (ctx.partitionState !== undefined && !tracked.has(key) && !loaded.has(key))
            await loadAssigned(key);
          const offset = Number(m.offset);
          const t = trackerOf(key, m);
          // Without a step a record is done once emitted (just below, before `position()` is read).
          if (!(step === undefined ? t.offsets.pass(offset) : t.offsets.admit(offset))) {
            skipped++; // re-delivered after a rejoin, or done before a restart
            continue;
          }
          consumed++;
          progressed = true;
          const meta = metaOf(source, m, offset);
          let value: unknown;
          try {
            value = decodeValue(format, m.value, shapes);
          } catch (err) {
            if (step !== undefined) t.offsets.complete(offset);
            deadLetterUndecodable(m, offset, meta, err);
            continue;
          }
          if (step !== undefined) {
            const lane =
              ordering === 'partition'
                ? key
                : ordering === 'key' && meta.key !== undefined
                  ? `${key}\u0000${meta.key}`
                  : undefined;
            dispatch({ key, offset, record: value, meta, lane });
            continue;
          }
          batchRecords.push(value);
          batchMeta.push(meta);
        }
        const now = ctx.clock.now();
        let emitted = 0;
        if (batchRecords.length > 0) {
          records += batchRecords.length;
          emitted = batchRecords.length;
          await out.emit({ kind: 'batch', records: batchRecords, meta: batchMeta });
        }
        if (step !== undefined) emitted += await emitFinished(out);
        if (emitted > 0 || consumed > 0) lastDataAt = now; // dead letters only: the input is not idle either
        // Under checkpoints the runtime injects the barriers; own ones would collide with them.
        if (!ctx.checkpointing && progressed && now - lastBarrierAt >= commitInterval) {
          // With steps still running, the barrier's commit points cover what is done; the next covers the rest.
          progressed = running + waiting > 0;
          lastBarrierAt = now;
          await emitBarrier(out);
        }
        if (emitted === 0 && consumed === 0 && streamError === undefined) {
          if (running + waiting > 0 || stopping) {
            // Waiting for steps to finish (or for room to read more).
            await waitForData(s, Math.max(1, commitInterval), !stopping && (step === undefined || hasRoom()));
            continue;
          }
          if (ended) continue;
          // Waiting for partitions (e.g. held by a killed member until its session times out) is not idleness.
          if (assigned === undefined || assigned.size === 0) lastDataAt = now;
          if (options.idleTimeout !== undefined && now - lastDataAt >= options.idleTimeout) break;
          const idleLeft =
            options.idleTimeout === undefined ? commitInterval : options.idleTimeout - (now - lastDataAt);
          await waitForData(s, Math.max(1, Math.min(commitInterval, idleLeft)));
        }
      }
    },
    async onBarrierComplete(id) {
      let points: PartitionCommit[] | undefined;
      for (const k of [...pending.keys()]) {
        if (k > id) break;
        if (k === id) points = pending.get(k);
        pending.delete(k);
      }
      if (points !== undefined) await commitAll(points);
    },
    async commit(position: Position) {
      const points: PartitionCommit[] = [];
      for (const p of parsePosition(position)) {
        const key = positionKey(p.topic, p.partition);
        const meta = position[`${key}${DONE_SUFFIX}`];
        points.push({
          topic: p.topic,
          partition: p.partition,
          offset: p.offset,
          metadata: typeof meta === 'string' ? meta : undefined,
          leaderEpoch: tracked.get(key)?.leaderEpoch ?? -1,
        });
      }
      await commitAll(points);
      // Revoked partitions whose state this checkpoint stored with all that was emitted of them.
      for (const key of releasing) {
        const t = tracked.get(key);
        if (t !== undefined && position[key] !== t.offsets.commitPoint().offset) continue;
        releasing.delete(key);
        tracked.delete(key);
        committed.delete(key);
        loaded.delete(key);
      }
    },
    position() {
      const pos: Record<string, number | string> = {};
      for (const r of resume.values()) {
        const key = positionKey(r.topic, r.partition);
        pos[key] = r.offset;
        const meta = encodeDone(r.offset, r.done);
        if (meta !== undefined) pos[`${key}${DONE_SUFFIX}`] = meta;
      }
      for (const [key, t] of tracked) {
        const point = t.offsets.commitPoint();
        pos[key] = point.offset;
        if (point.metadata !== undefined) pos[`${key}${DONE_SUFFIX}`] = point.metadata;
      }
      return pos;
    },
    metrics() {
      return {
        records,
        commits,
        commitErrors,
        reconnects,
        revokedPartitions: revoked,
        barriers: barrierId,
        skipped,
        inFlight: running + waiting,
      };
    },
    async close() {
      try {
        // Reached only after every stage ended; with the run not aborted, the sinks finished. Under
        // checkpoints a draining stop keeps its checkpoints, which a restart resumes from: the group
        // must not be ahead of them.
        // Partition-scoped state is stored only at checkpoints: the group must not be ahead of it either.
        const clean =
          ctx !== undefined &&
          !ctx.signal.aborted &&
          !(ctx.checkpointing && ctx.stopSignal.aborted) &&
          ctx.partitionState === undefined;
        if (clean && consumer !== undefined && tracked.size > 0) {
          const local = new AbortController();
          await Promise.race([
            commitAll(commitPoints()),
            ctx.clock.sleep(COMMIT_TIMEOUT_MS, local.signal).then(
              () =>
                ctx.log.warn(
                  `Committing final offsets of group \`${group}\` timed out; a restart re-reads them`,
                ),
              () => {},
            ),
          ]);
          local.abort();
        }
      } finally {
        await stream?.close().catch(() => {});
        await consumer?.close(true).catch(() => {});
        stream = undefined;
        consumer = undefined;
      }
    },
  };
}

/** Per-partition offsets of the first messages at or after `time` (epoch ms); latest where none. */
async function offsetsAt(
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  topics: string[],
  time: number,
): Promise<{ topic: string; partition: number; offset: bigint }[]> {
  const at = await consumer.listOffsets({ topics, timestamp: BigInt(time) });
  const latest = await consumer.listOffsets({ topics, timestamp: -1n });
  const out: { topic: string; partition: number; offset: bigint }[] = [];
  for (const [topic, offsets] of at) {
    offsets.forEach((offset, partition) => {
      const fallback = latest.get(topic)?.[partition] ?? 0n;
      out.push({ topic, partition, offset: offset >= 0n ? offset : fallback });
    });
  }
  return out;
}
