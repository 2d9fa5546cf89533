/**
 * The worker thread of a split-parallel window (see `split-window.ts`): reads one byte range of
 * a plain file, decodes it with the file source's options and projection, and pre-aggregates
 * the window's buckets exactly as the window would on one thread, except that a bucket the
 * range's own watermark fires is not turned into results but posted, saved, to the merging
 * thread (so a worker holds only its open buckets). The last message says whether anything
 * happened that a one-thread run could have seen differently (a late event, an event whose
 * window the watermark of the records before it could have fired, a dead letter, an undecodable
 * row, a range that did not end on a row boundary): the merging thread then runs the job on one
 * thread instead.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { batchOf } from '../core/message.ts';
import type { FieldUse } from '../core/projection.ts';
import type { StageContext } from '../core/stage.ts';
import type { FormatDecodeOptions, FormatName } from '../formats/formats.ts';
import { formatDecoder } from '../formats/formats.ts';
import { AlignedWindowSet } from './aligned-windows.ts';
import type { SlidingWindows, TumblingWindows } from './assigners.ts';
import type { SavedWindow } from './window-core.ts';
import { WindowCore } from './window-core.ts';
import { type WindowOptions, windowPlan } from './window-options.ts';

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

const READ_BYTES = 256 * 1024;

function runTask(task: SplitTask, post: (m: SplitMessage) => void): void {
  const cpu0 = process.cpuUsage();
  let unsafe: string | undefined;
  const flag = (why: string) => {
    unsafe ??= why;
  };
  const plan = windowPlan({ ...task.window, parallelism: 1 });
  const core = new WindowCore<unknown>(plan);
  core.ctx = {
    name: 'split',
    deadLetter: () => flag('a record was a dead letter'),
  } as unknown as StageContext;
  const windows = new AlignedWindowSet<unknown>(core, plan.assigner as TumblingWindows | SlidingWindows);
  const decoder = formatDecoder(task.format, { ...task.decode, start: { line: 0, offset: task.from } });
  if (task.fields !== undefined) decoder.project?.(task.fields, new Map(task.uses));
  let records: unknown[] = [];
  let count = 0;
  const sink = {
    record: (r: unknown) => {
      records.push(r);
    },
    invalid: () => flag('a row could not be decoded'),
  };
  let wm = Number.NEGATIVE_INFINITY;
  let minEnd = Number.POSITIVE_INFINITY;
  let maxTime = Number.NEGATIVE_INFINITY;
  const { extract } = plan;
  const assigner = plan.assigner as TumblingWindows | SlidingWindows;
  const size = assigner.size;
  const step = assigner.kind === 'sliding' ? assigner.slide : assigner.size;
  const offset = assigner.offset;
  const ooo = plan.generator?.maxOutOfOrder ?? 0;
  /**
   * One thread judges an event against the watermark before its batch, at most that of every
   * event before it (`maxTime − maxOutOfOrder − 1`): when that could have fired the event's oldest
   * window, batch sizes decide whether it is late, so the split run is not exact.
   */
  const watch = (): void => {
    if (extract === undefined) return;
    for (const r of records) {
      const ts = extract(r, undefined);
      if (!Number.isFinite(ts)) continue; // a dead letter: flagged by the window itself
      const end = Math.floor((ts - size - offset) / step) * step + offset + step + size;
      if (end <= maxTime - ooo)
        flag(
          'an event came so far behind the events before it that the watermark may have passed its window',
        );
      if (end < minEnd) minEnd = end;
      if (ts > maxTime) maxTime = ts;
    }
  };
  const ship = (): void => {
    const saved = windows.takeFired();
    if (saved.length > 0) post({ windows: saved });
  };
  const ingest = (): void => {
    if (records.length === 0) return;
    count += records.length;
    watch();
    windows.ingest(batchOf(records), 0, wm);
    records = [];
    if (core.pending.length > 0) flag('an event updated a window its range had fired');
    if (core.lateCount > 0) flag('an event was late');
    const next = plan.generator?.current(0) ?? Number.NEGATIVE_INFINITY;
    if (next > wm) {
      wm = next;
      windows.advance(wm);
      ship();
    }
  };
  const fd = openSync(task.path, 'r');
  const reuse = decoder.borrowsChunks === true;
  let buf = Buffer.allocUnsafe(READ_BYTES);
  try {
    for (let at = task.from; at < task.to && unsafe === undefined; ) {
      if (!reuse) buf = Buffer.allocUnsafe(READ_BYTES);
      const n = readSync(fd, buf, 0, Math.min(READ_BYTES, task.to - at), at);
      if (n === 0) break;
      at += n;
      decoder.write(buf.subarray(0, n), sink);
      ingest();
    }
  } finally {
    closeSync(fd);
  }
  // A range must end where a row ends: else the cut was inside a quoted field's line break.
  if (!task.last && decoder.position?.().offset !== task.to) flag('a range did not end on a row boundary');
  decoder.end(sink);
  ingest();
  windows.advance(Number.POSITIVE_INFINITY);
  const rest = windows.takeFired();
  const cpu = process.cpuUsage(cpu0);
  post({
    windows: rest,
    done: {
      unsafe,
      maxTime,
      minEnd,
      records: count,
      bytes: task.to - task.from,
      cpuMs: (cpu.user + cpu.system) / 1000,
    },
  });
}

if (parentPort !== null) {
  const port = parentPort;
  runTask(workerData as SplitTask, (m) => port.postMessage(m));
}
