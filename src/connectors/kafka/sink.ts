/**
 * The `kafka` sink: produces each record as one message to a topic with `@platformatic/kafka`.
 *
 * - Value: `json` (JSON text), `text` (a string record as is, anything else as JSON) or `raw`
 *   (a Buffer/Uint8Array record as is, a string as UTF-8).
 * - Key: the record's field named by `key`; without `key`, the key the record came with
 *   (`meta.key`, e.g. from a Kafka source), so Kafka → Kafka keeps keys and partitioning.
 * - Headers: the record's `meta.headers` are passed on when `keepHeaders` is true (default).
 * - Batching: a write starts sending the batch in requests of at most `batchSize` messages and
 *   resolves once they are under way; at most 4 requests are in flight (1 with `exactlyOnce`),
 *   in order (the idempotent producer keeps them ordered per partition). A failed request fails
 *   the next write. With `linger` > 0 small batches are held up to `linger` (or `batchSize`
 *   messages) and sent together. A barrier and the end of input send what is held and wait until
 *   the broker acknowledged every request (`acks`), so a commit upstream never covers records
 *   not yet at the broker.
 * - `idempotent: true` (default) makes retried requests not duplicate messages.
 * - `exactlyOnce: true` (needs `checkpoint:` and a `kafka` source in the pipeline): a
 *   transactional producer (`transactionalId`). Records go into one open transaction; at
 *   checkpoint barrier n the sink sends what it holds, adds the `kafka` sources' positions of
 *   checkpoint n as the groups' offsets (`TxnOffsetCommit`, tagged `sluice-eos:<n>`) and commits
 *   the transaction, so output and consumed offsets become visible together or not at all; the
 *   sources then commit nothing themselves. A restarted producer with the same id aborts what a
 *   killed one left open and fences it. Kafka has no prepared state, so the commit happens at the
 *   barrier, before the checkpoint is stored: when the process dies between the two,
 *   `committedPositions()` reports the offsets Kafka holds (checkpoint n, newer than the store's
 *   n - 1) and the runtime resumes the sources there — the output holds each record once.
 *   Operator state comes from checkpoint n - 1 in that case (see the README).
 */
import type { Producer } from '@platformatic/kafka';
import type { Batch, Position, RecordMeta, Signal } from '../../core/batch.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { CommittedPositions, Sink, StageContext } from '../../core/stage.ts';
import { kafkaClient } from './client.ts';
import { rootMessage, withBrokerRetry } from './connection.ts';
import { readCommitted } from './group.ts';
import { DONE_SUFFIX } from './offsets.ts';
import type { KafkaValueFormat } from './source.ts';
import {
  claimOffsetCommits,
  decodeTxnMetadata,
  type KafkaTransaction,
  kafkaSourcesOf,
  offsetsOfPosition,
  sendOffsetsToTransaction,
} from './txn.ts';

/** Compression of produced record batches. */
export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Config of {@link kafkaSink} (the parsed YAML config). */
export interface KafkaSinkOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  /** Topic to write. */
  topic: string;
  /** Record field whose value is the message key; default: the record's `meta.key`. */
  key?: string | undefined;
  /** How a record becomes the message value. */
  format: KafkaValueFormat;
  /** Batch compression. */
  compression: KafkaCompression;
  /** Most messages per produce request. */
  batchSize: number;
  /** How long small batches may wait to be sent together, in ms (0: send every write at once). */
  linger: number;
  /** Idempotent producer (no duplicates from the client's own retries). */
  idempotent: boolean;
  /** Acknowledgement the broker gives before a write resolves. */
  acks: 'all' | 'leader' | 'none';
  /** Pass the record's `meta.headers` on as message headers. */
  keepHeaders: boolean;
  /** Client id the broker logs; default `sluice`. */
  clientId?: string | undefined;
  /**
   * Transactions per checkpoint with the sources' offsets inside (see the module comment).
   * Default false.
   */
  exactlyOnce?: boolean | undefined;
  /**
   * Transactional id with `exactlyOnce`; stable across restarts (a restart fences the previous
   * process by it) and unique per process. Default `sluice.<pipeline>.<stage>`.
   */
  transactionalId?: string | undefined;
  /** With `exactlyOnce`: longest a transaction may stay open before the broker aborts it, ms. Default 60000. */
  transactionTimeout?: number | undefined;
  /** The pipeline's name, for the default `transactionalId`. */
  pipeline?: string | undefined;
}

interface OutMessage {
  topic: string;
  key?: Buffer;
  value: Buffer;
  headers?: Map<Buffer, Buffer>;
}

function toBytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.from(typeof value === 'string' ? value : String(value), 'utf8');
}

const bigintAsString = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

/** JSON text of `value`; bigints (exact money, offsets) become strings of their exact digits. */
function jsonText(value: unknown): string {
  try {
    // A replacer costs a call per key: only the rare record holding a bigint pays it.
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof TypeError) return JSON.stringify(value, bigintAsString);
    throw err;
  }
}

/** Produce requests a sink keeps in flight without `exactlyOnce` (ordered: idempotent producer). */
const MAX_IN_FLIGHT = 4;
/** Distinct message keys whose bytes a sink keeps (cleared when full). */
const KEY_CACHE_SIZE = 8192;

/** A {@link Sink} writing Kafka; see {@link kafkaSink}. */
export interface KafkaSink extends Sink<unknown> {
  /** Messages the broker acknowledged so far. */
  readonly sent: number;
}

/**
 * A sink that produces every record to `options.topic`.
 *
 * @example
 * const sink = kafkaSink({
 *   brokers: ['127.0.0.1:9092'], topic: 'out', format: 'json', compression: 'lz4',
 *   batchSize: 1000, linger: 0, idempotent: true, acks: 'all', keepHeaders: true,
 * });
 */
export function kafkaSink(options: KafkaSinkOptions): KafkaSink {
  const { topic, format, batchSize } = options;
  const exactlyOnce = options.exactlyOnce === true;
  let ctx: StageContext;
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** Exactly-once: the open transaction, begun by the first send after a commit. */
  let txn: KafkaTransaction | undefined;
  let transactionalId = '';
  /** Exactly-once: the last checkpoint id committed (the end of input commits as the next one). */
  let lastCheckpoint = 0;
  let transactions = 0;
  let held: OutMessage[] = [];
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** A send started by the linger timer; awaited (and its error thrown) by the next call. */
  let background: Promise<void> | undefined;
  let backgroundError: unknown;
  /** Produce requests under way, oldest first; each records its failure in `sendError`. */
  const inflight: Promise<void>[] = [];
  let sendError: unknown;
  // One at a time in a transaction: the client adds partitions to it per request.
  const maxInFlight = exactlyOnce ? 1 : MAX_IN_FLIGHT;
  let sent = 0;
  let requests = 0;

  /** Message keys repeat (user ids, Kafka → Kafka keys): their bytes are made once and reused. */
  const keyCache = new Map<string, Buffer>();
  function keyBytes(key: string): Buffer {
    let bytes = keyCache.get(key);
    if (bytes === undefined) {
      bytes = Buffer.from(key, 'utf8');
      if (keyCache.size >= KEY_CACHE_SIZE) keyCache.clear();
      keyCache.set(key, bytes);
    }
    return bytes;
  }

  function encode(record: unknown, meta: RecordMeta | undefined): OutMessage | string {
    let value: Buffer;
    if (format === 'json') value = Buffer.from(jsonText(record), 'utf8');
    else if (format === 'text')
      value = Buffer.from(typeof record === 'string' ? record : jsonText(record), 'utf8');
    else value = toBytes(record);
    const msg: OutMessage = { topic, value };
    if (options.key !== undefined) {
      const k = (record as Record<string, unknown> | null)?.[options.key];
      if (k === undefined || k === null)
        return `the record has no field \`${options.key}\` for the message key`;
      msg.key = toBytes(typeof k === 'object' && !(k instanceof Uint8Array) ? jsonText(k) : k);
    } else if (meta?.key !== undefined) {
      msg.key = typeof meta.key === 'string' ? keyBytes(meta.key) : toBytes(meta.key);
    }
    if (options.keepHeaders && meta?.headers !== undefined) {
      // Without serializers the client takes header keys as bytes too, hence a Map of Buffers.
      const headers = new Map<Buffer, Buffer>();
      for (const [k, v] of Object.entries(meta.headers)) headers.set(Buffer.from(k, 'utf8'), toBytes(v));
      msg.headers = headers;
    }
    return msg;
  }

  async function openTransaction(): Promise<KafkaTransaction> {
    if (txn === undefined) {
      try {
        txn = await (producer as Producer<Buffer, Buffer, Buffer, Buffer>).beginTransaction();
      } catch (err) {
        throw wrapError(
          `beginning a transaction (transactional id \`${transactionalId}\`) on topic \`${topic}\``,
          new Error(rootMessage(err), { cause: err }),
          { topic },
        );
      }
    }
    return txn;
  }

  async function sendChunk(chunk: OutMessage[]): Promise<void> {
    try {
      if (exactlyOnce) await (await openTransaction()).send({ messages: chunk });
      else await (producer as Producer<Buffer, Buffer, Buffer, Buffer>).send({ messages: chunk });
    } catch (err) {
      throw wrapError(
        `producing ${chunk.length} messages to topic \`${topic}\``,
        new Error(rootMessage(err), { cause: err }),
        { topic },
      );
    }
    sent += chunk.length;
    requests++;
  }

  function throwIfFailed(): void {
    if (sendError === undefined) return;
    const err = sendError;
    sendError = undefined;
    throw err;
  }

  /**
   * Starts sending `messages` in requests of at most `batchSize`, keeping at most `maxInFlight`
   * requests under way; resolves once the last one is started. {@link drain} awaits them.
   */
  async function send(messages: OutMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += batchSize) {
      const chunk = messages.length <= batchSize ? messages : messages.slice(i, i + batchSize);
      while (inflight.length >= maxInFlight) await inflight.shift();
      throwIfFailed();
      inflight.push(
        sendChunk(chunk).catch((err: unknown) => {
          sendError ??= err;
        }),
      );
    }
  }

  /** Resolves when every request started so far is acknowledged; throws the first failure. */
  async function drain(): Promise<void> {
    while (inflight.length > 0) await inflight.shift();
    throwIfFailed();
  }

  async function settleBackground(): Promise<void> {
    if (background !== undefined) await background;
    if (backgroundError !== undefined) {
      const err = backgroundError;
      backgroundError = undefined;
      throw err;
    }
  }

  async function flush(): Promise<void> {
    if (lingerTimer !== undefined) clearTimeout(lingerTimer);
    lingerTimer = undefined;
    await settleBackground();
    if (held.length > 0) {
      const messages = held;
      held = [];
      await send(messages);
    }
    await drain();
  }

  /**
   * Exactly-once: adds the `kafka` sources' offsets at `positions` (by source stage) to the open
   * transaction, tagged with `checkpointId`, and commits it. On any failure the transaction is
   * aborted and the error thrown: the run fails, and a restart resumes from what was committed.
   */
  async function commitTransaction(
    checkpointId: number,
    positions: Readonly<Record<string, Position | undefined>>,
  ): Promise<void> {
    const p = producer as Producer<Buffer, Buffer, Buffer, Buffer>;
    const sources = kafkaSourcesOf(ctx);
    try {
      const t = await openTransaction();
      for (const source of sources) {
        const pos = positions[source.stage];
        if (pos === undefined) continue;
        await sendOffsetsToTransaction(p, t, source, offsetsOfPosition(pos, checkpointId));
      }
      await t.commit();
      txn = undefined;
      transactions++;
      lastCheckpoint = checkpointId;
    } catch (err) {
      const open = txn;
      txn = undefined;
      await open?.abort().catch(() => {});
      throw wrapError(
        `committing the transaction of checkpoint ${checkpointId} (transactional id \`${transactionalId}\`) on topic \`${topic}\`; it was aborted, and a restart resumes from the last committed one`,
        new Error(rootMessage(err), { cause: err }),
        { topic },
      );
    }
  }

  /** Exactly-once: the positions Kafka holds for the run's sources, and the checkpoint that wrote them. */
  async function heldPositions(): Promise<CommittedPositions | undefined> {
    const sources = kafkaSourcesOf(ctx);
    if (sources.length === 0) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`exactlyOnce\` on the kafka sink \`${ctx.name}\` (topic \`${topic}\`) commits the consumed offsets of a \`kafka\` source in its transactions, but the pipeline has no \`kafka\` input; read from Kafka, or set \`exactlyOnce: false\``,
        { topic },
      );
    }
    let checkpointId = 0;
    const out: Record<string, Position | undefined> = {};
    for (const source of sources) {
      const committed = await readCommitted(source.brokers, source.clientId, source.group, source.topics);
      const pos: Record<string, number | string> = {};
      for (const [key, c] of committed) {
        const meta = decodeTxnMetadata(c.metadata);
        if (meta === undefined) continue;
        checkpointId = Math.max(checkpointId, meta.checkpointId);
        pos[key] = c.offset;
        if (meta.done !== undefined) pos[`${key}${DONE_SUFFIX}`] = meta.done;
      }
      if (Object.keys(pos).length > 0) out[source.stage] = pos;
    }
    return checkpointId === 0 ? undefined : { checkpointId, sources: out };
  }

  return {
    durableOnBarrier: true,
    get sent() {
      return sent;
    },
    async open(c) {
      ctx = c;
      if (exactlyOnce) {
        if (!ctx.checkpointing) {
          throw new SluiceError(
            ErrorCode.CONFIG,
            `\`exactlyOnce\` on the kafka sink \`${ctx.name}\` (topic \`${topic}\`) commits one transaction per checkpoint: add \`checkpoint: { interval: 10s }\` to the pipeline, or set \`exactlyOnce: false\``,
            { topic },
          );
        }
        const other = claimOffsetCommits(ctx);
        if (other !== undefined) {
          throw new SluiceError(
            ErrorCode.CONFIG,
            `two kafka sinks with \`exactlyOnce\` (\`${other}\` and \`${ctx.name}\`) would both commit the sources' offsets; keep \`exactlyOnce\` on one of them`,
            { topic },
          );
        }
        transactionalId = options.transactionalId ?? `sluice.${options.pipeline ?? topic}.${ctx.name}`;
      }
      const client = await kafkaClient();
      const { ProduceAcks } = client;
      const acks = {
        all: ProduceAcks.ALL,
        leader: ProduceAcks.LEADER,
        none: ProduceAcks.NO_RESPONSE,
      } as const;
      await withBrokerRetry(
        `connecting the producer for topic \`${topic}\``,
        options.brokers,
        ctx,
        async () => {
          const p = new client.Producer<Buffer, Buffer, Buffer, Buffer>({
            clientId: options.clientId ?? 'sluice',
            bootstrapBrokers: options.brokers,
            idempotent: options.idempotent || exactlyOnce,
            acks: options.idempotent || exactlyOnce ? ProduceAcks.ALL : acks[options.acks],
            // The client sends `timeout` as the transaction timeout too, and, without these, producer
            // id 0 / epoch 0 in InitProducerId, which the broker refuses (fenced) for a known id.
            ...(exactlyOnce
              ? {
                  transactionalId,
                  timeout: options.transactionTimeout ?? 60_000,
                  producerId: -1n,
                  producerEpoch: -1,
                }
              : {}),
            compression: options.compression,
            autocreateTopics: false,
            connectTimeout: 5000,
            retries: 3,
            retryDelay: 250,
          });
          try {
            const meta = await p.metadata({ topics: [topic] });
            if (!meta.topics.has(topic)) throw new Error('no such topic');
          } catch (err) {
            await p.close(true).catch(() => {});
            if (/topic|partition/i.test(rootMessage(err))) {
              throw new SluiceError(
                ErrorCode.CONFIG,
                `the Kafka topic \`${topic}\` does not exist (${rootMessage(err)}); create it first (e.g. \`kafka-topics --create --topic ${topic}\`)`,
                { topic },
                { cause: err },
              );
            }
            throw err;
          }
          producer = p;
        },
        { initialDelay: 250, maxDelay: 10_000 },
      );
    },
    async write(batch: Batch<unknown>) {
      await settleBackground();
      const { records, meta } = batch;
      const out: OutMessage[] = [];
      for (let i = 0; i < records.length; i++) {
        const m = encode(records[i], meta?.[i]);
        if (typeof m === 'string') {
          ctx.deadLetter(
            records[i],
            new SluiceError(ErrorCode.RECORD, m, { topic, field: options.key }),
            meta?.[i],
          );
          continue;
        }
        out.push(m);
      }
      if (options.linger <= 0) {
        await send(out);
        return;
      }
      for (const m of out) held.push(m);
      if (held.length >= batchSize) {
        if (lingerTimer !== undefined) clearTimeout(lingerTimer);
        lingerTimer = undefined;
        const messages = held;
        held = [];
        await send(messages);
        return;
      }
      if (lingerTimer === undefined && held.length > 0) {
        lingerTimer = setTimeout(() => {
          lingerTimer = undefined;
          const messages = held;
          held = [];
          background = send(messages).then(
            () => {
              background = undefined;
            },
            (err) => {
              background = undefined;
              backgroundError = err;
            },
          );
        }, options.linger);
      }
    },
    async onSignal(signal: Signal) {
      // A barrier means: everything before it must be at the broker before upstream commits.
      if (signal.kind !== 'barrier') return;
      await flush();
      if (exactlyOnce) await commitTransaction(signal.id, ctx.checkpointPositions?.(signal.id) ?? {});
    },
    snapshot(checkpointId: number) {
      return exactlyOnce ? { checkpointId } : undefined;
    },
    restore(state: unknown) {
      const id = (state as { checkpointId?: unknown } | undefined)?.checkpointId;
      if (typeof id === 'number') lastCheckpoint = Math.max(lastCheckpoint, id);
    },
    async committedPositions() {
      if (!exactlyOnce) return undefined;
      const held = await heldPositions();
      if (held !== undefined) lastCheckpoint = Math.max(lastCheckpoint, held.checkpointId);
      return held;
    },
    async finish() {
      await flush();
      if (!exactlyOnce) return;
      // The end of input: the rest with the sources' final offsets, tagged as one checkpoint past
      // the last, so a restart before the checkpoints are deleted resumes here, not before.
      const positions: Record<string, Position | undefined> = {};
      for (const source of kafkaSourcesOf(ctx)) positions[source.stage] = source.position();
      await commitTransaction(lastCheckpoint + 1, positions);
    },
    metrics() {
      return { sent, requests, held: held.length, transactions };
    },
    async close() {
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      lingerTimer = undefined;
      await background?.catch(() => {});
      await Promise.allSettled(inflight.splice(0));
      // A failed or cancelled run: abort, so read_committed consumers need not wait for the timeout.
      const open = txn;
      txn = undefined;
      await open?.abort().catch(() => {});
      await producer?.close(true).catch(() => {});
      producer = undefined;
    },
  };
}
