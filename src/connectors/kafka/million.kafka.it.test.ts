/**
 * The volume check against the real broker: one million records of about 200 bytes
 * through consume → map → produce, at-least-once (no checkpoints); after a clean run every
 * record is in the output exactly once, mapped. Reads the output back counting ids in a byte
 * per id, so the test holds no million strings.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consumer, Producer } from '@platformatic/kafka';
import type { Logger } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { kafkaSink } from './sink.ts';
import { kafkaSource } from './source.ts';
import { createTopic, fresh, messageCount } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const N = 1_000_000;
const quiet: Logger = { info() {}, warn() {}, error() {} };

/** Produces N messages `{ id, … }` (~200 bytes each) in batches, without holding them all. */
async function produceMillion(topic: string): Promise<void> {
  const producer = new Producer({ clientId: 'sluice-it', bootstrapBrokers: BROKERS, idempotent: true });
  const pad = 'x'.repeat(120);
  try {
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < N; i += 2000) {
      const messages = [];
      for (let j = i; j < Math.min(N, i + 2000); j++) {
        messages.push({
          topic,
          key: Buffer.from(`user-${j % 5000}`),
          value: Buffer.from(
            JSON.stringify({ id: j, account: `acc-${j % 997}`, amount: `${j % 1000}.25`, pad }),
          ),
        });
      }
      inFlight.push(producer.send({ messages }));
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    await producer.close();
  }
}

test('one million records through consume → map → produce: each arrives exactly once after a clean run', {
  timeout: 600_000,
}, async () => {
  const input = await createTopic(BROKERS, 'million-in', 3);
  const output = await createTopic(BROKERS, 'million-out', 3);
  await produceMillion(input);
  assert.equal(await messageCount(BROKERS, input), N);

  const summary = await new Pipeline('it-million')
    .from(
      kafkaSource({
        brokers: BROKERS,
        topics: [input],
        group: fresh('million'),
        start: 'earliest',
        format: 'json',
        batchSize: 1000,
        maxWait: 50,
        commitInterval: 1000,
        idleTimeout: 3000,
        groupProtocol: 'classic',
      }),
    )
    .map((r) => {
      const { id, amount } = r as { id: number; amount: string };
      return { id, amount, checked: true };
    })
    .to(
      kafkaSink({
        brokers: BROKERS,
        topic: output,
        format: 'json',
        compression: 'lz4',
        batchSize: 2000,
        linger: 5,
        idempotent: true,
        acks: 'all',
        keepHeaders: true,
      }),
    )
    .run({ log: quiet }).done;
  assert.equal(summary.recordsRead, N);
  assert.equal(summary.recordsWritten, N);
  assert.equal(await messageCount(BROKERS, output), N, 'as many messages out as in');

  const seen = new Uint8Array(N);
  const consumer = new Consumer({
    clientId: 'sluice-it-reader',
    groupId: fresh('reader'),
    bootstrapBrokers: BROKERS,
    autocommit: false,
    maxWaitTime: 200,
  });
  let read = 0;
  try {
    const stream = await consumer.consume({ topics: [output], mode: 'earliest', autocommit: false });
    for await (const m of stream) {
      const v = JSON.parse(m.value?.toString() ?? 'null') as { id: number; amount: string; checked: boolean };
      assert.equal(v.checked, true, 'the map step ran');
      assert.equal(v.amount, `${v.id % 1000}.25`);
      assert.equal(m.key?.toString(), `user-${v.id % 5000}`, 'the key travels from input to output');
      seen[v.id] = (seen[v.id] as number) + 1;
      if (++read >= N) break;
    }
  } finally {
    await consumer.close(true);
  }
  const missing = seen.indexOf(0);
  assert.equal(missing, -1, `id ${missing} is missing`);
  const twice = seen.findIndex((c) => c > 1);
  assert.equal(twice, -1, `id ${twice} arrived more than once`);
});
