/**
 * `npm run bench -- cel` (or `npx node bench/cel.ts [--records N] [--rounds N]`): records per second through a `filter`
 * step with the CEL condition `record.type == "login" && record.risk > 50`, against the same
 * predicate as a hand-written TypeScript function, in the same run, through the same pipeline
 * (an in-memory source of pre-built batches → filter → counting sink). Also shows the library
 * evaluator alone (Sluice's fast path off), for orientation.
 *
 * Prints a table of medians and ends with `ratio cel sluice/handwritten X`.
 */
import { type Batch, batchOf } from '../src/core/message.ts';
import type { Emitter, Operator, Sink, Source } from '../src/core/stage.ts';
import { compileExpression } from '../src/expr/cel.ts';
import { CelFilter } from '../src/expr/cel-operators.ts';
import { Pipeline } from '../src/pipeline.ts';
import { numberFlag } from './child.ts';
import { median } from './run.ts';

/** Options of {@link runCelBench}. */
export interface CelBenchOptions {
  /** Records per run. Default 2,000,000. */
  readonly records?: number;
  /** Records per batch. Default 1024. */
  readonly batchSize?: number;
  /** Runs per contender; the median is reported. Default 5. */
  readonly runs?: number;
}

/** One contender's result. */
export interface CelBenchRow {
  readonly name: string;
  /** Median records per second. */
  readonly recordsPerSec: number;
  /** Every run's records per second. */
  readonly runs: readonly number[];
  /** Records that passed the filter (the same for every contender). */
  readonly passed: number;
  /** Peak RSS in MiB seen after the runs. */
  readonly peakRssMiB: number;
}

/** Everything the runner needs: rows and the ratio lines. */
export interface CelBenchResult {
  readonly rows: readonly CelBenchRow[];
  /** `{ name: 'sluice/handwritten', value }` — above 1 means Sluice is faster. */
  readonly ratios: readonly { readonly name: string; readonly value: number }[];
}

const EXPRESSION = 'record.type == "login" && record.risk > 50';

interface Event {
  readonly type: string;
  readonly risk: number;
  readonly country: string;
  readonly id: number;
}

function makeBatches(total: number, batchSize: number): Batch<Event>[] {
  const types = ['login', 'logout', 'purchase'];
  const countries = ['US', 'DE', 'FR', 'BR'];
  const batches: Batch<Event>[] = [];
  for (let start = 0; start < total; start += batchSize) {
    const records: Event[] = [];
    for (let i = start; i < Math.min(total, start + batchSize); i++) {
      records.push({
        type: types[i % 3] as string,
        risk: (i * 37) % 101,
        country: countries[i % 4] as string,
        id: i,
      });
    }
    batches.push(batchOf(records));
  }
  return batches;
}

function batchSource(batches: readonly Batch<Event>[]): Source<Event> {
  return {
    async run(out: Emitter<Event>) {
      for (const b of batches) await out.emit(b);
    },
  };
}

/** The hand-written contender: the same loop as `CelFilter`, with a TypeScript predicate. */
function fnFilter(pred: (r: Event) => boolean): Operator<Event, Event> {
  return {
    process(batch, out) {
      const records = batch.records;
      const keep: Event[] = [];
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as Event;
        if (pred(r)) keep.push(r);
      }
      return out.emit(batchOf(keep));
    },
  };
}

async function once(
  op: Operator<Event, unknown>,
  batches: readonly Batch<Event>[],
  total: number,
): Promise<{ rate: number; passed: number }> {
  let passed = 0;
  const sink: Sink = {
    write(b) {
      passed += b.records.length;
    },
  };
  const p = new Pipeline('bench-cel');
  p.from(batchSource(batches)).via(op).to(sink);
  const t0 = performance.now();
  await p.run().done;
  const ms = performance.now() - t0;
  return { rate: (total / ms) * 1000, passed };
}

/** Runs the benchmark and returns the medians; prints nothing. */
export async function runCelBench(options: CelBenchOptions = {}): Promise<CelBenchResult> {
  const total = options.records ?? 2_000_000;
  const runs = options.runs ?? 5;
  const batches = makeBatches(total, options.batchSize ?? 1024);
  const contenders: { name: string; make: () => Operator<Event, unknown> }[] = [
    { name: 'handwritten', make: () => fnFilter((r) => r.type === 'login' && r.risk > 50) },
    { name: 'cel sluice', make: () => new CelFilter(EXPRESSION) as Operator<Event, unknown> },
    {
      name: 'cel-js evaluator only',
      make: () => {
        const e = compileExpression(EXPRESSION, { result: 'bool', fastPath: false });
        return fnFilter((r) => e.evaluate(r) === true);
      },
    },
  ];
  const rates = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const passed = new Map<string, number>();
  let peakRss = 0;
  // Interleave the contenders so drift (heat, GC) hits all alike; one warm-up round first.
  for (let round = -1; round < runs; round++) {
    for (const c of contenders) {
      const r = await once(c.make(), batches, total);
      if (round >= 0) rates.get(c.name)?.push(r.rate);
      passed.set(c.name, r.passed);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
  }
  const rows: CelBenchRow[] = contenders.map((c) => {
    const rs = rates.get(c.name) ?? [];
    return {
      name: c.name,
      recordsPerSec: median(rs),
      runs: rs,
      passed: passed.get(c.name) ?? 0,
      peakRssMiB: peakRss / 2 ** 20,
    };
  });
  const hand = rows[0] as CelBenchRow;
  const cel = rows[1] as CelBenchRow;
  const lib = rows[2] as CelBenchRow;
  if (new Set(rows.map((r) => r.passed)).size !== 1)
    throw new Error(
      `contenders disagree on the records that pass: ${rows.map((r) => `${r.name}=${r.passed}`).join(', ')}`,
    );
  return {
    rows,
    ratios: [
      { name: 'sluice/handwritten', value: cel.recordsPerSec / hand.recordsPerSec },
      { name: 'sluice/cel-js-evaluator', value: cel.recordsPerSec / lib.recordsPerSec },
    ],
  };
}

/** Formats a result as the table and the `ratio cel …` lines. */
export function formatCelBench(result: CelBenchResult): string {
  const lines = [
    `cel: filter \`${EXPRESSION}\` (medians)`,
    `${'contender'.padEnd(24)}${'records/s'.padStart(14)}${'passed'.padStart(12)}${'peak RSS MiB'.padStart(14)}`,
  ];
  for (const r of result.rows) {
    lines.push(
      `${r.name.padEnd(24)}${Math.round(r.recordsPerSec).toLocaleString('en-US').padStart(14)}${String(r.passed).padStart(12)}${r.peakRssMiB.toFixed(0).padStart(14)}`,
    );
  }
  lines.push('');
  // The `cel sluice/handwritten` line last: it is the one the issue asks for.
  for (const r of [...result.ratios].reverse()) lines.push(`ratio cel ${r.name} ${r.value.toFixed(2)}`);
  return lines.join('\n');
}

/** Entry point for the `npm run bench` runner: runs and prints. */
export async function main(options: CelBenchOptions = {}): Promise<CelBenchResult> {
  const result = await runCelBench(options);
  console.log(formatCelBench(result));
  return result;
}

if (import.meta.main) {
  // `npm run bench -- cel --runs N` passes `--rounds N` (bench/run.ts).
  const argv = process.argv.slice(2);
  await main({ records: numberFlag(argv, '--records'), runs: numberFlag(argv, '--rounds') });
}
