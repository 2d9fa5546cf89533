/**
 * `kafkaCall` against the real broker: a saga whose second step fails produces its command event
 * and then, compensating, the compensation event — keyed by the saga id, with the idempotency key
 * in the value and the headers; a missing topic fails the step without retries.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createTopic, fresh, readValues } from '../connectors/kafka/test-helpers.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { OperatorHarness } from './harness.ts';
import { type SagaOutcome, saga } from './saga.ts';
import { kafkaCall, SagaProducers } from './saga-kafka.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const producers = new SagaProducers();
after(() => producers.close());

test('saga with Kafka events: the command, then its compensation when a later step fails', async () => {
  const topic = await createTopic(BROKERS, 'saga', 1);
  const fast = { minDelayMs: 5, maxDelayMs: 20, timeoutMs: 1000 };
  const op = saga<{ id: string; amount: string }>({
    id: 'id',
    steps: [
      {
        name: 'debit',
        action: kafkaCall({ brokers: BROKERS, topic, type: 'debit-requested' }, producers),
        compensate: kafkaCall({ brokers: BROKERS, topic, type: 'debit-reversed' }, producers),
        retry: fast,
      },
      {
        name: 'credit',
        action: async () => {
          throw new SluiceError(ErrorCode.STAGE, 'account closed', {}, { retryable: false });
        },
        retry: fast,
      },
    ],
  });
  const h = new OperatorHarness(op);
  await h.open();
  await h.process([{ id: 'x1', amount: '12.30' }]);
  const out = h.records() as SagaOutcome<unknown>[];
  assert.deepEqual(
    out.map((o) => [o.sagaId, o.status, o.step, o.error]),
    [['x1', 'compensated', 'credit', 'account closed']],
  );
  const events = (await readValues(BROKERS, topic)).map((v) => JSON.parse(v));
  assert.deepEqual(events, [
    {
      type: 'debit-requested',
      sagaId: 'x1',
      step: 'debit',
      compensate: false,
      idempotencyKey: 'x1:debit',
      record: { id: 'x1', amount: '12.30' },
    },
    {
      type: 'debit-reversed',
      sagaId: 'x1',
      step: 'debit',
      compensate: true,
      idempotencyKey: 'x1:debit:compensate',
      record: { id: 'x1', amount: '12.30' },
    },
  ]);
  await op.close?.();
});

test('kafkaCall: a missing topic fails at once, saying to create it', async () => {
  const call = kafkaCall({ brokers: BROKERS, topic: fresh('missing') }, producers);
  await assert.rejects(
    call({
      record: { id: 'y' },
      sagaId: 'y',
      step: 'notify',
      idempotencyKey: 'y:notify',
      attempt: 1,
      signal: AbortSignal.timeout(20_000),
    }),
    (err) => {
      assert.ok(err instanceof SluiceError, String(err));
      assert.match(
        err.message,
        /Kafka topic `it-missing-[0-9a-f]+` at 127\.0\.0\.1:9092: producing the event: .*create the topic first/,
      );
      assert.equal(err.retryable, false);
      return true;
    },
  );
});
