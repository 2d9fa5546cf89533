/**
 * A member that is stopped while it waits to load the stored state of a partition it was just
 * assigned exits (issue 14, known bug 3), against the real broker. Under partition-scoped
 * checkpoints with an exactly-once sink, a new owner reads the group's committed offsets with
 * `require_stable` before it loads a partition's state, and waits while a transaction holding
 * offsets of that partition is open — up to that transaction's timeout when its producer is gone.
 * That wait once ignored the stop: the member did not exit within the 60 s the rebalance test
 * gives it after SIGTERM. Here such a transaction (5 min timeout) is left open on purpose.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Consumer, Producer } from '@platformatic/kafka';
import { createTopic, exitWithin, fresh, groupMember, produceMany } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a member stopped while an open transaction holds the offsets of its new partition exits (143) without waiting for it', {
  timeout: 120_000,
}, async () => {
  const input = await createTopic(BROKERS, 'load-stop-in', 1);
  const output = await createTopic(BROKERS, 'load-stop-out', 1);
  await produceMany(BROKERS, input, 10, (i) => ({ value: JSON.stringify({ id: i }) }));
  const group = fresh('load-stop');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-load-stop-'));
  // A transaction with offsets of the group's partition, left open (the broker would abort it after 5 min).
  const producer = new Producer({
    clientId: 'sluice-load-stop-it',
    bootstrapBrokers: BROKERS,
    autocreateTopics: false,
    idempotent: true,
    transactionalId: `sluice-load-stop-it-${randomUUID()}`,
    timeout: 300_000,
  });
  const consumer = new Consumer({
    clientId: 'sluice-load-stop-it',
    groupId: group,
    bootstrapBrokers: BROKERS,
  });
  const txn = await producer.beginTransaction();
  let member: ReturnType<typeof groupMember> | undefined;
  try {
    await txn.addConsumer(consumer);
    const coordinatorId = await consumer.findGroupCoordinator();
    await txn.addOffset({
      topic: input,
      partition: 0,
      offset: 4n,
      metadata: { consumer: { groupId: group, generationId: -1, memberId: '', coordinatorId } },
    } as unknown as Parameters<typeof txn.addOffset>[0]);

    const file = join(dir, 'pipeline.yaml');
    writeFileSync(
      file,
      `name: it-load-stop
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${group}, groupProtocol: classic, idleTimeout: 5m }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true }
checkpoint: { interval: 500ms, dir: ${join(dir, 'state')}, scope: partition }
`,
    );
    const m = groupMember(file, dir, 'a');
    member = m;
    // It owns the partition and waits for the open transaction (its retry says so once).
    for (let i = 0; i < 600 && !m.stderr.includes('is still open') && m.child.exitCode === null; i++)
      await sleep(100);
    assert.match(
      m.stderr,
      /is still open/,
      `the member never waited for the open transaction; its log:\n${m.stderr}`,
    );
    m.child.kill('SIGTERM');
    assert.equal(await exitWithin(m, 'a', 30_000), 143, m.stderr); // a draining stop: Stopped, 128 + SIGTERM
    assert.match(
      m.stderr,
      /Stopped `it-load-stop`.*: 0 read/,
      'nothing of the partition was read or emitted',
    );
  } finally {
    if (member !== undefined && member.child.exitCode === null) member.child.kill('SIGKILL');
    await txn.abort().catch(() => {});
    await producer.close().catch(() => {});
    await consumer.close(true).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
