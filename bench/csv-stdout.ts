/**
 * `npm run bench -- csv-stdout`: CSV → JSON Lines on stdout, whole processes, against the peer a
 * Node.js user would write instead. The file is `bench/csv.ts`'s generated CSV (12 columns with
 * ISO timestamps, quoted free text with commas and doubled quotes; 200 MB by default).
 *
 * - `sluice`: `sluice run` of `file (csv) → stdout (jsonl)`, as `bin/sluice.js` runs it.
 * - `papaparse`: this script in peer mode — `Papa.parse` of a read stream with `header: true`
 *   and `skipEmptyLines: true`, each chunk's rows written as `JSON.stringify(row)` lines to
 *   `process.stdout`, pausing the parser while stdout is full (what its README shows, plus
 *   backpressure).
 *
 * Each contender's stdout goes to a file; its SHA-256 must be the same for every contender (the
 * same bytes: every field a string, the header's key order), else the benchmark fails. Runs
 * alternate (a, b, a, b…), medians of wall and CPU time (user + system, all threads) and the
 * peak RSS (VmHWM) of each process. Ends with `ratio csv-stdout sluice/papaparse X` (wall; above 1:
 * Sluice is faster) and the same of CPU time.
 *
 * Run alone: `npx node bench/csv-stdout.ts [--size-mb 200] [--rounds 3]`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberFlag } from './child.ts';
import { generateCsv } from './csv.ts';
import { launcher } from './launcher.ts';
import { median } from './run.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LAUNCHER = launcher(ROOT);
const SELF = fileURLToPath(import.meta.url);
const EXIT_STATS = join(ROOT, 'bench', 'exit-stats.mjs');

/** One run of one contender. */
interface Run {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly hwmKiB: number;
  readonly outBytes: number;
  readonly sha: string;
}

/** The slice of papaparse's API the peer uses (it ships no types we can rely on). */
interface PapaApi {
  parse(
    input: NodeJS.ReadableStream,
    config: {
      header: boolean;
      skipEmptyLines: boolean;
      chunk: (res: { data: Record<string, string>[] }, parser: { pause(): void; resume(): void }) => void;
      complete: () => void;
      error: (e: Error) => void;
    },
  ): void;
}

/** The papaparse peer: reads `file`, writes JSON Lines to stdout. */
async function papaparsePeer(file: string): Promise<void> {
  // A variable specifier: papaparse is a devDependency without types.
  const name = 'papaparse';
  const Papa = ((await import(name)) as { default: PapaApi }).default;
  await new Promise<void>((resolve, reject) => {
    // `encoding`: without it, a character split across two reads is garbled (seen: "São Paulo").
    Papa.parse(createReadStream(file, { encoding: 'utf8' }), {
      header: true,
      skipEmptyLines: true,
      chunk(results, parser) {
        let out = '';
        for (const row of results.data) out += `${JSON.stringify(row)}\n`;
        if (!process.stdout.write(out)) {
          parser.pause();
          process.stdout.once('drain', () => parser.resume());
        }
      },
      complete: () => resolve(),
      error: reject,
    });
  });
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
}

function sha256(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex').slice(0, 16);
}

function runOnce(name: string, args: readonly string[], env: NodeJS.ProcessEnv, out: string): Run {
  const stats = join(tmpdir(), `sluice-bench-csv-stdout-${name}.stats.json`);
  rmSync(stats, { force: true });
  const fd = openSync(out, 'w');
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', EXIT_STATS, ...args], {
    stdio: ['ignore', fd, 'pipe'],
    env: { ...process.env, ...env, SLUICE_BENCH_STATS: stats },
  });
  const wallMs = performance.now() - t0;
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
  const s = JSON.parse(readFileSync(stats, 'utf8')) as { cpuMs: number; hwmKiB: number };
  const outBytes = statSync(out).size;
  const sha = sha256(out);
  rmSync(out, { force: true });
  return { wallMs, ...s, outBytes, sha };
}

function main(argv: readonly string[]): void {
  const sizeMb = numberFlag(argv, '--size-mb') ?? 200;
  const rounds = numberFlag(argv, '--rounds') ?? 3;
  const file = generateCsv(sizeMb);
  const yaml = join(tmpdir(), 'sluice-bench-csv-stdout.yaml');
  writeFileSync(
    yaml,
    `name: csv-stdout\ninput:\n  file: { path: ${JSON.stringify(file)}, format: csv }\noutput:\n  stdout: { format: jsonl }\n`,
  );
  const out = join(tmpdir(), `sluice-bench-csv-stdout-${process.pid}.jsonl`);
  const contenders: readonly { name: string; args: string[]; env: NodeJS.ProcessEnv }[] = [
    {
      name: 'sluice',
      // As bin/sluice.js's shebang runs it.
      args: [...LAUNCHER.nodeFlags, join(ROOT, 'bin', 'sluice.js'), 'run', yaml],
      env: LAUNCHER.env,
    },
    { name: 'papaparse', args: [SELF, '--peer', 'papaparse', file], env: {} },
  ];
  const runs = new Map<string, Run[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      const r = runOnce(c.name, c.args, c.env, out);
      (runs.get(c.name) as Run[]).push(r);
      process.stderr.write(
        `  csv-stdout round ${round + 1} ${c.name}: ${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU, ${(r.hwmKiB / 1024).toFixed(0)} MiB, ${r.sha}\n`,
      );
    }
  }
  const bytes = statSync(file).size;
  console.log(
    `\ncsv-stdout — ${(bytes / 1e6).toFixed(0)} MB CSV → JSON Lines on stdout (a file); ${rounds} rounds, medians`,
  );
  console.log(
    `${'contender'.padEnd(12)}${'wall s'.padStart(8)}${'min–max'.padStart(14)}${'CPU s'.padStart(8)}${'MB/s'.padStart(8)}${'peak RSS MiB'.padStart(14)}${'out MB'.padStart(9)}  sha256`,
  );
  for (const [name, rs] of runs) {
    const w = rs.map((r) => r.wallMs / 1000);
    console.log(
      `${name.padEnd(12)}${median(w).toFixed(2).padStart(8)}${`${Math.min(...w).toFixed(2)}–${Math.max(...w).toFixed(2)}`.padStart(14)}${(median(rs.map((r) => r.cpuMs)) / 1000).toFixed(2).padStart(8)}${(bytes / 1e6 / median(w)).toFixed(0).padStart(8)}${(Math.max(...rs.map((r) => r.hwmKiB)) / 1024).toFixed(0).padStart(14)}${((rs[0]?.outBytes ?? 0) / 1e6).toFixed(0).padStart(9)}  ${rs[0]?.sha}`,
    );
  }
  const shas = new Set([...runs.values()].flatMap((rs) => rs.map((r) => r.sha)));
  if (shas.size !== 1)
    throw new Error(`csv-stdout: the contenders' outputs differ (${[...shas].join(', ')})`);
  const med = (name: string, f: (r: Run) => number) => median((runs.get(name) as Run[]).map(f));
  console.log(
    `\nratio csv-stdout sluice/papaparse ${(med('papaparse', (r) => r.wallMs) / med('sluice', (r) => r.wallMs)).toFixed(2)}`,
  );
  console.log(
    `ratio csv-stdout-cpu sluice/papaparse ${(med('papaparse', (r) => r.cpuMs) / med('sluice', (r) => r.cpuMs)).toFixed(2)}`,
  );
}

const peerAt = process.argv.indexOf('--peer');
if (peerAt >= 0) {
  await papaparsePeer(process.argv[peerAt + 2] as string);
} else {
  main(process.argv.slice(2));
}
