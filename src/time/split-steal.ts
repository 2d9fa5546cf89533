/**
 * How the threads of a split-parallel window (see `split-window.ts`) share out its file: by
 * splitting work as threads become free, not by cutting it up in advance. The merging thread
 * starts on the whole file at once; a worker thread, once it has started (~0.1 s later), takes
 * the second half of what is left of the largest range still running, and a thread that finishes
 * does the same while a range with at least a minimum left runs. So a thread that starts late or
 * runs slower simply does less, and every thread runs one long range (a range is a new decoder
 * and new closures: V8 re-optimises the hot code for each new one on a thread, measured at
 * +0.15–0.25 s of background compile CPU for 8 ranges a thread on the 200 MB CSV of bench/vs-go).
 *
 * The ranges' state lives in shared memory ({@link RangeTable}). The thread running a range
 * reserves the next slice of it before reading it; a thief moves the range's end down to a line
 * end past what is reserved. Both under the range's lock (an `Atomics` spin lock: held for a few
 * reads and writes only), so a range is never read past its end and no byte is read twice.
 */

import { closeSync, openSync, readSync } from 'node:fs';

/** Ranges a job can have at most (a steal beyond this is refused). */
export const MAX_RANGES = 256;

/** Range states (a slot not made yet is 0). */
const RUNNING = 1;
const DONE = 2;

/** A range handed to a thief: it runs `[from, to)`; `last` when `to` is the end of the file. */
export interface StolenRange {
  readonly range: number;
  readonly from: number;
  readonly to: number;
  readonly last: boolean;
}

/**
 * The ranges of one split job in shared memory: for each, its state, lock, start, end, how far
 * its thread has reserved it, and whether its end is the end of the file. The merging thread
 * makes it ({@link RangeTable.create}) with range 0 the whole file; worker threads open the same
 * memory (`new RangeTable(buffer)`).
 */
export class RangeTable {
  /** The shared memory, to hand to worker threads. */
  readonly buffer: SharedArrayBuffer;
  /** `[0]`: ranges made; `[1]`: stopped (1: no more steals, owners stop); then per range: state, lock. */
  private readonly ints: Int32Array;
  /** Per range: from, to, reserved, last (1/0). */
  private readonly nums: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.ints = new Int32Array(buffer, 0, 2 + 2 * MAX_RANGES);
    this.nums = new Float64Array(buffer, 8 * (1 + MAX_RANGES), 4 * MAX_RANGES);
  }

  /** A table whose range 0, `[0, size)`, is running (on the calling thread). */
  static create(size: number): RangeTable {
    const t = new RangeTable(new SharedArrayBuffer(8 * (1 + MAX_RANGES) + 32 * MAX_RANGES));
    t.nums.set([0, size, 0, 1], 0);
    Atomics.store(t.ints, 2, RUNNING);
    Atomics.store(t.ints, 0, 1);
    return t;
  }

  /**
   * The running thread of range `r` at `at` reserves up to `want` bytes more: the offset it may
   * read up to, and the range's end as it is now (moved down by a thief, maybe). When they are
   * equal, this is the range's last slice.
   */
  reserve(r: number, at: number, want: number): { until: number; to: number } {
    this.lock(r);
    const to = this.nums[4 * r + 1] as number;
    const until = Math.min(to, at + want);
    this.nums[4 * r + 2] = until;
    this.unlock(r);
    return { until, to };
  }

  /** Ranges made so far. */
  made(): number {
    return Math.min(Atomics.load(this.ints, 0), MAX_RANGES);
  }

  /** Range `r` is finished: nothing of it is left to take. */
  finish(r: number): void {
    Atomics.store(this.ints, 2 + 2 * r, DONE);
  }

  /** No more steals; running threads stop at their next slice ({@link stopped}). */
  stop(): void {
    Atomics.store(this.ints, 1, 1);
  }

  stopped(): boolean {
    return Atomics.load(this.ints, 1) === 1;
  }

  /**
   * Takes the second half of what is left unreserved of the running range with the most left,
   * when that is at least `least` bytes: the end of the taken part is moved to a line end found
   * by `lineEnd(offset)` (the offset after the first `\n` at or after `offset`, or undefined).
   * The new range is the calling thread's to run; undefined when there is nothing worth taking.
   */
  steal(least: number, lineEnd: (offset: number) => number | undefined): StolenRange | undefined {
    for (let attempt = 0; attempt < 8 && !this.stopped(); attempt++) {
      let victim = -1;
      let most = 0;
      const made = Atomics.load(this.ints, 0);
      for (let r = 0; r < made; r++) {
        if (Atomics.load(this.ints, 2 + 2 * r) !== RUNNING) continue;
        this.lock(r);
        const left = (this.nums[4 * r + 1] as number) - (this.nums[4 * r + 2] as number);
        this.unlock(r);
        if (left > most) {
          most = left;
          victim = r;
        }
      }
      if (victim < 0 || most < least) return undefined;
      this.lock(victim);
      const reserved = this.nums[4 * victim + 2] as number;
      const end = this.nums[4 * victim + 1] as number;
      this.unlock(victim);
      const cut = lineEnd(reserved + Math.floor((end - reserved) / 2));
      if (cut === undefined || cut >= end) return undefined;
      const range = Atomics.add(this.ints, 0, 1);
      if (range >= MAX_RANGES) return undefined;
      this.lock(victim);
      const ok =
        Atomics.load(this.ints, 2 + 2 * victim) === RUNNING &&
        (this.nums[4 * victim + 2] as number) <= cut &&
        this.nums[4 * victim + 1] === end;
      let last = false;
      if (ok) {
        last = this.nums[4 * victim + 3] === 1;
        this.nums[4 * victim + 1] = cut;
        this.nums[4 * victim + 3] = 0;
        this.nums.set([cut, end, cut, last ? 1 : 0], 4 * range);
        Atomics.store(this.ints, 2 + 2 * range, RUNNING);
      } else Atomics.store(this.ints, 2 + 2 * range, DONE); // an empty slot: the victim moved on
      this.unlock(victim);
      if (ok) return { range, from: cut, to: end, last };
    }
    return undefined;
  }

  private lock(r: number): void {
    while (Atomics.compareExchange(this.ints, 3 + 2 * r, 0, 1) !== 0);
  }

  private unlock(r: number): void {
    Atomics.store(this.ints, 3 + 2 * r, 0);
  }
}

/** What {@link OwnedRange} drives: a `RangeJob` (`split-range.ts`). */
export interface SteppedJob {
  step(maxBytes: number): boolean;
  shorten(to: number): void;
}

/**
 * A range run by the calling thread: each {@link step} reserves the next slice in the table,
 * takes in a new end a thief set, and runs the job over the slice.
 */
export class OwnedRange {
  readonly range: number;
  private readonly table: RangeTable;
  private readonly job: SteppedJob;
  private at: number;
  private to: number;

  constructor(table: RangeTable, range: number, job: SteppedJob, from: number, to: number) {
    this.table = table;
    this.range = range;
    this.job = job;
    this.at = from;
    this.to = to;
  }

  /** Runs up to `want` bytes more; `true` once the range is done (its last message posted). */
  step(want: number): boolean {
    const { until, to } = this.table.reserve(this.range, this.at, want);
    if (to < this.to) {
      this.job.shorten(to);
      this.to = to;
    }
    const done = this.job.step(until - this.at);
    this.at = until;
    if (done) this.table.finish(this.range);
    return done;
  }
}

/**
 * A {@link RangeTable.steal} `lineEnd` for the file at `path`: the offset after the first `\n` at
 * or after `offset − 1` (so `offset` itself when a line ends just before it), or undefined.
 */
export function lineEndIn(path: string): (offset: number) => number | undefined {
  return (offset) => {
    const fd = openSync(path, 'r');
    try {
      const probe = Buffer.alloc(64 * 1024);
      for (let at = Math.max(0, offset - 1); ; ) {
        const got = readSync(fd, probe, 0, probe.length, at);
        if (got === 0) return undefined;
        const nl = probe.subarray(0, got).indexOf(0x0a);
        if (nl >= 0) return at + nl + 1;
        at += got;
      }
    } finally {
      closeSync(fd);
    }
  };
}
