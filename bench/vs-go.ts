/**
 * `npm run bench -- vs-go`: Sluice through its CLI against the seed's Go pipelines
 * (`bench/go/peer.go`, standard library only, built here with `go build`) on the same generated
 * events file in the same run: tumbling one-minute windows keyed by (country, event_type), count and
 * exact sum of `amount` in cents.
 *
 * - CSV (12 columns): Go `encoding/csv` on one goroutine (`go-csv`) and read by one goroutine
 *   feeding a worker goroutine per core by key hash (`go-csv-pool`); Sluice `file` (csv) →
 *   `window` → `file` (jsonl).
 * - JSONL (the same columns): Go `json.Decoder` (`go-jsonl-decoder`) and `bufio.Scanner` +
 *   `json.Unmarshal` (`go-jsonl-unmarshal`); Sluice the same pipeline reading JSON Lines.
 *
 * Every run is a fresh process (Sluice: `node bin/sluice.js run pipeline.yaml` with the launcher's
 * flags, running the published bundle, rebuilt from the sources at the start, as an installed
 * package does; `--cli source` runs the TypeScript sources as a checkout's `npx sluice` does), contenders alternate (a, b, c, a, b, c…), and the table shows medians of wall time and
 * of CPU time (user + system, all threads: on a shared machine it moves less than wall time), and
 * the peak RSS (VmHWM) of each. Every contender's results must have the checksum the Go peer
 * prints (SHA-256 of the sorted window lines); a mismatch fails the benchmark.
 *
 * Ends with `ratio vs-go-csv sluice/go X` and `ratio vs-go-jsonl sluice/go X`: median wall time of
 * the faster Go mode over Sluice's (above 1: Sluice is faster), and the same of CPU time.
 *
 * With `--parallelism N` (N > 1) Sluice runs a second time with the window at `parallelism: N`
 * (split-parallel: worker threads over byte ranges of the file), as `sluice-<format>-pN`, and the
 * table ends with `speedup <format> parallelism N/1 X` (median wall of one thread over N).
 *
 * Run alone: `npx node bench/vs-go.ts [--parallelism 2] [--size-mb 200] [--rounds 3] [--only csv|jsonl]
 * [--cli bundle|source]`.
 * Needs `go` on the PATH.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { numberFlag, stringFlag } from './child.ts';
import { CHANNELS, COUNTRIES, rng, STATUSES, writeGenerated } from './csv.ts';
import { cliBuild, cliBuildFlag, launcher } from './launcher.ts';
import { median } from './run.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LAUNCHER = launcher(ROOT);
const WORK = join(tmpdir(), 'sluice-bench-vs-go');
const EVENT_TYPES = ['login', 'logout', 'purchase', 'refund', 'view', 'search'];
const WORDS = ['quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'lorem', 'ipsum', 'dolor'];
const HEADER = [
  'id',
  'ts',
  'country',
  'event_type',
  'status',
  'channel',
  'amount',
  'fee',
  'qty',
  'sku',
  'note',
  'user',
];

/**
 * The generated events, 5,000 at a time, as values in {@link HEADER} order: about 30 events a
 * second of event time, one in fifty up to 3 s out of order (the pipelines allow 5 s, so none is
 * late and every contender's windows hold every event).
 */
function eventBlocks(seed: number): () => string[][] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
  let id = 1_000_000;
  let ts = Date.UTC(2024, 0, 1);
  return () => {
    const rows: string[][] = [];
    for (let i = 0; i < 5000; i++) {
      ts += Math.floor(r() * 66);
      const t = r() < 0.02 ? ts - Math.floor(r() * 3000) : ts;
      const words: string[] = [];
      const nw = 3 + Math.floor(r() * 6);
      for (let k = 0; k < nw; k++) words.push(pick(WORDS));
      rows.push([
        String(id++),
        new Date(t).toISOString(),
        pick(COUNTRIES),
        pick(EVENT_TYPES),
        pick(STATUSES),
        pick(CHANNELS),
        (r() < 0.05 ? '-' : '') + (r() * 1000).toFixed(2),
        (r() * 10).toFixed(2),
        String(1 + Math.floor(r() * 9)),
        `SKU-${Math.floor(r() * 5000)}`,
        words.join(r() < 0.5 ? ', ' : ' '),
        `user${Math.floor(r() * 100000)}@example.com`,
      ]);
    }
    return rows;
  };
}

const csvField = (v: string) => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

function generate(sizeMb: number): { csv: string; jsonl: string } {
  mkdirSync(WORK, { recursive: true });
  const csvBlocks = eventBlocks(7);
  const csv = writeGenerated(join(WORK, `events-v1-${sizeMb}mb.csv`), sizeMb, `${HEADER.join(',')}\n`, () =>
    csvBlocks()
      .map((row) => `${row.map(csvField).join(',')}\n`)
      .join(''),
  );
  const jsonBlocks = eventBlocks(7);
  const jsonl = writeGenerated(join(WORK, `events-v1-${sizeMb}mb.jsonl`), sizeMb, '', () =>
    jsonBlocks()
      .map((row) => {
        const o: Record<string, string | number> = {};
        HEADER.forEach((h, i) => {
          o[h] = h === 'id' || h === 'qty' ? Number(row[i]) : (row[i] as string);
        });
        return `${JSON.stringify(o)}\n`;
      })
      .join(''),
  );
  return { csv, jsonl };
}

/** Builds the Go peer (the Go build cache makes a rebuild of unchanged source quick). */
function buildPeer(): string {
  const out = join(WORK, 'peer');
  const r = spawnSync('go', ['build', '-o', out, join(ROOT, 'bench', 'go', 'peer.go')], {
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off' },
  });
  if (r.error !== undefined || r.status !== 0)
    throw new Error(`building bench/go/peer.go failed (is \`go\` on the PATH?): ${r.error ?? r.stderr}`);
  return out;
}

function pipelineYaml(input: string, format: 'csv' | 'jsonl', output: string, parallelism = 1): string {
  return `name: vs-go-${format}
input:
  file: { path: ${JSON.stringify(input)}, format: ${format} }
pipeline:
  - window:
      key: [country, event_type]
      time: ts
      tumbling: 1m
      watermark: { maxOutOfOrder: 5s }
      aggregate: { count: count(), amount: sum(amount) }
      parallelism: ${parallelism}
output:
  file: { path: ${JSON.stringify(output)}, format: jsonl }
`;
}

/** `"-12.3"` → -1230 (at most two decimals, as the sums are). */
function cents(s: string): bigint {
  const neg = s.startsWith('-');
  const [int = '0', frac = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt(int) * 100n + BigInt(frac.padEnd(2, '0').slice(0, 2) || '0');
  return neg ? -v : v;
}

/** The checksum `peer.go` computes, of Sluice's JSONL window results. */
function sluiceChecksum(file: string): { windows: number; checksum: string } {
  const lines: string[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (l === '') continue;
    const r = JSON.parse(l) as Record<string, string | number>;
    const start = Date.parse(r.windowStart as string);
    lines.push(`${r.country}\t${r.event_type}\t${start}\t${r.count}\t${cents(String(r.amount))}\n`);
  }
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sum = createHash('sha256').update(lines.join('')).digest('hex').slice(0, 16);
  return { windows: lines.length, checksum: sum };
}

interface Run {
  wallMs: number;
  cpuMs: number;
  hwmKiB: number;
  windows: number;
  checksum: string;
}

interface Contender {
  readonly name: string;
  run(): Run;
}

function goContender(peer: string, name: string, mode: string, file: string, workers: number): Contender {
  return {
    name,
    run() {
      const t0 = performance.now();
      const r = spawnSync(peer, ['-mode', mode, '-workers', String(workers), file], { encoding: 'utf8' });
      const wallMs = performance.now() - t0;
      if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
      const j = JSON.parse(r.stdout.trim()) as Omit<Run, 'wallMs'>;
      return { wallMs, ...j };
    },
  };
}

function sluiceContender(
  name: string,
  yaml: string,
  output: string,
  cliEnv: Readonly<Record<string, string>>,
): Contender {
  const stats = join(WORK, `${name}.stats.json`);
  return {
    name,
    run() {
      rmSync(output, { force: true });
      const t0 = performance.now();
      // As bin/sluice.js's shebang runs it, plus the exit-stats preload.
      const r = spawnSync(
        process.execPath,
        [
          ...LAUNCHER.nodeFlags,
          '--import',
          join(ROOT, 'bench', 'exit-stats.mjs'),
          join(ROOT, 'bin', 'sluice.js'),
          'run',
          yaml,
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, ...LAUNCHER.env, ...cliEnv, SLUICE_BENCH_STATS: stats },
        },
      );
      const wallMs = performance.now() - t0;
      if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
      const s = JSON.parse(readFileSync(stats, 'utf8')) as { cpuMs: number; hwmKiB: number };
      return { wallMs, ...s, ...sluiceChecksum(output) };
    },
  };
}

function measure(
  title: string,
  bytes: number,
  contenders: readonly Contender[],
  rounds: number,
): Map<string, Run[]> {
  const runs = new Map<string, Run[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      const r = c.run();
      (runs.get(c.name) as Run[]).push(r);
      process.stderr.write(
        `  ${title} round ${round + 1} ${c.name}: ${(r.wallMs / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU, ${(r.hwmKiB / 1024).toFixed(0)} MiB\n`,
      );
    }
  }
  console.log(
    `\n${title} — ${(bytes / 1e6).toFixed(0)} MB → tumbling 1m by (country, event_type), count + cents sum; ${rounds} rounds, medians`,
  );
  console.log(
    `${'contender'.padEnd(20)}${'wall s'.padStart(8)}${'min–max'.padStart(14)}${'CPU s'.padStart(8)}${'MB/s'.padStart(8)}${'peak RSS MiB'.padStart(14)}${'windows'.padStart(9)}  checksum`,
  );
  for (const [name, rs] of runs) {
    const w = rs.map((r) => r.wallMs / 1000);
    console.log(
      `${name.padEnd(20)}${median(w).toFixed(2).padStart(8)}${`${Math.min(...w).toFixed(2)}–${Math.max(...w).toFixed(2)}`.padStart(14)}${(median(rs.map((r) => r.cpuMs)) / 1000).toFixed(2).padStart(8)}${(bytes / 1e6 / median(w)).toFixed(0).padStart(8)}${(Math.max(...rs.map((r) => r.hwmKiB)) / 1024).toFixed(0).padStart(14)}${String(rs[0]?.windows).padStart(9)}  ${rs[0]?.checksum}`,
    );
  }
  const sums = new Set([...runs.values()].flatMap((rs) => rs.map((r) => r.checksum)));
  if (sums.size !== 1)
    throw new Error(`${title}: the contenders' results differ (checksums ${[...sums].join(', ')})`);
  return runs;
}

/** The ratio lines of one comparison: the faster Go mode's medians over Sluice's. */
function ratios(name: string, runs: Map<string, Run[]>, sluice: string): string[] {
  const med = (c: string, f: (r: Run) => number) => median((runs.get(c) as Run[]).map(f));
  const goNames = [...runs.keys()].filter((c) => c.startsWith('go-'));
  const best = (f: (r: Run) => number) => Math.min(...goNames.map((c) => med(c, f)));
  const wall = best((r) => r.wallMs) / med(sluice, (r) => r.wallMs);
  const cpu = best((r) => r.cpuMs) / med(sluice, (r) => r.cpuMs);
  return [`ratio ${name} sluice/go ${wall.toFixed(2)}`, `ratio ${name}-cpu sluice/go ${cpu.toFixed(2)}`];
}

function main(argv: string[]): void {
  const sizeMb = numberFlag(argv, '--size-mb') ?? 200;
  const rounds = numberFlag(argv, '--rounds') ?? 3;
  const only = stringFlag(argv, '--only');
  const parallelism = numberFlag(argv, '--parallelism') ?? 1;
  const cli = cliBuildFlag(stringFlag(argv, '--cli'));
  const cliEnv = cliBuild(ROOT, cli);
  const workers = availableParallelism();
  process.stderr.write(
    `vs-go: Sluice's ${cli === 'bundle' ? 'published bundle (dist/cli-bundle, rebuilt now)' : 'TypeScript sources'} with ${LAUNCHER.describe}; building the Go peer, generating ${sizeMb} MB files (once)…\n`,
  );
  const peer = buildPeer();
  const files = generate(sizeMb);
  const small = generate(1);
  const out: string[] = [];
  const plan = [
    {
      name: 'vs-go-csv',
      format: 'csv' as const,
      file: files.csv,
      warm: small.csv,
      go: [
        ['go-csv', 'csv'],
        ['go-csv-pool', 'csv-pool'],
      ],
    },
    {
      name: 'vs-go-jsonl',
      format: 'jsonl' as const,
      file: files.jsonl,
      warm: small.jsonl,
      go: [
        ['go-jsonl-decoder', 'jsonl-decoder'],
        ['go-jsonl-unmarshal', 'jsonl-unmarshal'],
      ],
    },
  ];
  for (const p of plan) {
    if (only !== undefined && only !== p.format) continue;
    const output = join(WORK, `sluice-${p.format}-${process.pid}.jsonl`);
    const yaml = join(WORK, `${p.format}.yaml`);
    writeFileSync(yaml, pipelineYaml(p.file, p.format, output));
    const warmYaml = join(WORK, `${p.format}-warm.yaml`);
    writeFileSync(warmYaml, pipelineYaml(p.warm, p.format, output));
    sluiceContender('warm-up', warmYaml, output, cliEnv).run(); // Node's compile cache: not measured
    const sluiceName = `sluice-${p.format}`;
    const contenders = [
      ...p.go.map(([n, mode]) => goContender(peer, n as string, mode as string, p.file, workers)),
      sluiceContender(sluiceName, yaml, output, cliEnv),
    ];
    const splitName = `${sluiceName}-p${parallelism}`;
    if (parallelism > 1) {
      const splitYaml = join(WORK, `${p.format}-p${parallelism}.yaml`);
      writeFileSync(splitYaml, pipelineYaml(p.file, p.format, output, parallelism));
      contenders.push(sluiceContender(splitName, splitYaml, output, cliEnv));
    }
    const size = statSync(p.file).size;
    const runs = measure(p.name, size, contenders, rounds);
    out.push(...ratios(p.name, runs, sluiceName));
    if (parallelism > 1) {
      out.push(...ratios(`${p.name}-p${parallelism}`, runs, splitName));
      const wall = (c: string) => median((runs.get(c) as Run[]).map((r) => r.wallMs));
      out.push(
        `speedup ${p.format} parallelism ${parallelism}/1 ${(wall(sluiceName) / wall(splitName)).toFixed(2)}`,
      );
    }
    if (existsSync(output)) rmSync(output);
  }
  console.log(`\n${out.join('\n')}`);
}

main(process.argv.slice(2));
