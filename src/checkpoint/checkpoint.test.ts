import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { Graph } from '../core/graph.ts';
import { batchOf } from '../core/message.ts';
import { runGraph } from '../core/run.ts';
import type { Logger, Operator, Sink, Source } from '../core/stage.ts';
import { lmdbBackend, memoryBackend } from '../state/backend.ts';
import { CheckpointCoordinator } from './coordinator.ts';
import { CheckpointStore } from './store.ts';
import { WriteAheadLog } from './wal.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-cp-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
}

const cp = (id: number, state = `state-${id}`) => ({
  id,
  completedAt: id,
  sources: { in: { line: id } },
  sinks: { out: { length: id } },
  operators: new Map([['op', new TextEncoder().encode(state)]]),
});

describe('CheckpointStore', () => {
  it('loads the newest checkpoint and keeps only the last `retain`', async () => {
    const backend = memoryBackend();
    const store = new CheckpointStore(backend, { retain: 2 });
    for (const id of [1, 2, 3]) await store.save(cp(id));
    assert.deepEqual(await store.ids(), [2, 3]);
    const latest = await store.latest();
    assert.equal(latest?.id, 3);
    assert.deepEqual(latest?.sources, { in: { line: 3 } });
    assert.equal(new TextDecoder().decode(latest?.operators.get('op')), 'state-3');
  });

  it('skips a checkpoint whose metadata was never written (crash mid-write), silently', async () => {
    const log = recorder();
    const store = new CheckpointStore(memoryBackend(), {
      log,
      hooks: {
        afterBlobs: (id) => {
          if (id === 2) throw new Error('killed');
        },
      },
    });
    await store.save(cp(1));
    await assert.rejects(store.save(cp(2)), /storing checkpoint 2: killed/);
    assert.equal((await store.latest())?.id, 1);
    assert.deepEqual(log.warnings, []);
    await store.save(cp(3));
    assert.deepEqual(await store.ids(), [1, 3], 'the half-written one is garbage-collected');
  });

  it('falls back to the previous checkpoint with a warning when one is corrupted', async () => {
    const log = recorder();
    const backend = memoryBackend();
    const store = new CheckpointStore(backend, { log, retain: 3 });
    for (const id of [1, 2, 3]) await store.save(cp(id));
    // A flipped bit in checkpoint 3's state blob, a truncated metadata record for checkpoint 2.
    const blob = backend.data.get('cp/000000000003/state/op') as Uint8Array;
    blob[blob.length - 1] = (blob[blob.length - 1] as number) ^ 1;
    const meta = backend.data.get('cp/000000000002/meta') as Uint8Array;
    backend.data.set('cp/000000000002/meta', meta.subarray(0, meta.length - 3));
    assert.equal((await store.latest())?.id, 1);
    assert.equal(log.warnings.length, 2);
    assert.match(log.warnings[0] as string, /Checkpoint `3` is damaged \(state of `op` checksum mismatch\)/);
    assert.match(log.warnings[1] as string, /Checkpoint `2` is damaged \(metadata truncated/);
  });

  it('stores in LMDB across reopenings, and `clear` forgets everything', async () => {
    const dir = tmp();
    let b = await lmdbBackend({ dir });
    await new CheckpointStore(b).save(cp(5));
    await b.close();
    b = await lmdbBackend({ dir });
    const store = new CheckpointStore(b);
    assert.equal((await store.latest())?.id, 5);
    await store.clear();
    assert.equal(await store.latest(), undefined);
    await b.close();
  });

  it('fails clearly when the store folder cannot be created', async () => {
    const file = join(tmp(), 'a-file');
    appendFileSync(file, 'x');
    await assert.rejects(
      lmdbBackend({ dir: join(file, 'store') }),
      /cannot open the state store in .*a-file\/store/,
    );
  });
});

describe('WriteAheadLog', () => {
  it('replays entries after the restored checkpoint and deletes covered segments', async () => {
    const dir = tmp();
    const log = recorder();
    const wal = await WriteAheadLog.open({ dir, fsync: 'always', log });
    await wal.append('a');
    wal.rotate(1);
    await wal.append('b');
    wal.rotate(2);
    await wal.append('c');
    await wal.close();
    const again = await WriteAheadLog.open({ dir, fsync: 'never', log });
    const all: unknown[] = [];
    for await (const e of again.replay(1)) all.push(e);
    assert.deepEqual(all, ['b', 'c']);
    await again.truncateBefore(2);
    const rest: unknown[] = [];
    for await (const e of again.replay(undefined)) rest.push(e);
    assert.deepEqual(rest, ['c']);
    await again.close();
    assert.deepEqual(log.warnings, []);
  });

  it('skips a torn last entry with a warning and cuts the segment back', async () => {
    const dir = tmp();
    const log = recorder();
    const wal = await WriteAheadLog.open({ dir, log });
    await wal.append({ n: 1 });
    await wal.append({ n: 2 });
    await wal.close();
    const seg = join(dir, readdirSync(dir)[0] as string);
    const whole = statSync(seg).size;
    appendFileSync(seg, Buffer.from([0, 0, 0, 50, 1, 2, 3, 4, 9, 9])); // header says 50 bytes; 2 follow
    const again = await WriteAheadLog.open({ dir, log });
    const got: unknown[] = [];
    for await (const e of again.replay(undefined)) got.push(e);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    assert.equal(log.warnings.length, 1);
    assert.match(log.warnings[0] as string, /torn entry at byte \d+/);
    assert.equal(statSync(seg).size, whole, 'the torn bytes are cut off');
    await again.close();
  });

  it('stops at a corrupt entry (checksum) instead of replaying garbage', async () => {
    const dir = tmp();
    const log = recorder();
    const wal = await WriteAheadLog.open({ dir, log });
    await wal.append('first');
    await wal.append('second');
    await wal.close();
    const seg = join(dir, readdirSync(dir)[0] as string);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const bytes = readFileSync(seg);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(seg, bytes);
    const got: unknown[] = [];
    for await (const e of (await WriteAheadLog.open({ dir, log })).replay(undefined)) got.push(e);
    assert.deepEqual(got, ['first']);
    assert.match(log.warnings[0] as string, /checksum mismatch/);
  });
});

describe('CheckpointCoordinator', () => {
  const parts = (commits: number[]) => ({
    sources: ['in'],
    sinks: ['a', 'b'],
    commit: async (c: { id: number }) => {
      commits.push(c.id);
    },
  });

  it('triggers on the injected clock, completes when every sink acked, then commits', async () => {
    const clock = new ManualClock(0);
    const commits: number[] = [];
    const store = new CheckpointStore(memoryBackend());
    const c = new CheckpointCoordinator({ store, intervalMs: 1000, clock, log: recorder() });
    assert.equal(await c.restore(), undefined);
    c.begin(parts(commits));
    assert.equal(c.barrierDue('in', 10), undefined, 'not due before the interval');
    clock.advance(1000);
    assert.equal(c.barrierDue('in', 10), 1);
    c.sourceBarrier(1, 'in', { line: 20 });
    assert.equal(c.barrierDue('in', 10), undefined, 'one barrier per source and checkpoint');
    c.operatorSnapshot(1, 'op', new Map([['k', 1n]]));
    c.sinkAcked(1, 'a', { length: 5 });
    await c.finish('stopped').catch(() => {}); // waits for nothing in flight yet: b has not acked
    assert.deepEqual(commits, []);
    assert.equal(await store.latest(), undefined, 'not stored before every sink acked');
  });

  it('stores, then commits; a crash between the two leaves the stored checkpoint in force', async () => {
    const clock = new ManualClock(0);
    const commits: number[] = [];
    const store = new CheckpointStore(memoryBackend());
    const c = new CheckpointCoordinator({
      store,
      intervalMs: 0,
      everyRecords: 100,
      clock,
      log: recorder(),
      hooks: {
        afterStore: (id) => {
          if (id === 2) throw new Error('crash after store');
        },
      },
    });
    await c.restore();
    c.begin(parts(commits));
    assert.equal(c.barrierDue('in', 99), undefined);
    assert.equal(c.barrierDue('in', 1), 1, 'due by records');
    c.sourceBarrier(1, 'in', { line: 100 });
    c.sinkAcked(1, 'a', 1);
    c.sinkAcked(1, 'b', 2);
    assert.equal(c.barrierDue('in', 100), undefined, 'one checkpoint in flight at a time');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(commits, [1]);
    assert.equal(c.barrierDue('in', 100), 2);
    c.sourceBarrier(2, 'in', { line: 200 });
    c.sinkAcked(2, 'a', 1);
    c.sinkAcked(2, 'b', 2);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(commits, [1], 'checkpoint 2 stored but its commit never ran');
    const restarted = new CheckpointCoordinator({ store, clock, log: recorder() });
    const r = await restarted.restore();
    assert.equal(r?.id, 2);
    assert.deepEqual(r?.sources, { in: { line: 200 } });
    assert.equal(restarted.upcomingId, 3);
  });

  it('starts a requested checkpoint before the interval and says when it is committed', async () => {
    const clock = new ManualClock(0);
    const commits: number[] = [];
    const c = new CheckpointCoordinator({
      store: new CheckpointStore(memoryBackend()),
      intervalMs: 60_000,
      clock,
      log: recorder(),
    });
    await c.restore();
    c.begin(parts(commits));
    assert.equal(c.barrierDue('in', 0), undefined, 'not due before the interval');
    c.requestCheckpoint();
    assert.equal(c.barrierDue('in', 0), 1, 'requested: due at once');
    const committed = c.whenCommitted(1);
    c.sourceBarrier(1, 'in', { line: 5 });
    c.sinkAcked(1, 'a', 1);
    c.sinkAcked(1, 'b', 2);
    assert.equal(await committed, true);
    assert.deepEqual(commits, [1], 'resolved after the commit');
    assert.equal(await c.whenCommitted(1), true, 'already committed');
    assert.equal(c.barrierDue('in', 0), undefined, 'one request, one checkpoint');
    const never = c.whenCommitted(2);
    await c.finish('stopped');
    assert.equal(await never, false, 'the run finished first');
  });
});

describe('runtime with checkpoints', () => {
  /** Emits `n` numbers from its position on, one per batch; resumes from `restore`. */
  function counting(n: number): Source<number> & { committed: number[] } {
    let next = 0;
    const committed: number[] = [];
    return {
      committed,
      async run(out, ctx) {
        while (next < n && !ctx.stopSignal.aborted) {
          const v = next++;
          await out.emit(batchOf([v]));
        }
      },
      position: () => ({ next }),
      restore(p) {
        next = p.next as number;
      },
      commit(p) {
        committed.push(p.next as number);
      },
    };
  }
  function summing(): Operator<number, number> & { sum: number } {
    const op = {
      sum: 0,
      async process(b: { records: readonly number[] }, out: { emit: (b: unknown) => Promise<void> }) {
        for (const r of b.records) op.sum += r;
        await out.emit(batchOf([op.sum]));
      },
      snapshot: () => op.sum,
      restore(s: unknown) {
        op.sum = s as number;
      },
    };
    return op as never;
  }
  function collecting(failAt?: number): Sink<number> & { got: number[]; acks: number } {
    const s = {
      got: [] as number[],
      acks: 0,
      write(b: { records: readonly number[] }) {
        for (const r of b.records) {
          if (r === failAt) throw new Error('boom');
          s.got.push(r);
        }
      },
      onSignal(sig: { kind: string }) {
        if (sig.kind === 'barrier') s.acks++;
      },
    };
    return s as never;
  }

  it('snapshots at barriers and resumes state and position after a failure', async () => {
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    const build = (failAt?: number) => {
      const g = new Graph('t');
      const src = counting(50);
      const op = summing();
      const sink = collecting(failAt);
      g.addSource(src as Source, { name: 'in' });
      g.addOperator(op as Operator, { name: 'sum' });
      g.addSink(sink as Sink, { name: 'out' });
      g.connect('in', 'sum');
      g.connect('sum', 'out');
      const checkpoint = new CheckpointCoordinator({
        store,
        intervalMs: 0,
        everyRecords: 10,
        clock,
        log: recorder(),
      });
      return { g, src, sink, checkpoint };
    };
    // The running sum passes 600 at the 36th number (0+…+35 = 630): the sink fails there.
    const first = build(630);
    await assert.rejects(
      runGraph(first.g, { clock, checkpoint: first.checkpoint, log: recorder() }).done,
      /boom/,
    );
    assert.ok(first.sink.acks >= 3, `${first.sink.acks} barriers acknowledged`);
    assert.ok(first.src.committed.length >= 1, 'positions were committed after checkpoints');
    const restoredFrom = (await store.latest())?.sources.in?.next as number;
    const second = build();
    await runGraph(second.g, { clock, checkpoint: second.checkpoint, log: recorder() }).done;
    // The restarted run starts right after the checkpoint, with the sum as it was there.
    let sum = 0;
    const expected: number[] = [];
    for (let i = 0; i < 50; i++) {
      sum += i;
      if (i >= restoredFrom) expected.push(sum);
    }
    assert.deepEqual(second.sink.got, expected);
    assert.deepEqual(await store.ids(), [], 'a finished job forgets its checkpoints');
  });
});
