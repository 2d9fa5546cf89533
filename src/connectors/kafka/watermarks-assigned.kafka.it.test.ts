/**
 * A partition assigned mid-run must not make its first records late (issue "Production-ready
 * connections and long-running jobs", section 2), against the real broker with the member under
 * test as a `sluice run` process: a keyed 1-minute window with `maxOutOfOrder: 5s`.
 *
 * Records behind a watermark the member already reached are late whatever it does, so the case
 * that matters is the one where the watermark *would* pass them between the assignment and their
 * first delivery. It is built so:
 * - A placeholder member (a plain client that joins the group and never reads or commits) holds
 *   3 of the 6 partitions; the member under test owns the other 3 (`PA`).
 * - `PA` holds 4 h of event time (2 s apart); the placeholder's partitions (`PB`) hold 1 h
 *   starting 90 min in. The member reads `PA` through a throttle, so thousands of `PA` records —
 *   hours of event time — wait in its buffers ahead of the window.
 * - When the member's window results reach ~45 min, the placeholder leaves and `PB` moves to the
 *   member, whose watermark is then well before `PB`'s first records (90 min). `PB`'s first fetch
 *   queues behind the buffered `PA` records: a member that let only the partitions it had seen
 *   hold its watermark moves it past 90 min before `PB` delivers, and `PB`'s records go to `late`.
 *
 * Every window must equal a reference computed here, and `late` must stay empty. The member's
 * results and late records go to Kafka topics, so its progress is visible while it runs.
 *
 * Tried on mutants of `core/input-partitions.ts` `assign`: partitions added to a non-empty
 * assignment not holding gave 1,800 late (all of `PB`) and 421 of 1,681 windows wrong; every
 * partition after the first assignment not holding (the first one was empty here) gave 3,120
 * late and 883 wrong. The code as it is: 0 and 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin, Consumer } from '@platformatic/kafka';
import {
  createTopic,
  exitWithin,
  fresh,
  type GroupMember,
  groupMember,
  messageCount,
  produceMany,
  readValues,
  waitForOwners,
} from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const BASE = Date.UTC(2024, 0, 1);
const MINUTE = 60_000;
/** Event time between two records of one partition set, ms. */
const STEP_MS = 2000;
/** `PA`: 4 h of event time; `PB`: 1 h from 90 min on. */
const PA_EVENTS = (4 * 60 * MINUTE) / STEP_MS;
const PB_START = BASE + 90 * MINUTE;
const PB_EVENTS = (60 * MINUTE) / STEP_MS;
const KEYS = 7;
/** Records per second the member passes to its window (a throttle step). */
const RATE = 150;
/** The placeholder leaves once the member emitted this many window results (~45 min of `PA`). */
const LEAVE_AFTER = 45 * KEYS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Event {
  id: number;
  k: string;
  ts: number;
}

/** Event `j` of a partition set starting at `start`: `STEP_MS` apart, ±1 s of disorder (under 5 s). */
function event(id: number, j: number, start: number): Event {
  return { id, k: `k${j % KEYS}`, ts: start + j * STEP_MS + (((j * 7919) % 2001) - 1000) };
}

/** The partitions of `topic` that the group member with client id `clientId` owns. */
async function ownedBy(group: string, clientId: string, topic: string): Promise<number[]> {
  const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: BROKERS });
  try {
    const g = (await admin.describeGroups({ groups: [group] })).get(group);
    for (const m of g?.members.values() ?? [])
      if (m.clientId === clientId) return [...(m.assignments?.get(topic)?.partitions ?? [])].sort();
    throw new Error(`no member ${clientId} in group ${group}`);
  } finally {
    await admin.close();
  }
}

test('a partition assigned mid-run holds the watermark until it delivers: none of its records is late', {
  timeout: 300_000,
}, async () => {
  const topic = await createTopic(BROKERS, 'wm-assigned', 6);
  const out = await createTopic(BROKERS, 'wm-assigned-out', 1);
  const late = await createTopic(BROKERS, 'wm-assigned-late', 1);
  const group = fresh('wm-assigned');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-wm-assigned-'));
  // The placeholder offers the protocols the source offers, so the group rebalances cooperatively.
  const holder = new Consumer({
    clientId: 'sluice-it-holder',
    groupId: group,
    bootstrapBrokers: BROKERS,
    autocommit: false,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
    rebalanceTimeout: 20_000,
    protocols: [
      { name: 'cooperative-sticky', version: 1 },
      { name: 'roundrobin', version: 1 },
    ],
  });
  let holderOpen = true;
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    `name: it-wm-assigned
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${topic}, group: ${group}, idleTimeout: 8s, sessionTimeout: 6s }
pipeline:
  - throttle: { rate: ${RATE} }
  - window: { key: k, time: ts, tumbling: 1m, watermark: { maxOutOfOrder: 5s }, aggregate: { count: count() }, late: late }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${out} }
outputs:
  late: { kafka: { brokers: ${BROKERS[0]}, topic: ${late} } }
`,
  );
  let member: GroupMember | undefined;
  try {
    // Joins first and owns all 6 partitions; its stream is never read, and it commits nothing.
    await holder.consume({ topics: [topic], autocommit: false, mode: 'earliest' });
    await waitForOwners(BROKERS, group, 1);
    member = groupMember(file, dir, 'a');
    await waitForOwners(BROKERS, group, 2);
    const pb = await ownedBy(group, 'sluice-it-holder', topic);
    const pa = [0, 1, 2, 3, 4, 5].filter((p) => !pb.includes(p));
    assert.equal(pb.length, 3, `the placeholder owns ${pb.join(', ')}`);

    const events: Event[] = [];
    await produceMany(BROKERS, topic, PA_EVENTS, (j) => {
      const e = event(j, j, BASE);
      events.push(e);
      return { key: e.k, value: JSON.stringify(e), partition: pa[j % 3] as number };
    });
    await produceMany(BROKERS, topic, PB_EVENTS, (j) => {
      const e = event(PA_EVENTS + j, j, PB_START);
      events.push(e);
      return { key: e.k, value: JSON.stringify(e), partition: pb[j % 3] as number };
    });

    for (let i = 0; i < 600 && (await messageCount(BROKERS, out)) < LEAVE_AFTER; i++) await sleep(100);
    holderOpen = false;
    await holder.close(true); // leaves: PB moves to the member
    assert.equal(await exitWithin(member, 'a', 200_000), 0, member.stderr);

    const expected = new Map<string, number>();
    for (const e of events) {
      const k = `${e.k}|${new Date(Math.floor(e.ts / MINUTE) * MINUTE).toISOString()}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    const got = new Map<string, number>();
    for (const v of await readValues(BROKERS, out)) {
      const r = JSON.parse(v) as { k: string; windowStart: string; count: number };
      got.set(`${r.k}|${r.windowStart}`, (got.get(`${r.k}|${r.windowStart}`) ?? 0) + r.count);
    }
    let wrong = 0;
    for (const [k, n] of expected) if (got.get(k) !== n) wrong++;
    for (const k of got.keys()) if (!expected.has(k)) wrong++;
    const lateCount = await messageCount(BROKERS, late);
    console.log(
      `watermarks, partitions assigned mid-run: ${events.length} events (PB ${PB_EVENTS} from 90 min), ${lateCount} late, ${wrong} of ${expected.size} windows wrong`,
    );
    assert.equal(lateCount, 0, 'no record of a newly assigned partition is late');
    assert.equal(wrong, 0, 'every window equals the reference');
  } finally {
    if (holderOpen) await holder.close(true).catch(() => {});
    if (member !== undefined && member.child.exitCode === null) member.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
