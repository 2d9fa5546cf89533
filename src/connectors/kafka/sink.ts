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
 *   transactional producer (`transactionalId`) and a two-phase commit per checkpoint. Records go
 *   into one open transaction; at checkpoint barrier n the sink sends what it holds and adds the
 *   `kafka` sources' positions of checkpoint n as the groups' offsets (`TxnOffsetCommit`, tagged
 *   `sluice-eos:<job>:<n>`): the transaction is prepared. `commitCheckpoint(n)`, once checkpoint n
 *   is stored, commits it (`EndTxn`); writes after the barrier wait for that. The checkpoint holds
 *   the transaction's producer id and epoch, so a restart from checkpoint n commits it when the
 *   process died between storing and committing (the groups' offsets tell whether it was), and
 *   the new producer's `InitProducerId` aborts anything else left open and fences the old one.
 *   The sources commit nothing themselves. At the end of input the rest is committed with the
 *   sources' final offsets.
 */
import { randomUUID } from 'node:crypto';
import type { Producer } from '@platformatic/kafka';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch, Position, RecordMeta, Signal } from '../../core/message.ts';
import type { CommittedPositions, DeadLetter, Sink, StageContext } from '../../core/stage.ts';
import { toJsonLine } from '../../formats/jsonl.ts';
import { kafkaClient } from './client.ts';
import { rootMessage, waitForBrokers } from './connection.ts';
import { deadLetterMessage, isDeadLetter } from './dead-letters.ts';
import { readCommitted } from './group.ts';
import { DONE_SUFFIX } from './offsets.ts';
import type { KafkaValueFormat } from './source.ts';
import {
  claimOffsetCommits,
  commitPreparedTransaction,
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
  /**
   * How dead letters (records of a `dlq:` output) are written. `original`: the failed message as
   * it came in — its value bytes (or the failed record as JSON), key and headers — plus
   * `sluice.error.code`, `sluice.error.message`, `sluice.stage`, `sluice.source`,
   * `sluice.position` and `sluice.time` headers (see `dead-letters.ts`). `envelope`: the dead
   * letter itself as one JSON value, like any other record. Default `envelope`; a `kafka` sink
   * built as a pipeline file's `dlq:` defaults to `original`.
   */
  deadLetters?: 'original' | 'envelope' | undefined;
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

/** Produce requests a sink keeps in flight without `exactlyOnce` (ordered: idempotent producer). */
const MAX_IN_FLIGHT = 4;
/** Distinct message keys whose bytes a sink keeps (cleared when full). */
const KEY_CACHE_SIZE = 8192;

/** What the exactly-once `kafka` sink keeps in a checkpoint: the transaction it prepared at the barrier. */
interface KafkaSinkState {
  readonly checkpointId: number;
  /** The job, as in the offset metadata. */
  readonly run: string;
  readonly transactionalId: string;
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number | undefined;
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
  const exactlyOnce = options.exactlyOnce === true;
  let ctx: StageContext;
  let producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** Exactly-once: the open transaction, begun by the first send after a commit. */
  let txn: KafkaTransaction | undefined;
  let transactionalId = '';
  /** Exactly-once: the last checkpoint id prepared (the end of input commits as the next one). */
  let lastCheckpoint = 0;
  let transactions = 0;
  /** Exactly-once: names this job in the offset metadata; kept in the checkpoints. */
  let run = randomUUID().slice(0, 8);
  /**
   * Exactly-once: the transaction of a checkpoint barrier, flushed with its offsets and waiting
   * for the checkpoint to be stored (`commitCheckpoint`); writes after the barrier wait for it.
   */
  let prepared: { id: number; committed: Promise<void>; settle: () => void } | undefined;
  /** Exactly-once: a failed commit of a prepared transaction, thrown by the next call. */
  let commitError: unknown;
  /** Exactly-once: the open transaction has records or offsets (an empty one is not sent to the broker). */
  let txnUsed = false;
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

  /**
   * Message keys (user ids, Kafka → Kafka keys) and header names repeat: their bytes are made
   * once and reused.
   */
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

  /** `meta`'s headers as the client takes them (without serializers, names are bytes too). */
  function headersOf(meta: RecordMeta | undefined): Map<Buffer, Buffer> {
    const headers = new Map<Buffer, Buffer>();
    if (meta?.headers !== undefined)
      for (const k in meta.headers) headers.set(keyBytes(k), toBytes(meta.headers[k]));
    return headers;
  }

  function encode(record: unknown, meta: RecordMeta | undefined): OutMessage | string {
    if (options.deadLetters === 'original' && isDeadLetter(record)) return encodeDeadLetter(record, meta);
    let value: Buffer;
    if (format === 'json') value = Buffer.from(toJsonLine(record), 'utf8');
    else if (format === 'text')
      value = Buffer.from(typeof record === 'string' ? record : toJsonLine(record), 'utf8');
    else value = toBytes(record);
    const msg: OutMessage = { topic, value };
    if (options.key !== undefined) {
      const k = (record as Record<string, unknown> | null)?.[options.key];
      if (k === undefined || k === null)
        return `the record has no field \`${options.key}\` for the key of its message to topic \`${topic}\`; give every record that field, or leave out \`key\` to keep the key the record came with`;
      msg.key = toBytes(typeof k === 'object' && !(k instanceof Uint8Array) ? toJsonLine(k) : k);
    } else if (meta?.key !== undefined) {
      msg.key = typeof meta.key === 'string' ? keyBytes(meta.key) : toBytes(meta.key);
    }
    if (options.keepHeaders && meta?.headers !== undefined) msg.headers = headersOf(meta);
    return msg;
  }

  /** A dead letter as the original message plus `sluice.*` headers (`deadLetters: original`). */
  function encodeDeadLetter(letter: DeadLetter, meta: RecordMeta | undefined): OutMessage {
    const { value, headers: added } = deadLetterMessage(letter, toJsonLine);
    const msg: OutMessage = { topic, value };
    if (meta?.key !== undefined)
      msg.key = typeof meta.key === 'string' ? keyBytes(meta.key) : toBytes(meta.key);
    const headers = headersOf(meta);
    for (const [k, v] of added) headers.set(Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8'));
    msg.headers = headers;
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
      if (exactlyOnce) {
        txnUsed = true;
        await (await openTransaction()).send({ messages: chunk });
      } else await (producer as Producer<Buffer, Buffer, Buffer, Buffer>).send({ messages: chunk });
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
   * transaction, tagged with this job and `checkpointId`. The transaction stays open (prepared);
   * {@link commitOpen} commits it. On failure the transaction is aborted and the error thrown.
   */
  async function addOffsets(
    checkpointId: number,
    positions: Readonly<Record<string, Position | undefined>>,
  ): Promise<void> {
    const p = producer as Producer<Buffer, Buffer, Buffer, Buffer>;
    try {
      const t = await openTransaction();
      for (const source of kafkaSourcesOf(ctx)) {
        const pos = positions[source.stage];
        const offsets = pos === undefined ? [] : offsetsOfPosition(pos, run, checkpointId);
        if (offsets.length === 0) continue;
        txnUsed = true;
        await sendOffsetsToTransaction(p, t, source, offsets, ctx);
      }
      lastCheckpoint = checkpointId;
    } catch (err) {
      await abortOpen();
      throw wrapError(
        `adding the consumed offsets of checkpoint ${checkpointId} to the transaction (transactional id \`${transactionalId}\`) on topic \`${topic}\`; it was aborted, and a restart resumes from the last committed checkpoint`,
        new Error(rootMessage(err), { cause: err }),
        { topic },
      );
    }
  }

  async function abortOpen(): Promise<void> {
    const open = txn;
    const used = txnUsed;
    txn = undefined;
    txnUsed = false;
    await (used ? open?.abort() : open?.cancel())?.catch(() => {});
  }

  /** Exactly-once: commits the open transaction (`EndTxn`). */
  async function commitOpen(what: string): Promise<void> {
    const t = txn;
    if (t === undefined) return;
    try {
      if (txnUsed) {
        await t.commit();
        transactions++;
      } else await t.cancel();
      txn = undefined;
      txnUsed = false;
    } catch (err) {
      await abortOpen();
      throw wrapError(
        `committing the transaction of ${what} (transactional id \`${transactionalId}\`) on topic \`${topic}\`; it was aborted, and a restart resumes from the last committed checkpoint`,
        new Error(rootMessage(err), { cause: err }),
        { topic },
      );
    }
  }

  /**
   * Exactly-once: waits until the prepared transaction is committed (its checkpoint stored), at
   * most `transactionTimeout`; throws when its commit failed or it never came (a checkpoint that
   * could not be stored leaves it open, and the broker aborts it after the timeout anyway).
   */
  async function awaitPrepared(): Promise<void> {
    const p = prepared;
    if (p !== undefined) {
      const local = new AbortController();
      const timeout = options.transactionTimeout ?? 60_000;
      const timedOut = ctx.clock.sleep(timeout, AbortSignal.any([ctx.signal, local.signal])).then(
        () => true,
        () => false,
      );
      const late = await Promise.race([p.committed.then(() => false), timedOut]);
      local.abort();
      if (late) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the transaction of checkpoint ${p.id} on topic \`${topic}\` (transactional id \`${transactionalId}\`) was not committed within \`transactionTimeout\` (${timeout} ms): checkpoint ${p.id} was not stored; a restart resumes from the last stored checkpoint`,
          { topic },
        );
      }
    }
    if (commitError !== undefined) {
      const err = commitError;
      commitError = undefined;
      throw err;
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
        if (meta === undefined || meta.run !== run) continue;
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
      await waitForBrokers(
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
        { maxDelayMs: 10_000 },
      );
    },
    async write(batch: Batch<unknown>) {
      if (exactlyOnce) await awaitPrepared();
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
      if (exactlyOnce) await awaitPrepared();
      await flush();
      if (!exactlyOnce) return;
      // Prepared: records and offsets flushed into the open transaction, committed once the
      // checkpoint is stored (`commitCheckpoint`), like a two-phase commit.
      await addOffsets(signal.id, ctx.checkpointPositions?.(signal.id) ?? {});
      let settle = () => {};
      const committed = new Promise<void>((resolve) => {
        settle = resolve;
      });
      prepared = { id: signal.id, committed, settle };
    },
    snapshot(checkpointId: number) {
      if (!exactlyOnce) return undefined;
      const p = producer as Producer<Buffer, Buffer, Buffer, Buffer>;
      return {
        checkpointId,
        run,
        transactionalId,
        // Only a transaction that reached the broker is one a restart may have to commit.
        producerId: txnUsed ? p.producerId : undefined,
        producerEpoch: txnUsed ? p.producerEpoch : undefined,
      } satisfies KafkaSinkState;
    },
    async restore(state: unknown) {
      if (!exactlyOnce || state === undefined) return;
      const s = state as Partial<KafkaSinkState>;
      if (typeof s.checkpointId !== 'number' || typeof s.run !== 'string') {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the checkpoint's state of the kafka sink \`${ctx.name}\` (topic \`${topic}\`) is damaged; delete the checkpoint folder to resume from the group's committed offsets`,
          { topic },
        );
      }
      run = s.run;
      lastCheckpoint = Math.max(lastCheckpoint, s.checkpointId);
      // The checkpoint's transaction was prepared at its barrier; it is committed unless the
      // process died after storing the checkpoint and before committing it: commit it now.
      const held = await heldPositions();
      if ((held?.checkpointId ?? 0) >= s.checkpointId) return;
      if (typeof s.producerId !== 'bigint' || typeof s.producerEpoch !== 'number') return;
      try {
        await commitPreparedTransaction(
          producer as Producer<Buffer, Buffer, Buffer, Buffer>,
          s.transactionalId ?? transactionalId,
          s.producerId,
          s.producerEpoch,
          ctx,
        );
      } catch (err) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the transaction of checkpoint ${s.checkpointId} on topic \`${topic}\` (transactional id \`${s.transactionalId}\`) could not be committed after the restart (${rootMessage(err)}): the broker aborted it (down longer than \`transactionTimeout\`?), so its records are not in the output. Delete the checkpoint folder to resume from the group's committed offsets, which match the output`,
          { topic },
          { cause: err },
        );
      }
      ctx.log.warn(
        `Committed the transaction of checkpoint \`${s.checkpointId}\` that the previous run left prepared (topic \`${topic}\`)`,
        { stage: ctx.name },
      );
    },
    async commitCheckpoint(checkpointId: number) {
      const p = prepared;
      if (p === undefined || p.id > checkpointId) return;
      try {
        await commitOpen(`checkpoint ${p.id}`);
      } catch (err) {
        commitError = err;
        throw err;
      } finally {
        prepared = undefined;
        p.settle();
      }
    },
    async committedPositions() {
      if (!exactlyOnce) return undefined;
      const held = await heldPositions();
      if (held !== undefined) lastCheckpoint = Math.max(lastCheckpoint, held.checkpointId);
      return held;
    },
    async finish() {
      if (exactlyOnce) await awaitPrepared();
      await flush();
      if (!exactlyOnce) return;
      // The end of input: the rest with the sources' final offsets, tagged as one checkpoint past
      // the last, so a restart before the checkpoints are deleted resumes here, not before.
      const positions: Record<string, Position | undefined> = {};
      for (const source of kafkaSourcesOf(ctx)) positions[source.stage] = source.position();
      await addOffsets(lastCheckpoint + 1, positions);
      await commitOpen('the end of input');
    },
    metrics() {
      return { sent, requests, held: held.length, transactions };
    },
    async close() {
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      lingerTimer = undefined;
      await background?.catch(() => {});
      await Promise.allSettled(inflight.splice(0));
      // A failed or cancelled run: abort the open transaction, so read_committed consumers need not
      // wait for the timeout — unless it is prepared: its checkpoint may be stored, and then the
      // restart commits it.
      if (prepared === undefined) await abortOpen();
      await producer?.close(true).catch(() => {});
      producer = undefined;
    },
  };
}
