/**
 * The windowed job of `npm run bench -- kafka`: JSON records on a 6-partition topic (keyed by
 * `country`, event time `ts` in order per partition) → keyed 1-minute tumbling window by `country`,
 * `count` and the exact sum of `amount` → output topic. Contenders, each a fresh process, rounds
 * interleaved:
 *
 * - `sluice-window`: the CLI (`bin/sluice.js run pipeline.yaml` with the launcher's flags), at-least-once;
 * - `sluice-window-eos`: the same with `exactlyOnce: true` on the sink and `checkpoint: { interval: 1s }`;
 * - `kafkajs-window`: a hand-written KafkaJS 2.2 consumer (`eachBatch`) keeping a `Map` of windows,
 *   firing a window once every partition's event time passed its end plus the allowed disorder,
 *   one `producer.send` per fired set, offsets auto-committed every second;
 * - `kstreams-window`, `kstreams-window-eos`: Kafka Streams (`bench/kstreams/WindowJob.java`, built
 *   by `bench/kafka-streams.ts`; skipped with the reason when there is no `java`/`javac`/`mvn`),
 *   `groupByKey → windowedBy(1 min, grace 5 s) → aggregate → suppress(untilWindowCloses)`,
 *   `at_least_once` and `exactly_once_v2`, commits every second. A window closes only when stream
 *   time passes it, so at the end of input it writes one end marker per partition to an empty
 *   control topic made for the run (never to the shared input topic); its internal topics are
 *   deleted after each run.
 *
 * Every contender ends its input the same way: after 1 s without a message (Sluice's
 * `idleTimeout: 1s`), then emits the windows still open. The wall time is the whole process
 * (start, group join, the idle second); peak RSS is VmHWM (`bench/exit-stats.mjs`). After each run
 * the output topic is read back and the results' checksum (SHA-256 of the sorted lines
 * `country, windowStart ms, count, cents`, the last result per window) must be the same for all.
 *
 * Run alone: `npx node bench/kafka-window.ts --records 1000000 --rounds 3 [--only a,b]`.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin, Consumer, type Message, Producer } from '@platformatic/kafka';
import { numberFlag, stringFlag } from './child.ts';
import { ensureKafkaStreams, type KafkaStreamsPeer } from './kafka-streams.ts';
import { launcher } from './launcher.ts';
import { median } from './run.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LAUNCHER = launcher(ROOT);
const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PARTITIONS = 6;
const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'JP', 'IN'];
const WINDOW_MS = 60_000;
const MAX_OUT_OF_ORDER_MS = 5000;
const IDLE_MS = 1000;

/** Contender names, Sluice first. */
export const WINDOW_CONTENDERS = [
  'sluice-window',
  'sluice-window-eos',
  'kafkajs-window',
  'kstreams-window',
  'kstreams-window-eos',
] as const;

const isKafkaStreams = (name: string) => name.startsWith('kstreams-');

/** One input record of about 200 bytes of JSON; `ts` grows 37 ms per record. */
export function windowInputValue(i: number): string {
  return JSON.stringify({
    id: i,
    ts: new Date(Date.UTC(2026, 0, 1) + i * 37).toISOString(),
    user: `user${(i * 7919) % 100_000}@example.com`,
    country: COUNTRIES[i % COUNTRIES.length],
    amount: (((i * 31) % 100_000) / 100).toFixed(2),
    note: 'lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor',
  });
}

/** `"-12.3"` → -1230n (at most two decimals). */
function cents(s: string): bigint {
  const neg = s.startsWith('-');
  const [int = '0', frac = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt(int) * 100n + BigInt(frac.padEnd(2, '0').slice(0, 2) || '0');
  return neg ? -v : v;
}

/** `123456n` → `"1234.56"`. */
function centsText(c: bigint): string {
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
}

/** Waits until each of the `partitions` partitions of `topic` has a leader. */
export async function waitForLeaders(admin: Admin, topic: string, partitions = PARTITIONS): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const meta = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
    const parts = meta?.topics.get(topic)?.partitions ?? [];
    if (parts.length === partitions && parts.every((p) => p !== undefined && p.leader >= 0)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`topic ${topic} got no partition leaders`);
}

function newConsumer(): Consumer<Buffer, Buffer, Buffer, Buffer> {
  return new Consumer({
    clientId: 'sluice-bench',
    groupId: `bench-read-${randomUUID()}`,
    bootstrapBrokers: BROKERS,
  });
}

async function endOffsets(topic: string): Promise<bigint[]> {
  const c = newConsumer();
  try {
    return (await c.listOffsets({ topics: [topic] })).get(topic) ?? [];
  } finally {
    await c.close(true);
  }
}

/** The input topic for `records` records, produced once (kept for the next bench run). */
async function inputTopic(admin: Admin, records: number): Promise<string> {
  const topic = `sluice-bench-kafka-window-in-v1-${records}`;
  if ((await admin.listTopics()).includes(topic)) {
    const ends = await endOffsets(topic);
    if (ends.reduce((s, o) => s + o, 0n) === BigInt(records)) return topic;
    await admin.deleteTopics({ topics: [topic] });
    await new Promise((r) => setTimeout(r, 1000));
  }
  process.stderr.write(
    `kafka-window: producing ${records.toLocaleString('en-US')} records to \`${topic}\`…\n`,
  );
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  await waitForLeaders(admin, topic);
  const producer = new Producer({
    clientId: 'sluice-bench',
    bootstrapBrokers: BROKERS,
    idempotent: true,
    autocreateTopics: false,
  });
  try {
    for (let i = 0; i < records; i += 6000) {
      const messages = [];
      for (let k = i; k < Math.min(records, i + 6000); k++)
        messages.push({
          topic,
          key: Buffer.from(COUNTRIES[k % COUNTRIES.length] as string),
          value: Buffer.from(windowInputValue(k)),
          partition: k % PARTITIONS,
        });
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }
  return topic;
}

/**
 * Reads the whole output topic (read_committed) and returns the window count and checksum of the
 * last result per (country, windowStart).
 */
async function outputChecksum(
  topic: string,
  transactional: boolean,
): Promise<{ windows: number; checksum: string }> {
  const ends = await endOffsets(topic);
  const total = ends.reduce((s, o) => s + o, 0n);
  const last = new Map<string, string>();
  const c = newConsumer();
  try {
    const stream = await c.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    // Transaction markers take offsets too: stop once every partition's position reached its end.
    const pos = new Map<number, bigint>();
    const done = () => ends.every((e, p) => (pos.get(p) ?? 0n) >= e - 1n || e === 0n);
    if (total > 0n && !done()) {
      // Under exactly-once the last offset of a partition is a commit marker, never delivered:
      // stop at the ends, or after 2 s without a message once only that marker can be left; 20 s
      // before that, so a fetch pausing mid-topic on a loaded machine cannot cut the check short.
      // Without transactions the last offset is a result: read up to it (stopping one short on a
      // 2 s pause could drop a window's last update; one run of 9 once had a checksum apart).
      const slack = transactional ? 2n : 1n;
      const nearEnd = () => ends.every((e, p) => (pos.get(p) ?? -1n) >= e - slack || e === 0n);
      await new Promise<void>((resolve) => {
        let lastAt = Date.now();
        stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
          lastAt = Date.now();
          pos.set(m.partition, m.offset);
          const r = JSON.parse(m.value.toString('utf8')) as Record<string, unknown>;
          const start = Date.parse(String(r.windowStart));
          last.set(
            `${r.country}\t${start}`,
            `${r.country}\t${start}\t${r.count}\t${cents(String(r.amount))}\n`,
          );
        });
        const t = setInterval(() => {
          if (done() || Date.now() - lastAt > (nearEnd() ? 2000 : 20_000)) {
            if (!nearEnd())
              process.stderr.write(
                `kafka-window: reading \`${topic}\` stopped short of its end (20 s without a message)\n`,
              );
            clearInterval(t);
            resolve();
          }
        }, 50);
      });
    }
    await stream.close();
  } finally {
    await c.close(true);
  }
  const lines = [...last.values()].sort();
  return {
    windows: lines.length,
    checksum: createHash('sha256').update(lines.join('')).digest('hex').slice(0, 16),
  };
}

function sluiceYaml(input: string, output: string, exactlyOnce: boolean, dir: string): string {
  return `name: bench-kafka-window
input:
  kafka: { brokers: ${JSON.stringify(BROKERS)}, topic: ${input}, group: bench-${randomUUID()}, start: earliest, idleTimeout: ${IDLE_MS}ms }
pipeline:
  - window:
      key: [country]
      time: ts
      tumbling: 1m
      watermark: { maxOutOfOrder: ${MAX_OUT_OF_ORDER_MS}ms }
      aggregate: { count: count(), amount: sum(amount) }
output:
  kafka: { brokers: ${JSON.stringify(BROKERS)}, topic: ${output}, exactlyOnce: ${exactlyOnce}${exactlyOnce ? `, transactionalId: bench-${randomUUID()}` : ''} }
${exactlyOnce ? `checkpoint: { interval: 1s, dir: ${JSON.stringify(dir)} }\n` : ''}`;
}

/** The hand-written KafkaJS peer (runs in the child process). */
async function kafkajsWindow(input: string, output: string): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ clientId: 'sluice-bench', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: `bench-${randomUUID()}`,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  const windows = new Map<string, { country: string; start: number; count: number; cents: bigint }>();
  const eventTime = new Map<number, number>(); // partition → highest event time seen
  let lastMessageAt = 0;
  let fired = -Infinity; // windows ending at or before this were emitted
  const fire = async (upTo: number): Promise<void> => {
    const messages: { value: string }[] = [];
    for (const [k, w] of windows) {
      if (w.start + WINDOW_MS > upTo) continue;
      windows.delete(k);
      messages.push({
        value: JSON.stringify({
          country: w.country,
          windowStart: new Date(w.start).toISOString(),
          windowEnd: new Date(w.start + WINDOW_MS).toISOString(),
          count: w.count,
          amount: centsText(w.cents),
        }),
      });
    }
    if (messages.length > 0) await producer.send({ topic: output, acks: -1, messages });
  };
  try {
    await Promise.all([consumer.connect(), producer.connect()]);
    await consumer.subscribe({ topic: input, fromBeginning: true });
    await consumer.run({
      autoCommitInterval: 1000,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        let high = eventTime.get(batch.partition) ?? -Infinity;
        for (const m of batch.messages) {
          const r = JSON.parse((m.value as Buffer).toString('utf8')) as {
            ts: string;
            country: string;
            amount: string;
          };
          const t = Date.parse(r.ts);
          const start = t - (t % WINDOW_MS);
          const key = `${r.country}|${start}`;
          let w = windows.get(key);
          if (w === undefined) {
            w = { country: r.country, start, count: 0, cents: 0n };
            windows.set(key, w);
          }
          w.count++;
          w.cents += cents(r.amount);
          if (t > high) high = t;
        }
        if (batch.messages.length === 0) return;
        lastMessageAt = Date.now();
        eventTime.set(batch.partition, high);
        if (eventTime.size === PARTITIONS) {
          const watermark = Math.min(...eventTime.values()) - MAX_OUT_OF_ORDER_MS;
          if (watermark >= fired + WINDOW_MS) {
            await fire(watermark);
            fired = watermark;
          }
        }
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (lastMessageAt > 0 && Date.now() - lastMessageAt >= IDLE_MS) {
          clearInterval(t);
          resolve();
        }
      }, 50);
    });
    await consumer.stop();
    await fire(Infinity);
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
}

interface Run {
  wallMs: number;
  cpuMs: number;
  hwmKiB: number;
  windows: number;
  checksum: string;
  /** Kafka Streams only: JVM uptime when the first record was processed (start, join, restore). */
  firstRecordMs?: number;
}

/** Runs one contender once in a fresh process and checks its output topic. */
async function runOnce(
  name: string,
  input: string,
  output: string,
  admin: Admin,
  kstreams: KafkaStreamsPeer,
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-kwin-'));
  const stats = join(dir, 'stats.json');
  const env = { ...process.env, ...LAUNCHER.env, SLUICE_BENCH_STATS: stats };
  const preload = ['--import', join(ROOT, 'bench', 'exit-stats.mjs')];
  let command = process.execPath;
  let args: string[];
  let cleanUp = async () => {};
  if (isKafkaStreams(name)) {
    if (!kstreams.ok) throw new Error(`${name}: ${kstreams.reason}`);
    const control = `${output}-end`;
    const app = `sluice-bench-kstreams-${randomUUID().slice(0, 8)}`;
    await admin.createTopics({ topics: [control], partitions: PARTITIONS, replicas: 1 });
    await waitForLeaders(admin, control);
    cleanUp = async () => {
      const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${app}-`));
      await admin.deleteTopics({ topics: [control, ...internal] });
    };
    [command, ...args] = kstreams.java as [string, ...string[]];
    args.push(
      ...['--brokers', BROKERS.join(','), '--in', input, '--control', control, '--out', output],
      ...['--app', app, '--state-dir', join(dir, 'state'), '--stats', stats],
      ...['--guarantee', name.endsWith('-eos') ? 'exactly_once_v2' : 'at_least_once'],
      ...['--store', process.env.SLUICE_BENCH_KSTREAMS_STORE ?? 'memory'],
    );
  } else if (name === 'kafkajs-window') {
    args = [...preload, fileURLToPath(import.meta.url), '--child', name, '--in', input, '--out', output];
  } else {
    const yaml = join(dir, 'pipeline.yaml');
    writeFileSync(yaml, sluiceYaml(input, output, name === 'sluice-window-eos', join(dir, 'state')));
    const extra = (process.env.SLUICE_BENCH_NODE_FLAGS ?? '').split(' ').filter((s) => s !== '');
    args = [...LAUNCHER.nodeFlags, ...extra, ...preload, join(ROOT, 'bin', 'sluice.js'), 'run', yaml];
  }
  try {
    const t0 = performance.now();
    const r = spawnSync(command, args, { encoding: 'utf8', env, cwd: dir, maxBuffer: 1 << 24 });
    const wallMs = performance.now() - t0;
    // `SLUICE_BENCH_KSTREAMS_DEBUG=1`: the JVM notes pauses between records; show what it said.
    if (isKafkaStreams(name) && process.env.SLUICE_BENCH_KSTREAMS_DEBUG) process.stderr.write(r.stderr);
    if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
    const s = JSON.parse(readFileSync(stats, 'utf8')) as Pick<Run, 'cpuMs' | 'hwmKiB' | 'firstRecordMs'>;
    return { wallMs, ...s, ...(await outputChecksum(output, name.endsWith('-eos'))) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cleanUp().catch(() => {});
  }
}

/**
 * Runs the windowed job: every contender `rounds` times, interleaved; prints the table and returns
 * the `ratio kafka-window …` lines. Throws when the contenders' results differ.
 */
export async function windowJob(
  records: number,
  rounds: number,
  only?: readonly string[],
): Promise<string[]> {
  const admin = new Admin({
    clientId: 'sluice-bench',
    bootstrapBrokers: BROKERS,
    connectTimeout: 5000,
    retries: 1,
  });
  try {
    const input = await inputTopic(admin, records);
    const wanted = WINDOW_CONTENDERS.filter((c) => only === undefined || only.includes(c));
    const kstreams: KafkaStreamsPeer = wanted.some(isKafkaStreams)
      ? ensureKafkaStreams()
      : { ok: false, reason: 'not selected' };
    if (!kstreams.ok && wanted.some(isKafkaStreams))
      process.stderr.write(`kafka-window: Kafka Streams peer skipped: ${kstreams.reason}\n`);
    const names = wanted.filter((c) => kstreams.ok || !isKafkaStreams(c));
    const runs = new Map<string, Run[]>(names.map((c) => [c, []]));
    process.stderr.write(
      `kafka-window: ${records.toLocaleString('en-US')} records, 6 partitions → 1m window by country → topic; ${rounds} rounds × ${names.length} contenders\n`,
    );
    for (let round = 0; round < rounds; round++) {
      for (const name of names) {
        const output = `sluice-bench-kwin-out-${randomUUID().slice(0, 8)}`;
        await admin.createTopics({ topics: [output], partitions: 1, replicas: 1 });
        await waitForLeaders(admin, output, 1);
        try {
          const r = await runOnce(name, input, output, admin, kstreams);
          (runs.get(name) as Run[]).push(r);
          process.stderr.write(
            `  round ${round + 1} ${name}: ${(r.wallMs / 1000).toFixed(2)} s, ${Math.round(records / (r.wallMs / 1000)).toLocaleString('en-US')} rec/s, ${(r.hwmKiB / 1024).toFixed(0)} MiB, ${r.windows} windows ${r.checksum}\n`,
          );
        } finally {
          await admin.deleteTopics({ topics: [output] }).catch(() => {});
        }
      }
    }
    console.log(
      `\nkafka-window — ${records.toLocaleString('en-US')} JSON records (6 partitions) → 1m tumbling window by country (count + cents sum) → topic; ${rounds} rounds, medians`,
    );
    console.log(
      `${'contender'.padEnd(20)}${'wall s'.padStart(8)}${'min–max'.padStart(14)}${'CPU s'.padStart(8)}${'rec/s'.padStart(10)}${'peak RSS MiB'.padStart(14)}${'windows'.padStart(9)}  checksum`,
    );
    const med = (c: string, f: (r: Run) => number) => median((runs.get(c) ?? []).map(f));
    for (const [name, rs] of runs) {
      const w = rs.map((r) => r.wallMs / 1000);
      console.log(
        `${name.padEnd(20)}${median(w).toFixed(2).padStart(8)}${`${Math.min(...w).toFixed(2)}–${Math.max(...w).toFixed(2)}`.padStart(14)}${(med(name, (r) => r.cpuMs) / 1000).toFixed(2).padStart(8)}${Math.round(
          records / median(w),
        )
          .toLocaleString('en-US')
          .padStart(
            10,
          )}${(med(name, (r) => r.hwmKiB) / 1024).toFixed(0).padStart(14)}${String(rs[0]?.windows).padStart(9)}  ${rs[0]?.checksum}`,
      );
    }
    if (!kstreams.ok && wanted.some(isKafkaStreams))
      for (const name of wanted.filter(isKafkaStreams))
        console.log(`${name.padEnd(20)}  skipped (${kstreams.reason})`);
    for (const name of names.filter(isKafkaStreams)) {
      // The JVM's start, class loading, group join and task set-up, before any record.
      const first = med(name, (r) => r.firstRecordMs ?? 0);
      const share = first / med(name, (r) => r.wallMs);
      console.log(
        `${name}: first record processed ${(first / 1000).toFixed(2)} s after the JVM started (${(100 * share).toFixed(0)} % of its wall time)${share > 0.5 ? ': JVM start-up dominates at this size; compare at more records' : ''}`,
      );
    }
    const sums = new Set([...runs.values()].flatMap((rs) => rs.map((r) => r.checksum)));
    if (sums.size !== 1)
      throw new Error(`kafka-window: the contenders' results differ (checksums ${[...sums].join(', ')})`);
    const ratio = (a: string, b: string) =>
      runs.has(a) && runs.has(b) ? (med(b, (r) => r.wallMs) / med(a, (r) => r.wallMs)).toFixed(2) : undefined;
    const out: string[] = [];
    const sk = ratio('sluice-window', 'kafkajs-window');
    if (sk !== undefined) out.push(`ratio kafka-window sluice/kafkajs ${sk}`);
    const ea = ratio('sluice-window-eos', 'sluice-window');
    if (ea !== undefined) out.push(`ratio kafka-window-eos/alo ${ea}`);
    const ks = ratio('sluice-window', 'kstreams-window');
    if (ks !== undefined) out.push(`ratio kafka-window sluice/kafka-streams ${ks}`);
    const kse = ratio('sluice-window-eos', 'kstreams-window-eos');
    if (kse !== undefined) out.push(`ratio kafka-window-eos sluice-eos/kafka-streams-eos ${kse}`);
    return out;
  } finally {
    await admin.close();
  }
}

const argv = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  const child = stringFlag(argv, '--child');
  if (child === 'kafkajs-window') {
    await kafkajsWindow(stringFlag(argv, '--in') as string, stringFlag(argv, '--out') as string);
    process.exit(0);
  } else {
    const lines = await windowJob(
      numberFlag(argv, '--records') ?? 1_000_000,
      numberFlag(argv, '--rounds') ?? 3,
      stringFlag(argv, '--only')?.split(','),
    );
    console.log(lines.join('\n'));
  }
}
