/**
 * `npx node bench/range-job.ts [--file F] [--bytes 100000000] [--rounds 5] [--no-sum]`: the per-thread cost
 * of one split range of the vs-go CSV window (file → tumbling 1m by (country, event_type),
 * count + exact sum), measured on this thread without workers: a `RangeJob` over the first
 * `--bytes` of the file (cut at the next row end), CPU ms per round and their median. The
 * kernel behind `bench/split-window.ts`'s per-range CPU and `parallelism: 1`'s decode → window.
 * Round 0 is what a worker thread pays (cold JIT); later rounds run optimised code. `--no-sum`
 * drops `sum(amount)` (and the `amount` column) to show what the decimal column costs.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { RangeJob, type SplitMessage } from '../src/time/split-range.ts';
import { numberFlag, stringFlag } from './child.ts';
import { median } from './run.ts';

const file = stringFlag(process.argv, '--file') ?? '/tmp/sluice-bench-vs-go/events-v1-200mb.csv';
const want = numberFlag(process.argv, '--bytes') ?? 100_000_000;
const rounds = numberFlag(process.argv, '--rounds') ?? 5;
const withSum = !process.argv.includes('--no-sum');

/** The first row end at or after `at` (the byte after its LF). */
function rowEnd(path: string, at: number): number {
  if (at >= statSync(path).size) return statSync(path).size;
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(1 << 16);
  const n = readSync(fd, b, 0, b.length, at);
  closeSync(fd);
  const i = b.subarray(0, n).indexOf(10);
  return at + i + 1;
}

const to = rowEnd(file, want);
const cpus: number[] = [];
for (let r = 0; r < rounds; r++) {
  let windows = 0;
  let done: SplitMessage['done'];
  const job = new RangeJob(
    {
      path: file,
      format: 'csv',
      decode: {},
      from: 0,
      to,
      last: to === statSync(file).size,
      fields: withSum ? ['country', 'event_type', 'ts', 'amount'] : ['country', 'event_type', 'ts'],
      uses: [['ts', 'epochMillis']],
      window: {
        key: ['country', 'event_type'],
        time: 'ts',
        tumbling: '1m',
        watermark: { maxOutOfOrder: '5s' },
        aggregate: withSum ? { count: 'count()', amount: 'sum(amount)' } : { count: 'count()' },
      },
    },
    (m) => {
      windows += m.windows.length;
      if (m.done !== undefined) done = m.done;
    },
  );
  job.step();
  if (done === undefined || done.unsafe !== undefined)
    throw new Error(`range not done cleanly: ${done?.unsafe}`);
  cpus.push(done.cpuMs);
  console.log(`round ${r}: cpu ${done.cpuMs.toFixed(0)} ms, ${done.records} records, ${windows} windows`);
}
console.log(`range-job cpu median ${median(cpus).toFixed(0)} ms per ${(to / 1e6).toFixed(0)} MB`);
