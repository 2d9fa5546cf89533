/**
 * The `kafka` sink: produces each record as one message to a topic with `@platformatic/kafka`.
 * Split by role, as Vector's Kafka sink is: this file holds the options and wires the others —
 * `encode.ts` (record → message), `producer.ts` (the client producer, batching and requests in
 * flight), `transactions.ts` (exactly-once: the two-phase commit per checkpoint, with `txn.ts`)
 * and `dead-letters.ts` (a dead letter as the original message).
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
 * - A request that fails because the broker went away (or with an error the client marks
 *   retryable) is sent again with backoff (250 ms doubling to 5 s), one warning per attempt,
 *   until the broker is back or `connectTimeout` has passed since the first failure (then the run
 *   fails naming the broker). Sent again after a lost connection, a request may be written twice
 *   (at-least-once); with `exactlyOnce` the transaction keeps it once for `read_committed` readers.
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
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch, Signal } from '../../core/message.ts';
import { humanMs, retrying } from '../../core/retry.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { brokerFailure, isTransientKafkaError, rootMessage } from './connection.ts';
import { type KafkaSinkSchemaOptions, MessageEncoder, type OutMessage } from './encode.ts';
import { connectProducer, type KafkaProducer, ProduceQueue } from './producer.ts';
import type { KafkaValueFormat } from './records.ts';
import type { KafkaConnection } from './security.ts';
import type { TopicSettings } from './topics.ts';
import { SinkTransactions } from './transactions.ts';

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
  /** With `format: avro | protobuf | json-schema`: the registry, the schema and its subject. */
  schema?: KafkaSinkSchemaOptions | undefined;
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
  /** TLS: `true` (the system's CAs) or `{ ca, cert, key, servername, rejectUnauthorized }` (PEM files). */
  tls?: KafkaConnection['tls'];
  /** SASL: `{ mechanism, username, password }` or `{ mechanism: 'oauthbearer', token | tokenCommand | tokenUrl }`. */
  sasl?: KafkaConnection['sasl'];
  /**
   * Create the topic at `open` when it does not exist, with these settings (`partitions`,
   * `replicationFactor`, topic `config`). Default: a missing topic fails the run.
   */
  createTopic?: TopicSettings | undefined;
  /**
   * Transactions per checkpoint with the sources' offsets inside (see the module comment).
   * Default false.
   */
  exactlyOnce?: boolean | undefined;
  /**
   * Transactional id with `exactlyOnce`; stable across restarts (a restart fences the previous
   * process by it) and unique per process. Default `sluice.<pipeline>.<stage>`; under
   * partition-scoped checkpoints (several members) `sluice.<pipeline>.<stage>.<random>`, one per
   * process (see `defaultTransactionalId`).
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
  /**
   * Fail the run once a produce request has failed for this long (ms) because the broker is not
   * reachable. Default: retry with backoff until the broker is back or the run is stopped.
   */
  connectTimeout?: number | undefined;
}

/**
 * The default `transactionalId`: `sluice.<pipeline>.<stage>`, stable across restarts, so a
 * restarted process fences the previous one by it. Under partition-scoped checkpoints (scale-out)
 * several members run the same pipeline at once and would fence each other with one id
 * ("Producer attempted to produce with an old epoch"), so each process adds a random suffix
 * (`sluice.<pipeline>.<stage>.<8 hex>`), as Kafka Streams' exactly-once v2 has one producer per
 * process: a member the group replaced is fenced by the group generation its offset commits carry
 * (`TxnOffsetCommit`), not by the id. A killed member's open transaction is aborted by the broker
 * after `transactionTimeout`.
 */
function defaultTransactionalId(pipeline: string, ctx: StageContext): string {
  const id = `sluice.${pipeline}.${ctx.name}`;
  return ctx.partitionState === undefined ? id : `${id}.${randomUUID().slice(0, 8)}`;
}

/** Produce requests a sink keeps in flight without `exactlyOnce` (ordered: idempotent producer). */
const MAX_IN_FLIGHT = 4;

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
  const { topic } = options;
  const exactlyOnce = options.exactlyOnce === true;
  let ctx: StageContext;
  let producer: KafkaProducer | undefined;
  /** Exactly-once: the transactions; made in `open`. */
  let txns: SinkTransactions | undefined;
  const encoder = new MessageEncoder(options);

  /**
   * The request in flight that reports an outage: up to 4 requests retry at once, and one line
   * per attempt of one of them says it all. Cleared (with a line saying the broker is back) when
   * that request gets through.
   */
  let reporter: { readonly chunk: OutMessage[]; readonly since: number } | undefined;
  const outageLog = (chunk: OutMessage[]) => ({
    warn(msg: string, fields?: Record<string, unknown>) {
      reporter ??= { chunk, since: ctx.clock.now() };
      if (reporter.chunk === chunk) ctx.log.warn(msg, fields);
    },
  });

  async function sendRequest(chunk: OutMessage[]): Promise<void> {
    try {
      await retrying(
        async () => {
          try {
            if (txns !== undefined) await txns.send(chunk);
            else await (producer as KafkaProducer).send({ messages: chunk });
          } catch (err) {
            throw brokerFailure(err, options.brokers);
          }
        },
        {
          what: `producing to topic \`${topic}\``,
          clock: ctx.clock,
          signal: ctx.signal,
          retryable: isTransientKafkaError,
          minDelayMs: 250,
          maxDelayMs: 5000,
          timeoutMs: options.connectTimeout,
          setting: 'connectTimeout',
          log: outageLog(chunk),
          logFields: { stage: ctx.name, topic },
          hint: 'Start the broker or fix `brokers`',
          giveUp: (err, attempts, spent) =>
            new SluiceError(
              ErrorCode.STAGE,
              `Kafka at \`${options.brokers.join(',')}\` was not reachable while producing to topic \`${topic}\`: ${attempts} attempts in ${humanMs(spent)} failed (last: ${rootMessage(err)}), and \`connectTimeout\` is ${humanMs(options.connectTimeout ?? 0)}. Start the broker, fix \`brokers\`, or raise \`connectTimeout\`; a run with \`checkpoint:\` resumes from its last checkpoint`,
              { topic, brokers: options.brokers.join(','), attempts },
            ),
        },
      );
      if (reporter?.chunk === chunk) {
        // A warning, like the ones it ends: the CLI shows warnings, and this one closes the episode.
        ctx.log.warn(
          `Producing to topic \`${topic}\` goes on: Kafka at \`${options.brokers.join(',')}\` answers again after ${humanMs(ctx.clock.now() - reporter.since)}`,
          { stage: ctx.name, topic },
        );
        reporter = undefined;
      }
    } catch (err) {
      if (reporter?.chunk === chunk) reporter = undefined;
      if (err instanceof SluiceError && err.context.attempts !== undefined) throw err;
      throw wrapError(
        `producing ${chunk.length} messages to topic \`${topic}\``,
        new Error(rootMessage(err), { cause: err }),
        {
          topic,
        },
      );
    }
  }
  // One at a time in a transaction: the client adds partitions to it per request.
  const queue = new ProduceQueue({
    batchSize: options.batchSize,
    linger: options.linger,
    maxInFlight: exactlyOnce ? 1 : MAX_IN_FLIGHT,
    sendRequest,
  });

  return {
    durableOnBarrier: true,
    get sent() {
      return queue.sent;
    },
    async open(c) {
      ctx = c;
      let transactional: { id: string; timeoutMs: number } | undefined;
      if (exactlyOnce) {
        SinkTransactions.check(ctx, topic);
        const id = options.transactionalId ?? defaultTransactionalId(options.pipeline ?? topic, ctx);
        transactional = { id, timeoutMs: options.transactionTimeout ?? 60_000 };
        txns = new SinkTransactions(ctx, topic, id, transactional.timeoutMs);
      }
      await encoder.open(); // the schema id, before any message is produced
      producer = await connectProducer({ ...options, transactional }, ctx);
      txns?.connected(producer);
    },
    async write(batch: Batch<unknown>) {
      await txns?.awaitPrepared();
      const { records, meta } = batch;
      const out: OutMessage[] = [];
      for (let i = 0; i < records.length; i++) {
        let m: ReturnType<typeof encoder.encode>;
        try {
          m = encoder.encode(records[i], meta?.[i]);
        } catch (err) {
          // A record no encoder can write (nested too deep, circular…): a dead letter, not a
          // failed run — from Kafka that would be a crash loop, the offset never advancing.
          ctx.deadLetter(records[i], err, meta?.[i]);
          continue;
        }
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
      await queue.write(out);
    },
    async onSignal(signal: Signal) {
      // A barrier means: everything before it must be at the broker before upstream commits.
      if (signal.kind !== 'barrier') return;
      await txns?.awaitPrepared();
      await queue.flush();
      // Prepared: records and offsets flushed into the open transaction, committed once the
      // checkpoint is stored (`commitCheckpoint`), like a two-phase commit.
      await txns?.prepare(signal.id);
    },
    snapshot(checkpointId: number) {
      return txns?.snapshot(checkpointId);
    },
    async restore(state: unknown) {
      if (state !== undefined) await txns?.restore(state);
    },
    async commitCheckpoint(checkpointId: number) {
      await txns?.commitCheckpoint(checkpointId);
    },
    async committedPositions() {
      return txns?.committedPositions();
    },
    async finish() {
      await txns?.awaitPrepared();
      await queue.flush();
      // Partition scope, after a draining stop: no checkpoint covers what the open transaction
      // holds, and committing the sources' offsets with it put the group past the partitions'
      // stored state (their next owner resumed from that state, but its stream from the group's
      // offset: it waited for records that never came, and failed). So it is aborted, as
      // `Sink.finish` asks; the next owner reads those records again from the stored state.
      if (ctx.stopSignal.aborted && ctx.partitionState !== undefined) await txns?.close();
      else await txns?.finish();
    },
    metrics() {
      return {
        sent: queue.sent,
        requests: queue.requests,
        held: queue.holding,
        transactions: txns?.committed ?? 0,
      };
    },
    async close() {
      await queue.close();
      await txns?.close();
      await producer?.close(true).catch(() => {});
      producer = undefined;
    },
  };
}
