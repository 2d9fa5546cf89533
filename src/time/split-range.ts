/**
 * One byte range of a split-parallel window (see `split-window.ts`), run on a worker thread
 * (`split-window-worker.ts`) or on the merging thread itself: reads the range of a plain file,
 * decodes it with the file source's options and projection, and pre-aggregates the window's
 * buckets exactly as the window would on one thread, except that a bucket the range's own
 * watermark fires is not turned into results but handed, saved, to the merging thread (so a range
 * holds only its open buckets). The last message says whether anything happened that a one-thread
 * run could have seen differently (a late event, an event whose window the watermark of the
 * records before it could have fired, a dead letter, an undecodable row, a range that did not end
 * on a row boundary): the merging thread then runs the job on one thread instead.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { batchOf } from '../core/message.ts';
import type { FieldUse } from '../core/projection.ts';
import type { StageContext } from '../core/stage.ts';
import type { DecodeSink, RecordDecoder } from '../formats/format.ts';
import type { FormatDecodeOptions, FormatName } from '../formats/formats.ts';
import { formatDecoder } from '../formats/formats.ts';
import { AlignedWindowSet } from './aligned-windows.ts';
import type { SlidingWindows, TumblingWindows } from './assigners.ts';
import type { SavedWindow } from './window-core.ts';
import { WindowCore } from './window-core.ts';
import { type WindowOptions, type WindowPlan, windowPlan } from './window-options.ts';

/** What the merging thread gives a worker. */
export interface SplitTask {
  readonly path: string;
  readonly format: FormatName;
  readonly decode: FormatDecodeOptions;
  /** The byte range `[from, to)`; `to` is a row boundary unless this is the last range. */
  readonly from: number;
  readonly to: number;
  readonly last: boolean;
  readonly fields: readonly string[] | undefined;
  readonly uses: readonly (readonly [string, FieldUse])[];
  readonly window: WindowOptions;
}

/** A message from a worker: partial windows, and on the last one what the range saw. */
export interface SplitMessage {
  readonly windows: readonly SavedWindow[];
  readonly done?: {
    /** Why the range's results might differ from a one-thread run's, if anything. */
    readonly unsafe: string | undefined;
    /** The latest event time of the range (−Infinity: none). */
    readonly maxTime: number;
    /** The earliest end of the oldest window of an event of the range (Infinity: none). */
    readonly minEnd: number;
    readonly records: number;
    readonly bytes: number;
    readonly cpuMs: number;
  };
}

/** Bytes read at a time. */
const READ_BYTES = 256 * 1024;

/**
 * The job of one range. {@link step} reads, decodes and aggregates up to a number of bytes and
 * posts the windows the range's watermark fired; it returns `true` once the range is done and
 * the last message (the one with `done`) is posted. A worker thread calls it once for the whole
 * range; the merging thread calls it a slice at a time between turns of its event loop.
 */
export class RangeJob {
  /** The task, its end moved by {@link shorten}. */
  private task: SplitTask;
  private readonly post: (m: SplitMessage) => void;
  /** This thread's CPU time at the start (`threadCpuUsage`, Node 23.9+; else the process's). */
  private readonly cpu0 = threadCpu();
  private unsafe: string | undefined;
  private readonly plan: WindowPlan;
  private readonly core: WindowCore<unknown>;
  private readonly windows: AlignedWindowSet<unknown>;
  private readonly decoder: RecordDecoder<unknown>;
  private readonly records: unknown[] = [];
  private count = 0;
  private wm = Number.NEGATIVE_INFINITY;
  private minEnd = Number.POSITIVE_INFINITY;
  private maxTime = Number.NEGATIVE_INFINITY;
  private readonly sink: DecodeSink<unknown>;
  private fd: number | undefined;
  private at: number;
  private buf = Buffer.allocUnsafe(READ_BYTES);
  private readonly size: number;
  private readonly step_: number;
  private readonly offset: number;
  private readonly ooo: number;

  constructor(task: SplitTask, post: (m: SplitMessage) => void) {
    this.task = task;
    this.post = post;
    this.at = task.from;
    const plan = windowPlan({ ...task.window, parallelism: 1 });
    this.plan = plan;
    const core = new WindowCore<unknown>(plan);
    core.ctx = {
      name: 'split',
      deadLetter: () => this.flag('a record was a dead letter'),
    } as unknown as StageContext;
    this.core = core;
    const assigner = plan.assigner as TumblingWindows | SlidingWindows;
    this.windows = new AlignedWindowSet<unknown>(core, assigner);
    this.size = assigner.size;
    this.step_ = assigner.kind === 'sliding' ? assigner.slide : assigner.size;
    this.offset = assigner.offset;
    this.ooo = plan.generator?.maxOutOfOrder ?? 0;
    this.decoder = formatDecoder(task.format, { ...task.decode, start: { line: 0, offset: task.from } });
    if (task.fields !== undefined) this.decoder.project?.(task.fields, new Map(task.uses));
    this.sink = {
      record: (r: unknown) => {
        this.records.push(r);
      },
      invalid: () => this.flag('a row could not be decoded'),
    };
    this.fd = openSync(task.path, 'r');
    // Once over no records, so that its code after the loop has run before the loop is first
    // optimised mid-loop (on-stack replacement): else that optimised loop, entered again by
    // every call, deoptimises at its exit each time (measured: 132 deopts per 100 MB range).
    this.watch();
  }

  /** Runs up to `maxBytes` more of the range; `true` once the range is done (its last message posted). */
  step(maxBytes: number = Number.POSITIVE_INFINITY): boolean {
    const fd = this.fd;
    if (fd === undefined) return true;
    const { task, decoder } = this;
    const reuse = decoder.borrowsChunks === true;
    const until = Math.min(task.to, this.at + maxBytes);
    try {
      while (this.at < until && this.unsafe === undefined) {
        if (!reuse) this.buf = Buffer.allocUnsafe(READ_BYTES);
        const n = readSync(fd, this.buf, 0, Math.min(READ_BYTES, until - this.at), this.at);
        if (n === 0) {
          this.at = task.to;
          break;
        }
        this.at += n;
        decoder.write(this.buf.subarray(0, n), this.sink);
        this.ingest();
      }
    } catch (err) {
      this.close();
      throw err;
    }
    if (this.at < task.to && this.unsafe === undefined) return false;
    this.close();
    this.finish();
    return true;
  }

  /**
   * Ends the range at `to` instead of the task's end: another thread runs the rest (see
   * `split-window.ts`). `to` must be a row boundary, at or after the bytes read so far.
   */
  shorten(to: number): void {
    if (to < this.at || to > this.task.to)
      throw new Error(`RangeJob.shorten: ${to} is outside ${this.at}–${this.task.to}`);
    this.task = { ...this.task, to, last: false };
  }

  /** Closes the file (idempotent); a job closed before it is done posts nothing more. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private flag(why: string): void {
    this.unsafe ??= why;
  }

  /**
   * One thread judges an event against the watermark before its batch, at most that of every
   * event before it (`maxTime − maxOutOfOrder − 1`): when that could have fired the event's oldest
   * window, batch sizes decide whether it is late, so the split run is not exact.
   */
  private watch(): void {
    const { extract } = this.plan;
    if (extract === undefined) return;
    const { size, step_: step, offset, ooo } = this;
    let { minEnd, maxTime } = this;
    for (const r of this.records) {
      const ts = extract(r, undefined);
      if (!Number.isFinite(ts)) continue; // a dead letter: flagged by the window itself
      const end = Math.floor((ts - size - offset) / step) * step + offset + step + size;
      if (end <= maxTime - ooo)
        this.flag(
          'an event came so far behind the events before it that the watermark may have passed its window',
        );
      if (end < minEnd) minEnd = end;
      if (ts > maxTime) maxTime = ts;
    }
    this.minEnd = minEnd;
    this.maxTime = maxTime;
  }

  private ship(): void {
    const saved = this.windows.takeFired();
    if (saved.length > 0) this.post({ windows: saved });
  }

  private ingest(): void {
    const { records, core, windows } = this;
    if (records.length === 0) return;
    this.count += records.length;
    this.watch();
    windows.ingest(batchOf(records), 0, this.wm);
    // Emptied, not replaced: the window keeps no reference to the array, and a fresh one per read
    // would grow from nothing again (~1,900 rows per read here).
    records.length = 0;
    if (core.pending.length > 0) this.flag('an event updated a window its range had fired');
    if (core.lateCount > 0) this.flag('an event was late');
    const next = this.plan.generator?.current(0) ?? Number.NEGATIVE_INFINITY;
    if (next > this.wm) {
      this.wm = next;
      windows.advance(next);
      this.ship();
    }
  }

  private finish(): void {
    const { task, decoder, windows } = this;
    // A range must end where a row ends: else the cut was inside a quoted field's line break.
    if (!task.last && this.unsafe === undefined && decoder.position?.().offset !== task.to)
      this.flag('a range did not end on a row boundary');
    decoder.end(this.sink);
    this.ingest();
    windows.advance(Number.POSITIVE_INFINITY);
    const rest = windows.takeFired();
    const cpu = threadCpu(this.cpu0);
    this.post({
      windows: rest,
      done: {
        unsafe: this.unsafe,
        maxTime: this.maxTime,
        minEnd: this.minEnd,
        records: this.count,
        bytes: task.to - task.from,
        cpuMs: (cpu.user + cpu.system) / 1000,
      },
    });
  }
}

/** This thread's CPU time since `since`, where Node can tell it (23.9+); else the process's. */
function threadCpu(since?: NodeJS.CpuUsage): NodeJS.CpuUsage {
  return typeof process.threadCpuUsage === 'function'
    ? process.threadCpuUsage(since)
    : process.cpuUsage(since);
}
