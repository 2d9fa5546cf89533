/**
 * `npm run bench [-- NAME… [--runs N] [--records N] [--flag value…]]`: runs benchmarks with their
 * peers in the same run (all registered ones but the manual ones without a NAME; `--records`
 * applies to those driven from here, e.g. `core`; `--runs` to every one; other flags go to the
 * script benchmarks, e.g. `--size-mb 1000`) and prints a table per benchmark, then one line per
 * comparison:
 *
 *   ratio core sluice/node-streams 12.40
 *
 * A ratio above 1 means Sluice is faster (median records/s over median records/s). Every
 * run of every contender is a fresh child process (`node <script> --contender X`), so one
 * contender's heap and JIT state never affect another's and the peak RSS (from
 * `process.resourceUsage().maxRSS`) is that contender's own. Runs are interleaved
 * (a, b, c, a, b, c…) so a machine getting slower or faster affects every contender alike.
 */
import { spawn } from 'node:child_process';

/** A benchmark module's description of itself. */
export interface BenchmarkDefinition {
  /** Name used on the command line and in `ratio` lines. */
  readonly name: string;
  /** One line for the table header. */
  readonly summary: string;
  /** Path of the script run as `node <script> --contender X --records N`. */
  readonly script: string;
  /** Contender names, the first being Sluice. */
  readonly contenders: readonly string[];
  /** Input records per run unless `--records` says otherwise. */
  readonly defaultRecords: number;
  /** `[a, b]`: print `ratio <name> a/b <median a / median b>`. */
  readonly ratios: readonly (readonly [string, string])[];
}

/** What one child process reports (one JSON line on stdout). */
export interface ContenderResult {
  readonly contender: string;
  /** Records put in. */
  readonly input: number;
  /** Records that reached the end (after the filter). */
  readonly records: number;
  readonly ms: number;
  /** Input records per second. */
  readonly recordsPerSec: number;
  /** Peak resident set size of the process, KiB. */
  readonly maxRssKiB: number;
}

/**
 * Benchmarks by name. A `module` exports a {@link BenchmarkDefinition} named `benchmark` and is
 * driven from here; a `script` runs on its own (`node <script>`, its own flags and defaults),
 * prints its table, and its `ratio …` lines are collected with the others at the end. A `manual`
 * benchmark runs only when named (it takes minutes).
 */
const REGISTRY: Record<string, { module: string } | { script: string; manual?: boolean }> = {
  core: { module: './core.ts' },
  csv: { script: './csv.ts' },
  jsonl: { script: './jsonl.ts' },
  'csv-memory': { script: './csv-memory.ts', manual: true },
  'csv-workers': { script: './csv-workers.ts', manual: true },
  cel: { script: './cel.ts' },
  schemas: { script: './schemas.ts' },
  window: { script: './window.ts' },
  // Needs `go` on the PATH: Sluice's CLI against the seed's Go pipelines (bench/go/peer.go).
  'vs-go': { script: './vs-go.ts' },
  'csv-stdout': { script: './csv-stdout.ts' },
  // A CPU-heavy `module:` step with `parallelism: 1` and `2` (worker threads), through the CLI.
  parallel: { script: './parallel.ts' },
  checkpoint: { script: './checkpoint.ts' },
  // Compares with PostgreSQL and Redis when they are up (`npm run services -- up postgres redis`).
  'checkpoint-backends': { script: './checkpoint-backends.ts', manual: true },
  // Needs the broker (`npm run services -- up kafka`) and a few minutes: run it by name.
  kafka: { script: './kafka.ts', manual: true },
  // Needs Redis (`npm run services -- up redis`): run it by name.
  redis: { script: './redis.ts', manual: true },
  // Needs PostgreSQL (`npm run services -- up postgres`) and a few minutes: run it by name.
  postgres: { script: './postgres.ts', manual: true },
  // Needs PostgreSQL (`npm run services -- up postgres`): the lookup join; run it by name.
  join: { script: './join.ts', manual: true },
  // Needs the broker (`npm run services -- up pulsar`): run it by name.
  pulsar: { script: './pulsar.ts', manual: true },
};

/** Runs `node <args>` (stderr passed through); resolves with its exit code and its whole stdout. */
function runNode(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function runScript(path: string, args: readonly string[]): Promise<string[]> {
  const script = new URL(path, import.meta.url).pathname;
  const { code, out } = await runNode([script, ...args]);
  if (code !== 0) throw new Error(`benchmark script ${path} exited with code ${code}`);
  return out.trimEnd().split('\n');
}

/** The median of `xs` (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function runChild(
  def: BenchmarkDefinition,
  contender: string,
  records: number,
): Promise<ContenderResult> {
  const { code, out } = await runNode([def.script, '--contender', contender, '--records', String(records)]);
  if (code !== 0) throw new Error(`benchmark ${def.name}/${contender} exited with code ${code}`);
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ContenderResult;
  } catch {
    throw new Error(
      `benchmark ${def.name}/${contender} printed no result line (got ${JSON.stringify(line)})`,
    );
  }
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const pad = (s: string, n: number, right = false) => (right ? s.padEnd(n) : s.padStart(n));

async function runBenchmark(def: BenchmarkDefinition, runs: number, records: number): Promise<string[]> {
  const results = new Map<string, ContenderResult[]>(def.contenders.map((c) => [c, []]));
  process.stderr.write(
    `${def.name}: ${def.summary}\n  ${runs} runs × ${def.contenders.length} contenders, ${fmtInt(records)} records each\n`,
  );
  for (let r = 0; r < runs; r++) {
    for (const c of def.contenders) {
      const res = await runChild(def, c, records);
      (results.get(c) as ContenderResult[]).push(res);
      process.stderr.write(
        `  run ${r + 1} ${c}: ${fmtInt(res.recordsPerSec)} rec/s, ${(res.maxRssKiB / 1024).toFixed(0)} MiB\n`,
      );
    }
  }
  const header = [
    'contender',
    'median rec/s',
    'min rec/s',
    'max rec/s',
    'median s',
    'peak RSS MiB',
    'out records',
  ];
  const widths = [14, 14, 14, 14, 10, 13, 12];
  const rows = [header];
  const medians = new Map<string, number>();
  for (const c of def.contenders) {
    const rs = results.get(c) as ContenderResult[];
    const rps = rs.map((x) => x.recordsPerSec);
    const med = median(rps);
    medians.set(c, med);
    rows.push([
      c,
      fmtInt(med),
      fmtInt(Math.min(...rps)),
      fmtInt(Math.max(...rps)),
      (median(rs.map((x) => x.ms)) / 1000).toFixed(2),
      (Math.max(...rs.map((x) => x.maxRssKiB)) / 1024).toFixed(0),
      fmtInt(rs[0]?.records ?? 0),
    ]);
  }
  const lines = [``, `${def.name} — ${def.summary}`];
  for (const row of rows) lines.push(row.map((cell, i) => pad(cell, widths[i] as number, i === 0)).join(' '));
  // Contenders compared by a ratio do the same work, so they must produce the same records.
  for (const [a, b] of def.ratios) {
    const ra = results.get(a)?.[0]?.records;
    const rb = results.get(b)?.[0]?.records;
    if (ra !== rb) lines.push(`WARNING: ${a} and ${b} disagree on the output record count: ${ra} vs ${rb}`);
  }
  lines.push('');
  const ratioLines = def.ratios.map(
    ([a, b]) => `ratio ${def.name} ${a}/${b} ${((medians.get(a) ?? 0) / (medians.get(b) ?? 1)).toFixed(2)}`,
  );
  return [...lines, ...ratioLines];
}

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  let runs: number | undefined;
  let records: number | undefined;
  // Other `--flag value` options go to script benchmarks as they are (`--size-mb 1000`). Every
  // script flag takes a value, so the word after a flag is its value even when it names a
  // benchmark (`kafka --job window`).
  const passthrough: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--records') records = Number(argv[++i]);
    else if (a.startsWith('-')) {
      passthrough.push(a);
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-')) passthrough.push(argv[++i] as string);
    } else names.push(a);
  }
  if (
    (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) ||
    (records !== undefined && !(Number.isInteger(records) && records >= 1))
  ) {
    process.stderr.write('--runs and --records take whole numbers ≥ 1\n');
    return 2;
  }
  const selected =
    names.length > 0
      ? names
      : Object.keys(REGISTRY).filter((n) => !(REGISTRY[n] as { manual?: boolean }).manual);
  const unknown = selected.filter((n) => !(n in REGISTRY));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(REGISTRY).join(', ')}\n`,
    );
    return 2;
  }
  const out: string[] = [];
  const ratios: string[] = [];
  for (const name of selected) {
    const entry = REGISTRY[name] as { module: string } | { script: string };
    let lines: string[];
    if ('script' in entry) {
      // `--runs N` means rounds per contender for the scripts too.
      const args = runs === undefined ? passthrough : [...passthrough, '--rounds', String(runs)];
      lines = ['', ...(await runScript(entry.script, args))];
    } else {
      if (passthrough.length > 0) {
        process.stderr.write(`${name} takes only --runs and --records; ignoring ${passthrough.join(' ')}\n`);
      }
      const mod = (await import(new URL(entry.module, import.meta.url).href)) as {
        benchmark: BenchmarkDefinition;
      };
      lines = await runBenchmark(mod.benchmark, runs ?? 5, records ?? mod.benchmark.defaultRecords);
    }
    for (const l of lines) (l.startsWith('ratio ') ? ratios : out).push(l);
  }
  process.stdout.write(`${[...out, ...ratios].join('\n')}\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
