/**
 * Checkpoints that can restore, or say so before the run: an idle source still checkpoints on
 * the interval (the coordinator's timer path), `generate` resumes at its position, and `stdin`
 * without the write-ahead log is refused at lint and at start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { defaultRegistry } from '../components.ts';
import { lintPipelineFile } from '../config/build.ts';
import { fileSink } from '../connectors/file/sink.ts';
import { generateSource } from '../connectors/generate/source.ts';
import { stdinSource } from '../connectors/stdio/source.ts';
import { ManualClock } from '../core/clock.ts';
import { batchOf } from '../core/message.ts';
import type { Logger, Operator, Source } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';
import { memoryBackend } from '../state/backend.ts';
import { CheckpointCoordinator } from './coordinator.ts';
import { CheckpointStore } from './store.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-resumable-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };
const turn = () => new Promise((r) => setImmediate(r));

describe('an idle source', () => {
  it('still takes checkpoints on the interval', async () => {
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    let next = 0;
    // Emits 10 records, then waits for input that never comes (an idle pipe or topic).
    const idle: Source = {
      idleBarriers: true,
      async run(out, ctx) {
        await out.emit(batchOf(Array.from({ length: 10 }, () => ({ n: next++ }))));
        await new Promise<void>((r) => ctx.stopSignal.addEventListener('abort', () => r(), { once: true }));
      },
      position: () => ({ next }),
      restore() {},
    };
    const p = new Pipeline('idle');
    p.from(idle, { name: 'in' }).to({ write() {} }, { name: 'out' });
    const checkpoint = new CheckpointCoordinator({ store, intervalMs: 1000, clock, log: quiet });
    const handle = p.run({ clock, checkpoint, log: quiet });
    for (let i = 0; i < 100 && (await store.latest()) === undefined; i++) {
      clock.advance(500);
      await turn();
    }
    const cp = await store.latest();
    await handle.stop();
    assert.ok(cp !== undefined, 'no checkpoint while the source was idle');
    assert.deepEqual(cp.sources.in, { next: 10 });
  });
});

describe('generate under checkpoints', () => {
  it('resumes at its position: every record exactly once after a failure and a restart', async () => {
    const d = tmp();
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    const run = (failAfter?: number) => {
      let seen = 0;
      const failing: Operator = {
        async process(b, out) {
          seen += b.records.length;
          if (failAfter !== undefined && seen > failAfter) throw new Error('crash');
          await out.emit(b);
        },
      };
      const p = new Pipeline('gen');
      p.from(generateSource({ count: 1000, seed: 5, batchSize: 50, disorderMs: 20 }), { name: 'in' })
        .via(failing, { name: 'fail' })
        .to(fileSink({ path: join(d, 'out.jsonl'), format: 'jsonl' }), { name: 'out' });
      const checkpoint = new CheckpointCoordinator({
        store,
        intervalMs: 0,
        everyRecords: 100,
        clock,
        log: quiet,
      });
      return p.run({ clock, checkpoint, log: quiet }).done;
    };
    await assert.rejects(run(620), /crash/);
    await run();
    const got = readFileSync(join(d, 'out.jsonl'), 'utf8').trim().split('\n');
    const reference = await new Promise<unknown[]>((resolve, reject) => {
      const recs: unknown[] = [];
      new Pipeline('ref')
        .from(generateSource({ count: 1000, seed: 5, batchSize: 50, disorderMs: 20 }))
        .to({ write: (b) => void recs.push(...b.records) })
        .run()
        .done.then(() => resolve(recs), reject);
    });
    assert.deepEqual(
      got.map((l) => JSON.parse(l)),
      reference,
    );
  });

  it('skips in constant time to exactly the records that follow', () => {
    const a = generateSource({ seed: 9, disorderMs: 3 });
    const b = generateSource({ seed: 9, disorderMs: 3 });
    void a.restore?.({ generated: 12_345 });
    const seq: unknown[] = [];
    const ref: unknown[] = [];
    return Promise.all([
      a.run({ emit: async (x) => void seq.push(...x.records), signal: async () => {} }, stopAfter(1)),
      b.run({ emit: async (x) => void ref.push(...x.records), signal: async () => {} }, stopAfter(13)),
    ]).then(() => assert.deepEqual(seq[0], ref[12_345]));
  });
});

/** A context whose stop aborts after `n` emitted batches of 1024. */
function stopAfter(n: number): never {
  const stop = new AbortController();
  let batches = 0;
  const ctx = {
    name: 'g',
    signal: new AbortController().signal,
    get stopSignal() {
      if (batches++ >= n) stop.abort();
      return stop.signal;
    },
    clock: new ManualClock(0),
    log: quiet,
    checkpointing: false,
    deadLetter() {},
    runScoped: () => undefined,
  };
  return ctx as never;
}

describe('stdin under checkpoints', () => {
  it('is refused by lint without the write-ahead log, with the reason, and accepted with it', async () => {
    const d = tmp();
    const file = join(d, 'p.yaml');
    writeFileSync(
      file,
      'name: s\ninput: { stdin: { format: jsonl } }\noutput: { stdout: { format: jsonl } }\ncheckpoint: { interval: 1s }\n',
    );
    const problems = await lintPipelineFile(file, { registry: defaultRegistry });
    assert.ok(
      problems.some((p) => p.severity === 'error' && /cannot be read again.*wal: true/.test(p.message)),
      JSON.stringify(problems),
    );
    writeFileSync(
      file,
      'name: s\ninput: { stdin: { format: jsonl } }\noutput: { stdout: { format: jsonl } }\ncheckpoint: { interval: 1s, wal: true }\n',
    );
    const ok = await lintPipelineFile(file, { registry: defaultRegistry });
    assert.deepEqual(
      ok.filter((p) => p.severity === 'error'),
      [],
    );
  });

  it('is refused at start without the write-ahead log', async () => {
    const p = new Pipeline('s');
    p.from(stdinSource({ format: 'jsonl', stream: Readable.from(['{"a":1}\n']) }), { name: 'in' }).to(
      { write() {} },
      { name: 'out' },
    );
    const checkpoint = new CheckpointCoordinator({
      store: new CheckpointStore(memoryBackend()),
      intervalMs: 1000,
      clock: new ManualClock(0),
      log: quiet,
    });
    await assert.rejects(p.run({ checkpoint, log: quiet }).done, /cannot be read again.*write-ahead log/);
  });
});
