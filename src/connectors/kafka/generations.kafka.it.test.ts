/**
 * Against the real broker (`npm run services -- up kafka`): offsets committed in a transaction with
 * the group generation a member had before a join — what a checkpoint's `TxnOffsetCommit` carries
 * when it races the member's JoinGroup response — are refused with `ILLEGAL_GENERATION`; with the
 * member's confirmed generations (`generations.ts`) they are sent again with the new generation,
 * which the broker accepts, and the transaction commits them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consumer, Producer } from '@platformatic/kafka';
import { systemClock } from '../../core/clock.ts';
import { partitionName } from '../../core/partitions.ts';
import { GroupGenerations } from './generations.ts';
import { readCommitted } from './group.ts';
import { createTopic, fresh } from './test-helpers.ts';
import { type KafkaSourceHandle, sendOffsetsToTransaction } from './txn.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !ok(); i++) await sleep(50);
  assert.ok(ok(), `${what} within 30 s`);
}

function owned(c: KafkaConsumer): string[] {
  return (c.assignments ?? []).flatMap((a) => a.partitions.map((p) => partitionName(a.topic, p)));
}

/** A member of `group` as the kafka source makes it (classic protocol, cooperative-sticky first). */
function member(group: string, clientId: string): KafkaConsumer {
  return new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId,
    groupId: group,
    bootstrapBrokers: BROKERS,
    autocommit: false,
    protocols: [
      { name: 'cooperative-sticky', version: 1 },
      { name: 'roundrobin', version: 1 },
    ],
    sessionTimeout: 10_000,
    heartbeatInterval: 300,
    rebalanceTimeout: 20_000,
  });
}

/** `c` as a request racing its JoinGroup response sees it: the generation before the join. */
function withGeneration(c: KafkaConsumer, generation: number): KafkaConsumer {
  return new Proxy(c, {
    get(target, key) {
      if (key === 'generationId') return generation;
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

test('a transaction offset commit sent with the generation before a join is refused (ILLEGAL_GENERATION) and, with the confirmed generations, sent again with the new one and committed', {
  timeout: 120_000,
}, async () => {
  const input = await createTopic(BROKERS, 'gen-in', 2);
  const elsewhere = await createTopic(BROKERS, 'gen-else', 1);
  const output = await createTopic(BROKERS, 'gen-out', 1);
  const group = fresh('gen');
  const a = member(group, 'gen-a');
  // `b` subscribes to another topic: its join makes `a` rejoin and keep both partitions.
  const b = member(group, 'gen-b');
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'gen-txn',
    bootstrapBrokers: BROKERS,
    idempotent: true,
    transactionalId: fresh('gen-txn'),
    timeout: 30_000,
    producerId: -1n,
    producerEpoch: -1,
    autocreateTopics: false,
  });
  const quiet = { info() {}, warn() {}, error() {} };
  const ctx = { name: 'output', clock: systemClock, log: quiet, signal: new AbortController().signal };
  try {
    const sa = await a.consume({ topics: [input], autocommit: false, mode: 'earliest' });
    sa.resume();
    await until('a owns both partitions', () => owned(a).length === 2);
    const before = { memberId: a.memberId as string, generation: a.generationId };
    const sb = await b.consume({ topics: [elsewhere], autocommit: false, mode: 'earliest' });
    sb.resume();
    await until('a rejoined', () => a.generationId > before.generation && owned(a).length === 2);
    const stale = withGeneration(a, before.generation);
    const handle = (generations: GroupGenerations | undefined): KafkaSourceHandle => ({
      stage: 'input',
      group,
      topics: [input],
      brokers: BROKERS,
      clientId: 'gen-a',
      connection: { brokers: BROKERS },
      consumer: () => stale,
      position: () => undefined,
      owns: () => true,
      generations,
    });
    const offsets = [
      { topic: input, partition: 0, offset: 7, metadata: 'gen-test' },
      { topic: input, partition: 1, offset: 9, metadata: 'gen-test' },
    ];

    // Without the confirmed generations: the member fails, as before the fix.
    const t1 = await producer.beginTransaction();
    await t1.send({ messages: [{ topic: output, value: Buffer.from('first') }] });
    await assert.rejects(
      sendOffsetsToTransaction(producer, t1, handle(undefined), offsets, ctx),
      (err: Error) => /Specified group generation id is not valid/.test(err.message),
    );
    await t1.abort();

    // With them: confirmed in the generation of the offsets; the next one is confirmed later (the
    // join's event), and the commit waits for it, then is sent again with it.
    const generations = new GroupGenerations(30_000);
    generations.confirm(before.memberId, before.generation, [
      partitionName(input, 0),
      partitionName(input, 1),
    ]);
    const t2 = await producer.beginTransaction();
    await t2.send({ messages: [{ topic: output, value: Buffer.from('second') }] });
    const sent = sendOffsetsToTransaction(producer, t2, handle(generations), offsets, ctx);
    setTimeout(() => generations.confirm(a.memberId, a.generationId, owned(a)), 300);
    await sent;
    await t2.commit();
    const committed = await readCommitted(BROKERS, 'gen-check', group, [input]);
    assert.deepEqual([...committed].map(([name, c]) => [name, c.offset]).sort(), [
      [partitionName(input, 0), 7],
      [partitionName(input, 1), 9],
    ]);
  } finally {
    await producer.close().catch(() => {});
    await b.close(true).catch(() => {});
    await a.close(true).catch(() => {});
  }
});
