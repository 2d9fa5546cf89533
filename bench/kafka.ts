/**
 * `npm run bench -- kafka`: consume → map → produce through the real broker
 * (`npm run services -- up kafka`), Sluice (`kafka` source, a `map`, `kafka` sink) against a plain
 * loop with the same client (`@platformatic/kafka`: read the consumer stream in batches, map,
 * `producer.send`, commit at the end), KafkaJS 2.2 (`eachBatch`: map the batch, one
 * `producer.send`, offsets auto-committed every second) and `kcat` as the native ceiling (librdkafka:
 * `kcat -C … | kcat -P …`, values only, no map — installed from Debian by `bench/kcat.ts` when
 * missing, skipped with a line saying why when it cannot be). All read the same input topic (1M
 * JSON records of about 200 bytes, 3 partitions, produced once and reused) with a fresh consumer
 * group and write a fresh output topic, idempotent producer with `acks: all`, no compression. A
 * run ends when the producer has had every record acknowledged; the time includes joining the
 * group. Each run is a fresh child process (peak RSS is its own; kcat's is the larger of its two
 * processes, from `/usr/bin/time`), rounds interleaved; the table shows medians.
 *
 * Then the windowed job (`bench/kafka-window.ts`): the same number of records on a 6-partition
 * topic → keyed 1-minute tumbling window by country → output topic, Sluice's CLI (at-least-once and
 * exactly-once) against a hand-written KafkaJS loop with a `Map` of windows and Kafka Streams
 * (`bench/kstreams/WindowJob.java`; skipped when there is no Java), results checked by checksum;
 * ends with `ratio kafka-window sluice/kafkajs X`, `ratio kafka-window-eos/alo X` and
 * `ratio kafka-window sluice/kafka-streams X`.
 *
 * Run alone: `npx node bench/kafka.ts --records 1000000 --rounds 3 [--job copy|window]`.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin, Consumer, type Message, ProduceAcks, Producer } from '@platformatic/kafka';
import { openCheckpoints } from '../src/checkpoint/setup.ts';
import { kafkaSink } from '../src/connectors/kafka/sink.ts';
import { kafkaSource } from '../src/connectors/kafka/source.ts';
import { Pipeline } from '../src/pipeline.ts';
import { numberFlag, stringFlag } from './child.ts';
import { waitForLeaders, windowJob } from './kafka-window.ts';
import { ensureKcat } from './kcat.ts';
import { median } from './run.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PARTITIONS = 3;
const BATCH = 1000;
const CONTENDERS = ['sluice', 'sluice-eos', 'plain-loop', 'kafkajs', 'kcat'] as const;

/** The record every contender emits for an input record. */
function transform(r: { id: number; amount: string }): unknown {
  return { ...r, amountCents: Math.round(Number(r.amount) * 100) };
}

/** One input record of about 200 bytes of JSON. */
function inputValue(i: number): string {
  return JSON.stringify({
    id: i,
    ts: new Date(Date.UTC(2026, 0, 1) + i * 37).toISOString(),
    user: `user${(i * 7919) % 100_000}@example.com`,
    country: ['DE', 'FR', 'US', 'BR', 'JP', 'IN'][i % 6],
    amount: (((i * 31) % 100_000) / 100).toFixed(2),
    note: 'lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor',
  });
}

async function endOffsets(topic: string): Promise<bigint> {
  const c = new Consumer({
    clientId: 'sluice-bench',
    groupId: `bench-lo-${randomUUID()}`,
    bootstrapBrokers: BROKERS,
  });
  try {
    const offsets = await c.listOffsets({ topics: [topic] });
    return (offsets.get(topic) ?? []).reduce((s, o) => s + o, 0n);
  } finally {
    await c.close(true);
  }
}

/** The input topic for `records` records, produced once (kept for the next bench run). */
async function inputTopic(admin: Admin, records: number): Promise<string> {
  const topic = `sluice-bench-kafka-in-v1-${records}`;
  const existing = await admin.listTopics();
  if (existing.includes(topic)) {
    if ((await endOffsets(topic)) === BigInt(records)) return topic;
    await admin.deleteTopics({ topics: [topic] });
    await new Promise((r) => setTimeout(r, 1000));
  }
  process.stderr.write(
    `kafka: producing ${records.toLocaleString('en-US')} input records to \`${topic}\`…\n`,
  );
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  await waitForLeaders(admin, topic, PARTITIONS);
  const producer = new Producer({
    clientId: 'sluice-bench',
    bootstrapBrokers: BROKERS,
    idempotent: true,
    autocreateTopics: false,
  });
  try {
    for (let i = 0; i < records; i += 5000) {
      const messages = [];
      for (let k = i; k < Math.min(records, i + 5000); k++)
        messages.push({ topic, key: Buffer.from(`k${k % 1000}`), value: Buffer.from(inputValue(k)) });
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }
  return topic;
}

type Contender = (input: string, output: string, records: number) => Promise<number>;

/** Peak RSS of a contender that runs outside this process (kcat), KiB; reported instead of ours. */
let externalRssKb: number | undefined;

/**
 * Sluice's consume → map → produce; with `exactlyOnce`, checkpoints every second (lmdb store in a
 * temporary folder) and one Kafka transaction per checkpoint holding the records and offsets.
 */
async function sluiceRun(
  input: string,
  output: string,
  records: number,
  exactlyOnce: boolean,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-kafka-'));
  try {
    const sink = kafkaSink({
      brokers: BROKERS,
      topic: output,
      format: 'json',
      compression: 'none',
      batchSize: BATCH,
      linger: 0,
      idempotent: true,
      acks: 'all',
      keepHeaders: true,
      exactlyOnce,
      transactionalId: `sluice-bench-${randomUUID()}`,
    });
    const log = { info() {}, warn() {}, error() {} };
    const checkpoint = exactlyOnce
      ? await openCheckpoints({ dir, intervalMs: 1000 }, { log, env: {} })
      : undefined;
    const handle = new Pipeline('bench-kafka')
      .from(
        kafkaSource({
          brokers: BROKERS,
          topics: [input],
          group: `bench-${randomUUID()}`,
          start: 'earliest',
          format: 'json',
          batchSize: BATCH,
          maxWait: 50,
          commitInterval: 1000,
          groupProtocol: 'classic',
        }),
      )
      .map((r) => transform(r as { id: number; amount: string }))
      .to(sink)
      .run(checkpoint ? { checkpoint, log } : { log });
    while (sink.sent < records) {
      await new Promise((r) => setTimeout(r, 5));
      const m = handle.metrics();
      if (m.state === 'failed') break;
    }
    await handle.stop();
    return sink.sent;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const contenders: Record<(typeof CONTENDERS)[number], Contender> = {
  sluice: (input, output, records) => sluiceRun(input, output, records, false),
  'sluice-eos': (input, output, records) => sluiceRun(input, output, records, true),

  async 'plain-loop'(input, output, records) {
    const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      clientId: 'sluice-bench',
      groupId: `bench-${randomUUID()}`,
      bootstrapBrokers: BROKERS,
      autocommit: false,
      maxWaitTime: 50,
      highWaterMark: BATCH * 2,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    });
    const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
      clientId: 'sluice-bench',
      bootstrapBrokers: BROKERS,
      idempotent: true,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
    });
    let sent = 0;
    try {
      const stream = await consumer.consume({ topics: [input], mode: 'earliest', autocommit: false });
      let last: Message<Buffer, Buffer, Buffer, Buffer> | undefined;
      let wake: (() => void) | undefined;
      stream.on('readable', () => wake?.());
      while (sent < records) {
        const messages: { topic: string; key?: Buffer; value: Buffer }[] = [];
        for (let m = stream.read(); m !== null; m = messages.length < BATCH ? stream.read() : null) {
          const msg = m as Message<Buffer, Buffer, Buffer, Buffer>;
          last = msg;
          const value = Buffer.from(JSON.stringify(transform(JSON.parse(msg.value.toString('utf8')))));
          messages.push(msg.key ? { topic: output, key: msg.key, value } : { topic: output, value });
        }
        if (messages.length === 0) {
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 50);
          });
          wake = undefined;
          continue;
        }
        await producer.send({ messages });
        sent += messages.length;
      }
      await last?.commit();
      await stream.close();
    } finally {
      await producer.close();
      await consumer.close(true);
    }
    return sent;
  },

  async kafkajs(input, output, records) {
    const { Kafka, logLevel } = await import('kafkajs');
    const kafka = new Kafka({ clientId: 'sluice-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({
      groupId: `bench-${randomUUID()}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    });
    const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
    let sent = 0;
    try {
      await Promise.all([consumer.connect(), producer.connect()]);
      await consumer.subscribe({ topic: input, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            autoCommitInterval: 1000,
            eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
              const messages = batch.messages.map((m) => ({
                key: m.key,
                value: JSON.stringify(transform(JSON.parse((m.value as Buffer).toString('utf8')))),
              }));
              if (messages.length === 0) return;
              await producer.send({ topic: output, acks: -1, messages });
              sent += messages.length;
              resolveOffset(batch.lastOffset());
              await heartbeat();
              if (sent >= records) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
    return sent;
  },

  async kcat(input, output, records) {
    const kcat = ensureKcat();
    if (!kcat.ok) throw new Error(kcat.reason);
    const broker = BROKERS[0] as string;
    const rss = join(tmpdir(), `sluice-bench-kcat-${randomUUID()}`);
    // Each side under /usr/bin/time for its peak RSS; values only (no keys), one per line.
    const consume = `/usr/bin/time -a -o ${rss} -f %M ${kcat.command} -C -b ${broker} -t ${input} -o beginning -e -q`;
    const produce = `/usr/bin/time -a -o ${rss} -f %M ${kcat.command} -P -b ${broker} -t ${output} -X enable.idempotence=true -X acks=all -X linger.ms=5`;
    const run = spawnSync('sh', ['-c', `${consume} | ${produce}`], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`kcat pipe failed (${run.status}): ${run.stderr}`);
    try {
      externalRssKb = Math.max(
        ...readFileSync(rss, 'utf8')
          .trim()
          .split('\n')
          .map((l) => Number(l) || 0),
      );
    } finally {
      rmSync(rss, { force: true });
    }
    const written = Number(await endOffsets(output));
    if (written !== records) throw new Error(`kcat wrote ${written} of ${records} records`);
    return written;
  },
};

/** Child side: runs one contender once and prints `{count, seconds, maxRssKb}`. */
async function child(name: string, input: string, output: string, records: number): Promise<void> {
  const t0 = performance.now();
  const count = await contenders[name as (typeof CONTENDERS)[number]](input, output, records);
  const seconds = (performance.now() - t0) / 1000;
  const maxRssKb = externalRssKb ?? process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify({ count, seconds, maxRssKb })}\n`);
}

/** Parent side: the input topic, then every contender `rounds` times, interleaved, each with a fresh output topic. */
async function main(records: number, rounds: number): Promise<void> {
  const admin = new Admin({
    clientId: 'sluice-bench',
    bootstrapBrokers: BROKERS,
    connectTimeout: 5000,
    retries: 1,
  });
  try {
    try {
      await admin.metadata({ topics: [] });
    } catch {
      process.stderr.write(
        `kafka: no broker at ${BROKERS.join(',')}; start it with \`npm run services -- up kafka\`\n`,
      );
      process.exitCode = 1;
      return;
    }
    const input = await inputTopic(admin, records);
    const self = fileURLToPath(import.meta.url);
    const kcat = ensureKcat();
    if (!kcat.ok) process.stdout.write(`kafka: kcat skipped: ${kcat.reason}\n`);
    const only = flag('only')?.split(',');
    const names = CONTENDERS.filter(
      (c) => (c !== 'kcat' || kcat.ok) && (only === undefined || only.includes(c)),
    );
    const results = new Map<string, { rate: number; rss: number; count: number }[]>(
      names.map((c) => [c, []]),
    );
    process.stderr.write(
      `kafka: consume → map → produce, ${records.toLocaleString('en-US')} records of ~200 B, ${rounds} rounds × ${names.length} contenders\n`,
    );
    for (let r = 0; r < rounds; r++) {
      for (const name of names) {
        const output = `sluice-bench-kafka-out-${randomUUID().slice(0, 8)}`;
        await admin.createTopics({ topics: [output], partitions: PARTITIONS, replicas: 1 });
        await waitForLeaders(admin, output, PARTITIONS);
        const run = spawnSync(
          process.execPath,
          [self, '--child', name, '--in', input, '--out', output, '--records', String(records)],
          { encoding: 'utf8', maxBuffer: 1 << 20 },
        );
        await admin.deleteTopics({ topics: [output] }).catch(() => {});
        if (run.status !== 0) throw new Error(`kafka bench child ${name} failed:\n${run.stderr}`);
        const rep = JSON.parse(run.stdout.trim().split('\n').pop() as string) as {
          count: number;
          seconds: number;
          maxRssKb: number;
        };
        const rate = rep.count / rep.seconds;
        (results.get(name) as { rate: number; rss: number; count: number }[]).push({
          rate,
          rss: rep.maxRssKb / 1024,
          count: rep.count,
        });
        process.stderr.write(
          `  run ${r + 1} ${name}: ${Math.round(rate).toLocaleString('en-US')} rec/s, ${(rep.maxRssKb / 1024).toFixed(0)} MiB\n`,
        );
      }
    }
    const rows = names.map((name) => {
      const rs = results.get(name) as { rate: number; rss: number; count: number }[];
      return {
        name,
        rate: median(rs.map((x) => x.rate)),
        rss: median(rs.map((x) => x.rss)),
        count: rs.at(-1)?.count ?? 0,
      };
    });
    process.stdout.write(
      `${'contender'.padEnd(12)}${'median rec/s'.padStart(14)}${'median MB/s'.padStart(13)}${'peak RSS MiB'.padStart(14)}${'records'.padStart(10)}\n`,
    );
    for (const row of rows) {
      process.stdout.write(
        `${row.name.padEnd(12)}${Math.round(row.rate).toLocaleString('en-US').padStart(14)}${((row.rate * 200) / 1e6).toFixed(1).padStart(13)}${row.rss.toFixed(0).padStart(14)}${String(row.count).padStart(10)}\n`,
      );
    }
    const sluice = rows.find((row) => row.name === 'sluice');
    for (const peer of ['kafkajs', 'plain-loop', 'kcat', 'sluice-eos'] as const) {
      const other = rows.find((row) => row.name === peer);
      if (sluice !== undefined && other !== undefined)
        process.stdout.write(`ratio kafka sluice/${peer} ${(sluice.rate / other.rate).toFixed(2)}\n`);
    }
  } finally {
    await admin.close();
  }
}

const argv = process.argv.slice(2);
const flag = (name: string) => stringFlag(argv, `--${name}`);
if (import.meta.url === `file://${process.argv[1]}`) {
  const records = numberFlag(argv, '--records') ?? 1_000_000;
  if (flag('child') !== undefined) {
    await child(flag('child') as string, flag('in') as string, flag('out') as string, records);
    process.exit(0);
  } else {
    const job = flag('job');
    const rounds = numberFlag(argv, '--rounds') ?? 3;
    if (job === undefined || job === 'copy') await main(records, rounds);
    if (process.exitCode === undefined && (job === undefined || job === 'window'))
      process.stdout.write(`${(await windowJob(records, rounds)).join('\n')}\n`);
  }
}
