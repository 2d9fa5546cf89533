/**
 * The `kafka` sink: produces each record as one message to a topic with `@platformatic/kafka`.
 *
 * - Value: `json` (JSON text), `text` (a string record as is, anything else as JSON) or `raw`
 *   (a Buffer/Uint8Array record as is, a string as UTF-8).
 * - Key: the record's field named by `key`; without `key`, the key the record came with
 *   (`meta.key`, e.g. from a Kafka source), so Kafka → Kafka keeps keys and partitioning.
 * - Headers: the record's `meta.headers` are passed on when `keepHeaders` is true (default).
 * - Batching: a write sends the batch in requests of at most `batchSize` messages and resolves
 *   when the broker acknowledged them (`acks`). With `linger` > 0 small batches are held up to
 *   `linger` (or `batchSize` messages) and sent together; a barrier and the end of input flush
 *   them first, so a commit upstream never covers records still held here.
 * - `idempotent: true` (default) makes retried requests not duplicate messages.
 */
import type { Producer } from '@platformatic/kafka';
import type { Batch, RecordMeta, Signal } from '../../core/batch.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { kafkaClient } from './client.ts';
import { rootMessage, withBrokerRetry } from './connection.ts';
import type { KafkaValueFormat } from './source.ts';

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

/** JSON text of `value`; bigints (exact money, offsets) become JSON numbers written exactly. */
function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

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
  let ctx: StageContext;
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  let held: OutMessage[] = [];
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** A send started by the linger timer; awaited (and its error thrown) by the next call. */
  let background: Promise<void> | undefined;
  let backgroundError: unknown;
  let sent = 0;
  let requests = 0;

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
      msg.key = toBytes(meta.key);
    }
    if (options.keepHeaders && meta?.headers !== undefined) {
      // Without serializers the client takes header keys as bytes too, hence a Map of Buffers.
      const headers = new Map<Buffer, Buffer>();
      for (const [k, v] of Object.entries(meta.headers)) headers.set(Buffer.from(k, 'utf8'), toBytes(v));
      msg.headers = headers;
    }
    return msg;
  }

  async function send(messages: OutMessage[]): Promise<void> {
    const p = producer as Producer<Buffer, Buffer, Buffer, Buffer>;
    for (let i = 0; i < messages.length; i += batchSize) {
      const chunk = messages.length <= batchSize ? messages : messages.slice(i, i + batchSize);
      try {
        await p.send({ messages: chunk });
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
    if (held.length === 0) return;
    const messages = held;
    held = [];
    await send(messages);
  }

  return {
    durableOnBarrier: true,
    get sent() {
      return sent;
    },
    async open(c) {
      ctx = c;
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
            idempotent: options.idempotent,
            acks: options.idempotent ? ProduceAcks.ALL : acks[options.acks],
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
        await flush();
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
      if (signal.kind === 'barrier') await flush();
    },
    finish() {
      return flush();
    },
    metrics() {
      return { sent, requests, held: held.length };
    },
    async close() {
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      lingerTimer = undefined;
      await background?.catch(() => {});
      await producer?.close(true).catch(() => {});
      producer = undefined;
    },
  };
}
