/**
 * read_committed past an aborted transaction larger than a fetch, against the real broker
 * (`npm run services -- up kafka`): the root cause of the records the exactly-once test lost
 * with 64 KB fetches (and, with 1 MB fetches, of any transaction over 1 MB). The source's filter once removed every batch of such a response, the
 * client then fetched the same offset again forever, and the source ended on its idle timeout
 * with the committed records after the transaction unread (`read-committed.ts`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Producer } from '@platformatic/kafka';
import { createTopic, produceMany, readThroughSource } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];

let txProducer: Producer<Buffer, Buffer, Buffer, Buffer>;

before(async () => {
  txProducer = new Producer({
    clientId: 'sluice-aborted-it',
    bootstrapBrokers: BROKERS,
    autocreateTopics: false,
    idempotent: true,
    transactionalId: `sluice-aborted-it-${randomUUID()}`,
    producerId: -1n,
    producerEpoch: -1,
    timeout: 10_000,
  });
});

after(async () => {
  await txProducer.close();
});

/** The JSON value `{ seq, pad }` of ~220 B. */
const value = (seq: number) => JSON.stringify({ seq, pad: 'x'.repeat(200) });

/** `n` records from `seq` `from`, for `topic`'s only partition. */
function records(topic: string, from: number, n: number) {
  return Array.from({ length: n }, (_, i) => ({ topic, value: Buffer.from(value(from + i)) }));
}

describe('kafka read_committed (real broker)', () => {
  test('an aborted transaction of ~2.2 MB (larger than any fetch) is skipped and the committed records after it are read', async () => {
    const topic = await createTopic(BROKERS, 'aborted', 1);
    await produceMany(BROKERS, topic, 10, (i) => ({ value: value(i) }));
    // 10,000 records of ~220 B in 20 sends: the transaction spans many fetches (64 KB now, 1 MB
    // before), and its abort marker is only in the last one.
    const txn = await txProducer.beginTransaction();
    for (let i = 0; i < 10_000; i += 500) await txn.send({ messages: records(topic, 1_000_000 + i, 500) });
    await txn.abort();
    await produceMany(BROKERS, topic, 90, (i) => ({ value: value(10 + i) }));

    const read = (await readThroughSource(BROKERS, topic, 'read_committed')) as { seq: number }[];
    assert.deepEqual(
      read.map((r) => r.seq),
      Array.from({ length: 100 }, (_, i) => i),
      'the 100 committed records in order, none of the aborted transaction',
    );
  });
});
