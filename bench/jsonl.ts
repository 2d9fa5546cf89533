/**
 * `npm run bench -- jsonl`: Sluice's JSON Lines decoder against `readline` + `JSON.parse` doing
 * the same, and against the ceiling of merely reading the file and counting newlines, on one
 * generated file (12 fields per record: ids, ISO timestamps, repeated short strings, decimals,
 * free text with quotes and commas). Every contender reads the same file in 256 KiB chunks, turns
 * each line into an object and touches a field of it. Each contender runs in its own child
 * process (so peak RSS is its own), several rounds interleaved; the table shows medians.
 *
 * Run alone: `npx node bench/jsonl.ts --size-mb 200 --rounds 5`.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jsonlDecoder } from '../src/formats/jsonl.ts';
import { rng } from './csv.ts';
import { median } from './run.ts';

const CHUNK = 256 * 1024;

/** Options of {@link runJsonlBench}. */
export interface JsonlBenchOptions {
  /** Size of the generated file in MB. Default 200. */
  readonly sizeMb?: number;
  /** Rounds per contender (the median is reported). Default 5. */
  readonly rounds?: number;
  /** Print the table and ratio lines (default true). */
  readonly print?: boolean;
}

/** One contender's medians over the rounds. */
export interface JsonlBenchRow {
  readonly name: string;
  readonly mbPerSec: number;
  readonly peakRssMb: number;
  readonly records: number;
}

/** What {@link runJsonlBench} measured; `ratios` are the lines printed at the end. */
export interface JsonlBenchResult {
  readonly file: string;
  readonly bytes: number;
  readonly rows: readonly JsonlBenchRow[];
  readonly ratios: readonly string[];
}

const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'NL', 'SE', 'ES', 'IT'];
const STATUSES = ['active', 'pending', 'closed', 'refunded', 'failed'];
const CHANNELS = ['web', 'ios', 'android', 'pos', 'api'];
const CITIES = ['Berlin', 'Paris', 'London', 'Tokyo', 'New York', 'São Paulo', 'Mumbai', 'Toronto'];
const WORDS = ['quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'lorem', 'ipsum', 'dolor', 'sit'];

/** Writes the benchmark file (once per size) into the OS temp dir and returns its path. */
export function generateJsonl(sizeMb: number): string {
  const file = join(tmpdir(), `sluice-bench-jsonl-v1-${sizeMb}mb.jsonl`);
  if (existsSync(file) && statSync(file).size >= sizeMb * 1e6) return file;
  const r = rng(43);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const fd = openSync(file, 'w');
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
      if (r() < 0.3) words.push('"quoted"');
      block += `${JSON.stringify({
        id: id++,
        ts: new Date(ts).toISOString(),
        country: pick(COUNTRIES),
        status: pick(STATUSES),
        channel: pick(CHANNELS),
        amount: (r() * 1000).toFixed(2),
        fee: (r() * 10).toFixed(2),
        qty: 1 + Math.floor(r() * 9),
        sku: `SKU-${Math.floor(r() * 5000)}`,
        city: pick(CITIES),
        note: words.join(r() < 0.5 ? ', ' : ' '),
        user: `user${Math.floor(r() * 100000)}@example.com`,
      })}\n`;
    }
    writeSync(fd, block);
    written += Buffer.byteLength(block);
  }
  closeSync(fd);
  return file;
}

/** Consumes a record the way a pipeline stage would: reads a field. */
let checksum = 0;

type Contender = (file: string) => Promise<number>;

const contenders: Record<string, Contender> = {
  async 'newline-count'(file) {
    let n = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      const b = chunk as Buffer;
      for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
    }
    return n;
  },
  async sluice(file) {
    let n = 0;
    const dec = jsonlDecoder();
    const sink = {
      record(r: unknown) {
        checksum += (r as { status: string }).status.length;
        n++;
      },
      invalid() {},
    };
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK }))
      dec.write(chunk as Buffer, sink);
    dec.end(sink);
    return n;
  },
  async readline(file) {
    let n = 0;
    const lines = createInterface({
      input: createReadStream(file, { highWaterMark: CHUNK }),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      if (line.length === 0) continue;
      checksum += (JSON.parse(line) as { status: string }).status.length;
      n++;
    }
    return n;
  },
};

/** Child-process entry: runs one contender once and prints `{records, seconds, maxRssKb}`. */
async function child(name: string, file: string): Promise<void> {
  const t0 = performance.now();
  const records = await contenders[name]!(file);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(
    `${JSON.stringify({ records, seconds, maxRssKb: process.resourceUsage().maxRSS, checksum })}\n`,
  );
}

function spawnJson(args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`bench child failed: ${args.join(' ')}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/**
 * Runs the JSONL benchmark; returns medians per contender and the `ratio jsonl …` lines (also
 * printed unless `print: false`).
 */
export async function runJsonlBench(options: JsonlBenchOptions = {}): Promise<JsonlBenchResult> {
  const sizeMb = options.sizeMb ?? 200;
  const rounds = options.rounds ?? 5;
  const file = generateJsonl(sizeMb);
  const bytes = statSync(file).size;
  const self = fileURLToPath(import.meta.url);
  const names = Object.keys(contenders);
  const runs = new Map<string, { mbs: number[]; rss: number[]; records: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const r = spawnJson([self, '--child', name, file]);
      const e = runs.get(name) ?? { mbs: [], rss: [], records: 0 };
      e.mbs.push(bytes / 1e6 / r.seconds!);
      e.rss.push(r.maxRssKb! / 1024);
      e.records = r.records!;
      runs.set(name, e);
      process.stderr.write(`  round ${round + 1} ${name}: ${(bytes / 1e6 / r.seconds!).toFixed(1)} MB/s\n`);
    }
  }
  const rows: JsonlBenchRow[] = names.map((name) => {
    const e = runs.get(name)!;
    return { name, mbPerSec: median(e.mbs), peakRssMb: median(e.rss), records: e.records };
  });
  const speed = (n: string) => rows.find((r) => r.name === n)!.mbPerSec;
  const ratios = [
    `ratio jsonl sluice/readline ${(speed('sluice') / speed('readline')).toFixed(2)}`,
    `ratio jsonl sluice/newline-count ${(speed('sluice') / speed('newline-count')).toFixed(2)}`,
  ];
  if (options.print ?? true) {
    console.log(`JSONL bench: ${file} (${(bytes / 1e6).toFixed(0)} MB), ${rounds} rounds, medians`);
    console.log(
      `${'contender'.padEnd(16)}${'MB/s'.padStart(10)}${'peak RSS MB'.padStart(14)}${'records'.padStart(12)}`,
    );
    for (const r of rows)
      console.log(
        `${r.name.padEnd(16)}${r.mbPerSec.toFixed(1).padStart(10)}${r.peakRssMb.toFixed(0).padStart(14)}${String(r.records).padStart(12)}`,
      );
    const counts = new Set(rows.map((r) => r.records));
    if (counts.size > 1)
      console.log(`WARNING: contenders disagree on the record count: ${[...counts].join(', ')}`);
    console.log(
      `sluice reaches ${((100 * speed('sluice')!) / speed('newline-count')!).toFixed(0)}% of the newline-count ceiling (reading + counting \\n)`,
    );
    for (const l of ratios) console.log(l);
  }
  return { file, bytes, rows, ratios };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1]!, argv[2]!);
  } else {
    const flag = (n: string) => {
      const i = argv.indexOf(n);
      return i === -1 ? undefined : Number(argv[i + 1]);
    };
    await runJsonlBench({ sizeMb: flag('--size-mb') ?? 200, rounds: flag('--rounds') ?? 5 });
  }
}
