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
import { RangeBounds } from './range-bounds.ts';
import { WindowMerger } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';
import type { WorkerData, WorkerMessage } from './split-window-worker.ts';
import { WindowCore } from './window-core.ts';
import type { WindowOptions, WindowPlan } from './window-options.ts';
import { iso } from './window-records.ts';

/** Aggregates whose merge of partials gives exactly the one-accumulator result (not float sums). */
const EXACT_MERGE = new Set(['count', 'sum', 'min', 'max', 'distinct']);

/** A range smaller than this is not worth a thread: fewer ranges are made. */
export const MIN_RANGE_BYTES = 64 * 1024;

/**
 * Bytes of its own range this thread decodes between two turns of its event loop: ~10–30 ms of
 * work, so the workers' messages, timers and signals wait no longer than that.
 */
const SLICE_BYTES = 4 * 1024 * 1024;

/**
 * The first range (this thread's) is this share of an even one: this thread also merges, and a
 * worker's range can be taken over in part (its tail) but this thread's cannot, so this thread
 * should be the first to run out of its own work.
 */
const FIRST_SHARE = 0.5;

/**
 * A worker's unread bytes worth taking half of: below, a new range's start-up (its decoder and
 * window set, cold code) costs about what the threads would gain. A sixteenth of a smaller file
 * (but not under {@link MIN_RANGE_BYTES}).
 */
const MIN_STEAL_BYTES = 8 * 1024 * 1024;

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
    ctx.log.info(
      `Window \`${ctx.name}\` ran split-parallel on ${this.threads} threads (${made.done.length} byte ranges).`,
      {
        ranges: made.done.map((d) => ({ records: d.records, bytes: d.bytes, cpuMs: Math.round(d.cpuMs) })),
        phases: { cutMs: made.cutMs, workersMs: t1 - t0 - made.cutMs, mergeMs: performance.now() - t1 },
      },
    );
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
   * Cuts the file, runs the ranges (the first here, the others on worker threads; then, while a
   * worker still has much to read, the tail of its range here too), merges their windows as they
   * come and checks the ranges' results are exact: the merged windows, or why the job must run on
   * one thread.
   */
  private async runSplits(
    ctx: SourceContext,
  ): Promise<{ merged: WindowMerger; done: Done[]; cutMs: number } | string> {
    const t0 = performance.now();
    const { path, compression } = this.input;
    const format = this.input.format as FormatName;
    const cuts = cutFile(path, this.parts.plan.parallelism, compression, FIRST_SHARE);
    if (typeof cuts === 'string') return cuts;
    const size = cuts[cuts.length - 1] as number;
    const options = this.input.options as FormatDecodeOptions;
    // Every range after the first decodes with the same options (its start is its own offset).
    const resumed = await resumeOptions(format, options, { line: 0, offset: cuts[1] as number }, () =>
      createReadStream(path),
    );
    const task = (from: number, to: number): SplitTask => ({
      path,
      format,
      decode: from === 0 ? options : resumed,
      from,
      to,
      size,
      fields: this.input.fields,
      uses: this.input.uses ?? [],
      window: { ...(this.parts.options as WindowOptions), parallelism: 1 },
    });
    const tasks = cuts.slice(1).map((to, k) => task(cuts[k] as number, to));
    this.threads = tasks.length;
    const cutMs = performance.now() - t0;
    const merged = new WindowMerger(new WindowCore<unknown>(this.parts.plan).aggs);
    for (let k = 0; k < tasks.length; k++) merged.open(k);
    const done = new Map<number, Done>();
    // The first range runs here, between turns of this thread's event loop (which receives the
    // workers' windows meanwhile): this thread would otherwise only wait, and a worker fewer is a
    // thread start and a heap fewer. It is the shortest (see FIRST_SHARE): once done, this
    // thread takes the unread half of the worker range with the most left, and again.
    const running = new Map<number, RangeBounds>();
    const started = tasks.slice(1).map((t, k) => {
      const bounds = RangeBounds.create(t.from, t.to);
      running.set(k + 1, bounds);
      return this.runWorker(
        { task: t, range: k + 1, bounds: bounds.buffer },
        merged,
        done,
        running,
        ctx.signal,
      );
    });
    const workers = Promise.all(started);
    workers.catch(() => {}); // awaited below; this only stops an unhandled rejection meanwhile
    await this.runHere(tasks[0] as SplitTask, 0, merged, done, ctx.signal);
    let next = tasks.length;
    const least = Math.max(MIN_RANGE_BYTES, Math.min(MIN_STEAL_BYTES, Math.floor(size / 16)));
    for (
      let steal = this.steal(path, running, least);
      steal !== undefined;
      steal = this.steal(path, running, least)
    ) {
      const { victim, from, to } = steal;
      const range = next++;
      merged.open(range, victim);
      await this.runHere(task(from, to), range, merged, done, ctx.signal);
    }
    await workers;
    const reports = merged.ranges().map((r) => done.get(r) as Done);
    for (const [k, d] of reports.entries()) {
      this.records += d.records;
      if (d.unsafe !== undefined) return `in byte range ${k + 1} of ${reports.length}, ${d.unsafe}`;
    }
    // The ranges before a range: could their watermark have fired a window of one of its events?
    if (this.parts.plan.generator !== undefined) {
      const ooo = this.parts.plan.generator.maxOutOfOrder;
      let before = Number.NEGATIVE_INFINITY;
      for (const [k, d] of reports.entries()) {
        if (d.minEnd <= before - ooo)
          return `an event of byte range ${k + 1} of ${reports.length} is so far behind the ranges before it that their watermark may have passed its window`;
        if (d.maxTime > before) before = d.maxTime;
      }
    }
    return { merged, done: reports, cutMs };
  }

  /**
   * Takes the unread second half of the running worker range with the most left, if that is at
   * least `least` bytes: the range it was cut from and the new range's bounds.
   */
  private steal(
    path: string,
    running: ReadonlyMap<number, RangeBounds>,
    least: number,
  ): { victim: number; from: number; to: number } | undefined {
    for (;;) {
      let victim: number | undefined;
      let most = 0;
      for (const [range, b] of running) {
        const left = b.end() - b.claimed();
        if (left > most) {
          most = left;
          victim = range;
        }
      }
      if (victim === undefined || most < least) return undefined;
      const bounds = running.get(victim) as RangeBounds;
      const end = bounds.end();
      const cut = lineStartAfter(path, end - Math.floor(most / 2), end);
      if (cut === undefined) return undefined;
      // Fails only when the worker has read past the cut meanwhile: look again.
      if (bounds.shrink(cut)) return { victim, from: cut, to: end };
    }
  }

  /**
   * Runs `task` (range `range`) on this thread, {@link SLICE_BYTES} at a time with a turn of the
   * event loop between slices, its windows merged into `merged` as they fire and its report put in
   * `done`.
   */
  private async runHere(
    task: SplitTask,
    range: number,
    merged: WindowMerger,
    done: Map<number, Done>,
    signal: AbortSignal,
  ): Promise<void> {
    const job = new RangeJob(task, (m) => {
      merged.add(range, m.windows);
      if (m.done === undefined) return;
      done.set(range, m.done);
      merged.done(range);
    });
    try {
      while (!job.step(SLICE_BYTES)) {
        await new Promise((resolve) => setImmediate(resolve));
        signal.throwIfAborted();
      }
    } finally {
      job.close();
    }
  }

  /**
   * Runs `data`'s range on a worker thread, its windows merged into `merged` as they come and its
   * report put in `done`; it leaves `running` once its report came.
   */
  private runWorker(
    data: WorkerData,
    merged: WindowMerger,
    done: Map<number, Done>,
    running: Map<number, RangeBounds>,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(WORKER, { workerData: data });
      this.workers.add(worker);
      const onAbort = () => void worker.terminate();
      signal.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: WorkerMessage) => {
        merged.add(m.range, m.packed);
        if (m.done === undefined) return;
        running.delete(m.range);
        done.set(m.range, m.done);
        merged.done(m.range);
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        signal.removeEventListener('abort', onAbort);
        this.workers.delete(worker);
        if (done.has(data.range)) resolve();
        else if (signal.aborted) reject(signal.reason);
        else
          reject(
            new Error(`the worker of byte range ${data.task.from}–${data.task.to} exited with code ${code}`),
          );
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
 * `compression` is `auto`), or one too small for two ranges of {@link MIN_RANGE_BYTES}. The
 * ranges are equal, but the first is `firstShare` of the others (default 1).
 */
export function cutFile(path: string, n: number, compression: string, firstShare = 1): number[] | string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (compression === 'auto') {
      const head = Buffer.alloc(MAGIC_BYTES);
      const codec = codecFromMagic(head.subarray(0, readSync(fd, head, 0, MAGIC_BYTES, 0)));
      if (codec !== undefined && codec !== 'none')
        return `its file is compressed (\`${codec}\`, by its magic number): a compressed stream cannot be cut into byte ranges`;
    }
    const ranges = Math.min(n, Math.floor(size / MIN_RANGE_BYTES));
    if (ranges < 2)
      return `its file (${size} bytes) is too small to cut into ranges of ${MIN_RANGE_BYTES} bytes`;
    const cuts = [0];
    const probe = Buffer.alloc(64 * 1024);
    const unit = size / (ranges - 1 + firstShare);
    for (let k = 1; k < ranges; k++) {
      const even = Math.floor((k - 1 + firstShare) * unit);
      let at = Math.max(even, (cuts[cuts.length - 1] as number) + 1);
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

/**
 * The offset after the first line end at or after `at − 1` and before `before` in the file at
 * `path` (a row starts there), or undefined when there is none.
 */
function lineStartAfter(path: string, at: number, before: number): number | undefined {
  const fd = openSync(path, 'r');
  try {
    const probe = Buffer.alloc(64 * 1024);
    for (let from = at - 1; from < before; ) {
      const got = readSync(fd, probe, 0, Math.min(probe.length, before - from), from);
      if (got === 0) return undefined;
      const nl = probe.subarray(0, got).indexOf(0x0a);
      if (nl >= 0) return from + nl + 1 < before ? from + nl + 1 : undefined;
      from += got;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
