/**
 * Issue #14 §3, last item, on the real broker with members as `sluice run` processes: a member
 * whose `idleTimeout` passes while another member of its group holds partitions with unread
 * messages does not end having read a fraction of the topic. A SIGKILLed member holds its
 * partitions until its session times out: the survivor waits, gets them, and reads them to the
 * end. A live member that keeps them past `sessionTimeout` + 10 s: the survivor ends with a
 * warning naming what is unread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Consumer } from '@platformatic/kafka';
import { createTopic, fresh, type GroupMember, groupMember, produce, waitForOwners } from './test-helpers.ts';

const BROKER = process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092';
const PARTITIONS = 6;
const PER_PARTITION = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The group's committed offset of each partition of `topic` (-1: none). */
async function committed(group: string, topic: string): Promise<number[]> {
  const c = new Consumer({ clientId: 'sluice-it', groupId: group, bootstrapBrokers: [BROKER] });
  try {
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    const got = await c.listCommittedOffsets({ topics: [{ topic, partitions: all }] });
    return all.map((p) => Number(got.get(topic)?.[p] ?? -1n));
  } finally {
    await c.close(true);
  }
}

/** A topic of 6 partitions holding records `{ p, i }`, `i` being the offset in partition `p`. */
async function topicOfRecords(): Promise<string> {
  const topic = await createTopic([BROKER], 'idle-held', PARTITIONS);
  const messages = [];
  for (let p = 0; p < PARTITIONS; p++)
    for (let i = 0; i < PER_PARTITION; i++) messages.push({ value: JSON.stringify({ p, i }), partition: p });
  await produce([BROKER], topic, messages);
  return topic;
}

function pipeline(
  dir: string,
  name: string,
  topic: string,
  group: string,
  input: string,
  rate: number,
): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `name: it-idle-held
input:
  kafka: { brokers: ${BROKER}, topic: ${topic}, group: ${group}, sessionTimeout: 6s, ${input} }
pipeline:
  - throttle: { rate: ${rate} }
output:
  file: { path: "out-\${SLUICE_IT_MEMBER}.jsonl", format: jsonl }
`,
  );
  return file;
}

/** Starts member `first` alone, waits until it owns partitions, then `second`, and waits until both own some. */
async function startPair(
  dir: string,
  topic: string,
  group: string,
  first: { name: string; input: string; rate: number },
  second: { name: string; input: string; rate: number },
): Promise<[GroupMember, GroupMember]> {
  const a = groupMember(
    pipeline(dir, `${first.name}.yaml`, topic, group, first.input, first.rate),
    dir,
    first.name,
  );
  await waitForOwners([BROKER], group, 1);
  const b = groupMember(
    pipeline(dir, `${second.name}.yaml`, topic, group, second.input, second.rate),
    dir,
    second.name,
  );
  await waitForOwners([BROKER], group, 2);
  return [a, b];
}

test('a member killed mid-run holds partitions: the survivor’s idle timeout waits for them and reads them to the end', async () => {
  const topic = await topicOfRecords();
  const group = fresh('g');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-idle-held-'));
  try {
    // The victim starts alone and slowly (it holds unread records when killed); the survivor
    // joins, reads its share in about a second, then is idle for 2 s — well before the killed
    // member's 6 s session times out.
    const [victim, survivor] = await startPair(
      dir,
      topic,
      group,
      { name: 'victim', input: 'idleTimeout: 2s, batchSize: 10', rate: 200 },
      { name: 'survivor', input: 'idleTimeout: 2s, batchSize: 100', rate: 3000 },
    );
    await sleep(300);
    victim.child.kill('SIGKILL');
    await victim.exit;
    const atKill = await committed(group, topic);

    assert.equal(await survivor.exit, 0, survivor.stderr);
    const ends = Array.from({ length: PARTITIONS }, () => PER_PARTITION);
    assert.deepEqual(await committed(group, topic), ends, 'the group committed every partition to its end');
    // What the survivor wrote holds every record after the killed member's last commit.
    const got = new Set(
      readFileSync(join(dir, 'out-survivor.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const r = JSON.parse(l) as { p: number; i: number };
          return `${r.p}:${r.i}`;
        }),
    );
    const missing: string[] = [];
    for (let p = 0; p < PARTITIONS; p++)
      for (let i = Math.max(0, atKill[p] ?? 0); i < PER_PARTITION; i++)
        if (!got.has(`${p}:${i}`)) missing.push(`${p}:${i}`);
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${missing.length} records the killed member held were not read`,
    );
    assert.doesNotMatch(survivor.stderr, /Ending on `idleTimeout` with/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a live member keeps its partitions unread past `sessionTimeout` + 10 s: the idle member ends and says what is unread', async () => {
  const topic = await topicOfRecords();
  const group = fresh('g');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-idle-held-'));
  let slow: GroupMember | undefined;
  try {
    // 20 records a second: its share takes minutes. It starts alone, the quick member joins
    // (small batches, so the throttle's backpressure never keeps it from answering the rebalance).
    const pair = await startPair(
      dir,
      topic,
      group,
      { name: 'slow', input: 'idleTimeout: 1h, batchSize: 5', rate: 20 },
      { name: 'quick', input: 'idleTimeout: 1s, batchSize: 100', rate: 3000 },
    );
    slow = pair[0];
    const quick = pair[1];
    assert.equal(await quick.exit, 0, quick.stderr);
    assert.match(
      quick.stderr,
      /Ending on `idleTimeout` with \d+ messages in 3 partitions: `[^`]+:\d` \((committed \d+|no commit), end 1000\).* not committed by group `[^`]+`: other members held them for 16000 ms/,
    );
  } finally {
    slow?.child.kill('SIGTERM');
    await slow?.exit;
    rmSync(dir, { recursive: true, force: true });
  }
});
