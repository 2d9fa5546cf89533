/**
 * `npx node bench/split-window.ts [--file F] [--format csv|jsonl] [--threads 2] [--rounds 3]`: the
 * inputs of the Amdahl model in bench/README.md for a split-parallel window (file → tumbling 1m
 * by (country, event_type), count + exact sum → discarded), in one process through the library.
 *
 * Alternates `parallelism: 1` and `parallelism: N` runs and prints the medians of: wall time of
 * each; the split run's phases on the merging thread (cutting the file, the workers from spawn to
 * their last message, merging and emitting); each worker's CPU time and bytes, hence the
 * per-thread throughput; and the serial fraction `s` of the one-thread time that the phases
 * outside the workers take (worker start-up counted as serial: it does not shrink with N).
 * The default input is the CSV `npm run bench -- vs-go` generated (run that first).
 */
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSource } from '../src/connectors/file/source.ts';
import type { Logger, Sink } from '../src/core/stage.ts';
import { Pipeline } from '../src/pipeline.ts';
import { windowOperator } from '../src/time/window.ts';
import { numberFlag, stringFlag } from './child.ts';
import { median } from './run.ts';

interface Phases {
  cutMs: number;
  workersMs: number;
  mergeMs: number;
  ranges: { records: number; bytes: number; cpuMs: number }[];
}

async function once(path: string, format: 'csv' | 'jsonl', parallelism: number) {
  let phases: Phases | undefined;
  let fellBack: string | undefined;
  const log: Logger = {
    info: (_m, f) => {
      if (f?.phases !== undefined) phases = { ...(f.phases as Phases), ranges: f.ranges as Phases['ranges'] };
    },
    warn: (m) => {
      fellBack = m;
    },
    error: () => {},
  };
  let results = 0;
  const sink: Sink = {
    write(b) {
      results += b.records.length;
    },
  };
  const t0 = performance.now();
  await new Pipeline('split-bench')
    .from(fileSource({ path, format }))
    .via(
      windowOperator({
        key: ['country', 'event_type'],
        time: 'ts',
        tumbling: '1m',
        watermark: { maxOutOfOrder: '5s' },
        aggregate: { count: 'count()', amount: 'sum(amount)' },
        parallelism,
      }),
    )
    .to(sink)
    .run({ log }).done;
  return { wallMs: performance.now() - t0, phases, fellBack, results };
}

async function main(argv: string[]): Promise<void> {
  const format = (stringFlag(argv, '--format') ?? 'csv') as 'csv' | 'jsonl';
  const path =
    stringFlag(argv, '--file') ?? join(tmpdir(), 'sluice-bench-vs-go', `events-v1-200mb.${format}`);
  const threads = numberFlag(argv, '--threads') ?? 2;
  const rounds = numberFlag(argv, '--rounds') ?? 3;
  const bytes = statSync(path).size;
  const one: number[] = [];
  const many: number[] = [];
  const phases: Phases[] = [];
  await once(path, format, 1); // warm-up (JIT of this thread), not measured
  for (let r = 0; r < rounds; r++) {
    const a = await once(path, format, 1);
    const b = await once(path, format, threads);
    if (b.fellBack !== undefined) throw new Error(`the split run fell back: ${b.fellBack}`);
    if (a.results !== b.results) throw new Error(`results differ: ${a.results} vs ${b.results}`);
    one.push(a.wallMs);
    many.push(b.wallMs);
    if (b.phases !== undefined) phases.push(b.phases);
    process.stderr.write(
      `  round ${r + 1}: p1 ${a.wallMs.toFixed(0)} ms, p${threads} ${b.wallMs.toFixed(0)} ms\n`,
    );
  }
  const m = (f: (p: Phases) => number) => median(phases.map(f));
  const t1 = median(one);
  const tn = median(many);
  // Ranges differ in size (split as threads free up: src/time/split-steal.ts): CPU per 100 MB.
  const sum = (p: Phases, f: (r: Phases['ranges'][number]) => number) =>
    p.ranges.reduce((a, r) => a + f(r), 0);
  const cpu = m((p) => (1e8 * sum(p, (r) => r.cpuMs)) / sum(p, (r) => r.bytes));
  const ranges = m((p) => p.ranges.length);
  const perThread = m((p) => median(p.ranges.map((r) => r.bytes / 1e6 / (r.cpuMs / 1000))));
  const oneThreadMBs = bytes / 1e6 / (t1 / 1000);
  const outside = m((p) => p.cutMs + p.mergeMs);
  console.log(
    `split-window — ${(bytes / 1e6).toFixed(0)} MB ${format}, ${rounds} rounds, medians (machine shared)`,
  );
  console.log(
    `wall p1 ${(t1 / 1000).toFixed(2)} s (${oneThreadMBs.toFixed(0)} MB/s), p${threads} ${(tn / 1000).toFixed(2)} s`,
  );
  console.log(`speedup p${threads}/p1 ${(t1 / tn).toFixed(2)}`);
  console.log(
    `phases p${threads}: cut ${m((p) => p.cutMs).toFixed(0)} ms, workers ${m((p) => p.workersMs).toFixed(0)} ms, merge+emit ${m((p) => p.mergeMs).toFixed(0)} ms`,
  );
  console.log(
    `range CPU per 100 MB ${cpu.toFixed(0)} ms (${ranges} ranges); per-thread throughput ${perThread.toFixed(0)} MB/s of CPU`,
  );
  console.log(
    `serial outside the workers ${outside.toFixed(0)} ms = ${((100 * outside) / t1).toFixed(1)} % of p1`,
  );
}

await main(process.argv.slice(2));
