/**
 * `npm run bench -- parallel [--lines N] [--runs R] [--step sha|js]` (or `npx node bench/parallel.ts [--lines N] [--rounds R] [--step js]`): a CPU-heavy `module:` step (16 rounds
 * of SHA-256 per record, or with `--step js` as much integer mixing in plain JavaScript;
 * bench/parallel-step-module.ts) through the CLI, JSONL file → step →
 * JSONL file, with `parallelism: 1` (the function on the main thread) and `parallelism: 2`
 * (two worker threads, unkeyed; the main thread helps), `parallelism: 2` with `key: user`, and
 * `parallelism: 1` with the `light` export (the same records without the hashing: everything
 * but the step); runs interleaved, medians.
 *
 * Prints wall time, records/s, CPU seconds (user + sys) and peak RSS of each, and the CPU of
 * each kind of thread (main, workers, V8's helpers; bench/thread-cpu.ts), checks that the
 * three hashing runs wrote the same bytes, and ends with `speedup step parallelism 2/1 X` (and
 * its `ratio` line for bench/run.ts). From the CPU figures, which hardly move with the
 * machine's load, it prints the model of the run: the step's CPU per record, the serial part
 * (the `light` run's main thread), the extra CPU of two threads per record, and Amdahl's bound.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { numberFlag } from './child.ts';
import { launcher } from './launcher.ts';
import { median } from './run.ts';
import { runWithThreadCpu } from './thread-cpu.ts';

const records = numberFlag(process.argv, '--lines') ?? 60_000;
// bench/run.ts passes `--runs N` on as `--rounds N`.
const runs = numberFlag(process.argv, '--rounds') ?? 3;
const stepFlag = process.argv.indexOf('--step');
const stepKind = stepFlag >= 0 ? process.argv[stepFlag + 1] : 'sha';
if (stepKind !== 'sha' && stepKind !== 'js') throw new Error(`--step is \`sha\` or \`js\`, got ${stepKind}`);
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-parallel-'));
const MODULE = resolve(import.meta.dirname, 'parallel-step-module.ts');
// The step as a pipeline file names it: the default export (SHA-256) or `mix`.
const STEP = stepKind === 'sha' ? MODULE : `{ path: ${MODULE}, export: mix }`;
// The launcher, as `sluice` runs (its compile cache, which the step's worker threads share too).
const CLI = resolve(import.meta.dirname, '../bin/sluice.js');
const LAUNCHER = launcher(resolve(import.meta.dirname, '..'));

const lines: string[] = [];
for (let n = 0; n < records; n++)
  lines.push(
    JSON.stringify({ n, user: `u${(n * 7919) % 1000}`, amount: `${n % 997}.${n % 100}`, country: 'DE' }),
  );
writeFileSync(join(dir, 'in.jsonl'), `${lines.join('\n')}\n`);

const configs: Record<string, { threads: number; step: string }> = {
  'parallelism 1': { threads: 1, step: `  - module: ${STEP}\n    parallelism: 1\n` },
  'parallelism 2': { threads: 2, step: `  - module: ${STEP}\n    parallelism: 2\n` },
  'parallelism 2 keyed': { threads: 2, step: `  - module: ${STEP}\n    parallelism: 2\n    key: user\n` },
  'light, parallelism 1': {
    threads: 1,
    step: `  - module: { path: ${MODULE}, export: light }\n    parallelism: 1\n`,
  },
};
const slugOf = (name: string) => name.replaceAll(/[ ,]+/g, '-');
for (const [name, c] of Object.entries(configs))
  writeFileSync(
    join(dir, `${slugOf(name)}.yaml`),
    `name: bench-parallel\ninput: { file: { path: in.jsonl, format: jsonl } }\npipeline:\n${c.step}output: { file: { path: out-${slugOf(name)}.jsonl, format: jsonl } }\n`,
  );

interface Run {
  wall: number;
  cpu: number;
  rssMiB: number;
  digest: string;
  main: number;
  workers: number;
  workerMax: number;
  helpers: number;
}
const results = new Map<string, Run[]>();
for (let r = 0; r < runs; r++)
  for (const name of Object.keys(configs)) {
    const slug = slugOf(name);
    const p = await runWithThreadCpu(
      '/usr/bin/time',
      // The launcher's shebang flags (`node bin/sluice.js` does not read the shebang).
      ['-f', '%U %S %M', process.execPath, ...LAUNCHER.nodeFlags, CLI, 'run', join(dir, `${slug}.yaml`)],
      { env: { ...process.env, ...LAUNCHER.env }, throughChild: true },
    );
    if (p.status !== 0) throw new Error(`${name} failed: ${p.stderr}`);
    const [user, sys, rssKiB] = (p.stderr.trim().split('\n').at(-1) as string).split(' ').map(Number) as [
      number,
      number,
      number,
    ];
    const digest = createHash('sha256')
      .update(readFileSync(join(dir, `out-${slug}.jsonl`)))
      .digest('hex');
    const t = p.threads ?? { main: Number.NaN, workers: [], helpers: Number.NaN };
    const list = results.get(name) ?? [];
    list.push({
      wall: p.wallSeconds,
      cpu: user + sys,
      rssMiB: rssKiB / 1024,
      digest,
      main: t.main,
      workers: t.workers.reduce((a, b) => a + b, 0),
      workerMax: Math.max(0, ...t.workers),
      helpers: t.helpers,
    });
    results.set(name, list);
  }

const hashing = [...results].filter(([name]) => !name.startsWith('light'));
const digests = new Set(hashing.flatMap(([, rs]) => rs.map((r) => r.digest)));
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(
  `parallel: ${records} records, JSONL → module step (${stepKind === 'sha' ? '16 × SHA-256' : 'plain-JS mixing'}/record) → JSONL, CLI, medians of ${runs} (load average now ${load})`,
);
console.log(
  'contender              wall s  records/s  cpu s  peak RSS MiB  CPU ms: main  workers (max)  V8 helpers  every run (wall s)',
);
const med = (name: string, f: (r: Run) => number) => median((results.get(name) ?? []).map(f));
for (const [name, rs] of results) {
  const wall = med(name, (r) => r.wall);
  console.log(
    `${name.padEnd(21)} ${wall.toFixed(2).padStart(7)} ${(records / wall).toFixed(0).padStart(10)} ${med(
      name,
      (r) => r.cpu,
    )
      .toFixed(2)
      .padStart(6)} ${med(name, (r) => r.rssMiB)
      .toFixed(0)
      .padStart(13)} ${med(name, (r) => r.main)
      .toFixed(0)
      .padStart(
        13,
      )} ${`${med(name, (r) => r.workers).toFixed(0)} (${med(name, (r) => r.workerMax).toFixed(0)})`.padStart(
      14,
    )} ${med(name, (r) => r.helpers)
      .toFixed(0)
      .padStart(11)}  ${rs.map((r) => r.wall.toFixed(2)).join(' ')}`,
  );
}

// The model, from CPU time (ms). The serial part is what the `light` run's main thread does.
const serialMs = med('light, parallelism 1', (r) => r.main);
const oneMs = med('parallelism 1', (r) => r.main);
const stepUs = ((oneMs - serialMs) * 1000) / records;
const s = serialMs / oneMs;
const extraUs = ((med('parallelism 2', (r) => r.cpu) - med('parallelism 1', (r) => r.cpu)) * 1e6) / records;
console.log(
  `step ${stepUs.toFixed(1)} µs CPU/record on one thread; serial part (main thread of the light run) ${serialMs.toFixed(0)} ms = ${s.toFixed(2)} of the one-thread main thread; Amdahl's bound with 2 threads ${(1 / (s + (1 - s) / 2)).toFixed(2)}×`,
);
console.log(
  `parallelism 2 spends ${extraUs.toFixed(1)} µs more CPU/record than 1 (worker start-up, records crossing threads, a second JIT and heap)`,
);
// Exact, unlike the wall times: not one pair of rounds may differ from the rest.
console.log(`outputs identical: ${digests.size === 1 ? 'yes' : `NO (${digests.size} different outputs)`}`);
const oneWall = med('parallelism 1', (r) => r.wall);
const speedup = oneWall / med('parallelism 2', (r) => r.wall);
const keyed = oneWall / med('parallelism 2 keyed', (r) => r.wall);
const perRound = (results.get('parallelism 1') ?? []).map(
  (r, i) => r.wall / ((results.get('parallelism 2') ?? [])[i] as Run).wall,
);
console.log(
  `speedup step parallelism 2/1 ${speedup.toFixed(2)} (median of per-round ratios ${median(perRound).toFixed(2)})`,
);
console.log(`speedup step parallelism 2-keyed/1 ${keyed.toFixed(2)}`);
console.log(`ratio parallel p2/p1 ${speedup.toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
if (digests.size !== 1) process.exitCode = 1;
