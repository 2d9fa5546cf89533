/**
 * The synchronous per-record operators: {@link map}, {@link filter}, {@link flatMap}.
 *
 * Each runs a tight synchronous loop over the batch and emits one fresh batch (meta kept
 * aligned, and not read: see `core/kept-batch.ts`). A user function that throws sends that one
 * record to the dead-letter output with its meta; the rest of the batch goes on.
 *
 * The three loops look alike but are kept apart on purpose: one loop per operator keeps the
 * user-function call site in each monomorphic, which a shared loop taking a callback would not.
 */

import type { FusableOperator } from '../core/fuse.ts';
import { keptBatch } from '../core/kept-batch.ts';
import type { Operator, StageContext } from '../core/stage.ts';

/**
 * Applies `fn` to every record. `fn(record, index)` runs synchronously; when it throws, the
 * record goes to the dead-letter output (with the error and its meta) and the batch goes on.
 *
 * @example
 * pipeline.from(source).via(map((r: { n: number }) => ({ ...r, double: r.n * 2 }))).to(sink);
 */
export function map<I, O>(fn: (record: I, index: number) => O): Operator<I, O> {
  let ctx: StageContext;
  const op: Operator<I, O> & FusableOperator = {
    // Lets the runtime run this map in one loop with neighbouring maps and filters.
    recordStep: { kind: 'map', fn: fn as FusableOperator['recordStep']['fn'] },
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      const records = batch.records;
      const n = records.length;
      const res: O[] = [];
      const kept: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = records[i] as I;
        let v: O;
        try {
          v = fn(r, i);
        } catch (err) {
          ctx.deadLetter(r, err, batch.meta?.[i]);
          continue;
        }
        res.push(v);
        kept.push(i);
      }
      return out.emit(keptBatch(batch, res, kept));
    },
  };
  return op;
}

/**
 * Keeps the records for which `pred` returns true. A throwing predicate dead-letters that
 * record (it is neither kept nor silently dropped).
 *
 * @example
 * stream.via(filter((r: { risk: number }) => r.risk > 50));
 */
export function filter<T>(pred: (record: T, index: number) => boolean): Operator<T, T> {
  let ctx: StageContext;
  const op: Operator<T, T> & FusableOperator = {
    recordStep: { kind: 'filter', fn: pred as FusableOperator['recordStep']['fn'] },
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      const records = batch.records;
      const n = records.length;
      const res: T[] = [];
      const kept: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = records[i] as T;
        let keep: boolean;
        try {
          keep = pred(r, i);
        } catch (err) {
          ctx.deadLetter(r, err, batch.meta?.[i]);
          continue;
        }
        if (!keep) continue;
        res.push(r);
        kept.push(i);
      }
      return out.emit(keptBatch(batch, res, kept));
    },
  };
  return op;
}

/**
 * Maps every record to zero or more records (any iterable). Each output record carries the
 * meta of the record it came from. When `fn` or its iteration throws, the record's partial
 * outputs are discarded and the record is dead-lettered.
 *
 * @example
 * stream.via(flatMap((line: string) => line.split(' ')));
 */
export function flatMap<I, O>(fn: (record: I, index: number) => Iterable<O>): Operator<I, O> {
  let ctx: StageContext;
  return {
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      const records = batch.records;
      const n = records.length;
      const res: O[] = [];
      const from: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = records[i] as I;
        const before = res.length;
        try {
          for (const v of fn(r, i)) res.push(v);
        } catch (err) {
          res.length = before;
          ctx.deadLetter(r, err, batch.meta?.[i]);
          continue;
        }
        for (let k = before; k < res.length; k++) from.push(i);
      }
      return out.emit(keptBatch(batch, res, from));
    },
  };
}
