/**
 * `npm run bench -- redis`: Redis Streams through the real server (`npm run services -- up
 * redis`), Sluice against a plain loop with the same client (`ioredis`):
 * - `read`: a consumer group reads N entries of about 200 bytes of JSON in field `data`, parses
 *   them and acknowledges them. Sluice: the `redis` source (batches of 1000, no checkpoints, so
 *   acknowledgements follow barriers every second and the rest at the stop) into a `blackhole`
 *   sink; plain: `XREADGROUP COUNT 1000` + `JSON.parse` + `XACK` per batch. A run ends when every
 *   entry is acknowledged.
 * - `write`: N records appended with `XADD` in pipelines of 1000. Sluice: the `redis` sink;
 *   plain: `pipeline().xadd(…)` + `exec()`.
 * The input stream is written once per bench run and read by a fresh group in each read run.
 * Each run is a fresh child process (peak RSS is its own), rounds interleaved; medians shown.
 *
 * Run alone: `npx node bench/redis.ts --records 300000 --rounds 5`.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { blackholeSink } from '../src/connectors/blackhole/sink.ts';
import { redisSink } from '../src/connectors/redis/sink.ts';
import { redisSource } from '../src/connectors/redis/source.ts';
import { Pipeline } from '../src/pipeline.ts';
import { type ChildReport, numberFlag, reportRun, spawnJson, stringFlag } from './child.ts';
import { median } from './run.ts';

const URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BATCH = 1000;
const CONTENDERS = ['sluice-read', 'plain-read', 'sluice-write', 'plain-write'] as const;
type Name = (typeof CONTENDERS)[number];

/** One input record of about 200 bytes of JSON. */
function inputRecord(i: number): Record<string, unknown> {
  return {
    id: i,
    ts: new Date(Date.UTC(2026, 0, 1) + i * 37).toISOString(),
    user: `user${(i * 7919) % 100_000}@example.com`,
    country: ['DE', 'FR', 'US', 'BR', 'JP', 'IN'][i % 6],
    amount: (((i * 31) % 100_000) / 100).toFixed(2),
    note: 'lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod tempor',
  };
}

async function pending(r: Redis, stream: string, group: string): Promise<number> {
  const [n] = (await r.xpending(stream, group)) as [number];
  return Number(n);
}

type Contender = (stream: string, records: number) => Promise<number>;

const contenders: Record<Name, Contender> = {
  async 'sluice-read'(stream, records) {
    const group = `bench-${randomUUID()}`;
    const sink = blackholeSink();
    const handle = new Pipeline('bench-redis')
      .from(
        redisSource({
          url: URL,
          streams: [stream],
          group,
          consumer: 'bench',
          start: '0',
          batchSize: BATCH,
          block: 100,
          format: 'json',
          field: 'data',
          commitInterval: 1000,
        }),
      )
      .to(sink)
      .run();
    while (sink.records < records) {
      await new Promise((r) => setTimeout(r, 2));
      if (handle.metrics().state === 'failed') break;
    }
    await handle.stop();
    await handle.done;
    const r = new Redis(URL);
    const left = await pending(r, stream, group);
    r.disconnect();
    if (left !== 0) throw new Error(`${left} entries left pending`);
    return sink.records;
  },

  async 'plain-read'(stream, records) {
    const group = `bench-${randomUUID()}`;
    const r = new Redis(URL);
    await r.xgroup('CREATE', stream, group, '0');
    let n = 0;
    let sum = 0;
    while (n < records) {
      const reply = (await r.xreadgroup('GROUP', group, 'bench', 'COUNT', BATCH, 'STREAMS', stream, '>')) as
        | [string, [string, string[]][]][]
        | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) break;
      const ids: string[] = [];
      for (const [id, fields] of entries) {
        sum += (JSON.parse(fields[1] as string) as { id: number }).id;
        ids.push(id);
      }
      await r.xack(stream, group, ...ids);
      n += entries.length;
    }
    if (sum < 0) throw new Error('unreachable');
    const left = await pending(r, stream, group);
    r.disconnect();
    if (left !== 0) throw new Error(`${left} entries left pending`);
    return n;
  },

  async 'sluice-write'(_stream, records) {
    const out = `bench-out-${randomUUID()}`;
    const sink = redisSink({
      url: URL,
      stream: out,
      field: 'data',
      format: 'json',
      approximate: true,
      batchSize: BATCH,
    });
    await new Pipeline('bench-redis-write')
      .from({
        async run(emitter) {
          for (let i = 0; i < records; i += BATCH) {
            const batch: unknown[] = [];
            for (let k = i; k < Math.min(records, i + BATCH); k++) batch.push(inputRecord(k));
            await emitter.emit({ kind: 'batch', records: batch });
          }
        },
      })
      .to(sink)
      .run().done;
    const r = new Redis(URL);
    await r.del(out);
    r.disconnect();
    return sink.written;
  },

  async 'plain-write'(_stream, records) {
    const out = `bench-out-${randomUUID()}`;
    const r = new Redis(URL);
    let n = 0;
    for (let i = 0; i < records; i += BATCH) {
      const p = r.pipeline();
      for (let k = i; k < Math.min(records, i + BATCH); k++)
        p.xadd(out, '*', 'data', JSON.stringify(inputRecord(k)));
      for (const [err] of (await p.exec()) ?? []) if (err) throw err;
      n += Math.min(records, i + BATCH) - i;
    }
    await r.del(out);
    r.disconnect();
    return n;
  },
};

/** Child side: runs one contender once and prints its `ChildReport` (the count is the check). */
async function child(name: Name, stream: string, records: number): Promise<void> {
  let count = 0;
  await reportRun(
    async () => {
      count = await contenders[name](stream, records);
      return count;
    },
    () => count,
  );
}

/** Parent side: the input stream, then every contender `rounds` times, interleaved. */
async function main(records: number, rounds: number): Promise<void> {
  const r = new Redis(URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
  } catch {
    process.stderr.write(`redis: no server at ${URL}; start it with \`npm run services -- up redis\`\n`);
    process.exitCode = 1;
    return;
  }
  const stream = `sluice-bench-redis-${randomUUID().slice(0, 8)}`;
  try {
    process.stderr.write(
      `redis: writing ${records.toLocaleString('en-US')} input entries to \`${stream}\`…\n`,
    );
    for (let i = 0; i < records; i += 5000) {
      const p = r.pipeline();
      for (let k = i; k < Math.min(records, i + 5000); k++)
        p.xadd(stream, '*', 'data', JSON.stringify(inputRecord(k)));
      await p.exec();
    }
    const self = fileURLToPath(import.meta.url);
    const results = new Map<Name, { rate: number; rss: number; count: number }[]>(
      CONTENDERS.map((c) => [c, []]),
    );
    process.stderr.write(
      `redis: group read + ack, and XADD, ${records.toLocaleString('en-US')} records of ~200 B, ${rounds} rounds × ${CONTENDERS.length} contenders\n`,
    );
    for (let round = 0; round < rounds; round++) {
      for (const name of CONTENDERS) {
        const rep = spawnJson([
          self,
          '--child',
          name,
          '--stream',
          stream,
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
      `ratio redis-read sluice/plain-loop ${(rate('sluice-read') / rate('plain-read')).toFixed(2)}\n`,
    );
    process.stdout.write(
      `ratio redis-write sluice/plain-loop ${(rate('sluice-write') / rate('plain-write')).toFixed(2)}\n`,
    );
  } finally {
    await r.del(stream).catch(() => {});
    r.disconnect();
  }
}

const argv = process.argv.slice(2);
const flag = (name: string) => stringFlag(argv, `--${name}`);
if (import.meta.url === `file://${process.argv[1]}`) {
  const records = numberFlag(argv, '--records') ?? 300_000;
  if (flag('child') !== undefined) {
    await child(flag('child') as Name, flag('stream') as string, records);
    process.exit(0);
  } else {
    await main(records, numberFlag(argv, '--rounds') ?? 3);
  }
}
