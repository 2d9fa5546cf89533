/**
 * `npm run bench -- parallel [--lines N] [--runs R]` (or `npx node bench/parallel.ts [--lines N] [--rounds R]`): a CPU-heavy `module:` step (about 20 µs
 * of SHA-256 per record, bench/parallel-step-module.ts) through the CLI, JSONL file → step →
 * JSONL file, with `parallelism: 1` (the function on the main thread) and `parallelism: 2`
 * (two worker threads, unkeyed), and `parallelism: 2` with `key: user`; runs interleaved, medians.
 *
 * Prints wall time, records/s, per-thread records/s (records/s over worker threads), CPU
 * seconds (user + sys) and peak RSS of each, checks that every run wrote the same bytes, and
 * ends with `speedup step parallelism 2/1 X` (and its `ratio` line for bench/run.ts). Also times
 * the step alone on this thread (µs/record) and from it the serial fraction of the one-thread
 * run: everything but the step (start-up, decoding, encoding, writing).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { numberFlag } from './child.ts';
import { median } from './run.ts';

const records = numberFlag(process.argv, '--lines') ?? 60_000;
// bench/run.ts passes `--runs N` on as `--rounds N`.
const runs = numberFlag(process.argv, '--rounds') ?? 3;
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-parallel-'));
const MODULE = resolve(import.meta.dirname, 'parallel-step-module.ts');
// The launcher, as `sluice` runs (its compile cache, which the step's worker threads share too).
const CLI = resolve(import.meta.dirname, '../bin/sluice.js');

const lines: string[] = [];
for (let n = 0; n < records; n++)
  lines.push(
    JSON.stringify({ n, user: `u${(n * 7919) % 1000}`, amount: `${n % 997}.${n % 100}`, country: 'DE' }),
  );
writeFileSync(join(dir, 'in.jsonl'), `${lines.join('\n')}\n`);

const configs: Record<string, { threads: number; step: string }> = {
  'parallelism 1': { threads: 1, step: '    parallelism: 1\n' },
  'parallelism 2': { threads: 2, step: '    parallelism: 2\n' },
  'parallelism 2 keyed': { threads: 2, step: '    parallelism: 2\n    key: user\n' },
};
for (const [name, c] of Object.entries(configs))
  writeFileSync(
    join(dir, `${name.replaceAll(' ', '-')}.yaml`),
    `name: bench-parallel\ninput: { file: { path: in.jsonl, format: jsonl } }\npipeline:\n  - module: ${MODULE}\n${c.step}output: { file: { path: out-${name.replaceAll(' ', '-')}.jsonl, format: jsonl } }\n`,
  );

interface Run {
  wall: number;
  cpu: number;
  rssMiB: number;
  digest: string;
}
const results = new Map<string, Run[]>();
for (let r = 0; r < runs; r++)
  for (const name of Object.keys(configs)) {
    const slug = name.replaceAll(' ', '-');
    const t0 = performance.now();
    const p = spawnSync(
      '/usr/bin/time',
      // The launcher's shebang flags (`node bin/sluice.js` does not read the shebang).
      ['-f', '%U %S %M', process.execPath, '--max-semi-space-size=8', CLI, 'run', join(dir, `${slug}.yaml`)],
      { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '2' } },
    );
    const wall = (performance.now() - t0) / 1000;
    if (p.status !== 0) throw new Error(`${name} failed: ${p.stderr}`);
    const [user, sys, rssKiB] = (p.stderr.trim().split('\n').at(-1) as string).split(' ').map(Number) as [
      number,
      number,
      number,
    ];
    const digest = createHash('sha256')
      .update(readFileSync(join(dir, `out-${slug}.jsonl`)))
      .digest('hex');
    const list = results.get(name) ?? [];
    list.push({ wall, cpu: user + sys, rssMiB: rssKiB / 1024, digest });
    results.set(name, list);
  }

// The step's own cost per record on this thread, for the serial fraction of the one-thread run.
const { default: score } = await import(MODULE);
const sample = lines.slice(0, 3000).map((l) => JSON.parse(l));
const stepUs: number[] = [];
for (let r = 0; r < 3; r++) {
  const t = performance.now();
  for (const rec of sample) score(rec);
  stepUs.push(((performance.now() - t) * 1000) / sample.length);
}

const digests = new Set([...results.values()].flatMap((rs) => rs.map((r) => r.digest)));
console.log(
  `parallel: ${records} records, JSONL → module step (~20 µs SHA-256/record) → JSONL, CLI, medians of ${runs}`,
);
console.log('contender             wall s  records/s  per-thread/s  cpu s  peak RSS MiB  every run (wall s)');
const wallOf = new Map<string, number>();
for (const [name, rs] of results) {
  const wall = median(rs.map((r) => r.wall));
  wallOf.set(name, wall);
  const rate = records / wall;
  const threads = (configs[name] as { threads: number }).threads;
  console.log(
    `${name.padEnd(20)} ${wall.toFixed(2).padStart(7)} ${rate.toFixed(0).padStart(10)} ${(rate / threads).toFixed(0).padStart(13)} ${median(
      rs.map((r) => r.cpu),
    )
      .toFixed(2)
      .padStart(6)} ${median(rs.map((r) => r.rssMiB))
      .toFixed(0)
      .padStart(13)}  ${rs.map((r) => r.wall.toFixed(2)).join(' ')}`,
  );
}
const oneWall = wallOf.get('parallelism 1') as number;
const serial = Math.max(0, 1 - (records * median(stepUs)) / 1e6 / oneWall);
console.log(
  `step ${median(stepUs).toFixed(1)} µs/record on one thread; serial fraction of the one-thread run (all but the step) ${serial.toFixed(2)}`,
);
console.log(`outputs identical: ${digests.size === 1 ? 'yes' : `NO (${digests.size} different outputs)`}`);
const speedup = oneWall / (wallOf.get('parallelism 2') as number);
const keyed = oneWall / (wallOf.get('parallelism 2 keyed') as number);
console.log(`speedup step parallelism 2/1 ${speedup.toFixed(2)}`);
console.log(`speedup step parallelism 2-keyed/1 ${keyed.toFixed(2)}`);
console.log(`ratio parallel p2/p1 ${speedup.toFixed(2)}`);
rmSync(dir, { recursive: true, force: true });
if (digests.size !== 1) process.exitCode = 1;
