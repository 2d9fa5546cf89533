/**
 * The rolling `file` sink with the runtime: when parts roll (size, age, time bucket, checkpoint,
 * end of input), when they get their final names (at once without checkpoints; when the
 * checkpoint covering them is stored with), exactly-once across a failure and a restart, a crash
 * between storing a checkpoint and renaming its parts, compression and CSV headers per part, and
 * the bad configurations (through `sluice lint` too).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { shown, sluice } from '../../../test/support/cli.ts';
import { CheckpointCoordinator } from '../../checkpoint/coordinator.ts';
import { CheckpointStore } from '../../checkpoint/store.ts';
import { ManualClock } from '../../core/clock.ts';
import { batchOf } from '../../core/message.ts';
import type { Logger, Operator, Source } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { memoryBackend } from '../../state/backend.ts';
import { type RollingFileSinkOptions, rollingFileSink } from './rolling-sink.ts';
import { fileSource } from './source.ts';
import { fileSinkSpec } from './spec.ts';
import { collect } from './test-helpers.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-rolling-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** Every file under `d` (relative paths, sorted), hidden staging folders included. */
async function files(d: string): Promise<string[]> {
  if (!existsSync(d)) return [];
  const out = (await readdir(d, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => relative(d, join(e.parentPath, e.name)));
  return out.sort();
}

/** The committed parts under `d`: files outside the staging folder. */
const parts = async (d: string) => (await files(d)).filter((f) => !f.includes('.sluice-parts-'));
const staged = async (d: string) => (await files(d)).filter((f) => f.includes('.sluice-parts-'));

/** The `n` of every JSON line of the parts (in the parts' order, which is the order they were opened). */
async function numbersIn(d: string, names: readonly string[]): Promise<number[]> {
  const out: number[] = [];
  for (const f of names) {
    const raw = await readFile(join(d, f));
    const text = f.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
    assert.ok(text.endsWith('\n'), `part \`${f}\` ends with a whole line`);
    for (const l of text.split('\n')) if (l !== '') out.push((JSON.parse(l) as { n: number }).n);
  }
  return out;
}

/** Parts sorted by their number (`<run>-<n>`), which is the order they were written. */
function byPartNumber(names: string[]): string[] {
  const num = (f: string) => Number(/-(\d+)\.[a-z.]+$/.exec(f)?.[1] ?? Number.NaN);
  return [...names].sort((a, b) => num(a) - num(b));
}

/** Emits `n` records `{ n }` in batches of `batch`, calling `each(i)` before batch `i`. */
function numbers(n: number, batch: number, each?: (i: number) => void | Promise<void>): Source {
  let next = 0;
  return {
    async run(out, ctx) {
      while (next < n && !ctx.stopSignal.aborted) {
        await each?.(next / batch);
        const recs: unknown[] = [];
        for (let j = 0; j < batch && next < n; j++) recs.push({ n: next++ });
        await out.emit(batchOf(recs));
      }
    },
    position: () => ({ next }),
    restore(p) {
      next = p.next as number;
    },
  };
}

const seq = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Runs `source` into a rolling sink without checkpoints; returns the committed parts in order. */
async function rollPlain(
  d: string,
  source: Source,
  name: string,
  rolling: RollingFileSinkOptions['rolling'],
) {
  const p = new Pipeline('t');
  const format = name.includes('.csv') ? 'csv' : 'jsonl';
  p.from(source).to(rollingFileSink({ path: join(d, name), format, rolling }));
  await p.run({ log: quiet }).done;
  return byPartNumber(await parts(d));
}

describe('rolling without checkpoints', () => {
  it('rolls by size, commits each part at once, and every record is in exactly one part', async () => {
    const d = join(dir, 'size');
    const names = await rollPlain(d, numbers(1000, 50), 'part-{part}.jsonl', { maxSize: 2000 });
    // 1000 lines of 8–10 bytes are ~9.9 kB: 50 lines (≥ 450 bytes) per batch, a roll every 5 batches.
    assert.equal(names.length, 5, names.join(', '));
    assert.deepEqual(await numbersIn(d, names), seq(1000));
    for (const f of names) assert.match(f, /^part-[0-9a-f]{8}-\d+\.jsonl$/);
    assert.deepEqual(await staged(d), [], 'nothing left staged');
  });

  it('rolls by age and by time bucket, by the run clock', async () => {
    const d = join(dir, 'age');
    const clock = new ManualClock(Date.UTC(2026, 11, 7, 23, 50));
    const p = new Pipeline('t');
    // A batch every 4 minutes (moved by the sink, so the source running ahead does not move it
    // early): maxAge 10m ends a part after 3 batches, and midnight starts a new day.
    const sink = rollingFileSink({
      path: join(d, '%Y-%m-%d/p-{part}.jsonl'),
      format: 'jsonl',
      rolling: { maxAge: 600_000 },
    });
    let batches = 0;
    p.from(numbers(70, 10)).to({
      ...sink,
      write(b) {
        if (batches++ > 0) clock.advance(4 * 60_000);
        return sink.write(b);
      },
    });
    await p.run({ log: quiet, clock }).done;
    const names = byPartNumber(await parts(d));
    // Batches at 23:50, 23:54, 23:58 | 00:02 (a new day), 00:06, 00:10 | 00:14 (the part is 12 min old).
    assert.deepEqual(
      names.map((f) => f.split('/')[0]),
      ['2026-12-07', '2026-12-08', '2026-12-08'],
      names.join(', '),
    );
    assert.deepEqual(await numbersIn(d, names), seq(70));
  });

  it('a stop commits what it wrote: each part holds whole records (at-least-once)', async () => {
    const d = join(dir, 'stop');
    let stop!: () => void;
    const reached = new Promise<void>((r) => {
      stop = r;
    });
    const src: Source = {
      async run(out, ctx) {
        await out.emit(batchOf([{ n: 0 }, { n: 1 }]));
        stop();
        await new Promise<void>((r) => ctx.stopSignal.addEventListener('abort', () => r(), { once: true }));
      },
    };
    const p = new Pipeline('t');
    p.from(src).to(rollingFileSink({ path: join(d, 'p-{part}.jsonl'), format: 'jsonl', rolling: {} }));
    const handle = p.run({ log: quiet });
    await reached;
    await handle.stop();
    assert.deepEqual(await numbersIn(d, await parts(d)), [0, 1]);
  });

  it('a failed run removes the part it was writing and keeps those it committed', async () => {
    const d = join(dir, 'fail');
    let seen = 0;
    const failing: Operator = {
      async process(b, out) {
        seen += b.records.length;
        if (seen > 300) throw new Error('crash');
        await out.emit(b);
      },
    };
    const p = new Pipeline('t');
    p.from(numbers(1000, 50))
      .via(failing)
      .to(rollingFileSink({ path: join(d, 'p-{part}.jsonl'), format: 'jsonl', rolling: { maxSize: 1000 } }));
    await assert.rejects(p.run({ log: quiet }).done, /crash/);
    const got = await numbersIn(d, byPartNumber(await parts(d)));
    assert.deepEqual(got, seq(got.length), 'committed parts hold a prefix, whole');
    assert.ok(got.length > 0 && got.length <= 300);
    assert.deepEqual(await staged(d), [], 'the part being written is removed');
  });
});

describe('rolling under checkpoints', () => {
  function runWith(
    d: string,
    store: CheckpointStore,
    opts: Partial<RollingFileSinkOptions> & { failAfter?: number; everyRecords?: number } = {},
  ) {
    let seen = 0;
    const failing: Operator = {
      async process(b, out) {
        seen += b.records.length;
        if (opts.failAfter !== undefined && seen > opts.failAfter) throw new Error('crash');
        await out.emit(b);
      },
    };
    const clock = new ManualClock(0);
    const sink = rollingFileSink({
      path: join(d, 'p-{part}.jsonl.gz'),
      format: 'jsonl',
      rolling: { maxSize: 100_000 },
      ...opts,
    });
    const p = new Pipeline('cp');
    p.from(numbers(2000, 20), { name: 'in' }).via(failing, { name: 'fail' }).to(sink, { name: 'out' });
    const checkpoint = new CheckpointCoordinator({
      store,
      intervalMs: 0,
      everyRecords: opts.everyRecords ?? 300,
      clock,
      log: quiet,
    });
    return { sink, done: p.run({ clock, checkpoint, log: quiet }).done };
  }

  it('a part per checkpoint, each committed, every record once after a failure and a restart', async () => {
    const d = join(dir, 'cp');
    const store = new CheckpointStore(memoryBackend());
    const first = runWith(d, store, { failAfter: 1100 });
    await assert.rejects(first.done, /crash/);
    const afterCrash = await parts(d);
    assert.ok(afterCrash.length >= 2, `checkpointed parts are committed: ${afterCrash.join(', ')}`);
    assert.ok((await staged(d)).length > 0, 'the part after the last checkpoint stays staged');
    const before = await numbersIn(d, byPartNumber(afterCrash));
    assert.deepEqual(before, seq(before.length), 'committed parts hold the records up to a checkpoint');

    const second = runWith(d, store);
    assert.equal((await second.done).state, 'succeeded');
    const names = byPartNumber(await parts(d));
    assert.deepEqual(await numbersIn(d, names), seq(2000), 'every record exactly once, in order');
    assert.deepEqual(
      (await staged(d)).map((f) => f.split('/').at(-1)),
      ['finished.json'],
      'only the marker of the finished job is left staged',
    );
    const runs = new Set(names.map((f) => /p-([0-9a-f]{8})-/.exec(f)?.[1]));
    assert.equal(runs.size, 1, 'the restart continues the job’s part ids');
  });

  it('a part appears only once the checkpoint covering it is stored', async () => {
    const d = join(dir, 'visible');
    const store = new CheckpointStore(memoryBackend());
    // Look at the folder from inside the pipeline, before the sink gets each batch.
    const seenAt: number[] = [];
    let records = 0;
    const watch: Operator = {
      async process(b, out) {
        records += b.records.length;
        if (records % 200 === 0) seenAt.push((await numbersIn(d, byPartNumber(await parts(d)))).length);
        await out.emit(b);
      },
    };
    const clock = new ManualClock(0);
    const p = new Pipeline('vis');
    p.from(numbers(1000, 20), { name: 'in' })
      .via(watch, { name: 'watch' })
      .to(rollingFileSink({ path: join(d, 'p-{part}.jsonl'), format: 'jsonl', rolling: {} }), {
        name: 'out',
      });
    const checkpoint = new CheckpointCoordinator({
      store,
      intervalMs: 0,
      everyRecords: 300,
      clock,
      log: quiet,
    });
    await p.run({ clock, checkpoint, log: quiet }).done;
    // Whatever is visible is a whole checkpoint's worth: a multiple of the records between barriers.
    for (const n of seenAt) assert.equal(n % 20, 0, `a reader saw ${n} records`);
    assert.ok(
      seenAt.every((n, i) => n <= (i + 1) * 200),
      `never more than was written: ${seenAt.join(', ')}`,
    );
    assert.ok(
      seenAt.at(-1) !== undefined && (seenAt.at(-1) ?? 0) > 0,
      `parts appeared mid-run: ${seenAt.join(', ')}`,
    );
    assert.deepEqual(await numbersIn(d, byPartNumber(await parts(d))), seq(1000));
  });

  it('a restart commits the parts of a stored checkpoint that the crash left unrenamed', async () => {
    const d = join(dir, 'unrenamed');
    const path = join(d, 'p-{part}.jsonl');
    const a = rollingFileSink({ path, format: 'jsonl', rolling: {} });
    const ctx = {
      name: 'out',
      signal: new AbortController().signal,
      stopSignal: new AbortController().signal,
      clock: new ManualClock(0),
      log: quiet,
      checkpointing: true,
    } as unknown as Parameters<NonNullable<typeof a.open>>[0];
    await a.open?.(ctx);
    await a.write(batchOf([{ n: 0 }, { n: 1 }]));
    await a.onSignal?.({ kind: 'barrier', id: 1 } as never);
    const state = await a.snapshot?.(1);
    // The process dies here: the checkpoint is stored, `commitCheckpoint(1)` never ran.
    assert.deepEqual(await parts(d), []);
    const b = rollingFileSink({ path, format: 'jsonl', rolling: {} });
    await b.open?.(ctx);
    await b.restore?.(state);
    assert.deepEqual(await numbersIn(d, await parts(d)), [0, 1]);
    assert.deepEqual(await staged(d), []);
    // A damaged state says so.
    await assert.rejects(
      Promise.resolve(b.restore?.({ version: 2 })),
      /the checkpoint's state of part files `.*p-\{part\}\.jsonl` is damaged/,
    );
  });

  it('a crash after the end of the input, before the checkpoints are deleted: the restart writes nothing again', async () => {
    const d = join(dir, 'finished');
    const path = join(d, 'p-{part}.jsonl');
    const warnings: string[] = [];
    const ctx = {
      name: 'out',
      signal: new AbortController().signal,
      stopSignal: new AbortController().signal,
      clock: new ManualClock(0),
      log: { ...quiet, warn: (m: string) => warnings.push(m) },
      checkpointing: true,
    } as unknown as Parameters<NonNullable<ReturnType<typeof rollingFileSink>['open']>>[0];
    const a = rollingFileSink({ path, format: 'jsonl', rolling: {} });
    await a.open?.(ctx);
    await a.write(batchOf([{ n: 0 }, { n: 1 }]));
    await a.onSignal?.({ kind: 'barrier', id: 1 } as never);
    const state = await a.snapshot?.(1);
    await a.commitCheckpoint?.(1);
    await a.write(batchOf([{ n: 2 }]));
    await a.prepare?.();
    await a.finish?.();
    await a.close?.();
    // The process dies here: the job's checkpoints (checkpoint 1) are not deleted yet.
    const done = byPartNumber(await parts(d));
    assert.deepEqual(await numbersIn(d, done), [0, 1, 2]);

    const b = rollingFileSink({ path, format: 'jsonl', rolling: {} });
    await b.open?.(ctx);
    await b.restore?.(state);
    // The input is read again from checkpoint 1.
    await b.write(batchOf([{ n: 2 }]));
    await b.prepare?.();
    await b.finish?.();
    await b.close?.();
    assert.deepEqual(byPartNumber(await parts(d)), done, 'no part written again');
    assert.match(warnings.join('\n'), /already hold every record of this input/);

    // A new job of the same template starts over: the marker does not silence it.
    const c = rollingFileSink({ path, format: 'jsonl', rolling: {} });
    await c.open?.(ctx);
    await c.write(batchOf([{ n: 7 }]));
    await c.prepare?.();
    await c.finish?.();
    assert.equal((await parts(d)).length, done.length + 1);
  });

  it('a checkpoint whose parts are gone fails the restart with what to do', async () => {
    const d = join(dir, 'gone');
    const b = rollingFileSink({ path: join(d, 'p-{part}.jsonl'), format: 'jsonl', rolling: {} });
    await assert.rejects(
      Promise.resolve(
        b.restore?.({
          version: 1,
          run: 'abcd0123',
          next: 1,
          pending: [
            {
              final: join(d, 'p-abcd0123-0.jsonl'),
              temp: join(d, '.sluice-parts-x', 'abcd0123-0.inprogress'),
            },
          ],
        }),
      ),
      /part `.*p-abcd0123-0\.jsonl` of a stored checkpoint is gone .*delete the checkpoint folder to start over/,
    );
  });
});

describe('part formats', () => {
  it('gives each CSV part its header', async () => {
    const d = join(dir, 'csv');
    const names = await rollPlain(d, numbers(300, 50), 'p-{part}.csv', { maxSize: 1 });
    assert.equal(names.length, 6, 'maxSize 1: a part per batch');
    const all: string[] = [];
    for (const f of names) {
      const rows = (await readFile(join(d, f), 'utf8')).split('\n').filter((l) => l !== '');
      assert.equal(rows[0], 'n', `part \`${f}\` starts with its header`);
      all.push(...rows.slice(1));
    }
    assert.deepEqual(all.map(Number), seq(300));
  });

  it('compresses each part on its own (zstd by the extension)', async () => {
    const d = join(dir, 'zst');
    const p = new Pipeline('t');
    // Big enough batches that the compressor emits bytes after each: parts roll on compressed size.
    p.from(numbers(20_000, 2000)).to(
      rollingFileSink({ path: join(d, 'p-{part}.jsonl.zst'), format: 'jsonl', rolling: { maxSize: 1 } }),
    );
    await p.run({ log: quiet }).done;
    const names = byPartNumber(await parts(d));
    assert.ok(names.length >= 2, names.join(', '));
    const all: number[] = [];
    for (const f of names) {
      const text = zstdDecompressSync(await readFile(join(d, f))).toString('utf8');
      for (const l of text.split('\n')) if (l !== '') all.push((JSON.parse(l) as { n: number }).n);
    }
    assert.deepEqual(all, seq(20_000));
  });
});

describe('avro parts', () => {
  it('writes each part as an Avro container file of its own', async () => {
    const d = join(dir, 'avro');
    const schema = JSON.stringify({ type: 'record', name: 'N', fields: [{ name: 'n', type: 'int' }] });
    const p = new Pipeline('t');
    p.from(numbers(300, 100)).to(
      rollingFileSink({ path: join(d, 'p-{part}.avro'), format: 'avro', schema, rolling: { maxSize: 1 } }),
    );
    await p.run({ log: quiet }).done;
    const names = byPartNumber(await parts(d));
    assert.equal(names.length, 3, names.join(', '));
    const all: number[] = [];
    for (const f of names) {
      const out = collect();
      await new Pipeline('r')
        .from(fileSource({ path: join(d, f), format: 'avro' }))
        .to(out)
        .run({ log: quiet }).done;
      all.push(...out.records().map((r) => (r as { n: number }).n));
    }
    assert.deepEqual(all, seq(300));
  });
});

describe('bad configurations', () => {
  const problems = (r: ReturnType<typeof fileSinkSpec.config.safeParse>) =>
    r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

  it('the spec names a bad template, a bad size and `{part}` without `rolling`', () => {
    assert.deepEqual(
      problems(
        fileSinkSpec.config.safeParse({ path: 'out/%Y/%q-{part}.jsonl', format: 'jsonl', rolling: {} }),
      ),
      ['path: `%q` in `path` is not a time field; use `%Y`, `%m`, `%d`, `%H`, `%M` (UTC) or `%%` for a `%`'],
    );
    assert.match(
      problems(
        fileSinkSpec.config.safeParse({
          path: 'out/events.jsonl',
          format: 'jsonl',
          rolling: { maxSize: '64MB' },
        }),
      ).join(),
      /path: with `rolling`, the file name in `path` needs `\{part\}`/,
    );
    assert.match(
      problems(
        fileSinkSpec.config.safeParse({
          path: 'o-{part}.jsonl',
          format: 'jsonl',
          rolling: { maxSize: '64 parsecs' },
        }),
      ).join(),
      /rolling\.maxSize: `64 parsecs` is not a size; write a whole number of bytes or a size such as `64MB`/,
    );
    assert.match(
      problems(
        fileSinkSpec.config.safeParse({
          path: 'o-{part}.jsonl',
          format: 'jsonl',
          rolling: { maxAge: 'soon' },
        }),
      ).join(),
      /rolling\.maxAge/,
    );
    assert.match(
      problems(fileSinkSpec.config.safeParse({ path: 'o-{part}.jsonl', format: 'jsonl' })).join(),
      /path: `\{part\}` names part files, which only `rolling` writes/,
    );
    assert.match(
      problems(
        fileSinkSpec.config.safeParse({ path: 'o-{part}.jsonl', format: 'jsonl', rolling: { maxSiz: 1 } }),
      ).join(),
      /maxSiz/,
    );
    const ok = fileSinkSpec.config.parse({
      path: 'o/%Y/{part}.jsonl.zst',
      format: 'jsonl',
      rolling: { maxSize: '1.5KiB', maxAge: '15m' },
    });
    assert.deepEqual(ok.rolling, { maxSize: 1536, maxAge: 900_000 });
  });

  it('`sluice lint` says what is wrong with the template and where', async () => {
    const d = join(dir, 'lint');
    await mkdir(d, { recursive: true });
    await writeFile(
      join(d, 'pipeline.yaml'),
      'name: roll\ninput:\n  generate: { count: 10 }\noutput:\n  file: { path: "out/%Y-%m-%d/part-{n}.jsonl.zst", format: jsonl, rolling: { maxSize: 64MB } }\n',
    );
    const r = sluice(['lint', 'pipeline.yaml'], { cwd: d });
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr + r.stdout, /output\.file\.path/, shown(r));
    assert.match(
      r.stderr + r.stdout,
      /`\{n\}` in `path` is not a placeholder; the part id is `\{part\}`/,
      shown(r),
    );
  });
});
