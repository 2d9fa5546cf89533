/**
 * Micro-batching: {@link batch} re-chunks records into batches of at most `size`, flushing a
 * partial batch once `maxWait` has passed since its first record.
 */

import { parseDuration } from '../core/duration.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { batchOf, type RecordMeta, type Watermark } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';

/** Options of {@link batch}. */
export interface BatchOptions {
  /** Most records per emitted batch (≥ 1). */
  size: number;
  /**
   * Longest a record waits for its batch to fill: milliseconds or a duration string (`500ms`,
   * `1s`). Measured on the run's clock from the first record of the partial batch.
   */
  maxWait: number | string;
}

/**
 * Re-chunks the stream into batches of exactly `size` records, except a partial batch flushed
 * when `maxWait` has passed since its first record, at the end of input, or before a checkpoint
 * barrier (so the barrier's snapshot holds no buffered record). A watermark is held back until
 * every record that arrived before it has left, so no record becomes late because of batching.
 * Each flush hands over a fresh array that the operator never touches again. Meta stays aligned
 * when every input batch has it.
 *
 * @example
 * stream.via(batch({ size: 500, maxWait: '100ms' })).to(postgresSink);
 */
export function batch<T>(options: BatchOptions): Operator<T, T> {
  const size = options.size;
  if (!Number.isInteger(size) || size < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `batch size must be a whole number ≥ 1, got ${size}`);
  }
  const maxWait = parseDuration(options.maxWait);
  let ctx: StageContext;
  let records: T[] = [];
  let meta: (RecordMeta | undefined)[] = [];
  // Whether any buffered record came with meta; a batch without meta fills in undefined.
  let hasMeta = false;
  let firstAt = 0;
  // A watermark that arrived while records were buffered; it leaves right after them.
  let heldMark: Watermark | undefined;

  /** Hands the whole buffer over as one batch and starts a fresh one. */
  const flush = async (out: Emitter<T>) => {
    if (records.length === 0) return;
    const b = batchOf(records, hasMeta ? meta : undefined);
    records = [];
    meta = [];
    hasMeta = false;
    await out.emit(b);
    if (heldMark !== undefined) {
      const m = heldMark;
      heldMark = undefined;
      await out.signal(m);
    }
  };

  return {
    open(c) {
      ctx = c;
    },
    async process(input, out) {
      const src = input.records;
      const n = src.length;
      const inMeta = input.meta;
      // Copy in runs up to the next full batch: one tight loop per run, no per-record checks.
      for (let i = 0; i < n; ) {
        if (records.length === 0) firstAt = ctx.clock.now();
        if (inMeta !== undefined && !hasMeta) {
          hasMeta = true;
          meta = new Array(records.length).fill(undefined);
        }
        const end = Math.min(n, i + (size - records.length));
        if (records.length === 0) {
          // An empty buffer takes the run as one copy (much cheaper than pushing one by one).
          records = src.slice(i, end) as T[];
          if (hasMeta)
            meta = inMeta === undefined ? new Array(end - i).fill(undefined) : inMeta.slice(i, end);
        } else {
          for (let k = i; k < end; k++) records.push(src[k] as T);
          if (hasMeta) for (let k = i; k < end; k++) meta.push(inMeta?.[k]);
        }
        i = end;
        if (records.length === size) await flush(out);
      }
      // Timers only run while the input is idle; under steady load check the deadline here too.
      if (records.length > 0 && ctx.clock.now() >= firstAt + maxWait) await flush(out);
    },
    async onSignal(signal, out) {
      if (signal.kind === 'barrier') {
        await flush(out);
        await out.signal(signal);
      } else if (records.length === 0) {
        await out.signal(signal);
      } else {
        heldMark = signal;
      }
    },
    nextTimer() {
      return records.length > 0 ? firstAt + maxWait : undefined;
    },
    onTimer(_now, out) {
      return flush(out);
    },
    finish(out) {
      return flush(out);
    },
  };
}
