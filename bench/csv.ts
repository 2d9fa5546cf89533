/**
 * `npm run bench -- csv`: the Sluice CSV reader against papaparse, udsv and csv-parse, and against
 * the ceiling of merely reading the file and counting newlines, on one generated file (header + 12
 * columns: ids, ISO timestamps, repeated short strings, decimals, free text with quotes and commas).
 * Every contender reads the same file in 256 KiB chunks, turns each row into an object keyed by the
 * header and touches a field of it. Each contender runs in its own child process (so peak RSS is its
 * own), several rounds interleaved; the table shows medians. It also measures the heap that 300,000
 * retained records cost with and without the intern cache.
 *
 * Run alone: `npx node bench/csv.ts --size-mb 200 --rounds 5`. Missing peers are skipped with the
 * install command to run.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CsvDecoder, type CsvRow } from '../src/formats/csv/index.ts';

const CHUNK = 256 * 1024;

/** Options of {@link runCsvBench}. */
export interface CsvBenchOptions {
  /** Size of the generated file in MB. Default 200. */
  readonly sizeMb?: number;
  /** Rounds per contender (the median is reported). Default 5. */
  readonly rounds?: number;
  /** Print the table and ratio lines (default true). */
  readonly print?: boolean;
}

/** One contender's result: medians over the rounds. */
export interface CsvBenchRow {
  readonly name: string;
  readonly mbPerSec: number;
  readonly peakRssMb: number;
  readonly rows: number;
  readonly skipped?: string;
}

/** What {@link runCsvBench} measured; `ratios` are the lines printed at the end. */
export interface CsvBenchResult {
  readonly file: string;
  readonly bytes: number;
  readonly rows: readonly CsvBenchRow[];
  readonly ratios: readonly string[];
  readonly heap: { readonly internedMb: number; readonly plainMb: number };
}

const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'NL', 'SE', 'ES', 'IT'];
const STATUSES = ['active', 'pending', 'closed', 'refunded', 'failed'];
const CHANNELS = ['web', 'ios', 'android', 'pos', 'api'];
const CITIES = ['Berlin', 'Paris', 'London', 'Tokyo', 'New York', 'São Paulo', 'Mumbai', 'Toronto'];
const WORDS = [
  'quick',
  'brown',
  'fox',
  'jumps',
  'over',
  'lazy',
  'dog',
  'lorem',
  'ipsum',
  'dolor',
  'sit',
  'amet',
];

/** Deterministic PRNG (mulberry32), so every run benchmarks the same bytes. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes the benchmark file (once per size) into the OS temp dir and returns its path. */
export function generateCsv(sizeMb: number): string {
  const file = join(tmpdir(), `sluice-bench-csv-v2-${sizeMb}mb.csv`);
  if (existsSync(file) && statSync(file).size >= sizeMb * 1e6) return file;
  const r = rng(42);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const fd = openSync(file, 'w');
  writeSync(fd, 'id,ts,country,status,channel,amount,fee,qty,sku,city,note,user\n');
  let written = 0;
  let id = 1_000_000;
  let ts = Date.UTC(2024, 0, 1);
  const target = sizeMb * 1e6;
  while (written < target) {
    let block = '';
    for (let i = 0; i < 5000; i++) {
      ts += Math.floor(r() * 2000);
      const words: string[] = [];
      const nw = 3 + Math.floor(r() * 6);
      for (let k = 0; k < nw; k++) words.push(pick(WORDS));
      const hasQuote = r() < 0.3;
      if (hasQuote) words.push('"quoted"');
      // RFC 4180: a field holding a quote must be quoted (csv-parse rejects it otherwise).
      const note = r() < 0.5 || hasQuote ? `"${words.join(', ').replaceAll('"', '""')}"` : words.join(' ');
      const city = pick(CITIES);
      block += `${id++},${new Date(ts).toISOString()},${pick(COUNTRIES)},${pick(STATUSES)},${pick(CHANNELS)},${(r() * 1000).toFixed(2)},${(r() * 10).toFixed(2)},${1 + Math.floor(r() * 9)},SKU-${Math.floor(r() * 5000)},${city.includes(' ') ? `"${city}"` : city},${note},user${Math.floor(r() * 100000)}@example.com\n`;
    }
    writeSync(fd, block);
    written += Buffer.byteLength(block);
  }
  closeSync(fd);
  return file;
}

/** Counts LF bytes with `Buffer#indexOf` (memchr), the fastest way measured here. */
function countNewlines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
  return n;
}

type Contender = (file: string) => Promise<number>;

/** The slice of each peer's API the bench uses (the peers ship no types we can rely on). */
interface PapaApi {
  parse(
    input: NodeJS.ReadableStream,
    config: {
      header: boolean;
      chunk: (res: { data: Record<string, string>[] }) => void;
      complete: () => void;
      error: (e: unknown) => void;
    },
  ): void;
}
interface UdsvParser {
  stringObjs: unknown;
  /** `cb` is called once per row (not per batch of rows). */
  chunk(text: string, fmt: unknown, cb: (row: Record<string, string>) => void): void;
  end(): void;
}
interface UdsvApi {
  inferSchema(text: string): unknown;
  initParser(schema: unknown): UdsvParser;
}
interface CsvParseApi {
  parse(o: { columns: boolean }): NodeJS.ReadWriteStream;
}

/** Consumes a record the way a pipeline stage would: reads a field. */
let checksum = 0;

const contenders: Record<string, Contender> = {
  async 'newline-count'(file) {
    let n = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      n += countNewlines(chunk as Buffer);
    }
    return n - 1;
  },
  async sluice(file) {
    let n = 0;
    const dec = new CsvDecoder();
    const sink = {
      record(r: CsvRow) {
        checksum += (r as Record<string, string>).status!.length;
        n++;
      },
      invalid() {},
    };
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK }))
      dec.write(chunk as Buffer, sink);
    dec.end(sink);
    return n;
  },
  async papaparse(file) {
    const Papa = ((await import(peer('papaparse'))) as { default: PapaApi }).default;
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      Papa.parse(createReadStream(file, { highWaterMark: CHUNK, encoding: 'utf8' }), {
        header: true,
        chunk(res: { data: Record<string, string>[] }) {
          for (const r of res.data) {
            checksum += r.status!.length;
            n++;
          }
        },
        complete: () => resolve(),
        error: reject,
      });
    });
    return n;
  },
  async udsv(file) {
    const { inferSchema, initParser } = (await import(peer('udsv'))) as UdsvApi;
    let n = 0;
    let parser: UdsvParser | undefined;
    const consume = (r: Record<string, string>) => {
      checksum += r.status!.length;
      n++;
    };
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK, encoding: 'utf8' })) {
      parser ??= initParser(inferSchema(chunk as string));
      parser.chunk(chunk as string, parser.stringObjs, consume);
    }
    parser?.end();
    return n;
  },
  async 'csv-parse'(file) {
    const { parse } = (await import(peer('csv-parse'))) as CsvParseApi;
    let n = 0;
    const p = createReadStream(file, { highWaterMark: CHUNK }).pipe(parse({ columns: true }));
    for await (const r of p as AsyncIterable<Record<string, string>>) {
      checksum += r.status!.length;
      n++;
    }
    return n;
  },
};

const PEERS = ['papaparse', 'udsv', 'csv-parse'];

/** Resolves a peer package from the project's node_modules (they are dev dependencies). */
function peer(name: string): string {
  return import.meta.resolve(name);
}

function peerMissing(name: string): boolean {
  if (!PEERS.includes(name)) return false;
  try {
    import.meta.resolve(name);
    return !existsSync(fileURLToPath(import.meta.resolve(name)));
  } catch {
    return true;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Child-process entry: runs one contender once and prints `{rows, seconds, maxRssKb}`. */
async function child(name: string, file: string): Promise<void> {
  const t0 = performance.now();
  const rows = await contenders[name]!(file);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${JSON.stringify({ rows, seconds, maxRssKb: process.resourceUsage().maxRSS, checksum })}\n`,
  );
}

/** Child-process entry: heap retained by `rows` records parsed with or without interning. */
function heapChild(file: string, intern: boolean, limit: number): void {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const kept: CsvRow[] = [];
  const dec = new CsvDecoder({ intern });
  const sink = {
    record(r: CsvRow) {
      if (kept.length < limit) kept.push(r);
    },
    invalid() {},
  };
  gc();
  const before = process.memoryUsage().heapUsed;
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(CHUNK);
  for (;;) {
    const n = readSync(fd, buf, 0, CHUNK, null);
    if (n === 0 || kept.length >= limit) break;
    dec.write(Buffer.from(buf.subarray(0, n)), sink);
  }
  closeSync(fd);
  gc();
  const after = process.memoryUsage().heapUsed;
  process.stdout.write(`${JSON.stringify({ mb: (after - before) / 1e6, kept: kept.length })}\n`);
}

function spawnJson(args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`bench child failed: ${args.join(' ')}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/**
 * Runs the CSV benchmark; returns medians per contender and the `ratio csv …` lines (also printed
 * unless `print: false`).
 */
export async function runCsvBench(options: CsvBenchOptions = {}): Promise<CsvBenchResult> {
  const sizeMb = options.sizeMb ?? 200;
  const rounds = options.rounds ?? 5;
  const print = options.print ?? true;
  const file = generateCsv(sizeMb);
  const bytes = statSync(file).size;
  const self = fileURLToPath(import.meta.url);
  const names = Object.keys(contenders);
  const results = new Map<string, { mbs: number[]; rss: number[]; rows: number }>();
  const skipped = new Map<string, string>();
  for (const name of names) if (peerMissing(name)) skipped.set(name, 'not installed');
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      if (skipped.has(name)) continue;
      const r = spawnJson([self, '--child', name, file]);
      const e = results.get(name) ?? { mbs: [], rss: [], rows: 0 };
      e.mbs.push(bytes / 1e6 / r.seconds!);
      e.rss.push(r.maxRssKb! / 1024);
      e.rows = r.rows!;
      results.set(name, e);
    }
  }
  const rows: CsvBenchRow[] = names.map((name) => {
    const e = results.get(name);
    if (e === undefined)
      return { name, mbPerSec: 0, peakRssMb: 0, rows: 0, skipped: skipped.get(name) ?? 'failed' };
    return { name, mbPerSec: median(e.mbs), peakRssMb: median(e.rss), rows: e.rows };
  });
  const heapRows = 300_000;
  const interned = spawnJson(['--expose-gc', self, '--heap', 'on', file, String(heapRows)]);
  const plain = spawnJson(['--expose-gc', self, '--heap', 'off', file, String(heapRows)]);
  const speed = (n: string) => rows.find((r) => r.name === n && r.skipped === undefined)?.mbPerSec;
  const ratios: string[] = [];
  const s = speed('sluice')!;
  for (const p of PEERS) {
    const v = speed(p);
    if (v !== undefined) ratios.push(`ratio csv sluice/${p} ${(s / v).toFixed(2)}`);
  }
  ratios.push(`ratio csv sluice/newline-count ${(s / speed('newline-count')!).toFixed(2)}`);
  // Above 1 means interning saves heap, like every other ratio line (above 1 = Sluice better).
  ratios.push(`ratio csv heap-plain/heap-interned ${(plain.mb! / interned.mb!).toFixed(2)}`);
  if (print) {
    console.log(
      `CSV bench: ${file} (${(bytes / 1e6).toFixed(0)} MB, ${rows.find((r) => r.name === 'sluice')?.rows} rows), ${rounds} rounds, medians`,
    );
    console.log(
      `${'contender'.padEnd(16)}${'MB/s'.padStart(10)}${'peak RSS MB'.padStart(14)}${'rows'.padStart(12)}`,
    );
    for (const r of rows) {
      if (r.skipped !== undefined) console.log(`${r.name.padEnd(16)}  skipped (${r.skipped})`);
      else
        console.log(
          `${r.name.padEnd(16)}${r.mbPerSec.toFixed(1).padStart(10)}${r.peakRssMb.toFixed(0).padStart(14)}${String(r.rows).padStart(12)}`,
        );
    }
    const missing = PEERS.filter((p) => skipped.has(p));
    if (missing.length > 0) console.log(`Missing peers; install them with: npm i -D ${missing.join(' ')}`);
    console.log(
      `heap retained by ${heapRows} records: interned ${interned.mb!.toFixed(1)} MB, plain ${plain.mb!.toFixed(1)} MB`,
    );
    console.log(
      `sluice reaches ${((100 * speed('sluice')!) / speed('newline-count')!).toFixed(0)}% of the newline-count ceiling (reading + counting \\n)`,
    );
    for (const l of ratios) console.log(l);
  }
  return { file, bytes, rows, ratios, heap: { internedMb: interned.mb!, plainMb: plain.mb! } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1]!, argv[2]!);
  } else if (argv[0] === '--heap') {
    heapChild(argv[2]!, argv[1] === 'on', Number(argv[3]));
  } else {
    const flag = (n: string) => {
      const i = argv.indexOf(n);
      return i === -1 ? undefined : Number(argv[i + 1]);
    };
    await runCsvBench({ sizeMb: flag('--size-mb') ?? 200, rounds: flag('--rounds') ?? 5 });
  }
}
