/**
 * Helpers of the Kafka integration tests: fresh names, topics whose partitions have leaders,
 * producing, reading a whole topic back, and group members as `sluice run` processes. Test code
 * only (not exported by the package).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Admin, Connection, Consumer, consumerGroupDescribeV0, Producer } from '@platformatic/kafka';
import type { Sink } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { kafkaSource } from './source.ts';

/** A fresh name with `name` in it, so concurrent test runs never share a topic or group. */
export function fresh(name: string): string {
  return `it-${name}-${randomUUID().slice(0, 8)}`;
}

/**
 * Creates a fresh topic with `partitions` partitions (and topic `configs`, e.g.
 * `{ 'cleanup.policy': 'compact' }`) and waits until each has a leader; returns its name.
 */
export async function createTopic(
  brokers: string[],
  name: string,
  partitions: number,
  configs: Readonly<Record<string, string>> = {},
): Promise<string> {
  const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: brokers });
  try {
    const topic = fresh(name);
    await admin.createTopics({
      topics: [topic],
      partitions,
      replicas: 1,
      configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
    });
    for (let tries = 0; tries < 200; tries++) {
      const meta = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
      const parts = meta?.topics.get(topic)?.partitions ?? [];
      if (parts.length === partitions && parts.every((p) => p !== undefined && p.leader >= 0)) return topic;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`topic ${topic} got no leaders`);
  } finally {
    await admin.close();
  }
}

/** One message to produce. */
export interface TestMessage {
  key?: string;
  value: string;
  partition?: number;
}

/** Produces `messages` in order (idempotent producer: a retried request never duplicates). */
export async function produce(
  brokers: string[],
  topic: string,
  messages: readonly TestMessage[],
): Promise<void> {
  const producer = new Producer({
    clientId: 'sluice-it',
    bootstrapBrokers: brokers,
    autocreateTopics: false,
    idempotent: true,
  });
  try {
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({
        messages: messages.slice(i, i + 500).map((m) => ({
          topic,
          value: Buffer.from(m.value),
          ...(m.key !== undefined ? { key: Buffer.from(m.key) } : {}),
          ...(m.partition !== undefined ? { partition: m.partition } : {}),
        })),
      });
    }
  } finally {
    await producer.close();
  }
}

/** The number of messages in `topic`: the sum of its partitions' end offsets. */
export async function messageCount(brokers: string[], topic: string): Promise<number> {
  const consumer = new Consumer({
    clientId: 'sluice-it-offsets',
    groupId: fresh('lo'),
    bootstrapBrokers: brokers,
  });
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] });
    return Number((offsets.get(topic) ?? []).reduce((s, o) => s + o, 0n));
  } finally {
    await consumer.close(true);
  }
}

/** A plain consumer of a fresh group that reads topics from the start (`isolationLevel` 0: read_uncommitted). */
function reader(brokers: string[], isolationLevel?: number): Consumer<Buffer, Buffer, Buffer, Buffer> {
  return new Consumer({
    clientId: 'sluice-it-reader',
    groupId: fresh('reader'),
    bootstrapBrokers: brokers,
    autocommit: false,
    maxWaitTime: 200,
    ...(isolationLevel === undefined ? {} : { isolationLevel }),
  });
}

/** Every message value of `topic` (all partitions), read from the start by a plain consumer. */
export async function readValues(brokers: string[], topic: string): Promise<string[]> {
  const total = await messageCount(brokers, topic);
  const out: string[] = [];
  if (total === 0) return out;
  const consumer = reader(brokers);
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    for await (const m of stream) {
      out.push(m.value?.toString() ?? '');
      if (out.length >= total) break;
    }
  } finally {
    await consumer.close(true);
  }
  return out;
}

/**
 * Waits until `topic` holds a message whose value (as text) passes `test`, reading it from the
 * start (uncommitted transactions too); throws when none came within `ms`.
 */
export async function waitForValue(
  brokers: string[],
  topic: string,
  test: (value: string) => boolean,
  ms: number,
): Promise<void> {
  const consumer = reader(brokers, 0);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    consumer.close(true).catch(() => {});
  }, ms);
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    for await (const m of stream) if (test(m.value?.toString() ?? '')) return;
  } catch (err) {
    if (!timedOut) throw err;
  } finally {
    clearTimeout(timer);
    await consumer.close(true).catch(() => {});
  }
  throw new Error(`no message of \`${topic}\` passed the test within ${ms} ms`);
}

/**
 * Produces `count` messages made by `make(i)` in requests of 2,000 with up to 4 in flight (fast
 * enough for a backlog of a million small records), without holding them all.
 */
export async function produceMany(
  brokers: string[],
  topic: string,
  count: number,
  make: (i: number) => TestMessage,
): Promise<void> {
  const producer = new Producer({ clientId: 'sluice-it', bootstrapBrokers: brokers, idempotent: true });
  try {
    const inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < count; i += 2000) {
      const messages = [];
      for (let j = i; j < Math.min(count, i + 2000); j++) {
        const m = make(j);
        messages.push({
          topic,
          value: Buffer.from(m.value),
          ...(m.key !== undefined ? { key: Buffer.from(m.key) } : {}),
          ...(m.partition !== undefined ? { partition: m.partition } : {}),
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

/** A `sluice run` process that is a member of a consumer group. */
export interface GroupMember {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exit: Promise<number | null>;
  /** What it printed on stderr so far. */
  stderr: string;
}

/** Starts `sluice run file` in `cwd` with `SLUICE_IT_MEMBER=id` (a pipeline can name its output after it). */
export function groupMember(
  file: string,
  cwd: string,
  id: string,
  env: Record<string, string> = {},
): GroupMember {
  const bin = new URL('../../../bin/sluice.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'run', file], {
    cwd,
    env: { ...process.env, SLUICE_IT_MEMBER: id, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const m: GroupMember = {
    child,
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    stderr: '',
  };
  child.stderr?.on('data', (d) => {
    m.stderr += d;
  });
  return m;
}

/** The member's exit code; throws with what it printed when it has not exited within `ms`. */
export async function exitWithin(member: GroupMember, name: string, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), ms);
  });
  const code = await Promise.race([member.exit, hung]);
  clearTimeout(timer);
  if (code === 'hung')
    throw new Error(`member ${name} did not exit within ${ms} ms; its log:\n${member.stderr}`);
  return code;
}

/** Waits until at least `members` members of `group` own partitions; throws after a minute. */
export async function waitForOwners(brokers: string[], group: string, members: number): Promise<void> {
  const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: brokers });
  // A KIP-848 (`consumer` protocol) group is described by ConsumerGroupDescribe only; the Admin has
  // no method for it, so it is asked on a connection to the (single) test broker, its coordinator.
  const [host = '127.0.0.1', port = '9092'] = (brokers[0] ?? '').split(':');
  const connection = new Connection('sluice-it');
  await connection.connect(host, Number(port));
  try {
    for (let i = 0; i < 600; i++) {
      const g = (await admin.describeGroups({ groups: [group] })).get(group);
      let owning = 0;
      for (const m of g?.members.values() ?? [])
        if ([...(m.assignments?.values() ?? [])].some((a) => a.partitions.length > 0)) owning++;
      // A classic group answers ConsumerGroupDescribe with an error (and DescribeGroups with its members).
      const described = await consumerGroupDescribeV0.api.async(connection, [group], false).catch(() => ({
        groups: [] as { members: { assignment: { topicPartitions: { partitions: number[] }[] } }[] }[],
      }));
      let owningKip848 = 0;
      for (const m of described.groups[0]?.members ?? [])
        if (m.assignment.topicPartitions.some((t) => t.partitions.length > 0)) owningKip848++;
      if (Math.max(owning, owningKip848) >= members) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${members} members of group ${group} never owned partitions at once`);
  } finally {
    await admin.close();
    await connection.close();
  }
}

/**
 * Every record of `topic` (JSON) as Sluice's own `kafka` source reads it at `isolation`, so a test
 * also proves the source's read_committed filtering. Ends 3 s after the last message: call it
 * when the writers are done. Unlike {@link readValues} it does not count on end offsets, which
 * transaction markers push past the messages.
 */
export async function readThroughSource(
  brokers: string[],
  topic: string,
  isolation: 'read_committed' | 'read_uncommitted' = 'read_committed',
): Promise<unknown[]> {
  const out: unknown[] = [];
  const collect: Sink = {
    write(batch) {
      for (const r of batch.records) out.push(r);
    },
  };
  const source = kafkaSource({
    brokers,
    topics: [topic],
    group: fresh('reader'),
    start: 'earliest',
    format: 'json',
    batchSize: 500,
    maxWait: 50,
    commitInterval: 1000,
    idleTimeout: 3000,
    groupProtocol: 'classic',
    isolation,
  });
  const quiet = { info() {}, warn() {}, error() {} };
  await new Pipeline('it-reader').from(source).to(collect).run({ log: quiet }).done;
  return out;
}
