#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
// Launcher for the `sluice` command. The young generation is capped at 4 MiB a semi-space (the
// shebang): 8 against Node's default measured 1.8 s and 158 MB peak RSS against 2.8 s and 357 MB
// on a generate → filter → file run; 4 against 8 (Dec 8, 6 alternating runs each, bench/README.md
// "Launcher heap") peaks 6–10 MiB lower (CSV → window 91 vs 100 MiB, JSON Lines → window 89 vs
// 95, generate → filter → file 132 vs 140) at the same CPU (medians 0.96 vs 0.98, 0.80 vs 0.81,
// 2.12 vs 2.10 s; the windowed Kafka job 2.3–2.6 s both). Benchmarks read these flags from this
// line (bench/launcher.ts). MALLOC_ARENA_MAX=2 (glibc; other C libraries ignore it): V8's
// worker threads otherwise each grow a malloc arena of their own (~2 MiB resident apiece);
// sharing two cut a 3 GB CSV → stdout run's peak by ~3 MiB (95 → 92) and a generate → filter
// → file run's by ~2 MiB at the same speed (bench/README.md, csv-memory). A source checkout (after `npm ci`) runs the TypeScript
// directly through Node's type stripping, so no build step stands between `npm ci` and
// `npx sluice`; a published package runs the compiled JavaScript in dist/.
import { existsSync } from 'node:fs';
// A namespace import: a named import of `enableCompileCache` (Node 22.1+) would fail to link on an
// older Node before the version check below could say what to do.
import * as nodeModule from 'node:module';
import * as v8 from 'node:v8';

// V8's allocation-site pretenuring off, before any of Sluice's modules load: a streaming job's
// records and the Kafka client's per-message objects live a little longer than a young-generation
// cycle, so V8 learned to allocate them straight in old space, where they died in bulk between
// mark-compacts and the heap grew to hold them. Off, the windowed Kafka job peaks at ~140–160
// instead of ~225–290 MiB (VmHWM) at no more CPU (bench/README.md, kafka-window). Set here rather
// than in the shebang so `node bin/sluice.js` gets it too; NODE_OPTIONS does not take V8 flags,
// and re-spawning node with the flag would cost a second process's start and memory.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `sluice needs Node.js 22.12 or newer; this is ${process.version} (${process.execPath}).\n` +
      'In a checkout of sluice, run it as `npx sluice …` from the project folder: npm then uses the Node.js 24 that `npm ci` installed.\n',
  );
  process.exit(2);
}
// A checkout has src/ (and may have a stale dist/ from an earlier build): run the source.
// A published package ships only dist/, where `npm run build` bundled the command and the library
// entries into one set of chunks (scripts/build-cli.ts): the package's one copy of Sluice, which a
// user's `module:` step importing `sluice` shares. SLUICE_CLI=bundle runs the bundle in a checkout
// too (benchmarks, tests).
const source = new URL('../src/cli/main.ts', import.meta.url);
const entry =
  process.env.SLUICE_CLI !== 'bundle' && existsSync(source)
    ? source
    : new URL('../dist/cli-bundle/sluice.js', import.meta.url);
// `sluice list | head`: a reader that goes away ends the command quietly, as it would `cat`.
// (`run` handles it in its stdout sink, so that other sinks still close cleanly.)
if (process.argv[2] !== 'run') {
  process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
// Node's compile cache (os.tmpdir()/node-compile-cache; NODE_DISABLE_COMPILE_CACHE=1 turns it off)
// keeps compiled modules, type-stripped TypeScript included, on disk: a warm start never loads the
// TypeScript stripper. Measured on a two-line CSV run from a checkout: 123 → 97 MiB peak RSS, and
// a faster start.
nodeModule.enableCompileCache?.();
// Started through `npx` (npm sets npm_command=exec), the process tree is npm → sh -c → node, and
// a SIGTERM to npm kills the shell without passing the signal on: this process would run on as an
// orphan. So when the parent that started it goes away, stop as on SIGTERM (`Stopped`, exit 143).
// Only under npx: a `nohup sluice run … &` started directly is meant to outlive its shell.
if (process.env.npm_command === 'exec') {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  watch.unref();
}
if (entry !== source || process.features.typescript) {
  const { main, exitProcess } = await import(entry.href);
  exitProcess(await main(process.argv.slice(2)));
} else {
  process.stderr.write(
    `sluice: this Node.js (${process.version}) cannot run TypeScript directly; run \`npm run build\` first, or use Node.js 22.18+ / 24.\n`,
  );
  process.exitCode = 2;
}
