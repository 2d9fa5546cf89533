/**
 * Crash test: a keyed counting pipeline reading a large CSV file runs through the real CLI
 * (`node bin/sluice.js run pipeline.yaml`) as a child process, is SIGKILLed again and again
 * — twice at exact points (half-way through writing a checkpoint; after a checkpoint is stored
 * but before positions are committed), then at random moments — and restarted each time.
 *
 * - File sink (exactly-once): the final file equals that of an uninterrupted run byte for byte.
 * - stdout sink (at-least-once): everything is there, and the only repeated lines are those
 *   after the checkpoint each restart resumed from.
 *
 * Kills are placed by progress (the output growing past a random mark), not by wall-clock
 * time, so the test does the same on a fast or a slow machine.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CRASH_ENV } from '../src/checkpoint/setup.ts';
import { CheckpointStore } from '../src/checkpoint/store.ts';
import { lmdbBackend } from '../src/state/backend.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'bin/sluice.js');
const COUNTER = join(ROOT, 'test/crash/counter.ts');
const ROWS = 600_000;
const KEYS = 997;
const WINDOW_ROWS = 150_000;
const RANDOM_KILLS = 5;

let dir: string;
let seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
/** Deterministic per seed (printed on failure), so a failing run can be repeated. */
function random(): number {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
}

const COUNT_STEP = `  - module: { path: ${COUNTER}, export: countByKey }`;
/** The keyed window aggregate of DESIGN.md (the `window` step), over the same input. */
const WINDOW_STEP = [
  '  - window:',
  '      key: [key]',
  '      time: ts',
  '      tumbling: 10s',
  '      aggregate: { count: count(), amount: sum(amount) }',
].join('\n');

function pipeline(
  name: string,
  output: string,
  checkpoint: boolean,
  step = COUNT_STEP,
  input = 'in.csv',
): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `input: { file: { path: ${input}, format: csv } }`,
      'pipeline:',
      step,
      `output: ${output}`,
      // A record trigger besides time: the exact crash points (checkpoints 2 and 4) are reached
      // however fast the machine runs the job.
      checkpoint ? 'checkpoint: { interval: 100ms, records: 10000, retain: 2 }' : '',
      '',
    ].join('\n'),
  );
  return file;
}

interface Attempt {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the CLI on `file`; when `killWhen` is given, polls it every 10 ms and SIGKILLs the
 * child as soon as it returns true.
 */
function runCli(
  file: string,
  env: Record<string, string> = {},
  killWhen?: (stdoutBytes: number) => boolean,
): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, 'run', file], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    child.stdout?.on('data', (b: Buffer) => {
      out.push(b);
      outBytes += b.length;
    });
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const poll =
      killWhen === undefined
        ? undefined
        : setInterval(() => {
            if (killWhen(outBytes)) child.kill('SIGKILL');
          }, 10);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (poll !== undefined) clearInterval(poll);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** Size of the newest temporary file of `out` (what the running job has written). */
function tempSize(out: string): number {
  let size = 0;
  for (const f of readdirSync(dir))
    if (f.startsWith(`.${out}.sluice-tmp-`))
      size = Math.max(size, statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0);
  return size;
}

/** Source position (lines done) of the newest intact checkpoint of pipeline `name`, 0 if none. */
async function checkpointedLines(name: string): Promise<number> {
  const backend = await lmdbBackend({ dir: join(dir, '.sluice', name, 'store') });
  try {
    const cp = await new CheckpointStore(backend).latest();
    const pos = cp?.sources.input as { line?: number } | undefined;
    return pos?.line ?? 0;
  } finally {
    await backend.close();
  }
}

describe('crash test: SIGKILL and restart through the CLI', { timeout: 120_000 }, () => {
  let reference: Buffer;
  let windowReference: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-crash-'));
    const rows: string[] = ['seq,key,amount,ts'];
    let s = 7;
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < ROWS; i++) {
      s = (s * 48_271) % 2_147_483_647;
      rows.push(`${i},k${s % KEYS},${s % 1000},${new Date(t0 + i * 10).toISOString()}`);
    }
    writeFileSync(join(dir, 'in.csv'), `${rows.join('\n')}\n`);
    // The window step does more per record: a quarter of the rows keeps its test as quick.
    writeFileSync(join(dir, 'win.csv'), `${rows.slice(0, WINDOW_ROWS + 1).join('\n')}\n`);
    const ref = await runCli(pipeline('reference', '{ file: { path: ref.jsonl, format: jsonl } }', false));
    assert.equal(ref.code, 0, ref.stderr);
    reference = readFileSync(join(dir, 'ref.jsonl'));
    const wref = await runCli(
      pipeline('wreference', '{ file: { path: wref.jsonl, format: jsonl } }', false, WINDOW_STEP, 'win.csv'),
    );
    assert.equal(wref.code, 0, wref.stderr);
    windowReference = readFileSync(join(dir, 'wref.jsonl'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Kills the job at two exact points, then at random output sizes, restarting it each time,
   * then lets it finish; the file must equal `expected` byte for byte.
   */
  async function exactlyOnce(
    name: string,
    out: string,
    step: string,
    input: string,
    expected: Buffer,
  ): Promise<void> {
    const file = pipeline(name, `{ file: { path: ${out}, format: jsonl } }`, true, step, input);
    const total = expected.length;
    const log: string[] = [`seed ${seed}`];
    // Exact crash points first: half-way through writing checkpoint 2 (its state is written,
    // its metadata is not), then after checkpoint 4 is stored but before positions are committed.
    for (const point of ['mid-write:2', 'after-store:4']) {
      const a = await runCli(file, { [CRASH_ENV]: point });
      log.push(`${point}: ${a.signal ?? a.code}`);
      assert.equal(
        a.signal,
        'SIGKILL',
        `the ${point} crash point was not reached: ${log.join('; ')}\n${a.stderr}`,
      );
    }
    let kills = 0;
    let attempts = 0;
    while (kills < RANDOM_KILLS) {
      assert.ok(++attempts < 20, `the job kept finishing before a kill: ${log.join('; ')}`);
      const from = tempSize(out);
      // Small steps under a cap, so all the kills land before the end: the window step writes its
      // last windows only when the input ends, so the output's tail appears all at once.
      const mark = Math.min(total * 0.75, from + total * (0.02 + random() * 0.08));
      const a = await runCli(file, {}, () => tempSize(out) >= mark);
      log.push(`kill at ${Math.round((mark / total) * 100)}%: ${a.signal ?? a.code}`);
      if (a.signal === 'SIGKILL') kills++;
      else assert.equal(a.code, 0, a.stderr);
      if (a.code === 0) break;
    }
    const last = await runCli(file);
    assert.equal(last.code, 0, `${log.join('; ')}\n${last.stderr}`);
    assert.ok(kills >= RANDOM_KILLS, `only ${kills} random kills landed: ${log.join('; ')}`);
    const got = readFileSync(join(dir, out));
    const lines = got.toString().trimEnd().split('\n');
    assert.equal(new Set(lines).size, lines.length, 'a line is repeated');
    assert.equal(got.length, expected.length, log.join('; '));
    assert.ok(got.equals(expected), `the output differs from the uninterrupted run (${log.join('; ')})`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(`.${out}.sluice-tmp`)),
      [],
      'temporary files are left behind',
    );
  }

  it('file sink: exactly the output of an uninterrupted run, no line repeated (keyed count)', () =>
    exactlyOnce('exact', 'out.jsonl', COUNT_STEP, 'in.csv', reference));

  it('file sink: the same through the `window` step (keyed tumbling window aggregate)', () =>
    exactlyOnce('wexact', 'wout.jsonl', WINDOW_STEP, 'win.csv', windowReference));

  it('stdout sink (at-least-once): nothing lost; repeats only after the restored checkpoint', async () => {
    const file = pipeline('alo', '{ stdout: { format: jsonl } }', true);
    const expected = reference.toString().trimEnd().split('\n');
    const total = reference.length;
    const log: string[] = [`seed ${seed}`];
    const attempts: { resumedAfter: number; lines: string[] }[] = [];
    let kills = 0;
    for (let i = 0; i < 20; i++) {
      const resumedAfter = await checkpointedLines('alo');
      // First an exact crash point (stored, not committed), then kills at random output sizes.
      const exact = i === 0;
      const mark = total * (0.02 + random() * 0.06);
      const a = await runCli(
        file,
        exact ? { [CRASH_ENV]: 'after-store:1' } : {},
        exact || kills > RANDOM_KILLS ? undefined : (bytes) => bytes >= mark,
      );
      // A last line cut by the kill was never output.
      const text = a.stdout.toString();
      const lines = text
        .slice(0, text.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((l) => l !== '');
      attempts.push({ resumedAfter, lines });
      log.push(
        `attempt ${i}: resumed after line ${resumedAfter}, ${lines.length} lines, ${a.signal ?? a.code}`,
      );
      if (a.signal === 'SIGKILL') kills++;
      else {
        assert.equal(a.code, 0, a.stderr);
        break;
      }
    }
    assert.ok(kills >= RANDOM_KILLS + 1, `only ${kills} kills landed: ${log.join('; ')}`);
    const all = new Set(attempts.flatMap((a) => a.lines));
    for (const line of expected) assert.ok(all.has(line), `lost: ${line} (${log.join('; ')})`);
    // CSV line 1 is the header, so row `seq` is line seq + 2: after L lines the next row is L - 1.
    const earlier = new Set<string>();
    for (const [k, a] of attempts.entries()) {
      const next = a.resumedAfter > 0 ? a.resumedAfter - 1 : 0;
      const first = a.lines[0] === undefined ? undefined : (JSON.parse(a.lines[0]) as { seq?: string });
      if (first?.seq !== undefined) {
        assert.equal(
          Number(first.seq),
          next,
          `attempt ${k} did not resume right after its checkpoint (${log.join('; ')})`,
        );
      }
      for (const line of a.lines) {
        const seq = (JSON.parse(line) as { seq?: string }).seq;
        if (earlier.has(line) && seq !== undefined) {
          assert.ok(
            Number(seq) >= next,
            `attempt ${k} repeats ${line}, from before its checkpoint (${log.join('; ')})`,
          );
        }
        earlier.add(line);
      }
    }
  });
});
