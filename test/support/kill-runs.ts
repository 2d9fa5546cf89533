/**
 * Running the real CLI and SIGKILLing it at progress marks, for the crash tests of the examples
 * (ledger, saga-transfer): start a run, poll how far it got, kill it at each mark, start again,
 * and finally let one run to the end.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

/** How a child process ended, with what it wrote to stderr (when it was piped). */
export function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

/** Options of {@link runWithKills}. */
export interface KillRunOptions {
  /** The folder the runs start in. */
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  /** How far the job got (in the units of `total`); polled every 10 ms. */
  readonly progress: () => Promise<number>;
  readonly total: number;
  /** Kill when progress passes these fractions of `total`. Default 0.2, 0.45, 0.7. */
  readonly marks?: readonly number[];
  /** Called after each SIGKILL, before the next run starts. */
  readonly afterKill?: () => void;
}

/**
 * Runs `sluice run file` to the end, SIGKILLing it when progress passes each mark; returns the
 * number of kills. A run that ends by itself must exit 0.
 *
 * @example
 * const kills = await runWithKills('pipeline.yaml', { cwd: dir, progress: rows, total: 1000 });
 */
export async function runWithKills(file: string, options: KillRunOptions): Promise<number> {
  const { progress, total } = options;
  const start = () =>
    spawn(process.execPath, [bin, 'run', file], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  let kills = 0;
  for (const fraction of options.marks ?? [0.2, 0.45, 0.7]) {
    const child = start();
    const ended = exited(child);
    let done = false;
    void ended.then(() => {
      done = true;
    });
    while (!done && (await progress()) < fraction * total) await new Promise((r) => setTimeout(r, 10));
    if (!done) {
      child.kill('SIGKILL');
      kills++;
    }
    const end = await ended;
    assert.ok(end.signal === 'SIGKILL' || end.code === 0, `run failed: ${end.stderr}`);
    if (end.code === 0) return kills;
    options.afterKill?.();
    // On a fast machine the last part can be done between two polls: the kill then lands after
    // the final commit, while the process exits. The job is complete; a run started now would be
    // a new job over the same input (its checkpoints are gone by design) and write it again.
    if ((await progress()) >= total) return kills;
  }
  if ((await progress()) >= total) return kills;
  const last = await exited(start());
  assert.equal(last.code, 0, last.stderr);
  return kills;
}
