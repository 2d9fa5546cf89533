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
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CsvDecoder, type CsvRow } from '../src/formats/csv/index.ts';
import {
  ceilingLine,
  decodeFile,
  measureRounds,
  numberFlag,
  printTable,
  reportRun,
  spawnJson,
} from './child.ts';

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

/** Country codes of the generated records (also used by the `jsonl` benchmark's file). */
export const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'NL', 'SE', 'ES', 'IT'];
/** Statuses of the generated records. */
export const STATUSES = ['active', 'pending', 'closed', 'refunded', 'failed'];
/** Channels of the generated records. */
export const CHANNELS = ['web', 'ios', 'android', 'pos', 'api'];
/** Cities of the generated records (two with a space, quoted in CSV). */
export const CITIES = ['Berlin', 'Paris', 'London', 'Tokyo', 'New York', 'São Paulo', 'Mumbai', 'Toronto'];
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

/**
 * Writes a generated benchmark file once per name: `header`, then what `block()` returns, again
 * and again until the blocks reach `sizeMb` MB. A file already there at that size is kept, so
 * every run benchmarks the same bytes. Returns `file`.
 *
 * @example
 * writeGenerated(join(tmpdir(), 'x.csv'), 20, 'a,b\n', () => '1,2\n'.repeat(1000));
 */
export function writeGenerated(file: string, sizeMb: number, header: string, block: () => string): string {
  if (existsSync(file) && statSync(file).size >= sizeMb * 1e6) return file;
  const fd = openSync(file, 'w');
  if (header !== '') writeSync(fd, header);
  let written = 0;
  const target = sizeMb * 1e6;
  while (written < target) {
    const b = block();
    writeSync(fd, b);
    written += Buffer.byteLength(b);
  }
  closeSync(fd);
  return file;
}

/** Writes the benchmark file (once per size) into the OS temp dir and returns its path. */
export function generateCsv(sizeMb: number): string {
  const r = rng(42);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  let id = 1_000_000;
  let ts = Date.UTC(2024, 0, 1);
  const header = 'id,ts,country,status,channel,amount,fee,qty,sku,city,note,user\n';
  return writeGenerated(join(tmpdir(), `sluice-bench-csv-v2-${sizeMb}mb.csv`), sizeMb, header, () => {
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
    return block;
  });
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

/** Reads `file` through `dec`, touching a field of every row; returns the row count. */
function decodeWith(dec: CsvDecoder, file: string): Promise<number> {
  return decodeFile<CsvRow>(dec, file, CHUNK, (r) => {
    checksum += (r as Record<string, string>).status!.length;
  });
}

const contenders: Record<string, Contender> = {
  async 'newline-count'(file) {
    let n = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      n += countNewlines(chunk as Buffer);
    }
    return n - 1;
  },
  sluice: (file) => decodeWith(new CsvDecoder(), file),
  // As a window by (country, status) over `ts` summing `amount` reads the file: a projection of
  // 4 of the 12 columns, `ts` handed over as epoch ms (what `sluice run` asks of the decoder).
  'sluice-projected'(file) {
    const dec = new CsvDecoder();
    dec.project(['ts', 'country', 'status', 'amount'], new Map([['ts', 'epochMillis']]));
    return decodeWith(dec, file);
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
  const skipped = new Map<string, string>();
  for (const name of names) if (peerMissing(name)) skipped.set(name, 'not installed');
  const measured = measureRounds(
    self,
    file,
    bytes,
    names.filter((n) => !skipped.has(n)),
    rounds,
    false,
  );
  const rows: CsvBenchRow[] = names.map((name) => {
    const e = measured.get(name);
    if (e === undefined)
      return { name, mbPerSec: 0, peakRssMb: 0, rows: 0, skipped: skipped.get(name) ?? 'failed' };
    return { name, mbPerSec: e.mbPerSec, peakRssMb: e.peakRssMb, rows: e.count };
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
    printTable(
      rows.map((r) => ({ ...r, count: r.rows })),
      'rows',
    );
    const missing = PEERS.filter((p) => skipped.has(p));
    if (missing.length > 0) console.log(`Missing peers; install them with: npm i -D ${missing.join(' ')}`);
    console.log(
      `heap retained by ${heapRows} records: interned ${interned.mb!.toFixed(1)} MB, plain ${plain.mb!.toFixed(1)} MB`,
    );
    console.log(ceilingLine(speed('sluice')!, speed('newline-count')!));
    for (const l of ratios) console.log(l);
  }
  return { file, bytes, rows, ratios, heap: { internedMb: interned.mb!, plainMb: plain.mb! } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await reportRun(
      () => contenders[argv[1]!]!(argv[2]!),
      () => checksum,
    );
  } else if (argv[0] === '--heap') {
    heapChild(argv[2]!, argv[1] === 'on', Number(argv[3]));
  } else {
    await runCsvBench({
      sizeMb: numberFlag(argv, '--size-mb') ?? 200,
      rounds: numberFlag(argv, '--rounds') ?? 5,
    });
  }
}
