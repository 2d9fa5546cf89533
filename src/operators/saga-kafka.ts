/**
 * A saga action or compensation that produces one event to a Kafka topic: a command for another
 * service (`debit-requested`) or a compensation event (`debit-reversed`). The message's value is
 * JSON `{ sagaId, step, compensate, idempotencyKey, record }`, its key the saga id (so one saga's
 * events keep their order in a partition), and its headers `idempotency-key`, `saga-id` and
 * `saga-step`.
 *
 * The step succeeds when every in-sync replica has the message (`acks: all`, idempotent
 * producer, so the client's own retries never duplicate it). Kafka has no "produce once per key":
 * a call run again after a crash between the broker's acknowledgement and the saga log's entry
 * produces the event a second time, with the same `idempotency-key`, which the consuming service
 * must use to apply it once. Broker and network errors are retried by the saga; a missing topic
 * fails the step at once.
 */
import type { Producer } from '@platformatic/kafka';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { untilAborted } from '../core/sending.ts';
import type { SagaCall, SagaStepContext } from './saga.ts';

/** Options of {@link kafkaCall}. */
export interface KafkaCallOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  readonly topic: string;
  /** The event's `type`, added to the value when given (e.g. `debit-requested`). */
  readonly type?: string;
}

type SagaProducer = Producer<string, string, string, string>;

/** The producers of one saga operator, one per broker list, closed when the saga closes. */
export class SagaProducers {
  readonly #producers = new Map<string, Promise<SagaProducer>>();

  /** The producer for `brokers`, created on first use. */
  get(brokers: readonly string[]): Promise<SagaProducer> {
    const id = brokers.join(',');
    let p = this.#producers.get(id);
    if (p === undefined) {
      p = import('@platformatic/kafka').then(
        (k) =>
          new k.Producer({
            clientId: 'sluice-saga',
            bootstrapBrokers: [...brokers],
            serializers: k.stringSerializers,
            idempotent: true,
            acks: k.ProduceAcks.ALL,
            autocreateTopics: false,
            connectTimeout: 5000,
            retries: 2,
          }) as SagaProducer,
      );
      this.#producers.set(id, p);
    }
    return p;
  }

  /** Closes every producer. */
  async close(): Promise<void> {
    const all = [...this.#producers.values()];
    this.#producers.clear();
    await Promise.all(all.map(async (p) => (await p).close(true).catch(() => {})));
  }
}

/**
 * An action or compensation producing one event per saga call (see the module comment).
 *
 * @example
 * { name: 'notify', action: kafkaCall({ brokers: ['127.0.0.1:9092'], topic: 'payments', type: 'debit-requested' }, producers) }
 */
export function kafkaCall<I>(options: KafkaCallOptions, producers: SagaProducers): SagaCall<I> {
  const where = `Kafka topic \`${options.topic}\``;
  return async (s: SagaStepContext<I>) => {
    const compensate = s.idempotencyKey.endsWith(':compensate');
    const value = JSON.stringify(
      {
        ...(options.type !== undefined ? { type: options.type } : {}),
        sagaId: s.sagaId,
        step: s.step,
        compensate,
        idempotencyKey: s.idempotencyKey,
        record: s.record,
      },
      (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
    );
    const producer = await producers.get(options.brokers);
    if (s.signal.aborted) throw s.signal.reason;
    try {
      await untilAborted(
        producer.send({
          messages: [
            {
              topic: options.topic,
              key: s.sagaId,
              value,
              headers: new Map([
                ['idempotency-key', s.idempotencyKey],
                ['saga-id', s.sagaId],
                ['saga-step', s.step],
              ]),
            },
          ],
        }),
        s.signal,
      );
    } catch (err) {
      if (s.signal.aborted) throw err;
      const message = errorMessage(err);
      // Retrying cannot create a topic; anything else (a broker down, a leader moving) may pass.
      const missing = /unknown topic|UNKNOWN_TOPIC|does not host this topic-partition/i.test(message);
      throw new SluiceError(
        ErrorCode.STAGE,
        `${where} at ${options.brokers.join(',')}: producing the event: ${message}${missing ? '; create the topic first' : ''}`,
        {},
        { cause: err, retryable: !missing },
      );
    }
    return undefined;
  };
}
