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
import { createReadStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jsonlDecoder } from '../src/formats/jsonl.ts';
import { ceilingLine, decodeFile, measureRounds, numberFlag, printTable, reportRun } from './child.ts';
import { CHANNELS, CITIES, COUNTRIES, rng, STATUSES, writeGenerated } from './csv.ts';

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

// One word fewer than the CSV file's list: kept so the generated file (`-v1-`) stays the same bytes.
const WORDS = ['quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'lorem', 'ipsum', 'dolor', 'sit'];

/** Writes the benchmark file (once per size) into the OS temp dir and returns its path. */
export function generateJsonl(sizeMb: number): string {
  const r = rng(43);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  let id = 1_000_000;
  let ts = Date.UTC(2024, 0, 1);
  return writeGenerated(join(tmpdir(), `sluice-bench-jsonl-v1-${sizeMb}mb.jsonl`), sizeMb, '', () => {
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
    return block;
  });
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
  sluice(file) {
    return decodeFile<unknown>(jsonlDecoder(), file, CHUNK, (r) => {
      checksum += (r as { status: string }).status.length;
    });
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
  const measured = measureRounds(self, file, bytes, names, rounds, true);
  const rows: JsonlBenchRow[] = names.map((name) => {
    const e = measured.get(name)!;
    return { name, mbPerSec: e.mbPerSec, peakRssMb: e.peakRssMb, records: e.count };
  });
  const speed = (n: string) => rows.find((r) => r.name === n)!.mbPerSec;
  const ratios = [
    `ratio jsonl sluice/readline ${(speed('sluice') / speed('readline')).toFixed(2)}`,
    `ratio jsonl sluice/newline-count ${(speed('sluice') / speed('newline-count')).toFixed(2)}`,
  ];
  if (options.print ?? true) {
    console.log(`JSONL bench: ${file} (${(bytes / 1e6).toFixed(0)} MB), ${rounds} rounds, medians`);
    printTable(
      rows.map((r) => ({ ...r, count: r.records })),
      'records',
    );
    const counts = new Set(rows.map((r) => r.records));
    if (counts.size > 1)
      console.log(`WARNING: contenders disagree on the record count: ${[...counts].join(', ')}`);
    console.log(ceilingLine(speed('sluice'), speed('newline-count')));
    for (const l of ratios) console.log(l);
  }
  return { file, bytes, rows, ratios };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await reportRun(
      () => contenders[argv[1]!]!(argv[2]!),
      () => checksum,
    );
  } else {
    await runJsonlBench({
      sizeMb: numberFlag(argv, '--size-mb') ?? 200,
      rounds: numberFlag(argv, '--rounds') ?? 5,
    });
  }
}
