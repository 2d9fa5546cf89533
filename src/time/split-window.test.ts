import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { fileSource } from '../connectors/file/source.ts';
import { collect } from '../connectors/file/test-helpers.ts';
import type { Logger } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';
import { cutFile, type SplitHookInfo, splitTuning } from './split-window.ts';
import { type WindowOptions, windowOperator } from './window.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-split-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR', 'IN', 'NG'];
const TYPES = ['login', 'purchase', 'view'];

interface Row {
  ts: string;
  country: string;
  event_type: string;
  amount: string;
  note: string;
}

/** `n` events 50 ms apart with up to 2 s of disorder, deterministic; `tweak` may change one. */
function rows(n: number, tweak?: (i: number, r: Row) => void): Row[] {
  const out: Row[] = [];
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const t0 = Date.UTC(2024, 0, 1);
  for (let i = 0; i < n; i++) {
    const r: Row = {
      ts: new Date(t0 + i * 50 - Math.floor(rnd() * 2000)).toISOString(),
      country: COUNTRIES[Math.floor(rnd() * COUNTRIES.length)] as string,
      event_type: TYPES[Math.floor(rnd() * TYPES.length)] as string,
      amount: `${Math.floor(rnd() * 100000)}.${String(Math.floor(rnd() * 100)).padStart(2, '0')}`,
      note: i % 97 === 0 ? 'a, "quoted" note' : `n${i}`,
    };
    tweak?.(i, r);
    out.push(r);
  }
  return out;
}

const csvField = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
const toCsv = (rs: Row[]) =>
  `ts,country,event_type,amount,note\n${rs.map((r) => Object.values(r).map(csvField).join(',')).join('\n')}\n`;
const toJsonl = (rs: Row[]) => `${rs.map((r) => JSON.stringify(r)).join('\n')}\n`;

let files = 0;
function file(name: string, data: string | Buffer): string {
  const path = join(dir, `${files++}-${name}`);
  writeFileSync(path, data);
  return path;
}

const WINDOW: WindowOptions = {
  key: ['country', 'event_type'],
  time: 'ts',
  tumbling: '1m',
  watermark: { maxOutOfOrder: '5s' },
  aggregate: { count: 'count()', amount: 'sum(amount)', top: 'max(amount)' },
};

/** Runs file → window → collect; the results, what the run logged and the split job's per-thread figures. */
async function run(
  path: string,
  format: 'csv' | 'jsonl',
  parallelism: number | 'auto',
  window: WindowOptions = WINDOW,
  signal?: AbortSignal,
): Promise<{
  results: unknown[];
  logs: string[];
  read: number;
  threads: { ranges: number; bytes: number }[];
  workers: number | undefined;
}> {
  const logs: string[] = [];
  let threads: { ranges: number; bytes: number }[] = [];
  let workers: number | undefined;
  const log: Logger = {
    info: (m, f) => {
      logs.push(m);
      if (f?.threads !== undefined) threads = f.threads as typeof threads;
      if (f?.workers !== undefined) workers = f.workers as number;
    },
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };
  const out = collect();
  const summary = await new Pipeline('split')
    .from(fileSource({ path, format }))
    .via(windowOperator({ ...window, parallelism }), { name: 'win' })
    .to(out)
    .run({ log, ...(signal === undefined ? {} : { signal }) }).done;
  return { results: out.records(), logs, read: summary.recordsRead, threads, workers };
}

const DEFAULT_TUNING = { ...splitTuning };
afterEach(() => Object.assign(splitTuning, DEFAULT_TUNING));

/**
 * Makes the split job's scheduling fine-grained (16 KiB slices, small takes) and has this thread
 * wait, its file open, until the job has `ranges` ranges (default: one a thread): the workers
 * take them from this thread's range, whatever the machine's timing, so the test files of a
 * megabyte are shared out (a default run does them all on this thread).
 */
function fineGrained(ranges?: number): void {
  Object.assign(splitTuning, {
    sliceBytes: 16 * 1024,
    firstLeast: 32 * 1024,
    stealLeast: 64 * 1024,
    beforeHere: async (job: SplitHookInfo) => {
      const until = Date.now() + 20_000;
      while (job.ranges() < (ranges ?? job.threads) && !job.signal.aborted && Date.now() < until)
        await sleep(2);
    },
  });
}

/** Asserts the run with `threads` gives the one-thread results, and returns its log. */
async function sameAsOneThread(
  path: string,
  format: 'csv' | 'jsonl',
  threads: number | 'auto' = 2,
  window?: WindowOptions,
): Promise<string> {
  const one = await run(path, format, 1, window);
  const many = await run(path, format, threads, window);
  assert.ok(one.results.length > 50, `only ${one.results.length} results`);
  assert.equal(JSON.stringify(many.results), JSON.stringify(one.results));
  assert.equal(many.read, one.read, 'the summary counts the rows read, not the window results');
  return many.logs.join('\n');
}

describe('split-parallel window', () => {
  const data = rows(20_000);

  it('gives exactly the one-thread results from CSV on 2 and 3 threads', async () => {
    fineGrained();
    const path = file('events.csv', toCsv(data));
    assert.match(await sameAsOneThread(path, 'csv'), /ran split-parallel on 2 threads/);
    // The second worker takes half of this thread's half: ranges made out of file order.
    assert.match(await sameAsOneThread(path, 'csv', 3), /ran split-parallel on 3 threads/);
  });

  it('gives exactly the one-thread results from many ranges made out of file order', async () => {
    // This thread waits until the worker has taken [½, 1), then [¼, ½), then [⅛, ¼) of its range.
    fineGrained(4);
    const path = file('events.csv', toCsv(data));
    const log = await sameAsOneThread(path, 'csv');
    const ranges = Number(/on 2 threads \((\d+) byte ranges\)/.exec(log)?.[1]);
    assert.ok(ranges >= 4, log);
    const { threads } = await run(path, 'csv', 2);
    assert.equal(threads.length, 2, 'both threads ran ranges');
    assert.ok((threads[1]?.ranges ?? 0) >= 3, JSON.stringify(threads));
    assert.equal((threads[0]?.bytes ?? 0) + (threads[1]?.bytes ?? 0), toCsv(data).length, 'every byte once');
  });

  it('starts no worker by default for a file too small for one to take a range', async () => {
    const path = file('events.csv', toCsv(data));
    assert.match(await sameAsOneThread(path, 'csv'), /ran split-parallel on 1 thread \(1 byte range\)/);
    const { threads, workers } = await run(path, 'csv', 2);
    assert.equal(workers, 0, 'no worker started');
    assert.deepEqual(
      threads.map((t) => t.ranges),
      [1],
      'this thread ran the one range',
    );
  });

  it('gives exactly the one-thread results from JSON Lines, sliding windows too', async () => {
    fineGrained();
    const path = file('events.jsonl', toJsonl(data));
    assert.match(await sameAsOneThread(path, 'jsonl'), /ran split-parallel on 2 threads/);
    const sliding = { ...WINDOW, tumbling: undefined, sliding: { size: '1m', slide: '20s' } };
    assert.match(await sameAsOneThread(path, 'jsonl', 2, sliding), /ran split-parallel on 2 threads/);
  });

  it('with `auto`, runs a file too small for two ranges worth a thread on one thread and says why', async () => {
    const path = file('events.csv', toCsv(data));
    assert.match(
      await sameAsOneThread(path, 'csv', 'auto'),
      /runs on one thread: its file \(\d+ bytes\) is too small to cut into ranges of 33554432 bytes/,
    );
  });

  it('runs a compressed file on one thread and says why', async () => {
    const path = file('events.csv.gz', gzipSync(toCsv(data)));
    assert.match(await sameAsOneThread(path, 'csv'), /runs on one thread: its file is compressed \(`gzip`\)/);
    // Found by its magic number when the name does not say.
    const hidden = file('events.csv', gzipSync(toCsv(data)));
    assert.match(
      await sameAsOneThread(hidden, 'csv'),
      /runs on one thread: its file is compressed \(`gzip`, by its magic number\)/,
    );
  });

  it('falls back when an event is so late that batching would decide its fate', async () => {
    // 50 s behind: its window fired already; within the allowed lateness, so it updates it.
    const late = rows(20_000, (i, r) => {
      if (i === 15_000) r.ts = new Date(Date.UTC(2024, 0, 1) + 700_000).toISOString();
    });
    const window = { ...WINDOW, allowedLateness: '1m' };
    fineGrained();
    const log = await sameAsOneThread(file('late.csv', toCsv(late)), 'csv', 2, window);
    assert.match(log, /runs on one thread: in the byte range \d+–\d+ of \d+, an event came so far behind/);
  });

  it('falls back when the first event of a range is so late that the ranges before decide its fate', async () => {
    // The worker takes the second half from the first line end past the middle (this thread has
    // reserved nothing yet): the event there is 50 s behind the range before, not behind its own.
    const text = toCsv(rows(20_000));
    const cut = text.indexOf('\n', Math.floor(text.length / 2) - 1) + 1;
    const first = text.slice(0, cut).split('\n').length - 2; // rows before the cut, header aside
    const late = rows(20_000, (i, r) => {
      if (i === first) r.ts = new Date(Date.UTC(2024, 0, 1) + first * 50 - 50_000).toISOString();
    });
    fineGrained();
    const window = { ...WINDOW, allowedLateness: '1m' };
    const log = await sameAsOneThread(file('late-cut.csv', toCsv(late)), 'csv', 2, window);
    assert.match(
      log,
      /runs on one thread: an event of the byte range \d+–\d+ of \d+ is so far behind the ranges before it/,
    );
  });

  it('fails with the error of a worker that fails, and stops the job', async () => {
    const path = file('events.csv', toCsv(data));
    Object.assign(splitTuning, {
      firstLeast: 32 * 1024,
      beforeHere: async (job: SplitHookInfo) => {
        // This thread has the file open; the worker finds a folder in its place.
        renameSync(path, `${path}.moved`);
        mkdirSync(path);
        const until = Date.now() + 20_000;
        while (!job.signal.aborted && Date.now() < until) await sleep(2);
      },
    });
    const tasks = threadCount();
    await assert.rejects(run(path, 'csv', 2), /EISDIR/);
    if (tasks !== undefined) assert.equal(threadCount(), tasks, 'the worker thread is gone');
  });

  it('stops its workers when the run is aborted', async () => {
    const path = file('events.csv', toCsv(data));
    const abort = new AbortController();
    fineGrained();
    const wait = splitTuning.beforeHere;
    splitTuning.beforeHere = async (job) => {
      await wait?.(job);
      abort.abort();
    };
    const tasks = threadCount();
    const { results } = await run(path, 'csv', 2, WINDOW, abort.signal).catch(() => ({ results: [] }));
    assert.deepEqual(results, [], 'nothing emitted');
    if (tasks !== undefined) assert.equal(threadCount(), tasks, 'the worker thread is gone');
  });

  it('falls back when a cut falls inside a quoted field that spans lines', async () => {
    const long = rows(4_000, (i, r) => {
      if (i === 2_000) r.note = 'line\n'.repeat(60_000);
    });
    fineGrained();
    const log = await sameAsOneThread(file('multiline.csv', toCsv(long)), 'csv');
    assert.match(
      log,
      /runs on one thread: in the byte range 0–\d+ of \d+, a range did not end on a row boundary/,
    );
  });

  it('says why a step with a key function or an inexact aggregate runs on one thread', async () => {
    const path = file('events.jsonl', toJsonl(data));
    const keyFn = { ...WINDOW, key: (r: unknown) => (r as Row).country };
    assert.match(
      await sameAsOneThread(path, 'jsonl', 2, keyFn),
      /runs on one thread: its key or time is a TypeScript function/,
    );
    const mean = { ...WINDOW, aggregate: { m: 'mean(amount)' } };
    assert.match(await sameAsOneThread(path, 'jsonl', 2, mean), /merged partials of `mean` may differ/);
  });

  it('cuts a file only at line ends', () => {
    const path = file('cut.jsonl', toJsonl(data));
    const cut = cutFile(path, 4, 'auto');
    assert.ok(typeof cut !== 'string' && cut.cuts.length === 5 && cut.threads === 4, String(cut));
    const cuts = cut.cuts;
    const text = toJsonl(data);
    for (const c of cuts.slice(1, -1)) assert.equal(text[c - 1], '\n');
    assert.match(String(cutFile(file('small.csv', 'a\n1\n'), 2, 'auto')), /too small/);
  });
});

/** Threads of this process (Linux), to check a job leaves none behind; undefined elsewhere. */
function threadCount(): number | undefined {
  return existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : undefined;
}

describe('split-parallel window in a pipeline file', () => {
  it('is reported by `lint` when it cannot split, with the reason', async () => {
    const { lintPipelineFile } = await import('../config/build.ts');
    const { defaultRegistry } = await import('../components.ts');
    const yaml = (input: string) =>
      file(
        'p.yaml',
        `name: t\ninput:\n  file: { path: ${input}, format: csv }\npipeline:\n  - window:\n      key: [country]\n      time: ts\n      tumbling: 1m\n      aggregate: { n: count() }\n      parallelism: auto\noutput:\n  file: { path: ${join(dir, 'out.jsonl')}, format: jsonl }\n`,
      );
    const gz = file('e.csv.gz', gzipSync(toCsv(rows(100))));
    const problems = await lintPipelineFile(yaml(gz), { registry: defaultRegistry });
    assert.deepEqual(
      problems.map((p) => [p.severity, p.path, p.message]),
      [
        [
          'warning',
          'pipeline[0].window.parallelism',
          'step `window` runs on one thread: its file is compressed (`gzip`): a compressed stream cannot be cut into byte ranges',
        ],
      ],
    );
    const plain = file('e.csv', toCsv(rows(100)));
    assert.deepEqual(await lintPipelineFile(yaml(plain), { registry: defaultRegistry }), []);
  });
});
