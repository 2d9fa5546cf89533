import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { fileSource } from '../connectors/file/source.ts';
import { collect } from '../connectors/file/test-helpers.ts';
import type { Logger } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';
import { cutFile } from './split-window.ts';
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

/** Runs file → window → collect; the results and what the run logged. */
async function run(
  path: string,
  format: 'csv' | 'jsonl',
  parallelism: number | 'auto',
  window: WindowOptions = WINDOW,
): Promise<{ results: unknown[]; logs: string[]; read: number }> {
  const logs: string[] = [];
  const log: Logger = {
    info: (m) => logs.push(m),
    warn: (m) => logs.push(m),
    error: (m) => logs.push(m),
  };
  const out = collect();
  const summary = await new Pipeline('split')
    .from(fileSource({ path, format }))
    .via(windowOperator({ ...window, parallelism }), { name: 'win' })
    .to(out)
    .run({ log }).done;
  return { results: out.records(), logs, read: summary.recordsRead };
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
    const path = file('events.csv', toCsv(data));
    assert.match(await sameAsOneThread(path, 'csv'), /ran split-parallel on 2 threads/);
    assert.match(await sameAsOneThread(path, 'csv', 3), /ran split-parallel on 3 threads/);
  });

  it('gives exactly the one-thread results from JSON Lines, sliding windows too', async () => {
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
    const log = await sameAsOneThread(file('late.csv', toCsv(late)), 'csv', 2, window);
    assert.match(log, /runs on one thread: in byte range 2 of 2, an event came so far behind/);
  });

  it('falls back when a cut falls inside a quoted field that spans lines', async () => {
    const long = rows(4_000, (i, r) => {
      if (i === 2_000) r.note = 'line\n'.repeat(60_000);
    });
    const log = await sameAsOneThread(file('multiline.csv', toCsv(long)), 'csv');
    assert.match(log, /runs on one thread: in byte range 1 of 2, a range did not end on a row boundary/);
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
    const cuts = cutFile(path, 4, 'auto');
    assert.ok(Array.isArray(cuts) && cuts.length === 5, String(cuts));
    const text = toJsonl(data);
    for (const c of cuts.slice(1, -1)) assert.equal(text[c - 1], '\n');
    assert.match(String(cutFile(file('small.csv', 'a\n1\n'), 2, 'auto')), /too small/);
  });
});

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
