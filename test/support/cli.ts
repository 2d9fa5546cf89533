/**
 * The real `sluice` command as a child process (`node bin/sluice.js …`), for tests that check
 * exactly what it prints on its own stdout and stderr.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

/** What one run of the command did. */
export interface SluiceRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `sluice ...args` in `cwd` with the test's environment plus `env` (without `SLUICE_DEBUG`),
 * and waits for it (at most a minute).
 *
 * @example
 * const r = sluice(['lint', 'pipeline.yaml'], { cwd: dir, env: { PG_URL: url } });
 */
export function sluice(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string> },
): SluiceRun {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  delete env.SLUICE_DEBUG;
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A run's exit code and output, for assertion messages. */
export function shown(r: SluiceRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
