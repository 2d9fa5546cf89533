/**
 * Outputs a user can trust (the file sink with the runtime): several outputs commit together or
 * not at all, the dlq file is exactly-once under checkpoints, and a stop never passes a partial
 * output off as a final one.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointCoordinator } from '../../checkpoint/coordinator.ts';
import { CheckpointStore } from '../../checkpoint/store.ts';
import { ManualClock } from '../../core/clock.ts';
import { batchOf } from '../../core/message.ts';
import type { Logger, Operator, Source } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { memoryBackend } from '../../state/backend.ts';
import { fileSink } from './sink.ts';
import { fileSource } from './source.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-outputs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };

function numbers(n: number, batch = 10): Source {
  return {
    async run(out, ctx) {
      for (let i = 0; i < n && !ctx.stopSignal.aborted; i += batch) {
        const recs: unknown[] = [];
        for (let j = i; j < Math.min(n, i + batch); j++) recs.push({ n: j });
        await out.emit(batchOf(recs));
      }
    },
  };
}

const lines = async (p: string) => (await readFile(p, 'utf8')).split('\n').filter((l) => l.length > 0);

describe('several file outputs commit together', () => {
  it('leaves every final path untouched when one output cannot be committed', async () => {
    const d = join(dir, 'all-or-nothing');
    // The main output's final path is a folder that is not empty: it cannot be replaced.
    await mkdir(join(d, 'main.jsonl', 'x'), { recursive: true });
    const g = new Pipeline('t');
    const src = g.from(numbers(100));
    src.to(fileSink({ path: join(d, 'main.jsonl'), format: 'jsonl' }));
    src.to(fileSink({ path: join(d, 'even.jsonl'), format: 'jsonl' }));
    await assert.rejects(g.run({ log: quiet }).done, /main\.jsonl/);
    assert.equal(existsSync(join(d, 'even.jsonl')), false, 'the side output was committed alone');
    assert.deepEqual(
      (await readdir(d)).filter((f) => f.includes('sluice-tmp')),
      [],
      'temporary files are removed',
    );
  });

  it('commits every output when all can be committed', async () => {
    const d = join(dir, 'all');
    const g = new Pipeline('t');
    const src = g.from(numbers(100));
    src.to(fileSink({ path: join(d, 'a.jsonl'), format: 'jsonl' }));
    src.to(fileSink({ path: join(d, 'b.jsonl'), format: 'jsonl' }));
    const summary = await g.run({ log: quiet }).done;
    assert.equal(summary.state, 'succeeded');
    assert.equal((await lines(join(d, 'a.jsonl'))).length, 100);
    assert.equal((await lines(join(d, 'b.jsonl'))).length, 100);
  });
});

describe('the dlq file under checkpoints', () => {
  it('holds every dead letter exactly once after a failure and a restart', async () => {
    const d = join(dir, 'dlq');
    await mkdir(d, { recursive: true });
    const input = join(d, 'in.jsonl');
    const rows: string[] = [];
    for (let i = 0; i < 2000; i++) rows.push(i % 7 === 3 ? `bad ${i}` : JSON.stringify({ n: i }));
    await writeFile(input, `${rows.join('\n')}\n`);
    const badCount = rows.filter((r) => r.startsWith('bad')).length;
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    const run = (failAfter: number | undefined) => {
      let seen = 0;
      const failing: Operator = {
        async process(b, out) {
          seen += b.records.length;
          if (failAfter !== undefined && seen > failAfter) throw new Error('crash');
          await out.emit(b);
        },
      };
      const p = new Pipeline('dlq');
      p.from(fileSource({ path: input, format: 'jsonl', batchSize: 16 }), { name: 'input' })
        .via(failing, { name: 'fail' })
        .to(fileSink({ path: join(d, 'out.jsonl'), format: 'jsonl' }), { name: 'out' });
      p.dlq(fileSink({ path: join(d, 'dead.jsonl'), format: 'jsonl' }));
      const checkpoint = new CheckpointCoordinator({
        store,
        intervalMs: 0,
        everyRecords: 40,
        clock,
        log: quiet,
      });
      return p.run({ clock, checkpoint, log: quiet }).done;
    };
    await assert.rejects(run(1000), /crash/);
    const summary = await run(undefined);
    assert.equal(summary.state, 'succeeded');
    const dead = (await lines(join(d, 'dead.jsonl'))).map((l) => JSON.parse(l).record as string);
    assert.equal(new Set(dead).size, dead.length, `${dead.length - new Set(dead).size} duplicate letters`);
    assert.equal(dead.length, badCount);
    assert.equal((await lines(join(d, 'out.jsonl'))).length, rows.length - badCount);
  });
});

describe('a stop is not an end', () => {
  /** Emits `n` records in batches of 10, then waits for the stop before the rest. */
  function stoppable(n: number, stopAfter: number): Source & { reached: Promise<void> } {
    let reached!: () => void;
    const at = new Promise<void>((r) => {
      reached = r;
    });
    let next = 0;
    return {
      reached: at,
      async run(out, ctx) {
        while (next < n) {
          if (next === stopAfter) {
            reached();
            await new Promise<void>((r) =>
              ctx.stopSignal.addEventListener('abort', () => r(), { once: true }),
            );
            return;
          }
          const recs: unknown[] = [];
          for (let j = 0; j < 10; j++)
            recs.push({ g: 'a', n: next++, ts: new Date(next * 1000).toISOString() });
          await out.emit(batchOf(recs));
        }
      },
      position: () => ({ next }),
      restore(p) {
        next = p.next as number;
      },
    };
  }

  it('without checkpoints, keeps a stopped output under a partial name, never the final one', async () => {
    const d = join(dir, 'stop-plain');
    const src = stoppable(100, 50);
    const p = new Pipeline('t');
    p.from(src).to(fileSink({ path: join(d, 'out.jsonl'), format: 'jsonl' }));
    const handle = p.run({ log: quiet });
    await src.reached;
    const summary = await handle.stop();
    assert.equal(summary.state, 'succeeded');
    assert.equal(existsSync(join(d, 'out.jsonl')), false, 'a partial output under the final path');
    assert.equal((await lines(join(d, 'out.jsonl.partial'))).length, 50);
  });

  it('under checkpoints, keeps a stopped output under its temporary name and the next run completes it', async () => {
    const d = join(dir, 'stop-cp');
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    const run = (src: Source) => {
      const p = new Pipeline('t');
      p.from(src, { name: 'in' }).to(fileSink({ path: join(d, 'out.jsonl'), format: 'jsonl' }), {
        name: 'out',
      });
      const checkpoint = new CheckpointCoordinator({
        store,
        intervalMs: 0,
        everyRecords: 20,
        clock,
        log: quiet,
      });
      return p.run({ clock, checkpoint, log: quiet });
    };
    const first = stoppable(100, 50);
    const handle = run(first);
    await first.reached;
    await handle.stop();
    assert.equal(existsSync(join(d, 'out.jsonl')), false, 'a partial output under the final path');
    assert.ok(
      (await readdir(d)).some((f) => f.startsWith('.out.jsonl.sluice-tmp-')),
      'the temporary file is kept',
    );
    const summary = await run(stoppable(100, -1)).done;
    assert.equal(summary.state, 'succeeded');
    const got = (await lines(join(d, 'out.jsonl'))).map((l) => JSON.parse(l).n as number);
    assert.deepEqual(
      got,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it('does not pass windows cut off by a stop as final results', async () => {
    const src = stoppable(100, 50);
    const got: Record<string, unknown>[] = [];
    const p = new Pipeline('t');
    p.from(src)
      .window({ key: ['g'], time: 'ts', tumbling: '1h', aggregate: { count: 'count()' } })
      .to({
        write(b) {
          got.push(...(b.records as Record<string, unknown>[]));
        },
      });
    const handle = p.run({ log: quiet });
    await src.reached;
    await handle.stop();
    assert.equal(got.length, 1);
    assert.equal(got[0]?.partial, true, 'a window cut off by the stop is marked partial');
    assert.equal(got[0]?.count, 50);
  });

  it('under checkpoints, does not fire windows on a stop (they are in the checkpoint)', async () => {
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    const got: Record<string, unknown>[] = [];
    const run = (src: Source) => {
      const p = new Pipeline('t');
      p.from(src, { name: 'in' })
        .window({ key: ['g'], time: 'ts', tumbling: '1h', aggregate: { count: 'count()' }, name: 'w' })
        .to(
          {
            write(b) {
              got.push(...(b.records as Record<string, unknown>[]));
            },
          },
          { name: 'out' },
        );
      const checkpoint = new CheckpointCoordinator({
        store,
        intervalMs: 0,
        everyRecords: 20,
        clock,
        log: quiet,
      });
      return p.run({ clock, checkpoint, log: quiet });
    };
    const first = stoppable(100, 50);
    const handle = run(first);
    await first.reached;
    await handle.stop();
    assert.equal(got.length, 0, 'no result on a stop under checkpoints');
    await run(stoppable(100, -1)).done;
    assert.equal(got.length, 1);
    assert.equal(got[0]?.count, 100);
    assert.equal(got[0]?.revision, 1);
    assert.equal(got[0]?.partial, undefined);
  });
});
