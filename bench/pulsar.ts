/**
 * `npm run bench -- pulsar`: consume → map → produce through a real Pulsar broker
 * (`npm run services -- up pulsar`), Sluice against a plain loop over the same WebSocket API:
 * - Sluice: the `pulsar` source (an `exclusive` subscription, pull mode, batches of 500, acks
 *   after the sink's receipts) → `map` (adds a field) → the `pulsar` sink (2 sockets, pipelined).
 * - plain: one consumer socket in pull mode (permits of 1000) and 2 producer sockets, each record
 *   decoded, mapped, published with a pipelined window of 1000, and its input message
 *   acknowledged once its receipt came back.
 * A run ends when N output messages are stored. The input topic (~200 B JSON, keyed) is written
 * once per bench run; each run uses a fresh subscription and output topic, in a fresh child
 * process (peak RSS is its own), rounds interleaved; medians shown.
 *
 * Run alone: `npx node bench/pulsar.ts --records 20000 --rounds 3`.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pulsarSink } from '../src/connectors/pulsar/sink.ts';
import { pulsarSource } from '../src/connectors/pulsar/source.ts';
import { deleteTopics, PULSAR_URL, publish } from '../src/connectors/pulsar/test-helpers.ts';
import { Pipeline } from '../src/pipeline.ts';
import { type ChildReport, numberFlag, reportRun, spawnJson, stringFlag } from './child.ts';
import { median } from './run.ts';

const WS = PULSAR_URL.replace(/^http/, 'ws');
const CONTENDERS = ['sluice', 'plain-loop'] as const;
type Name = (typeof CONTENDERS)[number];

function inputRecord(i: number): Record<string, unknown> {
  return {
    id: i,
    ts: new Date(Date.UTC(2026, 0, 1) + i * 37).toISOString(),
    user: `user${(i * 7919) % 1000}`,
    country: ['DE', 'FR', 'US', 'BR', 'JP', 'IN'][i % 6],
    amount: (((i * 31) % 100_000) / 100).toFixed(2),
    note: 'lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor',
  };
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.addEventListener('open', () => resolve(ws), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
  });
}

type Contender = (topic: string, records: number) => Promise<number>;

const contenders: Record<Name, Contender> = {
  async sluice(topic, records) {
    const out = `bench-out-${randomUUID().slice(0, 8)}`;
    const sink = pulsarSink({
      url: PULSAR_URL,
      topic: out,
      format: 'json',
      keepProperties: true,
      batching: false,
      batchingMaxMessages: 1000,
      batchingMaxPublishDelay: 10,
      compression: 'none',
      connections: 2,
      maxPending: 1000,
    });
    const handle = new Pipeline('bench-pulsar')
      .from(
        pulsarSource({
          url: PULSAR_URL,
          topics: [topic],
          subscription: `bench-${randomUUID().slice(0, 8)}`,
          subscriptionType: 'exclusive',
          start: 'earliest',
          format: 'json',
          batchSize: 500,
          maxWait: 5,
          receiverQueueSize: 2000,
          badMessages: 'dlq',
          redeliveryDelay: 1000,
          commitInterval: 200,
        }),
      )
      .map((r) => ({ ...(r as Record<string, unknown>), scored: true }))
      .to(sink)
      .run();
    while (sink.written < records) {
      await new Promise((r) => setTimeout(r, 2));
      if (handle.metrics().state === 'failed') break;
    }
    await handle.stop();
    await handle.done;
    await deleteTopics([out]);
    return sink.written;
  },

  async 'plain-loop'(topic, records) {
    const out = `bench-out-${randomUUID().slice(0, 8)}`;
    const sub = `bench-${randomUUID().slice(0, 8)}`;
    const consumer = await open(
      `${WS}/ws/v2/consumer/persistent/public/default/${topic}/${sub}?subscriptionType=Exclusive&subscriptionInitialPosition=Earliest&pullMode=true`,
    );
    const producers = await Promise.all(
      [0, 1].map(() => open(`${WS}/ws/v2/producer/persistent/public/default/${out}`)),
    );
    const WINDOW = 1000;
    let stored = 0;
    let sent = 0;
    let next = 0;
    const inFlight = new Map<string, string>();
    const waiting: { messageId: string; frame: string; p: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        while (waiting.length > 0 && sent - stored < WINDOW * producers.length) {
          const w = waiting.shift() as { messageId: string; frame: string; p: number };
          (producers[w.p] as WebSocket).send(w.frame);
          sent++;
        }
      };
      for (const p of producers)
        p.addEventListener('message', (ev) => {
          const r = JSON.parse(String(ev.data)) as { result: string; context: string };
          if (r.result !== 'ok') reject(new Error(r.result));
          const id = inFlight.get(r.context);
          inFlight.delete(r.context);
          if (id !== undefined) consumer.send(JSON.stringify({ messageId: id }));
          stored++;
          if (stored % 500 === 0) consumer.send(JSON.stringify({ type: 'permit', permitMessages: 500 }));
          if (stored >= records) resolve();
          else pump();
        });
      consumer.addEventListener('message', (ev) => {
        const m = JSON.parse(String(ev.data)) as { messageId: string; payload: string; key?: string };
        const value = JSON.parse(Buffer.from(m.payload, 'base64').toString('utf8')) as Record<
          string,
          unknown
        >;
        const mapped = { ...value, scored: true };
        const context = String(next++);
        inFlight.set(context, m.messageId);
        const frame = JSON.stringify({
          payload: Buffer.from(JSON.stringify(mapped)).toString('base64'),
          key: m.key,
          context,
        });
        waiting.push({ messageId: m.messageId, frame, p: next % producers.length });
        pump();
      });
      consumer.send(JSON.stringify({ type: 'permit', permitMessages: 2000 }));
    });
    consumer.close();
    for (const p of producers) p.close();
    await deleteTopics([out]);
    return stored;
  },
};

async function child(name: Name, topic: string, records: number): Promise<void> {
  let count = 0;
  await reportRun(
    async () => {
      count = await contenders[name](topic, records);
      return count;
    },
    () => count,
  );
}

async function main(records: number, rounds: number): Promise<void> {
  try {
    await fetch(`${PULSAR_URL}/admin/v2/clusters`, { signal: AbortSignal.timeout(3000) });
  } catch {
    process.stderr.write(
      `pulsar: no broker at ${PULSAR_URL}; start it with \`npm run services -- up pulsar\`\n`,
    );
    process.exitCode = 1;
    return;
  }
  const topic = `sluice-bench-pulsar-${randomUUID().slice(0, 8)}`;
  try {
    process.stderr.write(
      `pulsar: writing ${records.toLocaleString('en-US')} input messages to \`${topic}\`…\n`,
    );
    const msgs = [];
    for (let i = 0; i < records; i++) {
      const r = inputRecord(i);
      msgs.push({ payload: JSON.stringify(r), key: r.user as string });
    }
    await publish(topic, msgs);
    const self = fileURLToPath(import.meta.url);
    const results = new Map<Name, { rate: number; rss: number; count: number }[]>(
      CONTENDERS.map((c) => [c, []]),
    );
    process.stderr.write(
      `pulsar: consume → map → produce, ${records.toLocaleString('en-US')} messages of ~200 B, ${rounds} rounds × ${CONTENDERS.length} contenders\n`,
    );
    for (let round = 0; round < rounds; round++) {
      for (const name of CONTENDERS) {
        const rep = spawnJson([
          self,
          '--child',
          name,
          '--topic',
          topic,
          '--records',
          String(records),
        ]) as unknown as ChildReport;
        const rate = rep.count / rep.seconds;
        results.get(name)?.push({ rate, rss: rep.maxRssKb / 1024, count: rep.count });
        process.stderr.write(
          `  run ${round + 1} ${name}: ${Math.round(rate).toLocaleString('en-US')} rec/s, ${(rep.maxRssKb / 1024).toFixed(0)} MiB\n`,
        );
      }
    }
    const rows = CONTENDERS.map((name) => {
      const rs = results.get(name) ?? [];
      return {
        name,
        rate: median(rs.map((x) => x.rate)),
        rss: median(rs.map((x) => x.rss)),
        count: rs.at(-1)?.count ?? 0,
      };
    });
    process.stdout.write(
      `${'contender'.padEnd(14)}${'median rec/s'.padStart(14)}${'peak RSS MiB'.padStart(14)}${'records'.padStart(10)}\n`,
    );
    for (const row of rows) {
      process.stdout.write(
        `${row.name.padEnd(14)}${Math.round(row.rate).toLocaleString('en-US').padStart(14)}${row.rss.toFixed(0).padStart(14)}${String(row.count).padStart(10)}\n`,
      );
    }
    const rate = (n: Name) => rows.find((x) => x.name === n)?.rate ?? Number.NaN;
    process.stdout.write(
      `ratio pulsar sluice/plain-loop ${(rate('sluice') / rate('plain-loop')).toFixed(2)}\n`,
    );
  } finally {
    await deleteTopics([topic]);
  }
}

const argv = process.argv.slice(2);
const flag = (name: string) => stringFlag(argv, `--${name}`);
if (import.meta.url === `file://${process.argv[1]}`) {
  const records = numberFlag(argv, '--records') ?? 20_000;
  if (flag('child') !== undefined) {
    await child(flag('child') as Name, flag('topic') as string, records);
    process.exit(0);
  } else {
    await main(records, numberFlag(argv, '--rounds') ?? 3);
  }
}
