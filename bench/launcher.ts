/**
 * How `sluice` starts when a user types it: the Node flags and environment of bin/sluice.js's
 * shebang (`#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=…`), read from the
 * file, so that benchmarks spawning `node … bin/sluice.js` run the CLI exactly as the launcher
 * would and follow it when its flags change.
 */
import { spawnSync } from 'node:child_process';
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

/** Which build of the CLI a benchmark runs: the published bundle, or the TypeScript sources. */
export type CliBuild = 'bundle' | 'source';

/**
 * Prepares `build` of the CLI under `root` and returns the environment that makes bin/sluice.js
 * start it. `bundle` (what an installed package runs: `dist/cli-bundle/`, one esbuild bundle)
 * rebuilds it from the current sources first (`scripts/build-cli.ts`, ~0.6 s), so a benchmark
 * never measures a stale bundle; `source` runs the TypeScript through Node's type stripping, as a
 * checkout's `npx sluice` does (~30–40 ms more start-up per run).
 */
export function cliBuild(root: string, build: CliBuild): Readonly<Record<string, string>> {
  if (build === 'source') return {};
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-cli.ts')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`bundling the CLI failed (scripts/build-cli.ts): ${r.stderr}`);
  return { SLUICE_CLI: 'bundle' };
}

/** The value of `--cli` (`bundle` or `source`; absent: `bundle`), or an error naming the choices. */
export function cliBuildFlag(value: string | undefined): CliBuild {
  if (value === undefined || value === 'bundle' || value === 'source') return value ?? 'bundle';
  throw new Error(`--cli ${value}: expected \`bundle\` (the published build) or \`source\` (TypeScript)`);
}
