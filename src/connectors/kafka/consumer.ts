/**
 * The connection of a `kafka` source: one `@platformatic/kafka` consumer-group member and its
 * message stream. Joins the group (waiting for the brokers with the run's retry policy), tells
 * the source which partitions it owns after every join and rebalance, reconnects after a lost
 * connection, and lets the read loop wait for data without polling.
 *
 * Where a join starts each partition: at the group's committed offset (`start` says what a
 * partition without one does), unless the source restores a checkpoint and the group committed
 * past it — then the stream is opened in manual mode at the checkpoint's offsets, since the
 * checkpoint, not the group, says where the state stands — or `start` is a time (a replay).
 */
import type { Consumer, MessagesStream } from '@platformatic/kafka';
import { partitionName, splitPartitionName } from '../../core/partitions.ts';
import type { SourceContext } from '../../core/stage.ts';
import { kafkaClient } from './client.ts';
import { rootMessage, waitForBrokers } from './connection.ts';
import { holdRevocations } from './consumer-revoke.ts';
import { GroupGenerations } from './generations.ts';
import { byTopic, type ResumePoint } from './offsets.ts';
import { fixReadCommitted } from './read-committed.ts';
import type { KafkaMessage } from './records.ts';
import { clientOptions, type KafkaConnection } from './security.ts';

/**
 * Most bytes one fetch returns (one partition may fill it); at least one record batch always
 * comes. Small on purpose: every message of a fetch is an object of the client's until the read
 * loop takes it, and messages that wait through young-generation GCs are promoted. 64 KB is ~300
 * messages of 200 B. In the windowed bench (with the launcher's `--no-allocation-site-pretenuring`)
 * 64 KB and half a batch buffered peak at ~142 MiB, against ~191 with 1 MB and 4,096 buffered and
 * ~149 with 1 MB and half a batch, which uses ~10 % less CPU (`bench/README.md`, kafka-window).
 * A transaction larger than a fetch once stalled read_committed reading (`read-committed.ts`
 * says why it no longer does).
 */
const FETCH_MAX_BYTES = 64 << 10;

type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;
type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;

/** The settings of the source that shape its consumer (a subset of `KafkaSourceOptions`). */
export interface GroupConsumerOptions {
  readonly brokers: readonly string[];
  readonly topics: readonly string[];
  readonly group: string;
  readonly clientId: string;
  readonly start: 'earliest' | 'latest' | 'committed' | number;
  readonly batchSize: number;
  readonly maxWait: number;
  readonly groupProtocol: 'consumer' | 'classic';
  readonly isolation?: 'read_committed' | 'read_uncommitted' | undefined;
  readonly sessionTimeout?: number | undefined;
  readonly maxRetryDelay?: number | undefined;
  readonly connectTimeout?: number | undefined;
  /** TLS and SASL (see `security.ts`). */
  readonly tls?: KafkaConnection['tls'];
  readonly sasl?: KafkaConnection['sasl'];
}

/** What a {@link GroupConsumer} asks of its source. */
export interface GroupConsumerHooks {
  /** The member owns `partitions` now (names as `core/partitions.ts`); called after every join and rebalance. */
  assigned(partitions: Set<string>): void;
  /** Called at the start of every attempt to join, before the consumer exists (e.g. to read commit metadata). */
  beforeJoin(): Promise<void>;
  /**
   * The member is about to give partitions up (a cooperative rebalance, before it rejoins):
   * commit what was processed of them. The group waits for the returned promise (bounded by the
   * source), so the next owner starts after the last record this member wrote.
   */
  revoking(): Promise<void>;
  /** Where partitions not read yet resume, and whether they come from a restored checkpoint. */
  resume(): { readonly points: ReadonlyMap<string, ResumePoint>; readonly restored: boolean };
}

/** One consumer-group member and its stream; see the module comment. */
export class GroupConsumer {
  /** The connected consumer, or undefined while (re)connecting and after close. */
  consumer: KafkaConsumer | undefined;
  /** Reconnects after a lost connection (a metric). */
  reconnects = 0;
  /**
   * Classic protocol: the generations this member was confirmed in and what it owned in each (after
   * every join, and at a cooperative round's revoke step), for offsets committed outside the client
   * across a rebalance (`generations.ts`). Not fed under the `consumer` protocol.
   */
  readonly generations: GroupGenerations;
  private stream: Stream | undefined;
  private streamError: Error | undefined;
  private streamEnded = false;
  private rebalancingNow = false;
  /** How the stream starts partitions: at the group's committed offsets, or at offsets given (`manual`). */
  private mode: 'committed' | 'manual' = 'committed';
  /** Wakes {@link waitForData}; set while it waits. */
  private wakeUp: (() => void) | undefined;

  private readonly options: GroupConsumerOptions;
  private readonly ctx: () => SourceContext;
  private readonly hooks: GroupConsumerHooks;

  constructor(options: GroupConsumerOptions, ctx: () => SourceContext, hooks: GroupConsumerHooks) {
    this.options = options;
    this.ctx = ctx;
    this.hooks = hooks;
    // A join completes within the rebalance timeout (the broker then drops members that did not rejoin).
    this.generations = new GroupGenerations(Math.max(20_000, options.sessionTimeout ?? 0) + 10_000);
  }

  /** The stream's failure since it was opened, if any (the read loop decides what to do). */
  get error(): Error | undefined {
    return this.streamError;
  }

  /** True once the stream ended (the consumer was closed under it). */
  get ended(): boolean {
    return this.streamEnded;
  }

  /**
   * True from the client's "group rebalance" (a revoke round or a rejoin began) until it joins
   * again: the group generation that offset commits carry is about to change, so a checkpoint
   * taken now would commit its offsets with a stale one (`ILLEGAL_GENERATION`).
   */
  get rebalancing(): boolean {
    return this.rebalancingNow;
  }

  /**
   * Joins the group and opens the stream, waiting for the brokers. Resolves false when the run
   * was asked to stop first; rejects when the brokers stay away past `connectTimeout`, or on a
   * failure waiting does not fix.
   */
  async connect(): Promise<boolean> {
    const { brokers, topics, group } = this.options;
    const ctx = this.ctx();
    const stream = await waitForBrokers(
      `joining group \`${group}\` for ${topics.map((t) => `\`${t}\``).join(', ')}`,
      brokers,
      ctx,
      () => this.join(),
      {
        maxDelayMs: this.options.maxRetryDelay ?? 10_000,
        stopSignal: ctx.stopSignal,
        connectTimeoutMs: this.options.connectTimeout,
        connection: this.options,
      },
    );
    if (stream === undefined) return false;
    this.attach(stream);
    return true;
  }

  /**
   * The connection was lost (`err`): closes the consumer and joins again. The group rewinds to
   * the last commit; the source's trackers skip what was already emitted. Resolves false when the
   * run was asked to stop meanwhile.
   */
  async reconnect(err: Error): Promise<boolean> {
    this.reconnects++;
    const ctx = this.ctx();
    ctx.log.warn(
      `Kafka consumer of group \`${this.options.group}\` lost its connection (${rootMessage(err)}); reconnecting. Records after the last commit are read again and skipped`,
      { stage: ctx.name },
    );
    await this.closeConsumer();
    return this.connect();
  }

  /** The next buffered message, or null when none is buffered. */
  read(): KafkaMessage | null {
    return (this.stream?.read() as KafkaMessage | null | undefined) ?? null;
  }

  /**
   * Of `names` (partitions this member owns), the ones its stream has read to their end (none while
   * it holds fetched messages not read yet): the next offset to fetch is at or past the end offset.
   */
  async caughtUp(names: readonly string[]): Promise<string[]> {
    const c = this.consumer;
    const s = this.stream;
    if (c === undefined || s === undefined || names.length === 0) return [];
    // Fetched is not delivered: messages still in the stream's buffer may belong to these
    // partitions (a fetch fills one partition's share first), and calling such a partition caught
    // up lets the watermark run ahead of records not handed on yet. Judge only when it is empty.
    if (s.readableLength > 0) return [];
    const ends = await c.listOffsets({ topics: byTopic(names).map((t) => t.topic), timestamp: -1n });
    const at = s.offsetsToFetch;
    return names.filter((name) => {
      const { topic, partition } = splitPartitionName(name);
      const end = ends.get(topic)?.[partition];
      const next = at.get(name);
      return end !== undefined && next !== undefined && next >= end;
    });
  }

  /**
   * The next offset the stream fetches, per partition (`topic:partition`), or undefined while it
   * holds fetched messages not read yet (then the fetch offset is not what was read).
   */
  positions(): Map<string, number> | undefined {
    const s = this.stream;
    if (s === undefined || s.readableLength > 0) return undefined;
    const out = new Map<string, number>();
    for (const [name, offset] of s.offsetsToFetch) out.set(name, Number(offset));
    return out;
  }

  /**
   * Of `names` (partitions this member owns), the group's committed offset of each that has one,
   * where the stream starts a partition when it is assigned (empty when the stream starts at
   * offsets of its own: a restored checkpoint, a replay from a time).
   */
  async committedStarts(names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const c = this.consumer;
    if (c === undefined || this.mode !== 'committed' || names.length === 0) return out;
    const commits = await c.listCommittedOffsets({ topics: byTopic(names) });
    for (const name of names) {
      const { topic, partition } = splitPartitionName(name);
      const offset = commits.get(topic)?.[partition] ?? -1n;
      if (offset >= 0n) out.set(name, Number(offset));
    }
    return out;
  }

  /** Wakes a {@link waitForData} in progress (e.g. a parallel step finished). */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Resolves when the stream has data (unless `forData` is false), ends or fails, {@link wake}
   * is called, after `ms`, or when the run stops or is cancelled. Returns at once when `ready()`.
   */
  async waitForData(ms: number, forData: boolean, ready: () => boolean): Promise<void> {
    if (ready() || this.streamError !== undefined || this.streamEnded) return;
    if (forData && this.stream !== undefined && this.stream.readableLength > 0) return;
    const ctx = this.ctx();
    const local = new AbortController();
    const signal = AbortSignal.any([ctx.signal, ctx.stopSignal, local.signal]);
    const wake = new Promise<void>((resolve) => {
      this.wakeUp = resolve;
    });
    try {
      await Promise.race([wake, ctx.clock.sleep(ms, signal).catch(() => {})]);
    } finally {
      this.wakeUp = undefined;
      local.abort();
    }
  }

  /** Closes the stream and leaves the group. Never throws. */
  async close(): Promise<void> {
    await this.closeConsumer();
  }

  private async closeConsumer(): Promise<void> {
    const old = this.consumer;
    this.consumer = undefined;
    await this.stream?.close().catch(() => {});
    await old?.close(true).catch(() => {});
    this.stream = undefined;
  }

  /** One attempt to join: a new consumer, the read_committed fix, the start offsets, the stream. */
  private async join(): Promise<Stream> {
    const o = this.options;
    await this.hooks.beforeJoin();
    const { Consumer: ClientConsumer } = await kafkaClient();
    const c = new ClientConsumer<Buffer, Buffer, Buffer, Buffer>({
      ...clientOptions(o),
      groupId: o.group,
      autocommit: false,
      isolationLevel: o.isolation === 'read_uncommitted' ? 0 : 1,
      maxWaitTime: Math.max(10, Math.min(o.maxWait, 500)),
      // Messages buffered before the client stops fetching: half a batch, so the read loop's
      // next batch is being fetched while it takes this one, and little more waits.
      highWaterMark: Math.max(o.batchSize >> 1, 256),
      // The client's default (50 MB per fetch) parks hundreds of thousands of messages in memory
      // behind a backlog; they outlive young-generation GC. 1 MB per fetch: ~25 % less CPU per
      // record and ~40 % less peak RSS in `bench/kafka.ts`, same throughput; 64 KB and half a
      // batch buffered: see FETCH_MAX_BYTES.
      maxBytes: FETCH_MAX_BYTES,
      maxBytesPerPartition: FETCH_MAX_BYTES,
      connectTimeout: 5000,
      retries: 2,
      retryDelay: 250,
      ...(o.groupProtocol === 'consumer'
        ? { groupProtocol: 'consumer' as const }
        : {
            // Incremental (cooperative-sticky) rebalances when every member offers it: a member
            // joining or leaving moves only the partitions that change owner, and each is
            // committed before it is given up (`revoking`). Round robin keeps older members working.
            protocols: [
              { name: 'cooperative-sticky', version: 1 },
              { name: 'roundrobin', version: 1 },
            ],
            sessionTimeout: o.sessionTimeout ?? 10_000,
            heartbeatInterval: 1000,
            rebalanceTimeout: Math.max(20_000, o.sessionTimeout ?? 0),
          }),
    });
    // The client also emits 'error' on the consumer itself (a re-join that failed, even after
    // `close`: "Connection pool is closed"); without a listener Node throws it as unhandled and
    // the process dies, once after a run had already finished. While `c` is the current consumer
    // the read loop handles it as a stream error; after that it is moot.
    c.on('error', (err: Error) => {
      if (this.consumer !== c) return;
      this.streamError ??= err;
      this.wakeUp?.();
    });
    if (o.groupProtocol === 'consumer') this.revokeStepOfConsumerProtocol(c);
    try {
      if (o.isolation !== 'read_uncommitted') await fixReadCommitted(c);
      c.on('consumer:group:join', () => {
        this.rebalancingNow = false;
        if (o.groupProtocol === 'classic') this.generations.confirm(c.memberId, c.generationId, ownedBy(c));
        this.assignmentChanged();
      });
      c.on('consumer:group:rebalance', () => {
        this.rebalancingNow = true;
        this.assignmentChanged();
      });
      const { restored } = this.hooks.resume();
      let mode: 'committed' | 'manual' = 'committed';
      let offsets: { topic: string; partition: number; offset: bigint }[] | undefined;
      if (restored && (await this.commitsAhead(c))) {
        mode = 'manual';
        offsets = await this.manualOffsets(c);
        const ctx = this.ctx();
        ctx.log.warn(
          `The group \`${o.group}\` committed offsets past the checkpoint being restored; reading from the checkpoint's offsets`,
          { stage: ctx.name },
        );
      } else if (typeof o.start === 'number' && !restored) {
        mode = 'manual';
        offsets = await offsetsAt(c, [...o.topics], o.start);
      }
      this.mode = mode;
      const s = await c.consume({
        topics: [...o.topics],
        autocommit: false,
        mode,
        ...(offsets ? { offsets } : {}),
        fallbackMode: o.start === 'latest' ? 'latest' : o.start === 'committed' ? 'fail' : 'earliest',
      });
      this.commitBeforeRevoke(s, c);
      this.consumer = c;
      this.assignmentChanged();
      return s;
    } catch (err) {
      await c.close(true).catch(() => {});
      throw err;
    }
  }

  /**
   * Before a cooperative rebalance gives partitions up, the client flushes each stream's
   * autocommit and waits for it (`kAutocommit` with a callback, the only call with one); that
   * is where the source's commit of what it processed goes. The symbol is internal to the client
   * (not exported), so it is found by its description.
   */
  private commitBeforeRevoke(s: Stream, c: KafkaConsumer): void {
    const proto = Object.getPrototypeOf(s) as object;
    const key = Object.getOwnPropertySymbols(proto).find(
      (k) => k.description === 'plt.kafka.messagesStream.autocommit',
    );
    if (key === undefined) return;
    const target = s as unknown as Record<symbol, (callback?: (err: Error | null) => void) => void>;
    const original = target[key]?.bind(s);
    if (original === undefined) return;
    target[key] = (callback) => {
      if (callback === undefined) return original();
      // The member is in the new generation now and still owns what it gives up (until it rejoins).
      if (this.options.groupProtocol === 'classic')
        this.generations.confirm(c.memberId, c.generationId, ownedBy(c));
      this.hooks.revoking().then(
        () => original(callback),
        () => original(callback),
      );
    };
  }

  /**
   * Under the KIP-848 `consumer` protocol: the same revoke step before this member acknowledges a
   * revocation (`consumer-revoke.ts`), and the source told of every new assignment (the client
   * emits no event after recording one).
   */
  private revokeStepOfConsumerProtocol(c: KafkaConsumer): void {
    const ctx = this.ctx();
    const attached = holdRevocations(c, {
      revoking: () => this.hooks.revoking(),
      changed: () => {
        // Under this protocol no join follows a revocation: recording the new assignment ends it.
        this.rebalancingNow = false;
        if (this.consumer === c) this.assignmentChanged();
      },
      clock: ctx.clock,
      signal: ctx.signal,
    });
    if (!attached)
      ctx.log.warn(
        `This version of \`@platformatic/kafka\` cannot be made to commit before giving partitions up under \`groupProtocol: consumer\`; a rebalance of group \`${this.options.group}\` re-delivers what was processed since the last commit`,
        { stage: ctx.name },
      );
  }

  private assignmentChanged(): void {
    this.hooks.assigned(ownedBy(this.consumer));
  }

  private attach(s: Stream): void {
    this.stream = s;
    this.streamError = undefined;
    this.streamEnded = false;
    // A listener keeps an error from being thrown as unhandled; the read loop handles it.
    s.on('error', (err: Error) => {
      this.streamError = err;
      this.wakeUp?.();
    });
    s.on('end', () => {
      this.streamEnded = true;
      this.wakeUp?.();
    });
    // Stays attached for the stream's life: the client fetches only while the stream is read
    // (`readableFlowing` not null), and removing the last `readable` listener resets it to null.
    s.on('readable', () => this.wakeUp?.());
  }

  /** True when the group committed past a restored checkpoint for some partition. */
  private async commitsAhead(c: KafkaConsumer): Promise<boolean> {
    const { points } = this.hooks.resume();
    if (points.size === 0) return false;
    const commitsByTopic = await c.listCommittedOffsets({ topics: byTopic(points.keys()) });
    for (const r of points.values()) {
      const commit = commitsByTopic.get(r.topic)?.[r.partition] ?? -1n;
      if (commit > BigInt(r.offset)) return true;
    }
    return false;
  }

  /**
   * The offsets a stream must start from when the group's commits are not to be trusted (they
   * are ahead of the checkpoint being restored): the checkpoint's where it has one, else the
   * committed offset, else the start mode's end of the partition.
   */
  private async manualOffsets(
    c: KafkaConsumer,
  ): Promise<{ topic: string; partition: number; offset: bigint }[]> {
    const topics = [...this.options.topics];
    const { points } = this.hooks.resume();
    const ends = await c.listOffsets({ topics, timestamp: this.options.start === 'latest' ? -1n : -2n });
    const commitsByTopic = await c.listCommittedOffsets({
      topics: topics.map((topic) => ({ topic, partitions: (ends.get(topic) ?? []).map((_, i) => i) })),
    });
    const out: { topic: string; partition: number; offset: bigint }[] = [];
    for (const [topic, list] of ends) {
      list.forEach((end, partition) => {
        const r = points.get(partitionName(topic, partition));
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
}

/** The partitions `consumer` owns now (`topic:partition`). */
function ownedBy(consumer: KafkaConsumer | undefined): Set<string> {
  const owned = new Set<string>();
  for (const a of consumer?.assignments ?? [])
    for (const p of a.partitions) owned.add(partitionName(a.topic, p));
  return owned;
}

/** Per-partition offsets of the first messages at or after `time` (epoch ms); latest where none. */
async function offsetsAt(
  consumer: KafkaConsumer,
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
