/**
 * `npm run bench -- window`: the window operator, two parts, each contender in its own child
 * process (so peak RSS is its own), rounds interleaved, medians reported.
 *
 * 1. `memory`: keyed tumbling 1-minute count + exact sum over 10M generated in-memory events
 *    (100k keys, decimal-string amounts) through a Sluice pipeline, against a hand-written loop
 *    (a Map, amounts parsed to integer cents) over the same generated events.
 * 2. `csv`: a generated CSV of events (1 GB by default) → tumbling 1-minute windows keyed by two
 *    string fields, count and exact decimal sum → JSONL, as a Sluice pipeline against the same job
 *    written by hand with papaparse and a Map.
 *
 * Every contender runs in a fresh child process; a Sluice contender loads Sluice's modules (before
 * its clock starts), a hand-written one loads none of them, so each peak RSS is that job's own.
 * `--compiled` runs Sluice compiled to JavaScript (`tsc` into a temporary folder, as a published
 * package runs) and the children's copy of this script as JavaScript too, so no contender loads
 * Node's type stripper (~20 MB of RSS of its own; without `--compiled`, children use Node's
 * compile cache as bin/sluice.js does, warmed by an unmeasured small run of each contender);
 * `--semi-space N` starts every child with `--max-semi-space-size=N` (MB; default 8, what
 * bin/sluice.js sets; 0 for Node's defaults, a young generation up to 16 MB per semi-space).
 * Both apply to every contender alike. Tables show wall-time rates, and the median CPU time
 * (user + system), which on a shared machine moves less.
 *
 * Run alone: `npx node bench/window.ts [--events N] [--csv-mb N] [--rounds N] [--only memory|csv]
 * [--compiled] [--semi-space N]`.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Source } from '../src/core/stage.ts';

/** The Sluice modules a Sluice contender uses, loaded by {@link loadSluice}. */
interface SluiceLib {
  Pipeline: typeof import('../src/pipeline.ts').Pipeline;
  batchOf: typeof import('../src/core/message.ts').batchOf;
  fileSource: typeof import('../src/connectors/file/source.ts').fileSource;
  fileSink: typeof import('../src/connectors/file/sink.ts').fileSink;
}

let lib: SluiceLib;

/** Loads Sluice from the TypeScript sources, or from compiled `.js` files under `compiled`. */
async function loadSluice(compiled: string | undefined): Promise<SluiceLib> {
  const mod = (m: string) =>
    compiled === undefined
      ? new URL(`../src/${m}.ts`, import.meta.url).href
      : pathToFileURL(join(compiled, `${m}.js`)).href;
  const [pipeline, batch, source, sink] = await Promise.all([
    import(mod('pipeline')),
    import(mod('core/message')),
    import(mod('connectors/file/source')),
    import(mod('connectors/file/sink')),
  ]);
  return {
    Pipeline: pipeline.Pipeline,
    batchOf: batch.batchOf,
    fileSource: source.fileSource,
    fileSink: sink.fileSink,
  };
}

// Like `compileCli` in csv-memory.ts, on purpose: this file also runs as a type-stripped copy
// in a temporary folder, where it cannot import sibling modules.
/** Compiles `src/` into `work/dist` (with a `node_modules` link) and returns that folder. */
function compileSluice(work: string): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const out = join(work, 'dist');
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(root, 'tsconfig.build.json'),
      '--outDir',
      out,
      '--declaration',
      'false',
      // tsconfig.build.json emits only declarations (the package's JavaScript is the bundle).
      '--emitDeclarationOnly',
      'false',
      '--sourceMap',
      'false',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`compiling Sluice failed:\n${r.stdout}${r.stderr}`);
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
  writeFileSync(join(work, 'package.json'), readFileSync(join(root, 'package.json')));
  return out;
}

// Same as bench/rss.ts (this file cannot import siblings, see above): `VmHWM`, because Linux
// carries `resourceUsage().maxRSS` over from the parent process.
/** Peak RSS of this process in KiB. */
function peakRssKiB(): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? process.resourceUsage().maxRSS : Number(m[1]);
}

const T0 = Date.UTC(2024, 0, 1);
const KEYS = 100_000;
const AMOUNTS = Array.from(
  { length: 1000 },
  (_, i) => `${(i * 37) % 997}.${String((i * 13) % 100).padStart(2, '0')}`,
);
// Built only by the memory contenders (before their clock starts): 100k strings are ~15 MiB of
// RSS, which the CSV contenders should not carry.
let KEY_NAMES: readonly string[] = [];
// 8,000 events per second of event time: 480k per one-minute window, ~5 per key.
const PER_SECOND = 8000;
const BATCH = 4096;

interface Ev {
  user: string;
  ts: number;
  amount: string;
}

/** Event `i` of the in-memory stream (deterministic, cheap: no per-event string building). */
function event(i: number): Ev {
  return {
    user: KEY_NAMES[(i * 7919) % KEYS] as string,
    ts: T0 + Math.floor(i / PER_SECOND) * 1000 + (i % 1000),
    amount: AMOUNTS[i % 1000] as string,
  };
}

function memorySource(n: number): Source<Ev> {
  return {
    async run(out) {
      for (let i = 0; i < n; ) {
        const m = Math.min(BATCH, n - i);
        const recs = new Array<Ev>(m);
        for (let k = 0; k < m; k++) recs[k] = event(i + k);
        i += m;
        await out.emit(lib.batchOf(recs));
      }
    },
  };
}

/** Parses `"123.45"` to cents; the hand-written peer's exact sum. */
function cents(s: string): number {
  let v = 0;
  let frac = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) frac = 0;
    else {
      v = v * 10 + (c - 48);
      if (frac >= 0) frac++;
    }
  }
  return frac <= 0 ? v * 100 : frac === 1 ? v * 10 : v;
}

const fmtCents = (c: number) => `${Math.trunc(c / 100)}.${String(c % 100).padStart(2, '0')}`;

async function memorySluice(n: number): Promise<number> {
  let out = 0;
  const p = new lib.Pipeline('bench-window');
  p.from(memorySource(n))
    .window({
      key: 'user',
      time: 'ts',
      tumbling: '1m',
      watermark: { maxOutOfOrder: '1s' },
      aggregate: { count: 'count()', amount: 'sum(amount)' },
    })
    .to({
      write(b) {
        out += b.records.length;
      },
    });
  await p.run().done;
  return out;
}

function memoryHand(n: number): number {
  // Windows by start, each a Map key → [count, cents]; a window is emitted and dropped once an
  // event a second past its end arrives (the same 1 s out-of-orderness as the Sluice job).
  const windows = new Map<number, Map<string, [number, number]>>();
  let out = 0;
  let maxTs = Number.NEGATIVE_INFINITY;
  const flush = (upTo: number) => {
    for (const [start, m] of windows) {
      if (start + 60_000 - 1 > upTo) continue;
      for (const [key, [c, s]] of m) {
        const rec = { user: key, windowStart: new Date(start).toISOString(), count: c, amount: fmtCents(s) };
        if (rec.count > 0) out++;
      }
      windows.delete(start);
    }
  };
  for (let i = 0; i < n; ) {
    const m = Math.min(BATCH, n - i);
    const recs = new Array<Ev>(m);
    for (let k = 0; k < m; k++) recs[k] = event(i + k);
    i += m;
    for (const e of recs) {
      if (e.ts > maxTs) maxTs = e.ts;
      const start = e.ts - (e.ts % 60_000);
      let w = windows.get(start);
      if (w === undefined) {
        w = new Map();
        windows.set(start, w);
      }
      const a = w.get(e.user);
      if (a === undefined) w.set(e.user, [1, cents(e.amount)]);
      else {
        a[0]++;
        a[1] += cents(e.amount);
      }
    }
    flush(maxTs - 1000 - 1);
  }
  flush(Number.POSITIVE_INFINITY);
  return out;
}

// ---- part 2: CSV → windows → JSONL ----

const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'NL', 'SE', 'ES', 'IT'];
const TYPES = ['login', 'logout', 'purchase', 'refund', 'view', 'search'];

function csvPath(mb: number): string {
  return join(tmpdir(), `sluice-bench-window-${mb}mb.csv`);
}

/** Writes the CSV (once per size): ISO time, two key strings, a decimal amount, risk, and filler text. */
function generateCsv(mb: number): string {
  const path = csvPath(mb);
  const target = mb * 1_000_000;
  if (existsSync(path) && statSync(path).size >= target) return path;
  const fd = openSync(`${path}.tmp`, 'w');
  writeSync(fd, 'ts,country,event_type,amount,risk,user,note\n');
  let bytes = 0;
  let i = 0;
  let t = T0;
  while (bytes < target) {
    let chunk = '';
    for (let k = 0; k < 20_000; k++, i++) {
      t += (i * 7) % 5; // ~2 ms apart: about 30k events per minute
      const back = i % 50 === 0 ? 3000 : 0; // a little out of order
      chunk += `${new Date(t - back).toISOString()},${COUNTRIES[i % 12]},${TYPES[(i * 7) % 6]},${AMOUNTS[i % 1000]},${(i * 31) % 100},u${(i * 7919) % 50_000},"note ${i % 97}, ok"\n`;
    }
    writeSync(fd, chunk);
    bytes += Buffer.byteLength(chunk);
  }
  closeSync(fd);
  spawnSync('mv', [`${path}.tmp`, path]);
  return path;
}

async function csvSluice(path: string, outPath: string): Promise<number> {
  const p = new lib.Pipeline('bench-window-csv');
  p.from(lib.fileSource({ path, format: 'csv' }))
    .window({
      key: ['country', 'event_type'],
      time: 'ts',
      tumbling: '1m',
      watermark: { maxOutOfOrder: '5s' },
      aggregate: { count: 'count()', amount: 'sum(amount)' },
    })
    .to(lib.fileSink({ path: outPath, format: 'jsonl' }));
  const summary = await p.run().done;
  return summary.recordsWritten;
}

async function csvHand(path: string, outPath: string): Promise<number> {
  // A variable specifier: papaparse ships no types, and the bench needs only this much of it.
  const specifier = 'papaparse';
  const Papa = ((await import(specifier)) as { default: { parse(input: unknown, config: unknown): void } })
    .default;
  const out = createWriteStream(outPath);
  const windows = new Map<
    number,
    Map<string, { country: string; type: string; count: number; cents: bigint }>
  >();
  let maxTs = Number.NEGATIVE_INFINITY;
  let written = 0;
  const flush = (upTo: number) => {
    let text = '';
    for (const [start, m] of windows) {
      if (start + 60_000 - 1 > upTo) continue;
      const ws = new Date(start).toISOString();
      const we = new Date(start + 60_000).toISOString();
      for (const a of m.values()) {
        const neg = a.cents < 0n;
        const abs = (neg ? -a.cents : a.cents).toString().padStart(3, '0');
        text += `${JSON.stringify({ country: a.country, event_type: a.type, windowStart: ws, windowEnd: we, count: a.count, amount: `${neg ? '-' : ''}${abs.slice(0, -2)}.${abs.slice(-2)}`, revision: 1, update: false })}\n`;
        written++;
      }
      windows.delete(start);
    }
    if (text !== '') out.write(text);
  };
  await new Promise<void>((resolve, reject) => {
    Papa.parse(createReadStream(path), {
      header: true,
      skipEmptyLines: true,
      chunkSize: 256 * 1024,
      chunk(results: { data: Record<string, string>[] }) {
        for (const r of results.data) {
          const ts = Date.parse(r.ts as string);
          if (ts > maxTs) maxTs = ts;
          const start = ts - (ts % 60_000);
          let w = windows.get(start);
          if (w === undefined) {
            w = new Map();
            windows.set(start, w);
          }
          const key = `${r.country}\u0000${r.event_type}`;
          let a = w.get(key);
          if (a === undefined) {
            a = { country: r.country as string, type: r.event_type as string, count: 0, cents: 0n };
            w.set(key, a);
          }
          a.count++;
          a.cents += BigInt(cents(r.amount as string));
        }
        flush(maxTs - 5000 - 1);
      },
      complete: () => resolve(),
      error: reject,
    } as never);
  });
  flush(Number.POSITIVE_INFINITY);
  await new Promise<void>((resolve) => out.end(resolve));
  return written;
}

// ---- driver ----

interface Result {
  contender: string;
  input: number;
  out: number;
  ms: number;
  /** CPU time of the process (user + system) during the run, ms: less disturbed by other load than `ms`. */
  cpuMs: number;
  maxRssKiB: number;
}

async function child(contender: string, arg: string, compiled: string | undefined): Promise<void> {
  if (contender.endsWith('-sluice')) lib = await loadSluice(compiled);
  if (contender.startsWith('memory-')) KEY_NAMES = Array.from({ length: KEYS }, (_, i) => `user-${i}`);
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let out: number;
  let input: number;
  if (contender === 'memory-sluice' || contender === 'memory-handwritten') {
    input = Number(arg);
    out = contender === 'memory-sluice' ? await memorySluice(input) : memoryHand(input);
  } else {
    const outPath = join(tmpdir(), `sluice-bench-window-${contender}-${process.pid}.jsonl`);
    input = statSync(arg).size;
    out = contender === 'csv-sluice' ? await csvSluice(arg, outPath) : await csvHand(arg, outPath);
    spawnSync('rm', ['-f', outPath]);
  }
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const r: Result = { contender, input, out, ms, cpuMs, maxRssKiB: peakRssKiB() };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

/**
 * How children run: Node flags, the script (this file, or its compiled copy), and the compiled
 * Sluice folder (undefined: the `.ts` sources).
 */
interface ChildSetup {
  nodeFlags: string[];
  script: string;
  compiled: string | undefined;
}

function runChild(contender: string, arg: string, setup: ChildSetup): Result {
  const args = [...setup.nodeFlags, setup.script, '--child', contender, arg];
  if (setup.compiled !== undefined) args.push(setup.compiled);
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
    // Node's compile cache, as bin/sluice.js enables it: after the warm-up runs, no child loads
    // the TypeScript stripper (~25 MiB of RSS) for modules it already compiled.
    env: {
      ...process.env,
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'node-compile-cache'),
    },
  });
  if (r.status !== 0) throw new Error(`contender ${contender} exited with ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Result;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function table(title: string, unit: string, scale: number, results: Map<string, Result[]>): string[] {
  const lines = [
    '',
    title,
    `${'contender'.padEnd(20)}${`median ${unit}`.padStart(18)}${'min–max'.padStart(26)}${'median s'.padStart(10)}${'CPU s'.padStart(8)}${'peak RSS MiB'.padStart(14)}${'out records'.padStart(13)}`,
  ];
  const fmt = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: 1 });
  for (const [name, rs] of results) {
    const rates = rs.map((r) => r.input / scale / (r.ms / 1000));
    lines.push(
      `${name.padEnd(20)}${fmt(median(rates)).padStart(18)}${`${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`.padStart(26)}${(median(rs.map((r) => r.ms)) / 1000).toFixed(2).padStart(10)}${(median(rs.map((r) => r.cpuMs)) / 1000).toFixed(2).padStart(8)}${(Math.max(...rs.map((r) => r.maxRssKiB)) / 1024).toFixed(0).padStart(14)}${String(rs[0]?.out ?? 0).padStart(13)}`,
    );
  }
  const outs = new Set([...results.values()].map((rs) => rs[0]?.out));
  if (outs.size > 1)
    lines.push(`WARNING: contenders disagree on the output record count: ${[...outs].join(', ')}`);
  return lines;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') return child(argv[1] as string, argv[2] as string, argv[3]);
  let events = 10_000_000;
  let csvMb = 1000;
  let rounds = 3;
  let only: string | undefined;
  let compiledRun = false;
  // As `sluice` runs (bin/sluice.js's shebang); `--semi-space 0`: Node's default heap settings.
  let semiSpace: number | undefined = 8;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--events') events = Number(argv[++i]);
    else if (a === '--csv-mb') csvMb = Number(argv[++i]);
    else if (a === '--rounds') rounds = Number(argv[++i]);
    else if (a === '--only') only = argv[++i];
    else if (a === '--compiled') compiledRun = true;
    else if (a === '--semi-space') semiSpace = Number(argv[++i]) || undefined;
  }
  const work = compiledRun ? mkdtempSync(join(tmpdir(), 'sluice-bench-window-')) : undefined;
  const self = fileURLToPath(import.meta.url);
  const how = `${work === undefined ? 'TypeScript sources (type stripping)' : 'compiled JavaScript'}, ${semiSpace === undefined ? "Node's default heap settings" : `--max-semi-space-size=${semiSpace}`}`;
  try {
    const setup: ChildSetup = {
      nodeFlags: semiSpace === undefined ? [] : [`--max-semi-space-size=${semiSpace}`],
      script: self,
      compiled: work === undefined ? undefined : compileSluice(work),
    };
    if (work !== undefined) {
      // The children run this file as JavaScript too, so no contender loads the type stripper.
      setup.script = join(work, 'window.mjs');
      writeFileSync(setup.script, stripTypeScriptTypes(readFileSync(self, 'utf8')));
    }
    await benchmarks(events, csvMb, rounds, only, setup, how);
  } finally {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }
}

async function benchmarks(
  events: number,
  csvMb: number,
  rounds: number,
  only: string | undefined,
  setup: ChildSetup,
  how: string,
): Promise<void> {
  const lines: string[] = [];
  const ratios: string[] = [];
  if (only === undefined || only === 'memory') {
    const res = new Map<string, Result[]>([
      ['memory-sluice', []],
      ['memory-handwritten', []],
    ]);
    for (const c of res.keys()) runChild(c, '10000', setup); // warm-up (compile cache), not measured
    for (let r = 0; r < rounds; r++) {
      for (const c of res.keys()) {
        const x = runChild(c, String(events), setup);
        (res.get(c) as Result[]).push(x);
        process.stderr.write(
          `  window memory run ${r + 1} ${c}: ${Math.round(x.input / (x.ms / 1000)).toLocaleString('en-US')} events/s, ${(x.maxRssKiB / 1024).toFixed(0)} MiB\n`,
        );
      }
    }
    lines.push(
      ...table(
        `window (1) — keyed tumbling 1m count+sum, ${events.toLocaleString('en-US')} in-memory events, ${KEYS.toLocaleString('en-US')} keys`,
        'events/s',
        1,
        res,
      ),
    );
    const rate = (c: string) => median((res.get(c) as Result[]).map((x) => x.input / (x.ms / 1000)));
    ratios.push(
      `ratio window-memory sluice/handwritten ${(rate('memory-sluice') / rate('memory-handwritten')).toFixed(2)}`,
    );
  }
  if (only === undefined || only === 'csv') {
    process.stderr.write(`  window csv: generating a ${csvMb} MB CSV (once)…\n`);
    const path = generateCsv(csvMb);
    const res = new Map<string, Result[]>([
      ['csv-sluice', []],
      ['csv-handwritten', []],
    ]);
    const small = generateCsv(1);
    for (const c of res.keys()) runChild(c, small, setup); // warm-up (compile cache), not measured
    for (let r = 0; r < rounds; r++) {
      for (const c of res.keys()) {
        const x = runChild(c, path, setup);
        (res.get(c) as Result[]).push(x);
        process.stderr.write(
          `  window csv run ${r + 1} ${c}: ${(x.input / 1e6 / (x.ms / 1000)).toFixed(1)} MB/s, ${(x.maxRssKiB / 1024).toFixed(0)} MiB\n`,
        );
      }
    }
    lines.push(
      ...table(
        `window (2) — ${csvMb} MB CSV → tumbling 1m by (country, event_type), count + exact sum → JSONL`,
        'MB/s',
        1e6,
        res,
      ),
    );
    const rate = (c: string) => median((res.get(c) as Result[]).map((x) => x.input / (x.ms / 1000)));
    ratios.push(
      `ratio window sluice/handwritten ${(rate('csv-sluice') / rate('csv-handwritten')).toFixed(2)}`,
    );
  }
  process.stdout.write(`${[`window: ${how}`, ...lines, '', ...ratios].join('\n')}\n`);
}

await main(process.argv.slice(2));
