/**
 * `npm run bench -- checkpoint-backends` (or `npx node bench/checkpoint-backends.ts [--runs N]
 * [--only lmdb,postgres,redis]`): the {@link StateBackend}s side by side, through the interface
 * the checkpoint store uses, each run on a fresh folder / namespace, medians of `--runs` (3):
 *
 * - small writes: 100 k entries (16-byte values) in 100 durable `write` calls of 1 000;
 * - one batch: the same 100 k entries in one `write`;
 * - reads: 10 k `read` calls one after the other (each a round trip for a server);
 * - keys: listing the 100 k keys by prefix;
 * - checkpoint: `CheckpointStore.save` of a real 1 M-key keyed-state snapshot (one v8 blob,
 *   ~16 MB) and `latest()` loading it back (what a restart does).
 *
 * PostgreSQL and Redis run only when reachable (`npm run services -- up postgres redis`;
 * `SLUICE_POSTGRES_URL`, `SLUICE_REDIS_URL`). Ends with `ratio checkpoint-backends …` lines (above
 * 1: the first named is faster).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { CheckpointStore } from '../src/checkpoint/store.ts';
import { lmdbBackend, type StateBackend } from '../src/state/backend.ts';
import { KeyedStateStore } from '../src/state/keyed.ts';
import { postgresBackend } from '../src/state/postgres.ts';
import { redisBackend } from '../src/state/redis.ts';
import { numberFlag, stringFlag } from './child.ts';
import { median } from './run.ts';

const args = process.argv.slice(2);
const RUNS = numberFlag(args, '--runs') ?? numberFlag(args, '--rounds') ?? 3;
const ONLY = stringFlag(args, '--only')?.split(',');
const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = 100_000;
const READS = 10_000;
const quiet = { warn() {} };

function reachable(url: string, port: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port || port) });
    s.setTimeout(1000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

interface Target {
  readonly name: string;
  /** A fresh store, and how to remove it afterwards. */
  open(): Promise<{ backend: StateBackend; reopen: () => Promise<StateBackend>; drop: () => Promise<void> }>;
}

const uniq = () => `bench-${Math.random().toString(36).slice(2, 10)}`;

const targets: Target[] = [
  {
    name: 'lmdb',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-backend-'));
      return {
        backend: await lmdbBackend({ dir }),
        reopen: () => lmdbBackend({ dir }),
        drop: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
/**
 * A server backend on a fresh namespace; `drop` deletes every key written there, so runs leave
 * nothing behind.
 */
function serverTarget(name: string, open: (namespace: string) => Promise<StateBackend>): Target {
  return {
    name,
    async open() {
      const namespace = uniq();
      return {
        backend: await open(namespace),
        reopen: () => open(namespace),
        drop: async () => {
          const b = await open(namespace);
          const keys = await b.keys('');
          if (keys.length > 0) await b.write(new Map(keys.map((k) => [k, null])));
          await b.close();
        },
      };
    },
  };
}

if (await reachable(PG_URL, 5432))
  targets.push(
    serverTarget('postgres', (namespace) => postgresBackend({ url: PG_URL, namespace, log: quiet })),
  );
else console.log(`postgres: not reachable at ${PG_URL}; skipped (npm run services -- up postgres)`);
if (await reachable(REDIS_URL, 6379))
  targets.push(serverTarget('redis', (namespace) => redisBackend({ url: REDIS_URL, namespace, log: quiet })));
else console.log(`redis: not reachable at ${REDIS_URL}; skipped (npm run services -- up redis)`);

const chosen = targets.filter((t) => ONLY === undefined || ONLY.includes(t.name));

const KEYS: string[] = [];
for (let i = 0; i < N; i++) KEYS.push(`state/${String((i * 7919) % N).padStart(6, '0')}`);
const value = (i: number) => {
  const b = Buffer.allocUnsafe(16);
  b.writeDoubleLE(i, 0);
  b.writeDoubleLE(i * 2, 8);
  return b;
};

/** The snapshot blob of 1 M keyed counters, as a checkpoint stores it. */
function snapshotBlob(): Uint8Array {
  const store = new KeyedStateStore();
  const count = store.valueState<number>('count');
  for (let i = 0; i < 1_000_000; i++) {
    store.setCurrentKey(`user-${i}`);
    count.set(i);
  }
  return serialize(store.snapshot());
}
const BLOB = snapshotBlob();

type Result = Record<'smallWrites' | 'oneBatch' | 'reads' | 'keysMs' | 'saveMs' | 'loadMs', number>;

async function once(t: Target): Promise<Result> {
  const { backend, reopen, drop } = await t.open();
  try {
    let t0 = performance.now();
    for (let c = 0; c < N; c += 1000) {
      const m = new Map<string, Uint8Array>();
      for (let i = c; i < c + 1000; i++) m.set(KEYS[i] as string, value(i));
      await backend.write(m);
    }
    const smallWrites = N / ((performance.now() - t0) / 1000);
    const all = new Map<string, Uint8Array>();
    for (let i = 0; i < N; i++) all.set(`batch/${KEYS[i]}`, value(i));
    t0 = performance.now();
    await backend.write(all);
    const oneBatch = N / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < READS; i++) await backend.read(KEYS[(i * 31) % N] as string);
    const reads = READS / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const listed = await backend.keys('state/');
    const keysMs = performance.now() - t0;
    if (listed.length !== N) throw new Error(`${t.name}: listed ${listed.length} keys, expected ${N}`);
    t0 = performance.now();
    await new CheckpointStore(backend).save({
      id: 1,
      completedAt: 0,
      sources: { in: { offset: 1 } },
      sinks: {},
      operators: new Map([['count', BLOB]]),
    });
    const saveMs = performance.now() - t0;
    await backend.close();
    const again = await reopen();
    t0 = performance.now();
    const loaded = await new CheckpointStore(again).latest();
    const loadMs = performance.now() - t0;
    await again.close();
    if (loaded?.operators.get('count')?.length !== BLOB.length)
      throw new Error(`${t.name}: checkpoint not loaded`);
    return { smallWrites, oneBatch, reads, keysMs, saveMs, loadMs };
  } finally {
    await backend.close();
    await drop();
  }
}

const results = new Map<string, Result[]>(chosen.map((t) => [t.name, []]));
for (let r = 0; r < RUNS; r++) for (const t of chosen) results.get(t.name)?.push(await once(t));
const med = (name: string, k: keyof Result) => median((results.get(name) ?? []).map((x) => x[k]));

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `checkpoint-backends: ${fmt(N)} entries of 16 B, ${fmt(READS)} reads, a ${(BLOB.length / 1e6).toFixed(1)} MB checkpoint; ${RUNS} runs (medians)`,
);
console.log(`  ${''.padEnd(34)}${chosen.map((t) => t.name.padStart(12)).join('')}`);
for (const [k, label] of [
  ['smallWrites', 'entries/s, writes of 1 000'],
  ['oneBatch', 'entries/s, one write of 100 k'],
  ['reads', 'reads/s, one at a time'],
  ['keysMs', 'ms to list 100 k keys'],
  ['saveMs', 'ms to save the checkpoint'],
  ['loadMs', 'ms to load it (restart)'],
] as const) {
  console.log(`  ${label.padEnd(34)}${chosen.map((t) => fmt(med(t.name, k)).padStart(12)).join('')}`);
}
// Ratios are against lmdb: none when `--only` left it out.
for (const t of chosen) {
  if (t.name === 'lmdb' || !results.has('lmdb')) continue;
  console.log(
    `ratio checkpoint-backends ${t.name}/lmdb-small-writes ${(med(t.name, 'smallWrites') / med('lmdb', 'smallWrites')).toFixed(2)}`,
  );
  console.log(
    `ratio checkpoint-backends ${t.name}/lmdb-reads ${(med(t.name, 'reads') / med('lmdb', 'reads')).toFixed(2)}`,
  );
  console.log(
    `ratio checkpoint-backends ${t.name}/lmdb-save ${(med('lmdb', 'saveMs') / med(t.name, 'saveMs')).toFixed(2)}`,
  );
  console.log(
    `ratio checkpoint-backends ${t.name}/lmdb-load ${(med('lmdb', 'loadMs') / med(t.name, 'loadMs')).toFixed(2)}`,
  );
}
