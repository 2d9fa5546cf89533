/**
 * How `sluice` starts when a user types it: the Node flags and environment of bin/sluice.js's
 * shebang (`#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=…`), read from the
 * file, so that benchmarks spawning `node … bin/sluice.js` run the CLI exactly as the launcher
 * would and follow it when its flags change.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The launcher's Node flags and environment. */
export interface Launcher {
  /** Node/V8 flags (`--…`), to pass before the script. */
  readonly nodeFlags: readonly string[];
  /** Environment variables the shebang sets (`NAME=value`). */
  readonly env: Readonly<Record<string, string>>;
  /** Both as one line, for a benchmark's header. */
  readonly describe: string;
}

/**
 * Reads bin/sluice.js's shebang under `root` (the checkout).
 *
 * @example
 * const l = launcher(ROOT);
 * spawnSync(process.execPath, [...l.nodeFlags, join(ROOT, 'bin', 'sluice.js'), 'run', yaml], { env: { ...process.env, ...l.env } });
 */
export function launcher(root: string): Launcher {
  const shebang = readFileSync(join(root, 'bin', 'sluice.js'), 'utf8').split('\n')[0] ?? '';
  if (!shebang.startsWith('#!')) throw new Error(`bin/sluice.js has no shebang: ${shebang}`);
  const words = shebang.split(/\s+/);
  const nodeFlags = words.filter((w) => w.startsWith('--'));
  const env = Object.fromEntries(
    words
      .filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w))
      .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
  );
  const describe = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...nodeFlags].join(' ');
  return { nodeFlags, env, describe };
}
