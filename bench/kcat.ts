/**
 * The `kcat` command (librdkafka's command-line client), the native ceiling of `bench/kafka.ts`.
 * Not an npm package: Debian ships it. {@link ensureKcat} finds it on the PATH or installs it with
 * `apt-get install -y kcat` (as root, where apt exists); idempotent, so every bench run may call it.
 */
import { spawnSync } from 'node:child_process';

/** The `kcat` to run, or why there is none. */
export type KcatResult =
  | { readonly ok: true; readonly command: string }
  | { readonly ok: false; readonly reason: string };

function works(command: string): boolean {
  return spawnSync(command, ['-V'], { stdio: 'ignore' }).status === 0;
}

/**
 * `kcat` (or Debian's older name `kafkacat`) when it is installed; otherwise installs Debian's
 * package once (`apt-get install -y kcat`, after `apt-get update` if the package is unknown) and
 * returns it. Never throws: when it cannot be had, says why, and the caller skips it.
 *
 * @example
 * const kcat = ensureKcat();
 * if (kcat.ok) spawnSync(kcat.command, ['-L', '-b', '127.0.0.1:9092']);
 */
export function ensureKcat(): KcatResult {
  for (const command of ['kcat', 'kafkacat']) if (works(command)) return { ok: true, command };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'kcat is not installed and this is not root (apt-get install -y kcat)' };
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0)
    return { ok: false, reason: 'kcat is not installed and there is no apt-get' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-q', 'kcat'], {
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore' });
    r = install();
  }
  if (r.status === 0 && works('kcat')) return { ok: true, command: 'kcat' };
  const why = (r.stderr ?? '').trim().split('\n').pop() ?? `exit ${r.status}`;
  return { ok: false, reason: `apt-get install -y kcat failed: ${why}` };
}
