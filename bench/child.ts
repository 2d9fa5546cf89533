/**
 * What the file benchmarks (`csv`, `jsonl`, `csv-workers`) share around their contenders: the
 * child-process side (run one contender once, print one JSON line), the parent side (run every
 * contender in a fresh `node <script> --child <name> <file>`, rounds interleaved, medians), the
 * table they print and their numeric flags. The contenders themselves stay in each benchmark:
 * they are the code being measured.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { peakRssKiB } from './rss.ts';
import { median } from './run.ts';

/** What a contender's child process prints: one JSON line on stdout. */
export interface ChildReport {
  /** Rows or records the contender produced. */
  readonly count: number;
  readonly seconds: number;
  /** Peak resident set size of the child, KiB. */
  readonly maxRssKb: number;
  /** What the contender summed from the fields it touched: printed so that work cannot be optimised away. */
  readonly checksum: number;
}

/**
 * Child side: runs `contender` once, timing it, then prints its {@link ChildReport}. `checksum`
 * is read after the run.
 *
 * @example
 * await reportRun(() => contenders[name]!(file), () => checksum);
 */
export async function reportRun(
  contender: () => number | Promise<number>,
  checksum: () => number,
): Promise<void> {
  const t0 = performance.now();
  const ran = contender();
  const count = typeof ran === 'number' ? ran : await ran;
  const seconds = (performance.now() - t0) / 1000;
  const report: ChildReport = {
    count,
    seconds,
    maxRssKb: peakRssKiB(),
    checksum: checksum(),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/**
 * Parent side: runs `node <args>` to its end and parses the last line of its stdout as JSON.
 * Throws, with the child's stderr, when it exits with an error.
 *
 * @example
 * const { mb } = spawnJson(['--expose-gc', script, '--heap', 'on', file]);
 */
export function spawnJson(args: readonly string[]): Record<string, number> {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`bench child failed: ${args.join(' ')}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/** One contender's medians over the rounds. */
export interface Measured {
  readonly mbPerSec: number;
  readonly peakRssMb: number;
  /** The count of the last run. */
  readonly count: number;
}

/**
 * Runs every contender of `names` `rounds` times, interleaved (a, b, c, a, b, c…, so a machine
 * getting slower affects all alike), each run a fresh `node <script> --child <name> <file>`
 * printing a {@link ChildReport}. MB/s is of `bytes`. With `progress`, writes a line per run to
 * stderr.
 *
 * @example
 * const measured = measureRounds(self, file, statSync(file).size, ['sluice', 'readline'], 5, true);
 */
export function measureRounds(
  script: string,
  file: string,
  bytes: number,
  names: readonly string[],
  rounds: number,
  progress: boolean,
): Map<string, Measured> {
  const runs = new Map<string, { mbs: number[]; rss: number[]; count: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const r = spawnJson([script, '--child', name, file]) as unknown as ChildReport;
      const e = runs.get(name) ?? { mbs: [], rss: [], count: 0 };
      e.mbs.push(bytes / 1e6 / r.seconds);
      e.rss.push(r.maxRssKb / 1024);
      e.count = r.count;
      runs.set(name, e);
      if (progress)
        process.stderr.write(`  round ${round + 1} ${name}: ${(bytes / 1e6 / r.seconds).toFixed(1)} MB/s\n`);
    }
  }
  const measured = new Map<string, Measured>();
  for (const [name, e] of runs)
    measured.set(name, { mbPerSec: median(e.mbs), peakRssMb: median(e.rss), count: e.count });
  return measured;
}

/** One line of {@link printTable}: a contender's medians, or why it did not run. */
export interface TableRow {
  readonly name: string;
  readonly mbPerSec: number;
  readonly peakRssMb: number;
  readonly count: number;
  readonly skipped?: string | undefined;
}

/**
 * Prints the contender table: name, MB/s, peak RSS MB and the count under `countLabel`
 * (`rows`, `records`); the name column is `nameWidth` wide.
 *
 * @example
 * printTable([{ name: 'sluice', mbPerSec: 512.3, peakRssMb: 80, count: 1000 }], 'records');
 */
export function printTable(rows: readonly TableRow[], countLabel: string, nameWidth = 16): void {
  console.log(
    `${'contender'.padEnd(nameWidth)}${'MB/s'.padStart(10)}${'peak RSS MB'.padStart(14)}${countLabel.padStart(12)}`,
  );
  for (const r of rows) {
    if (r.skipped !== undefined) console.log(`${r.name.padEnd(nameWidth)}  skipped (${r.skipped})`);
    else
      console.log(
        `${r.name.padEnd(nameWidth)}${r.mbPerSec.toFixed(1).padStart(10)}${r.peakRssMb.toFixed(0).padStart(14)}${String(r.count).padStart(12)}`,
      );
  }
}

/** The line saying how close Sluice comes to merely reading the file and counting newlines. */
export function ceilingLine(sluiceMbPerSec: number, newlineCountMbPerSec: number): string {
  return `sluice reaches ${((100 * sluiceMbPerSec) / newlineCountMbPerSec).toFixed(0)}% of the newline-count ceiling (reading + counting \\n)`;
}

/**
 * The word after flag `name` in `argv`, or undefined when the flag is absent.
 *
 * @example
 * stringFlag(['--only', 'lmdb,redis'], '--only'); // 'lmdb,redis'
 */
export function stringFlag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
}

/**
 * The number after flag `name` in `argv`, or undefined when the flag is absent.
 *
 * @example
 * numberFlag(['--size-mb', '20'], '--size-mb'); // 20
 */
export function numberFlag(argv: readonly string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : Number(argv[i + 1]);
}

/** The slice of a Sluice `RecordDecoder` the file benchmarks drive. */
export interface BenchDecoder<T> {
  write(chunk: Buffer, sink: { record(r: T): void; invalid(): void }): void;
  end(sink: { record(r: T): void; invalid(): void }): void;
}

/**
 * Reads `file` in `chunkBytes` reads through `dec`, calling `touch` on every record the way a
 * pipeline stage would read a field; returns the record count.
 *
 * @example
 * const rows = await decodeFile(new CsvDecoder(), file, 256 * 1024, (r) => { sum += r.status.length; });
 */
export async function decodeFile<T>(
  dec: BenchDecoder<T>,
  file: string,
  chunkBytes: number,
  touch: (r: T) => void,
): Promise<number> {
  let n = 0;
  const sink = {
    record(r: T) {
      touch(r);
      n++;
    },
    invalid() {},
  };
  for await (const chunk of createReadStream(file, { highWaterMark: chunkBytes }))
    dec.write(chunk as Buffer, sink);
  dec.end(sink);
  return n;
}
