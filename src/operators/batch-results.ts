/**
 * Pieces shared by the operators that run calls of one batch concurrently and emit their results
 * as they settle (`mapAsync`/`flatMapAsync` in `async.ts`, `lookup` in `lookup/operator.ts`):
 * {@link ResultBuffer}, the output being built with each record's metadata, and {@link Wakeup},
 * the wait for the next settled call that cancelling the run ends.
 */

import { offAbort, onAbort } from '../core/abort-waiters.ts';
import { cancelledError } from '../core/errors.ts';
import { batchOf, type RecordMeta } from '../core/message.ts';
import type { Emitter } from '../core/stage.ts';

/** Results waiting to leave as one batch: records and (when the input had any) their metadata. */
export class ResultBuffer<O> {
  private records: O[] = [];
  private meta: (RecordMeta | undefined)[] | undefined;
  private readonly withMeta: boolean;

  /** `withMeta`: whether the input batch carried metadata (then every result carries its record's). */
  constructor(withMeta: boolean) {
    this.withMeta = withMeta;
    this.meta = withMeta ? [] : undefined;
  }

  /** Results buffered. */
  get size(): number {
    return this.records.length;
  }

  /** Adds one result with the metadata of the record it came from. */
  push(record: O, meta: RecordMeta | undefined): void {
    this.records.push(record);
    this.meta?.push(meta);
  }

  /**
   * Adds every value of `values`, each with `meta`. If iterating throws, what it added is taken
   * back and the error is thrown, so a record's results go out all or none.
   */
  pushAll(values: Iterable<O>, meta: RecordMeta | undefined): void {
    const before = this.records.length;
    try {
      for (const x of values) this.records.push(x);
    } catch (err) {
      this.records.length = before;
      throw err;
    }
    if (this.meta !== undefined) for (let k = before; k < this.records.length; k++) this.meta.push(meta);
  }

  /** Emits what is buffered as one batch (nothing when empty) and starts a new one. */
  async flush(out: Emitter<O>): Promise<void> {
    if (this.records.length === 0) return;
    const b = batchOf(this.records, this.meta);
    this.records = [];
    this.meta = this.withMeta ? [] : undefined;
    await out.emit(b);
  }
}

/** One waiter for "a call settled": {@link wait} resolves at the next {@link notify}. */
export class Wakeup {
  private wake: (() => void) | undefined;

  /** Wakes the waiter, if there is one. */
  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Resolves at the next {@link notify}; rejects with a cancellation error when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(cancelledError(signal.reason));
        return;
      }
      // Not an `abort` listener per wait: see `core/abort-waiters.ts`.
      const wait = onAbort(signal, () => reject(cancelledError(signal.reason)));
      this.wake = () => {
        offAbort(wait);
        resolve();
      };
    });
  }
}
