/**
 * Split-parallel windows, the merging thread's side: a window step reading a plain CSV or JSON
 * Lines file alone runs as one source ({@link splitWindowSource}, put in place of the file source
 * and the step by `splitParallel` in `core/split.ts`). The file is cut into byte ranges at line
 * ends; this thread runs the first range itself and one worker thread each of the others
 * (`split-window-worker.ts`); each range is decoded and its windows pre-aggregated
 * (`split-range.ts`); this thread merges the partial windows of every range and emits exactly what the step
 * would on one thread: buckets in start order, in each the keys in the order they first appeared
 * in the file (ranges in file order, each in its own order), with accumulators merged (only
 * aggregates whose merge is exact take part).
 *
 * Exactness. One thread judges an event against the watermark before its batch, which is at
 * most `maxTime − maxOutOfOrder − 1` over every event before it in the file. Each range checks,
 * per event, that this bound over the events before it in its range cannot have fired the
 * event's oldest window; this thread checks the same for each range against the latest event
 * time of the ranges before it (the ranges' watermarks merged, so a range is judged by the
 * highest watermark a one-thread run could have had when it started). When no event could have
 * found a window of its fired, none is late, no fired window is updated, and every window fires
 * in start order under any batching, so the merged results are the one-thread results. When one
 * could, or a row was undecodable or dead-lettered, or a cut fell inside a quoted field, the
 * whole job runs on this thread instead (the file source and the step as they were), and the
 * reason is logged.
 * Results are emitted once every range is done (the check needs every range).
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { batchOf } from '../core/message.ts';
import type { ProjectableSource, RejectedRecord } from '../core/projection.ts';
import type { SplitInput } from '../core/split.ts';
import type { Emitter, Operator, Source, SourceContext } from '../core/stage.ts';
import { startWorker } from '../core/worker-start.ts';
import { codecFromMagic, MAGIC_BYTES } from '../formats/compression/codecs.ts';
import type { FormatDecodeOptions, FormatName } from '../formats/formats.ts';
import { resumeOptions } from '../formats/formats.ts';
import { WindowMerger } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';
import type { WorkerMessage } from './split-window-worker.ts';
import { WindowCore } from './window-core.ts';
import type { WindowOptions, WindowPlan } from './window-options.ts';
import { iso } from './window-records.ts';

/** Aggregates whose merge of partials gives exactly the one-accumulator result (not float sums). */
const EXACT_MERGE = new Set(['count', 'sum', 'min', 'max', 'distinct']);

/** A range smaller than this is not worth a thread: fewer ranges are made. */
export const MIN_RANGE_BYTES = 64 * 1024;

/**
 * The same with `parallelism: auto`, where the number of threads is ours to choose: a worker
 * costs ~0.15 s of CPU and 20–45 MiB, and on the 2-vCPU machine of bench/README.md (split-window)
 * two threads broke even at ~25 MB a range (a 50 MB CSV) and lost below.
 */
export const AUTO_MIN_RANGE_BYTES = 32 * 1024 * 1024;

/**
 * Bytes of its own range this thread decodes between two turns of its event loop: ~10–30 ms of
 * work, so the workers' messages, timers and signals wait no longer than that.
 */
const SLICE_BYTES = 4 * 1024 * 1024;

/** Results per emitted batch at most. */
const RESULT_BATCH = 4096;

/** What a split window job needs besides its input. */
export interface SplitWindowParts {
  /** The window step's options as given (structured-cloneable when the job can split). */
  readonly options: WindowOptions | undefined;
  /** The same, parsed. */
  readonly plan: WindowPlan;
  /** The step itself, run on this thread when the split run cannot be exact. */
  readonly operator: Operator<unknown, Record<string, unknown>>;
  /** The source it replaces, run on this thread with the step in the same case. */
  readonly source: Source;
}

/**
 * The source that runs window step `parts.operator` split-parallel over `input` (see the module
 * comment), or why it cannot: a sentence for `sluice lint` and the run's log.
 */
export function splitWindowSource(input: SplitInput, parts: SplitWindowParts): Source | string {
  const why = cannotSplit(input, parts);
  return why ?? new SplitWindowSource(input, parts);
}

function cannotSplit(input: SplitInput, parts: SplitWindowParts): string | undefined {
  const { options: o, plan: p } = parts;
  if (o === undefined) return 'the step was built from a plan, not from options a worker thread can rebuild';
  if (typeof o.key === 'function' || typeof o.time === 'function')
    return 'its key or time is a TypeScript function (a closure a worker thread cannot rebuild)';
  if (Object.values(o.aggregate).some((a) => typeof a !== 'string'))
    return 'an aggregate is a TypeScript object (a closure a worker thread cannot rebuild)';
  if (p.assigner.kind === 'session') return 'session windows merge across the whole input';
  if (p.processingTime) return 'its windows are in processing time';
  if (p.late !== undefined) return 'it has a `late` output';
  if (p.early !== undefined || p.countTrigger !== undefined) return 'it has an early or count trigger';
  if (o.watermark?.idleTimeout !== undefined)
    return 'its watermark has an idle timeout (it depends on the clock)';
  const inexact = p.aggs.filter((a) => !EXACT_MERGE.has(a.fn)).map((a) => `\`${a.fn}\``);
  if (inexact.length > 0)
    return `merged partials of ${[...new Set(inexact)].join(', ')} may differ from one accumulator in the last digit (${[...EXACT_MERGE].map((f) => `\`${f}\``).join(', ')} merge exactly)`;
  if (Object.values(input.options).some((v) => typeof v === 'function'))
    return 'its source has a TypeScript function among its decoder options';
  return undefined;
}

/** What a worker reported when it finished. */
type Done = NonNullable<SplitMessage['done']>;

/** The file worker module: `.ts` from the sources, `.js` from a build. */
const WORKER = new URL(`./split-window-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** See {@link splitWindowSource}. */
class SplitWindowSource implements Source<Record<string, unknown>> {
  private readonly input: SplitInput;
  private readonly parts: SplitWindowParts;
  private readonly workers = new Set<Worker>();
  private sourceOpened = false;
  private threads = 0;
  private fellBack = 0;
  private records = 0;

  constructor(input: SplitInput, parts: SplitWindowParts) {
    this.input = input;
    this.parts = parts;
  }

  metrics(): Readonly<Record<string, number>> {
    // `inputRecords`: the rows read, which the run's summary counts as read (it emits window results).
    return {
      splitThreads: this.threads,
      splitFallback: this.fellBack,
      splitRecords: this.records,
      inputRecords: this.records,
    };
  }

  /**
   * The whole records of the file source's records the step rejected when it ran on one thread
   * (see `ProjectableSource.wholeRecords`); none when the file source cannot rebuild them.
   */
  async wholeRecords(rejected: readonly RejectedRecord[]): Promise<readonly unknown[]> {
    const source = this.parts.source as Partial<ProjectableSource>;
    return source.wholeRecords === undefined ? rejected.map(() => undefined) : source.wholeRecords(rejected);
  }

  async run(out: Emitter<Record<string, unknown>>, ctx: SourceContext): Promise<void> {
    const t0 = performance.now();
    const made = await this.runSplits(ctx);
    if (typeof made === 'string') {
      this.fellBack = 1;
      ctx.log.warn(`Window \`${ctx.name}\` runs on one thread: ${made}.`);
      await this.runOneThread(out, ctx);
      return;
    }
    const t1 = performance.now();
    await this.emitMerged(made.merged, out, ctx);
    // For bench/split-window.ts (the Amdahl model): what ran where, and for how long.
    ctx.log.info(`Window \`${ctx.name}\` ran split-parallel on ${this.threads} threads.`, {
      ranges: made.done.map((d) => ({ records: d.records, bytes: d.bytes, cpuMs: Math.round(d.cpuMs) })),
      phases: { cutMs: made.cutMs, workersMs: t1 - t0 - made.cutMs, mergeMs: performance.now() - t1 },
    });
  }

  /** The step and its source as they were, on this thread (the results of a one-thread run). */
  private async runOneThread(out: Emitter<Record<string, unknown>>, ctx: SourceContext): Promise<void> {
    const { source, operator } = this.parts;
    this.sourceOpened = true;
    await source.open?.(ctx);
    await operator.open?.(ctx);
    this.records = 0; // counted again: a fallback after the ranges ran reads the whole file
    const feed: Emitter<unknown> = {
      emit: async (batch) => {
        this.records += batch.records.length;
        await operator.process(batch, out);
      },
      signal: async (signal) => {
        if (operator.onSignal === undefined) await out.signal(signal);
        else await operator.onSignal(signal, out);
      },
    };
    await source.run(feed, ctx);
    await operator.finish?.(out);
  }

  /**
   * Cuts the file, runs the ranges (the first here, the others on worker threads), merges their
   * windows as they come and checks the ranges' results are exact: the merged windows, or why
   * the job must run on one thread.
   */
  private async runSplits(
    ctx: SourceContext,
  ): Promise<{ merged: WindowMerger; done: Done[]; cutMs: number } | string> {
    const t0 = performance.now();
    const { path, compression } = this.input;
    const format = this.input.format as FormatName;
    const least = this.parts.options?.parallelism === 'auto' ? AUTO_MIN_RANGE_BYTES : MIN_RANGE_BYTES;
    const cuts = cutFile(path, this.parts.plan.parallelism, compression, least);
    if (typeof cuts === 'string') return cuts;
    const options = this.input.options as FormatDecodeOptions;
    // Every range after the first decodes with the same options (its start is its own offset).
    const resumed = await resumeOptions(format, options, { line: 0, offset: cuts[1] as number }, () =>
      createReadStream(path),
    );
    const tasks: SplitTask[] = [];
    for (let k = 0; k + 1 < cuts.length; k++) {
      tasks.push({
        path,
        format,
        decode: k === 0 ? options : resumed,
        from: cuts[k] as number,
        to: cuts[k + 1] as number,
        last: k + 2 === cuts.length,
        fields: this.input.fields,
        uses: this.input.uses ?? [],
        window: { ...(this.parts.options as WindowOptions), parallelism: 1 },
      });
    }
    this.threads = tasks.length;
    const cutMs = performance.now() - t0;
    const merged = new WindowMerger(new WindowCore<unknown>(this.parts.plan).aggs, tasks.length);
    // The first range runs here, between turns of this thread's event loop (which receives the
    // workers' windows meanwhile): this thread would otherwise only wait, and a worker fewer is a
    // thread start and a heap fewer.
    const [here, ...elsewhere] = tasks as [SplitTask, ...SplitTask[]];
    const started = elsewhere.map((t, k) => this.runWorker(t, k + 1, merged, ctx.signal));
    const done = await Promise.all([this.runHere(here, merged, ctx.signal), ...started]);
    for (const [k, d] of done.entries()) {
      this.records += d.records;
      if (d.unsafe !== undefined) return `in byte range ${k + 1} of ${done.length}, ${d.unsafe}`;
    }
    // The ranges before a range: could their watermark have fired a window of one of its events?
    if (this.parts.plan.generator !== undefined) {
      const ooo = this.parts.plan.generator.maxOutOfOrder;
      let before = Number.NEGATIVE_INFINITY;
      for (const [k, d] of done.entries()) {
        if (d.minEnd <= before - ooo)
          return `an event of byte range ${k + 1} of ${done.length} is so far behind the ranges before it that their watermark may have passed its window`;
        if (d.maxTime > before) before = d.maxTime;
      }
    }
    return { merged, done, cutMs };
  }

  /**
   * Runs `task`, range 0, on this thread, {@link SLICE_BYTES} at a time with a turn of the event
   * loop between slices, its windows merged into `merged` as they fire: its report.
   */
  private async runHere(task: SplitTask, merged: WindowMerger, signal: AbortSignal): Promise<Done> {
    let done: Done | undefined;
    const job = new RangeJob(task, (m) => {
      merged.add(0, m.windows);
      if (m.done !== undefined) done = m.done;
    });
    try {
      while (!job.step(SLICE_BYTES)) {
        await new Promise((resolve) => setImmediate(resolve));
        signal.throwIfAborted();
      }
    } finally {
      job.close();
    }
    merged.done(0);
    return done as Done;
  }

  /** Runs `task`, range `range`, on a worker thread, its windows merged into `merged`: its report. */
  private runWorker(
    task: SplitTask,
    range: number,
    merged: WindowMerger,
    signal: AbortSignal,
  ): Promise<Done> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(WORKER, { workerData: task });
      this.workers.add(worker);
      let done: Done | undefined;
      const onAbort = () => void worker.terminate();
      signal.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: WorkerMessage) => {
        merged.add(range, m.packed);
        if (m.done !== undefined) {
          done = m.done;
          merged.done(range);
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        signal.removeEventListener('abort', onAbort);
        this.workers.delete(worker);
        if (done !== undefined) resolve(done);
        else if (signal.aborted) reject(signal.reason);
        else reject(new Error(`the worker of byte range ${task.from}–${task.to} exited with code ${code}`));
      });
    });
  }

  /** Emits the results of the merged windows, bucket by bucket in start order. */
  private async emitMerged(
    merged: WindowMerger,
    out: Emitter<Record<string, unknown>>,
    ctx: SourceContext,
  ): Promise<void> {
    const core = new WindowCore<unknown>(this.parts.plan);
    core.ctx = ctx;
    for (const b of merged.buckets()) {
      const startIso = iso(b.start);
      const endIso = iso(b.end);
      for (const w of b.wins.values()) {
        core.result(w, startIso, endIso);
        if (core.out.length >= RESULT_BATCH) await this.flush(core, out);
      }
      b.wins.clear();
    }
    await this.flush(core, out);
  }

  private async flush(core: WindowCore<unknown>, out: Emitter<Record<string, unknown>>): Promise<void> {
    if (core.out.length === 0) return;
    const recs = core.out;
    core.out = [];
    await out.emit(batchOf(recs));
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()));
    if (this.sourceOpened) await this.parts.source.close?.();
  }
}

/**
 * Byte offsets cutting the plain file at `path` into at most `n` ranges at line ends
 * (`[0, c1, …, size]`), or why it cannot be cut: a compressed file (by magic number when
 * `compression` is `auto`), or one too small for two ranges of `least` bytes (default
 * {@link MIN_RANGE_BYTES}).
 */
export function cutFile(
  path: string,
  n: number,
  compression: string,
  least = MIN_RANGE_BYTES,
): number[] | string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (compression === 'auto') {
      const head = Buffer.alloc(MAGIC_BYTES);
      const codec = codecFromMagic(head.subarray(0, readSync(fd, head, 0, MAGIC_BYTES, 0)));
      if (codec !== undefined && codec !== 'none')
        return `its file is compressed (\`${codec}\`, by its magic number): a compressed stream cannot be cut into byte ranges`;
    }
    const ranges = Math.min(n, Math.floor(size / least));
    if (ranges < 2) return `its file (${size} bytes) is too small to cut into ranges of ${least} bytes`;
    const cuts = [0];
    const probe = Buffer.alloc(64 * 1024);
    for (let k = 1; k < ranges; k++) {
      let at = Math.max(Math.floor((k * size) / ranges), (cuts[cuts.length - 1] as number) + 1);
      // The byte after the first line end at or after `at − 1`.
      let cut = -1;
      for (at -= 1; at < size && cut < 0; ) {
        const got = readSync(fd, probe, 0, probe.length, at);
        if (got === 0) break;
        const nl = probe.subarray(0, got).indexOf(0x0a);
        if (nl >= 0) cut = at + nl + 1;
        else at += got;
      }
      if (cut < 0 || cut >= size) break;
      if (cut > (cuts[cuts.length - 1] as number)) cuts.push(cut);
    }
    cuts.push(size);
    return cuts.length > 2 ? cuts : 'its file has no line end to cut it at';
  } finally {
    closeSync(fd);
  }
}
