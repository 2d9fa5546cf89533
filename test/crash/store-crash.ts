/**
 * The crash test of `test/crash.test.ts`, for a checkpoint store on a server: a keyed counting
 * pipeline (CSV → `countByKey` → exactly-once file sink) with `checkpoint.store` set runs through
 * the real CLI, is SIGKILLed at two exact points (half-way through writing checkpoint 2; after
 * checkpoint 4 is stored but before positions are committed) and then at random output sizes,
 * restarted each time, and its final file must equal an uninterrupted run's byte for byte.
 *
 * Used by `checkpoint-store.postgres.it.test.ts` and `checkpoint-store.redis.it.test.ts`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CRASH_ENV } from '../../src/checkpoint/setup.ts';
import { CheckpointStore } from '../../src/checkpoint/store.ts';
import type { StateBackend } from '../../src/state/backend.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'bin/sluice.js');
const COUNTER = join(ROOT, 'test/crash/counter.ts');
const ROWS = 200_000;
const KEYS = 997;
const RANDOM_KILLS = 4;

interface Attempt {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runCli(dir: string, file: string, env: Record<string, string>, killWhen?: () => boolean) {
  return new Promise<Attempt>((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, 'run', file], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const poll =
      killWhen === undefined
        ? undefined
        : setInterval(() => {
            if (killWhen()) child.kill('SIGKILL');
          }, 10);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (poll !== undefined) clearInterval(poll);
      resolve({ code, signal, stderr });
    });
  });
}

/** What {@link storeCrashTest} needs to know about the store. */
export interface StoreCrashOptions {
  /** The `checkpoint.store` URL. */
  readonly store: string;
  /** Opens the store for `namespace` (to look into it between attempts). */
  readonly open: (namespace: string) => Promise<StateBackend>;
}

/**
 * Runs the crash test against `options.store` in a fresh folder and namespace; rejects with an
 * assertion error (carrying the seed and the attempt log) when the output is not exact.
 */
export async function storeCrashTest(options: StoreCrashOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-store-crash-'));
  let seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const log: string[] = [`seed ${seed}`];
  const name = `store-crash-${Math.random().toString(36).slice(2, 10)}`;
  try {
    const rows = ['seq,key,amount,ts'];
    let s = 7;
    for (let i = 0; i < ROWS; i++) {
      s = (s * 48_271) % 2_147_483_647;
      rows.push(`${i},k${s % KEYS},${s % 1000},2026-01-01T00:00:00Z`);
    }
    writeFileSync(join(dir, 'in.csv'), `${rows.join('\n')}\n`);
    const pipeline = (pname: string, out: string, checkpoint: boolean) => {
      const file = join(dir, `${pname}.yaml`);
      writeFileSync(
        file,
        [
          `name: ${pname}`,
          'input: { file: { path: in.csv, format: csv } }',
          'pipeline:',
          // A ceiling on speed only: the whole input in under 0.3 s (fast machine) would end
          // before the store finished checkpoint 2, since one checkpoint is in flight at a time.
          ...(checkpoint ? ['  - throttle: { rate: 100000, burst: 10000 }'] : []),
          `  - module: { path: ${COUNTER}, export: countByKey }`,
          `output: { file: { path: ${out}, format: jsonl } }`,
          // By record count as well as time, so the exact crash points come at any speed.
          checkpoint
            ? `checkpoint: { interval: 100ms, records: 10000, retain: 2, store: '\${STATE_STORE}' }`
            : '',
          '',
        ].join('\n'),
      );
      return file;
    };
    const env = { STATE_STORE: options.store };
    const ref = await runCli(dir, pipeline(`${name}-ref`, 'ref.jsonl', false), env);
    assert.equal(ref.code, 0, ref.stderr);
    const expected = readFileSync(join(dir, 'ref.jsonl'));

    const file = pipeline(name, 'out.jsonl', true);
    const tempSize = () => {
      let size = 0;
      for (const f of readdirSync(dir))
        if (f.startsWith('.out.jsonl.sluice-tmp-'))
          size = Math.max(size, statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0);
      return size;
    };
    for (const point of ['mid-write:2', 'after-store:4']) {
      const a = await runCli(dir, file, { ...env, [CRASH_ENV]: point });
      log.push(`${point}: ${a.signal ?? a.code}`);
      assert.equal(
        a.signal,
        'SIGKILL',
        `the ${point} crash point was not reached: ${log.join('; ')}\n${a.stderr}`,
      );
    }
    // The checkpoints are in the server, under the pipeline's name, and not in the folder.
    const backend = await options.open(name);
    try {
      const latest = await new CheckpointStore(backend).latest();
      assert.ok(latest !== undefined && latest.id >= 3, `no checkpoint in the store: ${log.join('; ')}`);
    } finally {
      await backend.close();
    }
    assert.equal(existsSync(join(dir, '.sluice', name, 'store')), false, 'an LMDB store was created');

    let kills = 0;
    for (let attempts = 0; kills < RANDOM_KILLS; ) {
      assert.ok(++attempts < 16, `the job kept finishing before a kill: ${log.join('; ')}`);
      const from = tempSize();
      // Small steps under a cap, so every kill lands before the job ends.
      const mark = Math.min(expected.length * 0.75, from + expected.length * (0.03 + random() * 0.09));
      const a = await runCli(dir, file, env, () => tempSize() >= mark);
      log.push(`kill at ${Math.round((mark / expected.length) * 100)}%: ${a.signal ?? a.code}`);
      if (a.signal === 'SIGKILL') kills++;
      else {
        assert.equal(a.code, 0, a.stderr);
        break;
      }
    }
    const last = await runCli(dir, file, env);
    assert.equal(last.code, 0, `${log.join('; ')}\n${last.stderr}`);
    assert.ok(kills >= RANDOM_KILLS, `only ${kills} random kills landed: ${log.join('; ')}`);
    const got = readFileSync(join(dir, 'out.jsonl'));
    assert.equal(got.length, expected.length, log.join('; '));
    assert.ok(got.equals(expected), `the output differs from the uninterrupted run (${log.join('; ')})`);
    // A finished job deletes its checkpoints: nothing is left in the shared store.
    const after = await options.open(name);
    try {
      assert.deepEqual(await after.keys(''), []);
    } finally {
      await after.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
