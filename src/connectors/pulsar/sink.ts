/**
 * The `pulsar` sink: publishes each record as one message through the broker's WebSocket API
 * (`producer.ts`), with a key, properties and an event time. Sends are pipelined on `connections`
 * sockets (one WebSocket producer reaches about 3k unbatched messages/s); a record with a key
 * always goes through the same socket, so per-key order holds. A barrier and the end of input
 * wait for every receipt, so upstream acknowledgements never run ahead of the output
 * (`durableOnBarrier`). Producer batching is off by default: on a `key_shared` subscription a
 * batch holding several keys goes to one consumer, which splits keys across consumers. A record
 * that cannot be encoded goes to the `dlq` output; a message the broker refuses fails the run.
 */
import { cancelledError, ErrorCode, errorMessage, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch, RecordMeta } from '../../core/message.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import {
  ensurePartitioned,
  openSocket,
  type PulsarEndpoint,
  producerUrl,
  topicName,
  where,
} from './connection.ts';
import { encodePayload, type PulsarFormat } from './message.ts';
import { ProducerSocket } from './producer.ts';

/** Config of {@link pulsarSink} (the parsed YAML config). */
export interface PulsarSinkOptions extends PulsarEndpoint {
  /** Topic to publish to (`name`, `tenant/ns/name` or a full name). */
  topic: string;
  format: PulsarFormat;
  /** Record field holding the message key; undefined: the record's `meta.key`. */
  key?: string | undefined;
  /** Record field holding an object of string properties; undefined: the record's `meta.headers` (with `keepProperties`). */
  properties?: string | undefined;
  /** Pass `meta.headers` on as properties when `properties` is not set. */
  keepProperties: boolean;
  /** Record field holding the event time (epoch ms or ISO-8601); undefined: `meta.timestamp`. */
  eventTime?: string | undefined;
  /** Make the topic a partitioned topic of this many partitions when it does not exist. */
  partitions?: number | undefined;
  /** Producer batching (off: see the module comment). */
  batching: boolean;
  /** With `batching`: most messages per batch. */
  batchingMaxMessages: number;
  /** With `batching`: longest a batch waits, ms. */
  batchingMaxPublishDelay: number;
  compression: 'none' | 'lz4' | 'zlib' | 'zstd' | 'snappy';
  /** Producer sockets to spread sends over. */
  connections: number;
  /** Most messages awaiting a receipt per socket. */
  maxPending: number;
  /** Fail when the broker stays unreachable this long, ms; default: wait. */
  connectTimeout?: number | undefined;
}

/** A {@link Sink} publishing to Pulsar; see {@link pulsarSink}. */
export interface PulsarSink extends Sink<unknown> {
  /** Messages the broker stored so far. */
  readonly written: number;
}

/** FNV-1a of a key: which socket its messages use. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function field(record: unknown, name: string): unknown {
  return record !== null && typeof record === 'object'
    ? (record as Record<string, unknown>)[name]
    : undefined;
}

/** An event time as ISO-8601 (what the WebSocket API parses), or undefined. */
function isoTime(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v).toISOString();
  if (typeof v === 'bigint') return new Date(Number(v)).toISOString();
  if (typeof v === 'string' && v !== '') {
    const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (Number.isFinite(t)) return new Date(t).toISOString();
  }
  if (v instanceof Date && Number.isFinite(v.getTime())) return v.toISOString();
  return undefined;
}

/**
 * A sink publishing records to `options.topic`.
 *
 * @example
 * const sink = pulsarSink({
 *   url: 'http://127.0.0.1:8080', topic: 'scored', format: 'json', key: 'userId', keepProperties: true,
 *   batching: false, batchingMaxMessages: 1000, batchingMaxPublishDelay: 10, compression: 'none',
 *   connections: 2, maxPending: 1000,
 * });
 * await new Pipeline('score').from(source).to(sink).run().done;
 */
export function pulsarSink(options: PulsarSinkOptions): PulsarSink {
  const topic = topicName(options.topic);
  const params = {
    batchingEnabled: options.batching,
    batchingMaxMessages: options.batching ? options.batchingMaxMessages : undefined,
    batchingMaxPublishDelay: options.batching ? options.batchingMaxPublishDelay : undefined,
    compressionType: options.compression === 'none' ? undefined : options.compression.toUpperCase(),
    messageRoutingMode: 'RoundRobinPartition',
    // A send the broker has not stored in 30 s fails (the receipt says so) and fails the run.
    sendTimeoutMillis: 30_000,
  };
  const url = producerUrl(options, topic, params);
  let ctx: StageContext;
  let sockets: ProducerSocket[] = [];
  let rr = 0;
  let rejected = 0;
  /** Messages stored through sockets already closed. */
  let storedBefore = 0;

  const doing = `publishing to \`${topic.full}\``;
  const fail = (err: unknown): never => {
    if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    throw err instanceof SluiceError && err.context.stage !== undefined
      ? err
      : wrapError(`${doing} on Pulsar \`${where(options)}\``, err, { stage: ctx.name, topic: topic.full });
  };

  function reject(record: unknown, meta: RecordMeta | undefined, why: string): void {
    rejected++;
    ctx.deadLetter(
      record,
      new SluiceError(ErrorCode.RECORD, `cannot publish the record to \`${topic.full}\`: ${why}`, {
        topic: topic.full,
      }),
      meta,
    );
  }

  async function drainAll(): Promise<void> {
    try {
      await Promise.all(sockets.map((s) => s.drain(ctx.signal)));
    } catch (err) {
      fail(err);
    }
    if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
  }

  return {
    durableOnBarrier: true,
    get written() {
      return sockets.reduce((n, s) => n + s.stored, storedBefore);
    },
    async open(c) {
      ctx = c;
      try {
        if (options.partitions !== undefined)
          await ensurePartitioned(options, topic, options.partitions, ctx.signal);
        const open = () =>
          openSocket(options, url, {
            ctx,
            signal: ctx.signal,
            what: doing,
            connectTimeout: options.connectTimeout,
          });
        sockets = Array.from(
          { length: options.connections },
          () => new ProducerSocket(open, options.maxPending, topic.full),
        );
        await Promise.all(sockets.map((s) => s.start()));
      } catch (err) {
        fail(err);
      }
    },
    async write(batch: Batch<unknown>) {
      const { records, meta } = batch;
      for (let i = 0; i < records.length; i++) {
        const record = records[i];
        const m = meta?.[i];
        let payload: string;
        try {
          payload = encodePayload(record, options.format);
        } catch (err) {
          reject(record, m, errorMessage(err));
          continue;
        }
        const msg: Record<string, unknown> = { payload };
        let key: unknown;
        if (options.key !== undefined) {
          key = field(record, options.key);
          if (key === undefined || key === null) {
            reject(record, m, `it has no key field \`${options.key}\``);
            continue;
          }
        } else key = m?.key;
        if (key !== undefined)
          msg.key = key instanceof Uint8Array ? Buffer.from(key).toString('utf8') : String(key);
        let props: unknown;
        if (options.properties !== undefined) props = field(record, options.properties);
        else if (options.keepProperties) props = m?.headers;
        if (props !== undefined && props !== null && typeof props === 'object') {
          const p: Record<string, string> = {};
          for (const [k, v] of Object.entries(props as Record<string, unknown>)) {
            if (v === undefined || v === null) continue;
            p[k] =
              v instanceof Uint8Array
                ? Buffer.from(v).toString('utf8')
                : typeof v === 'string'
                  ? v
                  : String(v);
          }
          msg.properties = p;
        }
        const t = isoTime(options.eventTime !== undefined ? field(record, options.eventTime) : m?.timestamp);
        if (t !== undefined) msg.eventTime = t;
        const s =
          msg.key !== undefined
            ? (sockets[hashKey(msg.key as string) % sockets.length] as ProducerSocket)
            : (sockets[rr++ % sockets.length] as ProducerSocket);
        try {
          await s.send(msg, ctx.signal);
        } catch (err) {
          fail(err);
        }
      }
      if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    },
    async onSignal(signal) {
      if (signal.kind === 'barrier') await drainAll();
    },
    async finish() {
      await drainAll();
    },
    metrics() {
      let written = storedBefore;
      let pending = 0;
      let reconnects = 0;
      for (const s of sockets) {
        written += s.stored;
        pending += s.pending;
        reconnects += s.reconnects;
      }
      return { written, rejected, pending, reconnects };
    },
    close() {
      for (const s of sockets) {
        storedBefore += s.stored;
        s.close();
      }
      sockets = [];
    },
  };
}
