/**
 * Split-parallel windows, the merging thread's side: a window step reading a plain CSV or JSON
 * Lines file alone runs as one source ({@link splitWindowSource}, put in place of the file source
 * and the step by `splitParallel` in `core/split.ts`). The file is split into byte ranges at line
 * ends as the threads become free (`split-steal.ts`): this thread starts on the whole file at
 * once, and each of the `parallelism − 1` worker threads (`split-window-worker.ts`), once started,
 * takes the second half of what is left of the largest range running, so a worker that starts
 * late or a thread that runs slower does less instead of leaving the others idle at the end.
 * Each range is decoded and its windows pre-aggregated (`split-range.ts`); this thread merges the
 * partial windows of every range and emits exactly what the step would on one thread: buckets in
 * start order, in each the keys in the order they first appeared in the file (ranges in file
 * order, each in its own order), with accumulators merged (only aggregates whose merge is exact
 * take part).
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
 * reason is logged; the first range found unsafe, or failing the check, stops the job, so the
 * fallback does not wait for the rest of the file.
 * Results are emitted once every range is done (the check needs every range).
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import type { Aggregate } from '../aggregate/aggregate.ts';
import { batchOf } from '../core/message.ts';
import type { ProjectableSource, RejectedRecord } from '../core/projection.ts';
import type { SplitInput } from '../core/split.ts';
import type { Emitter, Operator, Source, SourceContext } from '../core/stage.ts';
import { startWorker } from '../core/worker-start.ts';
import { codecFromMagic, MAGIC_BYTES } from '../formats/compression/codecs.ts';
import type { FormatDecodeOptions, FormatName } from '../formats/formats.ts';
import { resumeOptions } from '../formats/formats.ts';
import { type PackedWindows, WindowMerger } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';
import { lineEndIn, MAX_RANGES, OwnedRange, RangeTable } from './split-steal.ts';
import type { SplitWork, WorkerMessage } from './split-window-worker.ts';
import { type SavedWindow, WindowCore } from './window-core.ts';
import type { WindowOptions, WindowPlan } from './window-options.ts';
import { iso } from './window-records.ts';

/** Aggregates whose merge of partials gives exactly the one-accumulator result (not float sums). */
const EXACT_MERGE = new Set(['count', 'sum', 'min', 'max', 'distinct']);

/** A thread's share smaller than this is not worth a thread: fewer threads are used. */
export const MIN_RANGE_BYTES = 64 * 1024;

/**
 * A thread that has finished takes half of what another has left only when that is at least
 * this much: a new range on a thread costs a new decoder, cold code for its first megabytes and
 * re-optimised hot code (see `split-steal.ts`), ~20–40 ms of CPU.
 */
const STEAL_LEAST = 32 * 1024 * 1024;

/**
 * A worker takes its first range only when at least this much is left: its first megabytes run
 * on cold code, so taking half of less finishes after the merging thread would have alone
 * (measured on a 20 MB CSV: the merging thread done at 318 ms, the job at 379 ms).
 */
const FIRST_LEAST = 16 * 1024 * 1024;

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
  /** What each thread ran (0: this one): ranges, bytes, records, CPU ms. */
  private readonly byThread: { ranges: number; bytes: number; records: number; cpuMs: number }[] = [];
  private sourceOpened = false;
  private threads = 0;
  /** Worker threads started (fewer than `threads − 1` for a file too small for them to help). */
  private workersStarted = 0;
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
      splitWorkers: this.workersStarted,
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
      `Window \`${ctx.name}\` ran split-parallel on ${plural(this.threads, 'thread')} (${plural(made.done.length, 'byte range')}).`,
      {
        ranges: made.done.map((d) => ({ records: d.records, bytes: d.bytes, cpuMs: Math.round(d.cpuMs) })),
        threads: this.byThread.map((t) => ({ ...t, cpuMs: Math.round(t.cpuMs) })),
        workers: this.workersStarted,
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
   * Runs the file in ranges split off as threads become free (this thread from the top, the
   * workers taking halves of what is left: `split-steal.ts`), merges their windows as they come
   * and checks the ranges' results are exact: the merged windows, or why the job must run on
   * one thread.
   */
  private async runSplits(
    ctx: SourceContext,
  ): Promise<{ merged: WindowMerger; done: Done[]; cutMs: number } | string> {
    const t0 = performance.now();
    const { path, compression } = this.input;
    const format = this.input.format as FormatName;
    const least = this.parts.options?.parallelism === 'auto' ? AUTO_MIN_RANGE_BYTES : MIN_RANGE_BYTES;
    const cut = cutFile(path, this.parts.plan.parallelism, compression, least);
    if (typeof cut === 'string') return cut;
    const { cuts, threads } = cut;
    const size = cuts[cuts.length - 1] as number;
    const options = this.input.options as FormatDecodeOptions;
    // Every range after the first decodes with the same options (its start is its own offset).
    const resumed = await resumeOptions(format, options, { line: 0, offset: cuts[1] as number }, () =>
      createReadStream(path),
    );
    const task: SplitTask = {
      path,
      format,
      decode: resumed,
      from: 0,
      to: size,
      last: true,
      fields: this.input.fields,
      uses: this.input.uses ?? [],
      window: { ...(this.parts.options as WindowOptions), parallelism: 1 },
    };
    const cutMs = performance.now() - t0;
    const aggs = new WindowCore<unknown>(this.parts.plan).aggs;
    const run = new RangeRun(size, aggs, this.parts.plan.generator?.maxOutOfOrder);
    await this.runRanges(run, task, options, threads, ctx.signal);
    if (run.unsafe !== undefined) return run.unsafe;
    for (const d of run.reports) this.records += d.records;
    return { merged: run.merged, done: run.reports, cutMs };
  }

  /**
   * Runs the ranges of `run` on this thread (range 0, the whole file, decoded with `first`, then
   * what it can take) and `threads − 1` workers, until every byte is done or a range is unsafe
   * (see {@link RangeRun}). This thread runs its ranges between turns of its event loop (which
   * receives the workers' windows meanwhile): it would otherwise only wait, and a worker fewer
   * is a thread start and a heap fewer. A worker that fails, or an abort, stops the others and
   * this thread's range.
   */
  private async runRanges(
    run: RangeRun,
    task: SplitTask,
    first: FormatDecodeOptions,
    threads: number,
    signal: AbortSignal,
  ): Promise<void> {
    const failed = new AbortController();
    const stop = AbortSignal.any([signal, failed.signal]);
    const work: SplitWork = {
      task,
      table: run.table.buffer,
      first: splitTuning.firstLeast,
      least: splitTuning.stealLeast,
      slice: splitTuning.sliceBytes,
    };
    // A worker is started only where it could take a first range: each needs `firstLeast` left
    // when it is ready, and this thread's range shrinks meanwhile.
    const workers = Math.min(threads - 1, Math.floor(task.to / (2 * work.first)));
    this.workersStarted = workers;
    this.threads = 1 + workers;
    const started = Array.from({ length: workers }, (_, k) =>
      this.runWorker(work, k + 1, run, stop).catch((err: unknown) => {
        run.table.stop();
        if (!failed.signal.aborted) failed.abort(err);
      }),
    );
    try {
      const hook = splitTuning.beforeHere;
      const before = hook && (() => hook({ ranges: () => run.table.made(), threads, signal: stop }));
      await this.runHere({ ...task, decode: first, last: true }, 0, run, stop, before);
      const lineEnd = lineEndIn(task.path);
      for (
        let s = run.table.steal(work.least, lineEnd);
        s !== undefined;
        s = run.table.steal(work.least, lineEnd)
      ) {
        if (run.unsafe !== undefined) break;
        run.start(s.range, s.from);
        await this.runHere({ ...task, from: s.from, to: s.to, last: s.last }, s.range, run, stop);
      }
      await run.finished(stop);
    } catch (err) {
      throw failed.signal.aborted ? failed.signal.reason : err;
    } finally {
      run.table.stop();
      // Workers still starting (nothing was left worth taking when they could) are not needed.
      for (const w of this.workers) void w.terminate();
      await Promise.all(started);
    }
  }

  /**
   * Runs range `range` (`task`) on this thread, {@link splitTuning}`.sliceBytes` at a time with a
   * turn of the event loop between slices, its windows merged as they fire.
   */
  private async runHere(
    task: SplitTask,
    range: number,
    run: RangeRun,
    signal: AbortSignal,
    before?: () => Promise<void>,
  ): Promise<void> {
    let done: Done | undefined;
    const job = new RangeJob(task, (m) => {
      run.add(range, m.windows);
      if (m.done !== undefined) done = m.done;
    });
    const owned = new OwnedRange(run.table, range, job, task.from, task.to);
    try {
      await before?.();
      while (!owned.step(splitTuning.sliceBytes)) {
        await new Promise((resolve) => setImmediate(resolve));
        signal.throwIfAborted();
        if (run.unsafe !== undefined) return; // the job runs on one thread: this range is not needed
      }
    } finally {
      job.close();
    }
    this.tally(0, done as Done);
    run.rangeDone(range, done as Done);
  }

  /**
   * Runs a worker thread, number `thread`, taking ranges of the file until none is worth taking,
   * its windows merged into `run` as they come; resolves when it exits having reported every
   * range it took, or is terminated once it is not needed.
   */
  private runWorker(work: SplitWork, thread: number, run: RangeRun, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = startWorker(WORKER, { workerData: work });
      this.workers.add(worker);
      const onAbort = () => void worker.terminate();
      signal.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: WorkerMessage) => {
        if ('from' in m) return run.start(m.range, m.from);
        run.add(m.range, m.packed);
        if (m.done !== undefined) {
          this.tally(thread, m.done);
          run.rangeDone(m.range, m.done);
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        signal.removeEventListener('abort', onAbort);
        this.workers.delete(worker);
        if (signal.aborted) reject(signal.reason);
        // Terminated once the run was over (a range it had taken is then not needed), or done.
        else if (code === 0 || run.over()) resolve();
        else reject(new Error(`the worker thread ${thread} of the split window exited with code ${code}`));
      });
    });
  }

  /** Counts a range's report for thread `thread` (the log's per-thread figures). */
  private tally(thread: number, d: Done): void {
    const t = this.byThread[thread] ?? { ranges: 0, bytes: 0, records: 0, cpuMs: 0 };
    this.byThread[thread] = t;
    t.ranges++;
    t.bytes += d.bytes;
    t.records += d.records;
    t.cpuMs += d.cpuMs;
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

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** A file cut for a split job: byte offsets `[0, c1, …, size]` and the threads worth running on it. */
export interface FileCuts {
  readonly cuts: readonly number[];
  readonly threads: number;
}

/**
 * Cuts the plain file at `path` at line ends into one range a thread for at most `n` threads,
 * each with at least `least` bytes (default {@link MIN_RANGE_BYTES}) to do, or says why it cannot
 * be cut: a compressed file (by magic number when `compression` is `auto`), or one too small for
 * two threads. (The split job takes only the thread count and a row start from it: its ranges
 * are made as it runs.)
 */
export function cutFile(
  path: string,
  n: number,
  compression: string,
  least = MIN_RANGE_BYTES,
): FileCuts | string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (compression === 'auto') {
      const head = Buffer.alloc(MAGIC_BYTES);
      const codec = codecFromMagic(head.subarray(0, readSync(fd, head, 0, MAGIC_BYTES, 0)));
      if (codec !== undefined && codec !== 'none')
        return `its file is compressed (\`${codec}\`, by its magic number): a compressed stream cannot be cut into byte ranges`;
    }
    const threads = Math.min(n, Math.floor(size / least));
    if (threads < 2) return `its file (${size} bytes) is too small to cut into ranges of ${least} bytes`;
    const cuts = [0];
    const probe = Buffer.alloc(64 * 1024);
    for (let k = 1; k < threads; k++) {
      let at = Math.max(Math.floor((k * size) / threads), (cuts[cuts.length - 1] as number) + 1);
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
    return cuts.length > 2
      ? { cuts, threads: Math.min(threads, cuts.length - 1) }
      : 'its file has no line end to cut it at';
  } finally {
    closeSync(fd);
  }
}

/**
 * The ranges of one split job as they run: the shared table they are taken from, the merger of
 * their windows and their reports. Ranges are made while the job runs (in any order), so their
 * windows are merged in file order by offset: the range starting where the merged ranges end is
 * merged as its windows come, the others' wait. Each range's report is checked as it joins the
 * merged ones (see the module comment): the first range found unsafe, or too far behind the
 * ranges before it, ends the run and stops the table.
 */
class RangeRun {
  readonly table: RangeTable;
  /** Merges ranges in file order: its range `i` is the `i`-th range from the top. */
  readonly merged: WindowMerger;
  /** The reports of the merged ranges, in file order. */
  readonly reports: Done[] = [];
  /** Why the job must run on one thread, once known. */
  unsafe: string | undefined;
  private readonly size: number;
  /** The watermark's out-of-orderness bound (none: no event-time watermark, nothing to check). */
  private readonly ooo: number | undefined;
  /** Ranges by id: where each starts, its windows while they wait, its report once in. */
  private readonly ranges = new Map<
    number,
    { from: number; queued: (PackedWindows | readonly SavedWindow[])[]; done?: Done }
  >();
  /** Range ids by start offset. */
  private readonly byFrom = new Map<number, number>();
  /** Bytes merged so far (every range before this offset is merged) and the latest event time in them. */
  private mergedTo = 0;
  private before = Number.NEGATIVE_INFINITY;
  private wake: (() => void) | undefined;

  constructor(size: number, aggs: readonly Aggregate[], ooo: number | undefined) {
    this.size = size;
    this.ooo = ooo;
    this.table = RangeTable.create(size);
    this.merged = new WindowMerger(aggs, MAX_RANGES);
    this.start(0, 0);
  }

  /** Every byte is merged and checked, or the job must run on one thread. */
  over(): boolean {
    return this.unsafe !== undefined || this.mergedTo >= this.size;
  }

  /** Range `range` starts at `from` (told before any of its windows). */
  start(range: number, from: number): void {
    this.ranges.set(range, { from, queued: [] });
    this.byFrom.set(from, range);
    this.advance();
  }

  /** Windows of range `range`. */
  add(range: number, windows: PackedWindows | readonly SavedWindow[]): void {
    if (this.byFrom.get(this.mergedTo) === range) this.merged.add(this.reports.length, windows);
    else this.ranges.get(range)?.queued.push(windows);
  }

  /** Range `range` reported `d` (its last windows added before). */
  rangeDone(range: number, d: Done): void {
    const r = this.ranges.get(range);
    if (r === undefined) return;
    r.done = d;
    if (d.unsafe !== undefined)
      this.stop(`in the byte range ${r.from}–${r.from + d.bytes} of ${this.size}, ${d.unsafe}`);
    this.advance();
  }

  /** Resolves once {@link over}; rejects when `signal` aborts first. */
  finished(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.over()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
    });
  }

  /** Merges the ranges that now follow the merged ones, in file order, and checks them. */
  private advance(): void {
    for (;;) {
      if (this.unsafe !== undefined) break;
      const id = this.byFrom.get(this.mergedTo);
      const r = id === undefined ? undefined : this.ranges.get(id);
      if (r === undefined) break;
      const k = this.reports.length;
      for (const w of r.queued) this.merged.add(k, w);
      r.queued = [];
      const d = r.done;
      if (d === undefined) break;
      // Could the watermark of the ranges before have fired a window of one of its events?
      if (this.ooo !== undefined && d.minEnd <= this.before - this.ooo) {
        this.stop(
          `an event of the byte range ${r.from}–${r.from + d.bytes} of ${this.size} is so far behind the ranges before it that their watermark may have passed its window`,
        );
        break;
      }
      if (d.maxTime > this.before) this.before = d.maxTime;
      this.merged.done(k);
      this.reports.push(d);
      this.mergedTo = r.from + d.bytes;
      if (this.mergedTo >= this.size) for (let i = k + 1; i < MAX_RANGES; i++) this.merged.done(i);
    }
    if (this.over()) this.wake?.();
  }

  private stop(why: string): void {
    this.unsafe ??= why;
    this.table.stop();
  }
}

/** What {@link splitTuning}`.beforeHere` is told. */
export interface SplitHookInfo {
  /** Ranges made so far (the first is this thread's). */
  ranges(): number;
  readonly threads: number;
  /** Aborts when the job stops (a worker failed, or the run was stopped). */
  readonly signal: AbortSignal;
}

/**
 * Knobs of the split job's scheduling, for tests: bytes a thread reserves and runs at a time
 * (this thread turns its event loop between two), bytes a range must have left for a worker's
 * first take and for a later one, and a hook this thread awaits once it has opened the file,
 * before it reads any of it (a test lets the workers take their ranges first).
 */
export const splitTuning: {
  sliceBytes: number;
  firstLeast: number;
  stealLeast: number;
  beforeHere: ((job: SplitHookInfo) => Promise<void>) | undefined;
} = {
  sliceBytes: SLICE_BYTES,
  firstLeast: FIRST_LEAST,
  stealLeast: STEAL_LEAST,
  beforeHere: undefined,
};
