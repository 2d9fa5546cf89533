/**
 * `npm run bench -- checkpoint` (or `npx node bench/checkpoint.ts [--records N] [--runs N]`):
 *
 * 1. Throughput of a keyed counting pipeline (in-memory source → keyed count over 100 k keys →
 *    discarding sink) with checkpoints every second into the embedded store (LMDB) vs none,
 *    runs interleaved, medians. Target: at most 5 % lower.
 * 2. Checkpoint duration for 1 M keys of keyed state: snapshot + `v8.serialize` + store (durable).
 * 3. Time from restart to processing again: open the store, load and check the newest
 *    checkpoint, deserialise and restore 1 M keys, first record processed.
 * 4. The embedded store pick: `lmdb` vs built-in `node:sqlite` on 1 M random 16-byte values and
 *    on the 1 M-key snapshot blobs (256 key groups).
 *
 * Ends with `ratio checkpoint …` lines (above 1: the first named is faster).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { deserialize, serialize } from 'node:v8';
import { CheckpointCoordinator } from '../src/checkpoint/coordinator.ts';
import { CheckpointStore } from '../src/checkpoint/store.ts';
import { systemClock } from '../src/core/clock.ts';
import { type Batch, batchOf } from '../src/core/message.ts';
import type { Logger, Operator, Sink, Source } from '../src/core/stage.ts';
import { Pipeline } from '../src/pipeline.ts';
import { lmdbBackend } from '../src/state/backend.ts';
import { KeyedStateStore } from '../src/state/keyed.ts';
import { numberFlag } from './child.ts';
import { median } from './run.ts';

const args = process.argv.slice(2);
const RECORDS = numberFlag(args, '--records') ?? 16_000_000;
// `npm run bench -- checkpoint --runs N` passes `--rounds N` (bench/run.ts).
const RUNS = numberFlag(args, '--runs') ?? numberFlag(args, '--rounds') ?? 3;
const KEYS = 100_000;
const quiet: Logger = { info: () => {}, warn: (m) => process.stderr.write(`WARN ${m}\n`), error: () => {} };

/** Pre-built batches of `{ key }` records, reused round-robin (no allocation while measuring). */
const BATCHES: Batch<{ key: string }>[] = [];
for (let b = 0; b < 64; b++) {
  const recs: { key: string }[] = [];
  for (let i = 0; i < 1024; i++) recs.push({ key: `user-${(b * 1024 + i) % KEYS}` });
  BATCHES.push(batchOf(recs));
}

function source(n: number): Source<{ key: string }> {
  let sent = 0;
  return {
    async run(out) {
      for (let b = 0; sent < n; b++) {
        const batch = BATCHES[b % BATCHES.length] as Batch<{ key: string }>;
        sent += batch.records.length;
        await out.emit(batch);
      }
    },
    position: () => ({ sent }),
    restore: (p) => {
      sent = p.sent as number;
    },
  };
}

function counter(): Operator<{ key: string }, number> {
  const store = new KeyedStateStore();
  const count = store.valueState<number>('count');
  return {
    async process(batch, out) {
      let last = 0;
      for (const r of batch.records) {
        store.setCurrentKey(r.key);
        last = (count.get() ?? 0) + 1;
        count.set(last);
      }
      await out.emit(batchOf([last]));
    },
    snapshot: () => store.snapshot(),
    restore: (s) => store.restore(s),
  };
}

const discard: Sink<number> = { write() {} };

async function throughput(checkpoints: boolean): Promise<{ rps: number; completed: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-cp-'));
  try {
    const p = new Pipeline('bench');
    p.from(source(RECORDS)).via(counter()).to(discard);
    const checkpoint = checkpoints
      ? new CheckpointCoordinator({
          store: new CheckpointStore(await lmdbBackend({ dir })),
          intervalMs: 1000,
          clock: systemClock,
          log: quiet,
        })
      : undefined;
    const t = performance.now();
    await p.run(checkpoint ? { checkpoint, log: quiet } : { log: quiet }).done;
    const ms = performance.now() - t;
    return { rps: RECORDS / (ms / 1000), completed: checkpoint?.stats.completed ?? 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function millionKeys(): KeyedStateStore {
  const store = new KeyedStateStore();
  const count = store.valueState<number>('count');
  for (let i = 0; i < 1_000_000; i++) {
    store.setCurrentKey(`user-${i}`);
    count.set(i);
  }
  return store;
}

async function checkpointAndRestart(): Promise<{ checkpointMs: number; bytes: number; restartMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-cp-'));
  try {
    const state = millionKeys();
    const backend = await lmdbBackend({ dir });
    const t0 = performance.now();
    const blob = serialize(state.snapshot());
    await new CheckpointStore(backend).save({
      id: 1,
      completedAt: 0,
      sources: { in: { sent: 1 } },
      sinks: {},
      operators: new Map([['count', blob]]),
    });
    const checkpointMs = performance.now() - t0;
    await backend.close();
    const t1 = performance.now();
    const again = await lmdbBackend({ dir });
    const c = new CheckpointCoordinator({
      store: new CheckpointStore(again),
      clock: systemClock,
      log: quiet,
    });
    const restored = await c.restore();
    const op = counter();
    await op.restore?.(restored?.operators.get('count'));
    await op.process(batchOf([{ key: 'user-1' }]), { emit: async () => {}, signal: async () => {} });
    const restartMs = performance.now() - t1;
    await again.close();
    return { checkpointMs, bytes: blob.length, restartMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function stores(): Promise<Record<'lmdb' | 'sqlite', Record<string, number>>> {
  const N = 1_000_000;
  const keys: string[] = [];
  for (let i = 0; i < N; i++) keys.push(`key-${(i * 7919) % N}`);
  const val = (i: number) => {
    const b = Buffer.allocUnsafe(16);
    b.writeDoubleLE(i, 0);
    b.writeDoubleLE(i * 2, 8);
    return b;
  };
  const groups: Map<string, number>[] = Array.from({ length: 256 }, () => new Map());
  for (let i = 0; i < N; i++) (groups[i & 255] as Map<string, number>).set(keys[i] as string, i);
  const blobs = groups.map((g) => serialize(g));
  const out = {} as Record<'lmdb' | 'sqlite', Record<string, number>>;
  {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-lmdb-'));
    const { open } = await import('lmdb');
    const db = open<Buffer, string>({ path: dir, encoding: 'binary', compression: false });
    let t = performance.now();
    await db.transaction(() => {
      for (let i = 0; i < N; i++) db.put(keys[i] as string, val(i));
    });
    const puts = N / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < N; i++) db.getBinary(keys[(i * 31) % N] as string);
    const gets = N / ((performance.now() - t) / 1000);
    t = performance.now();
    await db.transaction(() => {
      blobs.forEach((b, i) => {
        db.put(`blob/${i}`, b);
      });
    });
    const blobWriteMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < 256; i++) deserialize(db.getBinary(`blob/${i}`) as Buffer);
    const blobReadMs = performance.now() - t;
    await db.close();
    rmSync(dir, { recursive: true, force: true });
    out.lmdb = { puts, gets, blobWriteMs, blobReadMs };
  }
  {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-sqlite-'));
    const db = new DatabaseSync(join(dir, 'state.db'));
    db.exec(
      'PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID',
    );
    const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    const get = db.prepare('SELECT v FROM kv WHERE k = ?');
    let t = performance.now();
    db.exec('BEGIN');
    for (let i = 0; i < N; i++) put.run(keys[i] as string, val(i));
    db.exec('COMMIT');
    const puts = N / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < N; i++) get.get(keys[(i * 31) % N] as string);
    const gets = N / ((performance.now() - t) / 1000);
    t = performance.now();
    db.exec('BEGIN');
    blobs.forEach((b, i) => {
      put.run(`blob/${i}`, b);
    });
    db.exec('COMMIT');
    const blobWriteMs = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < 256; i++) deserialize((get.get(`blob/${i}`) as { v: Uint8Array }).v);
    const blobReadMs = performance.now() - t;
    db.close();
    rmSync(dir, { recursive: true, force: true });
    out.sqlite = { puts, gets, blobWriteMs, blobReadMs };
  }
  return out;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const none: number[] = [];
const every: number[] = [];
let completed = 0;
// One warm-up run of each, so the JIT state is the same for both contenders.
await throughput(false);
await throughput(true);
for (let r = 0; r < RUNS; r++) {
  none.push((await throughput(false)).rps);
  const c = await throughput(true);
  every.push(c.rps);
  completed += c.completed;
}
const restarts: { checkpointMs: number; bytes: number; restartMs: number }[] = [];
for (let r = 0; r < 3; r++) restarts.push(await checkpointAndRestart());
const storeRuns: Awaited<ReturnType<typeof stores>>[] = [];
for (let r = 0; r < 3; r++) storeRuns.push(await stores());
const m = (pick: (s: Awaited<ReturnType<typeof stores>>) => number) => median(storeRuns.map(pick));

console.log(`checkpoint: ${fmt(RECORDS)} records over ${fmt(KEYS)} keys, ${RUNS} runs each (medians)`);
console.log(`  no checkpoints             ${fmt(median(none))} records/s`);
console.log(
  `  checkpoint every 1 s       ${fmt(median(every))} records/s (${(completed / RUNS).toFixed(1)} checkpoints per run)`,
);
console.log(
  `  1 M keys: checkpoint       ${median(restarts.map((x) => x.checkpointMs)).toFixed(0)} ms (${(restarts[0]?.bytes ?? 0) / 1e6} MB state)`,
);
console.log(`  1 M keys: restart→processing ${median(restarts.map((x) => x.restartMs)).toFixed(0)} ms`);
console.log('  store                      lmdb            node:sqlite');
for (const [k, label] of [
  ['puts', 'puts/s (1 M, one txn)'],
  ['gets', 'gets/s (1 M random)'],
  ['blobWriteMs', 'snapshot write ms'],
  ['blobReadMs', 'snapshot read ms'],
] as const) {
  console.log(
    `  ${label.padEnd(27)}${fmt(m((s) => s.lmdb[k] as number)).padEnd(16)}${fmt(m((s) => s.sqlite[k] as number))}`,
  );
}
console.log(`ratio checkpoint every-1s/none ${(median(every) / median(none)).toFixed(2)}`);
console.log(
  `ratio checkpoint lmdb/sqlite-puts ${(m((s) => s.lmdb.puts as number) / m((s) => s.sqlite.puts as number)).toFixed(2)}`,
);
console.log(
  `ratio checkpoint lmdb/sqlite-gets ${(m((s) => s.lmdb.gets as number) / m((s) => s.sqlite.gets as number)).toFixed(2)}`,
);
