/**
 * The `kafka` sink's producer and how writes reach it: the client producer built from the
 * sink's settings (waiting for the brokers; a missing topic fails at start), and a
 * {@link ProduceQueue} that sends messages in requests of at most `batchSize`, keeps a bounded
 * number of requests in flight, holds small writes up to `linger`, and reports a failed request
 * to the next call.
 */
import type { Producer } from '@platformatic/kafka';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { StageContext } from '../../core/stage.ts';
import { kafkaClient } from './client.ts';
import { rootMessage, waitForBrokers } from './connection.ts';
import type { OutMessage } from './encode.ts';
import { clientOptions, type KafkaConnection } from './security.ts';
import { ensureTopic, type TopicSettings } from './topics.ts';

/** A producer with keys, values and headers as bytes. */
export type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** The settings of the sink that shape its producer (a subset of `KafkaSinkOptions`). */
export interface ProducerSettings {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId?: string | undefined;
  readonly compression: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  readonly idempotent: boolean;
  readonly acks: 'all' | 'leader' | 'none';
  /** TLS and SASL (see `security.ts`). */
  readonly tls?: KafkaConnection['tls'];
  readonly sasl?: KafkaConnection['sasl'];
  /** Create the topic when missing, with these settings (see `topics.ts`). */
  readonly createTopic?: TopicSettings | undefined;
  /** Set for an exactly-once sink: its transactional id and transaction timeout (ms). */
  readonly transactional?: { readonly id: string; readonly timeoutMs: number } | undefined;
}

/**
 * Connects a producer for `settings.topic`, waiting for the brokers with the run's retry policy
 * (one warning per attempt). Rejects at once with a `SLUICE_CONFIG` error when the topic does not
 * exist, and with a cancellation when the run is cancelled.
 */
export async function connectProducer(settings: ProducerSettings, ctx: StageContext): Promise<KafkaProducer> {
  const { topic } = settings;
  const client = await kafkaClient();
  const { ProduceAcks } = client;
  const acks = { all: ProduceAcks.ALL, leader: ProduceAcks.LEADER, none: ProduceAcks.NO_RESPONSE } as const;
  const txn = settings.transactional;
  const idempotent = settings.idempotent || txn !== undefined;
  const producer = await waitForBrokers(
    `connecting the producer for topic \`${topic}\``,
    settings.brokers,
    ctx,
    async () => {
      if (settings.createTopic !== undefined && (await ensureTopic(settings, topic, settings.createTopic))) {
        ctx.log.info(
          `Created the Kafka topic \`${topic}\` (${settings.createTopic.partitions} partitions, replication factor ${settings.createTopic.replicationFactor})`,
          { stage: ctx.name },
        );
      }
      const p = new client.Producer<Buffer, Buffer, Buffer, Buffer>({
        ...clientOptions(settings),
        idempotent,
        acks: idempotent ? ProduceAcks.ALL : acks[settings.acks],
        // The client sends `timeout` as the transaction timeout too, and, without these, producer
        // id 0 / epoch 0 in InitProducerId, which the broker refuses (fenced) for a known id.
        ...(txn !== undefined
          ? { transactionalId: txn.id, timeout: txn.timeoutMs, producerId: -1n, producerEpoch: -1 }
          : {}),
        compression: settings.compression,
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
            `the Kafka topic \`${topic}\` does not exist (${rootMessage(err)}); create it first (\`sluice kafka topics create ${topic} --brokers …\`), or set \`createTopic: { partitions: 3 }\` on the sink`,
            { topic },
            { cause: err },
          );
        }
        throw err;
      }
      return p;
    },
    { maxDelayMs: 10_000, connection: settings },
  );
  // Without a stop signal the wait ends only with a producer or an error.
  return producer as KafkaProducer;
}

/**
 * Sends messages in requests of at most `batchSize`, at most `maxInFlight` under way, in order.
 * A request's failure is thrown by the next `write`, `flush` or `drain`. With `linger` > 0 small
 * writes are held (up to `batchSize` messages or `linger` ms) and sent together.
 */
export class ProduceQueue {
  /** Messages the broker acknowledged. */
  sent = 0;
  /** Produce requests sent. */
  requests = 0;
  private held: OutMessage[] = [];
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** A send started by the linger timer; awaited (and its error thrown) by the next call. */
  private background: Promise<void> | undefined;
  private backgroundError: unknown;
  /** Requests under way, oldest first; each records its failure in `sendError`. */
  private readonly inflight: Promise<void>[] = [];
  private sendError: unknown;
  private readonly options: {
    readonly batchSize: number;
    readonly linger: number;
    readonly maxInFlight: number;
    /** Sends one request; resolves once the broker acknowledged it (`acks`). */
    readonly sendRequest: (chunk: OutMessage[]) => Promise<void>;
  };

  constructor(options: ProduceQueue['options']) {
    this.options = options;
  }

  /** Messages held for `linger`. */
  get holding(): number {
    return this.held.length;
  }

  /** Sends `messages` (or holds them for `linger`); resolves once they are under way. Throws an earlier failure. */
  async write(messages: OutMessage[]): Promise<void> {
    await this.settleBackground();
    const { batchSize, linger } = this.options;
    if (linger <= 0) {
      await this.send(messages);
      return;
    }
    for (const m of messages) this.held.push(m);
    if (this.held.length >= batchSize) {
      this.clearTimer();
      const held = this.held;
      this.held = [];
      await this.send(held);
      return;
    }
    if (this.lingerTimer === undefined && this.held.length > 0) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        const held = this.held;
        this.held = [];
        this.background = this.send(held).then(
          () => {
            this.background = undefined;
          },
          (err) => {
            this.background = undefined;
            this.backgroundError = err;
          },
        );
      }, linger);
    }
  }

  /** Sends what is held and resolves once every request is acknowledged; throws the first failure. */
  async flush(): Promise<void> {
    this.clearTimer();
    await this.settleBackground();
    if (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      await this.send(held);
    }
    while (this.inflight.length > 0) await this.inflight.shift();
    this.throwIfFailed();
  }

  /** Waits for what is under way without throwing, and drops what is held (a failed or cancelled run). */
  async close(): Promise<void> {
    this.clearTimer();
    await this.background?.catch(() => {});
    await Promise.allSettled(this.inflight.splice(0));
  }

  private async send(messages: OutMessage[]): Promise<void> {
    const { batchSize, maxInFlight } = this.options;
    for (let i = 0; i < messages.length; i += batchSize) {
      const chunk = messages.length <= batchSize ? messages : messages.slice(i, i + batchSize);
      while (this.inflight.length >= maxInFlight) await this.inflight.shift();
      this.throwIfFailed();
      this.inflight.push(
        this.options.sendRequest(chunk).then(
          () => {
            this.sent += chunk.length;
            this.requests++;
          },
          (err: unknown) => {
            this.sendError ??= err;
          },
        ),
      );
    }
  }

  private throwIfFailed(): void {
    if (this.sendError === undefined) return;
    const err = this.sendError;
    this.sendError = undefined;
    throw err;
  }

  private async settleBackground(): Promise<void> {
    if (this.background !== undefined) await this.background;
    if (this.backgroundError !== undefined) {
      const err = this.backgroundError;
      this.backgroundError = undefined;
      throw err;
    }
  }

  private clearTimer(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }
}
