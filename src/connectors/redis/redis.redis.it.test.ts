/**
 * The `redis` source and sink against the real server (`npm run services -- up redis`, which
 * `npm test` runs for this file's name). Every test uses fresh stream and group names and
 * deletes its streams at the end. Reading N entries, the dlq, a stop and a SIGKILL of `sluice run`
 * with a restart are in the connector conformance suite (test/connectors/redis.redis.it.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../../../test/support/net.ts';
import { systemClock } from '../../core/clock.ts';
import type { Batch, Position, RecordMeta, Signal } from '../../core/message.ts';
import {
  type DeadLetter,
  type Emitter,
  type Logger,
  runScope,
  type Sink,
  type Source,
  type SourceContext,
} from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { fileSink } from '../file/sink.ts';
import { redisSink } from './sink.ts';
import { type RedisSourceOptions, redisSource } from './source.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const quiet: Logger = { info() {}, warn() {}, error() {} };

let redis: Redis;
const streamsMade: string[] = [];

before(async () => {
  redis = new Redis(REDIS_URL);
});

after(async () => {
  if (streamsMade.length > 0) await redis.del(...streamsMade);
  redis.disconnect();
});

function fresh(name: string): string {
  const s = `it-${name}-${randomUUID().slice(0, 8)}`;
  streamsMade.push(s);
  return s;
}

/** Appends `n` entries `{ data: {"seq": i} }`; returns their ids in order. */
async function fill(stream: string, n: number, from = 0): Promise<string[]> {
  const p = redis.pipeline();
  for (let i = from; i < from + n; i++) p.xadd(stream, '*', 'data', JSON.stringify({ seq: i }));
  const replies = (await p.exec()) ?? [];
  return replies.map(([err, id]) => {
    if (err) throw err;
    return id as string;
  });
}

/** Entries pending in `group`, per consumer. */
async function pendingByConsumer(stream: string, group: string): Promise<Map<string, number>> {
  const [, , , consumers] = (await redis.xpending(stream, group)) as [
    number,
    unknown,
    unknown,
    [string, string][] | null,
  ];
  return new Map((consumers ?? []).map(([c, n]) => [c, Number(n)]));
}

async function pendingTotal(stream: string, group: string): Promise<number> {
  const [count] = (await redis.xpending(stream, group)) as [number];
  return Number(count);
}

function options(stream: string, group: string, extra: Partial<RedisSourceOptions> = {}): RedisSourceOptions {
  return {
    url: REDIS_URL,
    streams: [stream],
    group,
    consumer: 'c1',
    start: '0',
    batchSize: 100,
    block: 200,
    format: 'json',
    field: 'data',
    idleTimeout: 600,
    commitInterval: 50,
    ...extra,
  };
}

/** A sink keeping records and meta in memory. */
function collect<T = unknown>(): Sink<T> & { records: T[]; meta: (RecordMeta | undefined)[] } {
  const records: T[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  return {
    records,
    meta,
    durableOnBarrier: true,
    write(batch: Batch<T>) {
      for (let i = 0; i < batch.records.length; i++) {
        records.push(batch.records[i] as T);
        meta.push(batch.meta?.[i]);
      }
    },
  };
}

/** A hand-made source context and emitter: every emitted record, signal and dead letter is kept. */
function drive(checkpointing: boolean) {
  const cancel = new AbortController();
  const stop = new AbortController();
  const records: unknown[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  const signals: Signal[] = [];
  const dead: { record: unknown; error: unknown; meta?: RecordMeta | undefined }[] = [];
  const out: Emitter<unknown> = {
    async emit(batch) {
      for (let i = 0; i < batch.records.length; i++) {
        records.push(batch.records[i]);
        meta.push(batch.meta?.[i]);
      }
    },
    async signal(s) {
      signals.push(s);
    },
  };
  const ctx: SourceContext = {
    name: 'redis',
    signal: cancel.signal,
    stopSignal: stop.signal,
    checkpointing,
    runScoped: runScope(),
    clock: systemClock,
    log: quiet,
    deadLetter(record, error, m) {
      dead.push({ record, error, meta: m });
    },
  };
  return { ctx, out, records, meta, signals, dead, cancel, stop };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('redis source and sink', () => {
  test('a group reads every entry into a file; bad JSON goes to the dlq with its id and is acknowledged after it', async () => {
    const stream = fresh('read');
    const group = fresh('g');
    const N = 2500;
    const ids = await fill(stream, N);
    const badId = (await redis.xadd(stream, '*', 'data', '{not json')) as string;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
    try {
      const p = new Pipeline('it-redis-read');
      p.from(redisSource(options(stream, group, { batchSize: 333 }))).to(
        fileSink({ path: join(dir, 'out.jsonl'), format: 'jsonl' }),
      );
      p.dlq(fileSink({ path: join(dir, 'dead.jsonl'), format: 'jsonl' }));
      const summary = await p.run({ log: quiet }).done;
      assert.equal(summary.recordsRead, N);
      const seqs = readFileSync(join(dir, 'out.jsonl'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { seq: number }).seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: N }, (_, i) => i),
        'every entry once, in stream order',
      );
      const dead = readFileSync(join(dir, 'dead.jsonl'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as DeadLetter);
      assert.equal(dead.length, 1);
      assert.deepEqual(dead[0]?.record, { stream, id: badId, fields: { data: '{not json' } });
      assert.deepEqual(dead[0]?.position, { stream, id: badId });
      assert.equal(dead[0]?.error.code, 'SLUICE_PARSE');
      assert.match(
        dead[0]?.error.message as string,
        new RegExp(`entry \`${badId}\` of stream \`${stream}\``),
      );
      assert.equal(await pendingTotal(stream, group), 0, 'everything acknowledged at the clean end');
      assert.equal(ids.length, N);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('nothing is acknowledged before commit(position); a restarted consumer of the same name re-reads its pending entries', async () => {
    const stream = fresh('ack');
    const group = fresh('g');
    const N = 450;
    await fill(stream, N);
    // Run 1, as under checkpoints: read everything, stop without any commit.
    const s1 = redisSource(options(stream, group, { idleTimeout: undefined }));
    const d1 = drive(true);
    await s1.open?.(d1.ctx);
    const run1 = s1.run(d1.out, d1.ctx);
    await until(() => d1.records.length === N, 'the first run to read every entry');
    assert.equal(await pendingTotal(stream, group), N, 'read but not acknowledged: every entry pending');
    const mid = s1.position?.();
    assert.equal(mid?.entries, N);
    assert.equal(d1.signals.length, 0, 'under checkpoints the source emits no barrier of its own');
    // A commit covering the first 200 (a position taken then) acknowledges exactly those.
    await s1.commit?.({ ...(mid as object), entries: 200 });
    assert.equal(await pendingTotal(stream, group), N - 200);
    const firstAcked = new Set(d1.meta.slice(0, 200).map((m) => m?.position?.id));
    const stillPending = (await redis.xpending(stream, group, '-', '+', N)) as [string][];
    for (const row of stillPending) assert.ok(!firstAcked.has(row[0]), 'only the committed ones acked');
    // A draining stop under checkpoints acknowledges nothing more.
    d1.stop.abort();
    await run1;
    await s1.close?.();
    assert.equal(await pendingTotal(stream, group), N - 200);

    // Run 2, same consumer name: its pending entries come back first, then it acknowledges at the clean end.
    const s2 = redisSource(options(stream, group, { idleTimeout: 500 }));
    const d2 = drive(false);
    await s2.open?.(d2.ctx);
    await s2.run(d2.out, d2.ctx);
    await s2.close?.();
    const seqs = (d2.records as { seq: number }[]).map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: N - 200 }, (_, i) => 200 + i),
      'exactly the unacknowledged ones',
    );
    assert.equal(await pendingTotal(stream, group), 0);
  });

  test('a restore under another consumer name takes over its pending entries and does not emit those the checkpoint covers', async () => {
    const stream = fresh('restore');
    const group = fresh('g');
    await fill(stream, 100);
    // Run 1 (consumer `old`): reads 100, a checkpoint is taken after them, the process dies before any XACK.
    const s1 = redisSource(options(stream, group, { consumer: 'old', idleTimeout: undefined }));
    const d1 = drive(true);
    await s1.open?.(d1.ctx);
    const run1 = s1.run(d1.out, d1.ctx);
    await until(() => d1.records.length === 100, 'the first run');
    const checkpoint = s1.position?.() as Position;
    // Read after the checkpoint: emitted, not covered by it.
    await fill(stream, 20, 100);
    await until(() => d1.records.length === 120, 'entries after the checkpoint');
    d1.cancel.abort();
    await run1.catch(() => {});
    await s1.close?.();
    assert.equal((await pendingByConsumer(stream, group)).get('old'), 120);

    // Run 2 (consumer `new`) restores the checkpoint: the 20 after it come again, the 100 before do not.
    const s2 = redisSource(options(stream, group, { consumer: 'new', idleTimeout: undefined }));
    const d2 = drive(true);
    await s2.open?.(d2.ctx);
    await s2.restore?.(checkpoint);
    const run2 = s2.run(d2.out, d2.ctx);
    await fill(stream, 5, 120);
    await until(() => d2.records.length === 25, 'the entries after the checkpoint, then new ones');
    assert.deepEqual(
      (d2.records as { seq: number }[]).map((r) => r.seq).sort((a, b) => a - b),
      range(100, 124),
    );
    const pending = await pendingByConsumer(stream, group);
    assert.equal(pending.get('old'), undefined, 'the old consumer has nothing left');
    assert.equal(pending.get('new'), 125, 'the covered ones are held, not acknowledged yet');
    // The next checkpoint's commit acknowledges all of them.
    await s2.commit?.(s2.position?.() as Position);
    assert.equal(await pendingTotal(stream, group), 0);
    d2.stop.abort();
    await run2;
    await s2.close?.();
  });

  test('without checkpoints, entries are acknowledged only when a barrier after them completes', async () => {
    const stream = fresh('barrier');
    const group = fresh('g');
    await fill(stream, 40);
    const s = redisSource(options(stream, group, { idleTimeout: undefined, commitInterval: 0 }));
    const d = drive(false);
    await s.open?.(d.ctx);
    const running = s.run(d.out, d.ctx);
    await until(() => d.records.length === 40 && d.signals.length > 0, 'records and a barrier');
    assert.equal(await pendingTotal(stream, group), 40, 'nothing acknowledged before the barrier completes');
    const last = d.signals.at(-1) as { id: number };
    await s.onBarrierComplete?.(last.id);
    assert.equal(await pendingTotal(stream, group), 0);
    // A cancelled run acknowledges nothing more: entries read after the barrier stay pending.
    await fill(stream, 5, 40);
    await until(() => d.records.length === 45, 'the later entries');
    d.cancel.abort();
    await running.catch(() => {});
    await s.close?.();
    assert.equal(await pendingTotal(stream, group), 5);
  });

  test('two streams, whole entries as raw strings: each record names its stream and id, order kept per stream', async () => {
    const a = fresh('two-a');
    const b = fresh('two-b');
    const group = fresh('g');
    const idsA: string[] = [];
    const idsB: string[] = [];
    for (let i = 0; i < 120; i++) {
      idsA.push((await redis.xadd(a, '*', 'user', `a${i}`, 'n', `${i}`)) as string);
      if (i % 2 === 0) idsB.push((await redis.xadd(b, '*', 'user', `b${i}`, 'n', `${i}`)) as string);
    }
    const sink = collect<{ user: string; n: string }>();
    await new Pipeline('it-two')
      .from(
        redisSource({
          ...options(a, group, { format: 'raw', field: undefined, batchSize: 25 }),
          streams: [a, b],
        }),
      )
      .to(sink)
      .run({ log: quiet }).done;
    const byStream = new Map<string, string[]>();
    sink.records.forEach((r, i) => {
      const pos = sink.meta[i]?.position as { stream: string; id: string };
      assert.equal(r.user[0], pos.stream === a ? 'a' : 'b', 'the record came from the stream its meta names');
      assert.equal(typeof r.n, 'string', 'raw: field values stay strings');
      byStream.set(pos.stream, [...(byStream.get(pos.stream) ?? []), pos.id]);
    });
    assert.deepEqual(byStream.get(a), idsA, 'stream a complete and in order');
    assert.deepEqual(byStream.get(b), idsB, 'stream b complete and in order');
    assert.equal(sink.meta[0]?.timestamp, Number(idsA[0]?.split('-')[0]));
  });

  test("entries held for a long checkpoint are kept fresh: no claim (ours or another consumer's) takes them", async () => {
    const stream = fresh('fresh');
    const group = fresh('g');
    await fill(stream, 30);
    const s = redisSource(options(stream, group, { idleTimeout: undefined, claimIdle: 500 }));
    const d = drive(true);
    await s.open?.(d.ctx);
    const running = s.run(d.out, d.ctx);
    try {
      await until(() => d.records.length === 30, 'the entries');
      // Several claimIdle periods without a commit (a long checkpoint interval). Any XAUTOCLAIM of
      // an entry (the source's own claim pass included) would raise its delivery count.
      await new Promise((r) => setTimeout(r, 2000));
      const rows = (await redis.xpending(stream, group, '-', '+', 100)) as [string, string, number, number][];
      assert.equal(rows.length, 30);
      for (const [id, owner, , deliveries] of rows) {
        assert.equal(owner, 'c1', `${id} still ours`);
        assert.equal(
          Number(deliveries),
          1,
          `${id} was never claimed: its idle time was kept below claimIdle`,
        );
      }
    } finally {
      d.stop.abort();
      await running;
      await s.close?.();
    }
  });

  test('XAUTOCLAIM takes over the entries a dead consumer left pending longer than claimIdle', async () => {
    const stream = fresh('claim');
    const group = fresh('g');
    const N = 300;
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    await fill(stream, N);
    // The "dead" consumer reads everything and never acknowledges.
    const taken = (await redis.xreadgroup('GROUP', group, 'dead', 'COUNT', N, 'STREAMS', stream, '>')) as [
      string,
      unknown[],
    ][];
    assert.equal(taken[0]?.[1].length, N);
    assert.equal((await pendingByConsumer(stream, group)).get('dead'), N);
    const sink = collect<{ seq: number }>();
    const summary = await new Pipeline('it-claim')
      .from(redisSource(options(stream, group, { consumer: 'alive', claimIdle: 300, idleTimeout: 1500 })))
      .to(sink)
      .run({ log: quiet }).done;
    assert.equal(summary.recordsRead, N);
    assert.deepEqual(
      sink.records.map((r) => r.seq).sort((a, b) => a - b),
      Array.from({ length: N }, (_, i) => i),
    );
    assert.equal(
      (await pendingByConsumer(stream, group)).get('dead'),
      undefined,
      'nothing left with the dead one',
    );
    assert.equal(await pendingTotal(stream, group), 0, 'and the new owner acknowledged them');
  });

  test('a draining stop unblocks a long blocking read and acknowledges what was read', async () => {
    const stream = fresh('stop');
    const group = fresh('g');
    await fill(stream, 20);
    const sink = collect<{ seq: number }>();
    // A 10-minute block: only `CLIENT UNBLOCK` lets the stop finish before the test times out. Full
    // batches of 5 keep a read ahead in flight, which the stop must settle too.
    const handle = new Pipeline('it-stop')
      .from(redisSource(options(stream, group, { block: 600_000, idleTimeout: undefined, batchSize: 5 })))
      .to(sink)
      .run({ log: quiet });
    await until(() => sink.records.length === 20, 'the entries');
    await new Promise((r) => setTimeout(r, 100)); // let the read block again
    await handle.stop();
    const summary = await handle.done;
    assert.equal(summary.recordsRead, 20);
    assert.equal(
      await pendingTotal(stream, group),
      0,
      'a clean stop without checkpoints acknowledges everything read',
    );
  });

  test('a Redis that is not there is waited for with clear warnings, and a stop ends the wait', async () => {
    const warnings: string[] = [];
    const log: Logger = {
      info() {},
      warn(msg) {
        warnings.push(msg);
        if (warnings.length === 3) void handle.stop();
      },
      error() {},
    };
    const source = redisSource(
      options('nowhere', 'g', { url: 'redis://:secret@127.0.0.1:1', idleTimeout: undefined }),
    );
    const handle = new Pipeline('it-redis-down').from(source).to(collect()).run({ log });
    const summary = await handle.done;
    assert.equal(summary.recordsRead, 0);
    const retry = warnings.find((w) => w.includes('retrying in')) as string;
    assert.match(
      retry,
      /Redis at `redis:\/\/:\*\*\*@127\.0\.0\.1:1` is not reachable \(.*ECONNREFUSED.*\) while/,
    );
    assert.doesNotMatch(warnings.join('\n'), /secret/, 'no password in messages');
  });

  test('a Redis restart mid-run (AOF, private server) is ridden out: every entry arrives and is acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-restart-'));
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const server = (): ReturnType<typeof spawn> =>
      spawn(
        'redis-server',
        [
          '--port',
          `${port}`,
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
        ],
        { stdio: 'ignore' },
      );
    let proc = server();
    const own = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    own.on('error', () => {});
    try {
      await until(async () => (await own.ping().catch(() => '')) === 'PONG', 'the private server');
      const stream = 'restart';
      const N = 3000;
      const p = own.pipeline();
      for (let i = 0; i < N; i++) p.xadd(stream, '*', 'data', JSON.stringify({ seq: i }));
      await p.exec();
      const warnings: string[] = [];
      const sink = collect<{ seq: number }>();
      const handle = new Pipeline('it-redis-restart')
        .from(redisSource({ ...options(stream, 'g', { idleTimeout: 3000, batchSize: 50 }), url }))
        .throttle({ rate: 3000 })
        .to(sink)
        .run({
          log: {
            info() {},
            warn(msg) {
              warnings.push(msg);
            },
            error() {},
          },
        });
      await until(() => sink.records.length >= 600, 'some records before the restart');
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      await new Promise((r) => setTimeout(r, 300));
      proc = server();
      const summary = await handle.done;
      const seqs = new Set(sink.records.map((r) => r.seq));
      assert.equal(seqs.size, N, 'every entry arrived');
      assert.ok(summary.recordsRead >= N);
      assert.ok(
        warnings.some((w) =>
          /Redis at `redis:\/\/127\.0\.0\.1:\d+\/?` is not reachable .* retrying in \d+ ms/.test(w),
        ),
        `a reconnect warning (${warnings.join(' | ')})`,
      );
      const [pending] = (await own.xpending(stream, 'g')) as [number];
      assert.equal(Number(pending), 0, 'everything acknowledged');
    } finally {
      own.disconnect();
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a Redis the sink cannot reach is waited for with a warning per attempt, and a cancel ends the wait', async () => {
    const warnings: string[] = [];
    let read = false;
    const source: Source = {
      async run(out) {
        read = true;
        await out.emit({ kind: 'batch', records: [{ seq: 0 }] });
      },
    };
    const sink = redisSink({
      url: 'redis://:secret@127.0.0.1:1',
      stream: 'nowhere',
      field: 'data',
      format: 'json',
      approximate: true,
      batchSize: 64,
    });
    const log: Logger = {
      info() {},
      warn(msg) {
        warnings.push(msg);
        if (warnings.length === 2) void handle.stop({ drain: false });
      },
      error() {},
    };
    const handle = new Pipeline('it-redis-sink-down').from(source).to(sink).run({ log });
    const summary = await handle.done;
    assert.equal(summary.state, 'cancelled');
    assert.equal(read, false, 'no source started before the sink was open');
    assert.equal(sink.written, 0);
    assert.ok(warnings.length >= 2, warnings.join(' | '));
    for (const w of warnings)
      assert.match(
        w,
        /^Redis at `redis:\/\/:\*\*\*@127\.0\.0\.1:1` is not reachable \(.*ECONNREFUSED.*\) while writing stream `nowhere`; retrying in \d+ ms$/,
      );
  });

  test('the sink appends with XADD, caps the stream with MAXLEN, and its entries read back as written', async () => {
    const stream = fresh('sink');
    const N = 1000;
    const records = Array.from({ length: N }, (_, i) => ({ seq: i, amount: `${i}.10`, tags: ['a', i] }));
    const source: Source = {
      async run(out) {
        for (let i = 0; i < N; i += 128)
          await out.emit({ kind: 'batch', records: records.slice(i, i + 128) });
      },
    };
    const sink = redisSink({
      url: REDIS_URL,
      stream,
      maxLen: 100,
      approximate: false,
      field: 'data',
      format: 'json',
      batchSize: 64,
    });
    await new Pipeline('it-sink').from(source).to(sink).run({ log: quiet }).done;
    assert.equal(sink.written, N);
    assert.equal(await redis.xlen(stream), 100, 'MAXLEN kept exactly the newest 100');
    const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    assert.deepEqual(
      entries.map(([, f]) => JSON.parse(f[1] as string)),
      records.slice(N - 100),
    );
    // Whole-object entries (no `field`), raw: one field per property; a non-object goes to the dlq.
    const flat = fresh('flat');
    const dead: DeadLetter[] = [];
    const p = new Pipeline('it-sink-flat');
    p.from({
      async run(out) {
        await out.emit({
          kind: 'batch',
          records: [{ user: 'u1', n: 1 }, 'not an object', { user: 'u2', n: 2 }],
        });
      },
    }).to(redisSink({ url: REDIS_URL, stream: flat, approximate: true, format: 'raw', batchSize: 10 }));
    p.dlq({
      write(b: Batch) {
        dead.push(...(b.records as DeadLetter[]));
      },
    });
    await p.run({ log: quiet }).done;
    const flatEntries = (await redis.xrange(flat, '-', '+')) as [string, string[]][];
    assert.deepEqual(
      flatEntries.map(([, f]) => f),
      [
        ['user', 'u1', 'n', '1'],
        ['user', 'u2', 'n', '2'],
      ],
    );
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.record, 'not an object');
  });
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
