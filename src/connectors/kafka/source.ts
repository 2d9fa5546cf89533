/**
 * The `kafka` source: a consumer-group member that reads one or more topics with
 * `@platformatic/kafka`, decodes each message value (`json`, `text` or `raw` bytes) and emits
 * batches whose `meta` carries the message's origin: `position` = `{ topic, partition, offset }`,
 * `key`, `timestamp` (the Kafka timestamp, epoch ms) and `headers`.
 *
 * Delivery is at-least-once. Offsets are never committed before the records they cover have
 * reached every sink:
 * - After a batch, at most once per `commitInterval`, the source emits barrier `id` and keeps
 *   the next offset of every partition it has emitted so far. When the runtime reports that
 *   barrier `id` passed every sink ({@link Source.onBarrierComplete}) those offsets are
 *   committed. A runtime that does not report barriers leaves the commit to a clean end.
 * - When the input ends cleanly (idle timeout or a draining stop, the sinks having finished),
 *   `close` commits everything emitted. A failed or cancelled run commits nothing more, so a
 *   restart re-reads from the last commit.
 * - Partitions revoked by a rebalance are forgotten at once: records of them still buffered are
 *   dropped and their uncommitted progress is not committed later (the new owner re-reads from
 *   the last commit, which can only cause duplicates, never a gap).
 *
 * A message whose value is not valid JSON (`format: json`) goes to the `dlq` output with its
 * original bytes and its topic, partition and offset; the partition keeps flowing. A broker
 * that cannot be reached at start or mid-run is waited for with backoff, one warning per try.
 */
import { Consumer, type Message, type MessagesStream } from '@platformatic/kafka';
import { barrier, type RecordMeta } from '../../core/batch.ts';
import { cancelledError, ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import { isConnectionError, rootMessage, withBrokerRetry } from './connection.ts';

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
  /** Longest wait between two attempts to reach the broker, in ms. */
  maxRetryDelay?: number | undefined;
}

/** How long a commit may take at the end of a run before it is given up (the next run re-reads). */
const COMMIT_TIMEOUT_MS = 10_000;
/** Snapshots kept for barriers not yet reported; older ones are dropped (a later one covers them). */
const MAX_PENDING_BARRIERS = 64;

type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** The record and meta of one message, or the reason it cannot be decoded. */
function decodeValue(format: KafkaValueFormat, value: Buffer | undefined): unknown {
  if (format === 'raw') return value ?? null;
  if (value === undefined || value === null) return null;
  const text = value.toString('utf8');
  return format === 'text' ? text : JSON.parse(text);
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
  else {
    const text = value.toString('utf8');
    if (Buffer.byteLength(text, 'utf8') === value.length && !text.includes('\uFFFD')) out.value = text;
    else out.valueBase64 = value.toString('base64');
  }
  return out;
}

/** A {@link Source} reading Kafka; see {@link kafkaSource}. */
export interface KafkaSource extends Source<unknown> {
  /** Commits made so far (each covers every partition with progress). */
  readonly commits: number;
}

/**
 * A source that reads `options.topics` as member of consumer group `options.group`.
 *
 * @example
 * const source = kafkaSource({
 *   brokers: ['127.0.0.1:9092'], topics: ['events'], group: 'etl', start: 'earliest',
 *   format: 'json', batchSize: 1024, maxWait: 50, commitInterval: 1000, groupProtocol: 'consumer',
 * });
 * await new Pipeline('etl').from(source).to(fileSink({ path: 'out.jsonl', format: 'jsonl' })).run().done;
 */
export function kafkaSource(options: KafkaSourceOptions): KafkaSource {
  const { brokers, topics, group, format, batchSize, maxWait, commitInterval } = options;
  let ctx: SourceContext;
  let consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  let stream: Stream | undefined;
  let streamError: Error | undefined;
  let ended = false;
  /** The last emitted message of each partition (its `commit` commits the offset after it). */
  const emittedLast = new Map<string, KafkaMessage>();
  /** Offsets to commit when barrier `id` completes. */
  const pending = new Map<number, Map<string, KafkaMessage>>();
  /** Next offset committed per partition: commits never go backwards. */
  const committed = new Map<string, bigint>();
  /** Partitions this member owns; `undefined` until the first assignment. */
  let assigned: Set<string> | undefined;
  let barrierId = 0;
  let commits = 0;
  let commitErrors = 0;
  let reconnects = 0;
  let revoked = 0;
  let records = 0;
  let lastPosition: { topic: string; partition: number; offset: number } | undefined;

  const onAssignment = (): void => {
    const now = new Set<string>();
    for (const a of consumer?.assignments ?? [])
      for (const p of a.partitions) now.add(partitionKey(a.topic, p));
    if (assigned !== undefined) {
      for (const key of assigned) {
        if (now.has(key)) continue;
        // Revoked: forget progress that is not committed, so no stale offset is committed later.
        revoked++;
        emittedLast.delete(key);
        for (const snap of pending.values()) snap.delete(key);
      }
    }
    assigned = now;
  };

  async function commitUpTo(snapshot: ReadonlyMap<string, KafkaMessage>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const [key, message] of snapshot) {
      if (assigned !== undefined && !assigned.has(key)) continue;
      const next = message.offset + 1n;
      if ((committed.get(key) ?? -1n) >= next) continue;
      committed.set(key, next);
      waits.push(Promise.resolve(message.commit()));
    }
    if (waits.length === 0) return;
    const results = await Promise.allSettled(waits);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed === undefined) {
      commits++;
      return;
    }
    // Not fatal: a later commit covers these offsets, and a restart re-reads them (at-least-once).
    commitErrors++;
    for (const key of snapshot.keys()) committed.delete(key);
    ctx.log.warn(
      `Committing offsets of group \`${group}\` failed: ${rootMessage(failed.reason)}; they are committed with the next barrier, or re-read after a restart`,
      { stage: ctx.name },
    );
  }

  async function connect(): Promise<Stream | undefined> {
    return withBrokerRetry(
      `joining group \`${group}\` for ${topics.map((t) => `\`${t}\``).join(', ')}`,
      brokers,
      ctx,
      async () => {
        const c = new Consumer<Buffer, Buffer, Buffer, Buffer>({
          clientId: options.clientId ?? 'sluice',
          groupId: group,
          bootstrapBrokers: brokers,
          autocommit: false,
          maxWaitTime: Math.max(10, Math.min(maxWait, 500)),
          highWaterMark: Math.max(batchSize * 2, 1024),
          connectTimeout: 5000,
          retries: 2,
          retryDelay: 250,
          ...(options.groupProtocol === 'consumer'
            ? { groupProtocol: 'consumer' as const }
            : { sessionTimeout: 10_000, heartbeatInterval: 1000, rebalanceTimeout: 20_000 }),
        });
        try {
          c.on('consumer:group:join', onAssignment);
          c.on('consumer:group:rebalance', onAssignment);
          let mode: 'committed' | 'manual' = 'committed';
          let offsets: { topic: string; partition: number; offset: bigint }[] | undefined;
          if (typeof options.start === 'number') {
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
      { initialDelay: 250, maxDelay: options.maxRetryDelay ?? 10_000, stopSignal: ctx.stopSignal },
    );
  }

  /** Wakes the read loop from {@link waitForData}; set while it waits. */
  let wakeUp: (() => void) | undefined;

  /** Resolves when the stream has data, ends or fails, after `ms`, or when the run stops. */
  async function waitForData(s: Stream, ms: number): Promise<void> {
    if (s.readableLength > 0 || streamError !== undefined || ended) return;
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
    if (emittedLast.size === 0) return;
    barrierId++;
    pending.set(barrierId, new Map(emittedLast));
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
      `Kafka consumer of group \`${group}\` lost its connection (${rootMessage(err)}); reconnecting. Records after the last commit are read again`,
      { stage: ctx.name },
    );
    const old = consumer;
    consumer = undefined;
    // Progress of the old session is not committed: its commit handles belong to a dead stream.
    emittedLast.clear();
    pending.clear();
    committed.clear();
    assigned = undefined;
    await stream?.close().catch(() => {});
    await old?.close(true).catch(() => {});
    const s = await connect();
    if (s !== undefined) attach(s);
    return s;
  }

  return {
    get commits() {
      return commits;
    },
    open(c) {
      ctx = c;
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
      while (!ctx.stopSignal.aborted) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        const s: Stream = stream;
        if (streamError !== undefined) {
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
          if (next === undefined) break;
          stream = next;
          continue;
        }
        if (ended) break;
        const batchRecords: unknown[] = [];
        const batchMeta: RecordMeta[] = [];
        let consumed = 0;
        const firstAt = ctx.clock.now();
        // Fill one batch: synchronous reads while data is buffered, a bounded wait when not.
        while (batchRecords.length < batchSize) {
          const m = s.read() as KafkaMessage | null;
          if (m === null) {
            const waited = ctx.clock.now() - firstAt;
            if (batchRecords.length === 0 || waited >= maxWait || streamError || ended) break;
            await waitForData(s, maxWait - waited);
            if (ctx.stopSignal.aborted) break;
            continue;
          }
          const key = partitionKey(m.topic, m.partition);
          if (assigned !== undefined && !assigned.has(key)) continue; // revoked: the new owner reads it
          const offset = Number(m.offset);
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
          emittedLast.set(key, m);
          consumed++;
          progressed = true;
          lastPosition = meta.position;
          let value: unknown;
          try {
            value = decodeValue(format, m.value);
          } catch (err) {
            ctx.deadLetter(
              undecodableRecord(m),
              new SluiceError(
                ErrorCode.PARSE,
                `invalid JSON in topic \`${m.topic}\` partition ${m.partition} offset ${offset}: ${(err as Error).message}; the message went to the dlq with its bytes`,
                { topic: m.topic, partition: m.partition, offset },
              ),
              meta,
            );
            continue;
          }
          batchRecords.push(value);
          batchMeta.push(meta);
        }
        const now = ctx.clock.now();
        if (batchRecords.length > 0) {
          records += batchRecords.length;
          lastDataAt = now;
          await out.emit({ kind: 'batch', records: batchRecords, meta: batchMeta });
        } else if (consumed > 0) {
          // Dead letters only: the input is not idle.
          lastDataAt = now;
        }
        // Under checkpoints the runtime injects the barriers; own ones would collide with them.
        if (!ctx.checkpointing && progressed && now - lastBarrierAt >= commitInterval) {
          progressed = false;
          lastBarrierAt = now;
          await emitBarrier(out);
        }
        if (batchRecords.length === 0 && streamError === undefined && !ended) {
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
      let snapshot: Map<string, KafkaMessage> | undefined;
      for (const k of [...pending.keys()]) {
        if (k > id) break;
        if (k === id) snapshot = pending.get(k);
        pending.delete(k);
      }
      if (snapshot !== undefined) await commitUpTo(snapshot);
    },
    position() {
      return lastPosition;
    },
    metrics() {
      return { records, commits, commitErrors, reconnects, revokedPartitions: revoked, barriers: barrierId };
    },
    async close() {
      try {
        // Reached only after every stage ended; with the run not aborted, the sinks finished.
        if (ctx !== undefined && !ctx.signal.aborted && consumer !== undefined && emittedLast.size > 0) {
          const local = new AbortController();
          await Promise.race([
            commitUpTo(emittedLast),
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
