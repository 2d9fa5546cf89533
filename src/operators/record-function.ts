/**
 * One loop that applies a per-record function to a batch and says, per record, what came out
 * or why it failed — shared by a step that runs on this thread and by its worker threads, so
 * both give the same results.
 */
import { errorMessage } from '../core/errors.ts';

/** A per-record function of a `module:` step: a record, an array, or `undefined`/`null` out; may be async. */
export type RecordFunction = (record: unknown) => unknown;

/** A record the function threw on (or whose promise rejected): its index in the batch and the error's message. */
export interface RecordFailure {
  readonly index: number;
  readonly message: string;
  /** The thrown value's stack, when it was an `Error`. */
  readonly stack?: string | undefined;
}

/** What {@link applyRecordFunction} returns: one raw result per input record (a failed one holds `undefined`). */
export interface AppliedBatch {
  readonly results: unknown[];
  readonly failures: RecordFailure[];
}

/**
 * Calls `fn` on each record in order, awaiting a returned promise before the next record (as
 * a step on one thread does). Never throws: a failing record is listed in `failures`.
 *
 * @example
 * const { results } = await applyRecordFunction((r) => r, [1, 2]); // results: [1, 2]
 */
export async function applyRecordFunction(
  fn: RecordFunction,
  records: readonly unknown[],
): Promise<AppliedBatch> {
  const n = records.length;
  const results: unknown[] = new Array(n);
  const failures: RecordFailure[] = [];
  for (let i = 0; i < n; i++) {
    try {
      let r = fn(records[i]);
      if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function')
        r = await r;
      results[i] = r;
    } catch (err) {
      failures.push({
        index: i,
        message: errorMessage(err),
        stack: err instanceof Error ? err.stack : undefined,
      });
    }
  }
  return { results, failures };
}
