/**
 * The aggregate contract: a mergeable, serialisable accumulator over the values of one field.
 *
 * Every aggregate is a *commutative monoid* over its input: `merge` of partial accumulators
 * (from shards, key groups or streams) gives the same result as one accumulator over all the
 * input, in any order. That is what lets a window hold one accumulator per window, merge
 * session windows, and lets checkpoints carry accumulators (`save`/`load`).
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';

/** Heap bytes of an accumulator that is a number or a small object (count, sum, min, mean…). */
export const SMALL_ACCUMULATOR_BYTES = 48;

/** Estimated heap bytes of one accumulator of each of `aggs` together (see {@link Aggregate.bytes}). */
export function accumulatorBytes(aggs: readonly Aggregate[]): number {
  let n = 0;
  for (const a of aggs) n += a.bytes ?? SMALL_ACCUMULATOR_BYTES;
  return n;
}

/** Returned by {@link Aggregate.prepare} for a value that contributes nothing (null/absent). */
export const SKIP: unique symbol = Symbol('skip');

/**
 * One aggregate function bound to its arguments, e.g. `sum(amount)` or `percentile(risk, 0.99)`.
 * It holds no state itself: the accumulator `A` does, so one instance serves every window.
 *
 * Call order per record: `prepare(value)` once (it validates and converts, and throws a
 * {@link SluiceError} with code `SLUICE_RECORD` for a value it cannot take — the caller then
 * dead-letters the record before any accumulator was touched), then `add(acc, prepared, time)`
 * for each window the record belongs to. `add` and `merge` may mutate their first argument and
 * return it (or return a new value for immutable accumulators such as a count); they never
 * change the second argument of `merge`.
 */
export interface Aggregate<A = unknown, R = unknown> {
  /** The function name as written, e.g. `sum`. */
  readonly fn: string;
  /** The field the values come from, or undefined for `count()`. */
  readonly field: string | undefined;
  /**
   * Estimated heap bytes of one accumulator (measured, typical rather than worst case), for the
   * state budget (`core/state-budget.ts`); absent: {@link SMALL_ACCUMULATOR_BYTES}.
   */
  readonly bytes?: number;
  /** A fresh, empty accumulator. */
  create(): A;
  /** Validates and converts a raw field value; {@link SKIP} for null/undefined. */
  prepare(value: unknown): unknown;
  /** Adds one prepared value with the record's event time (epoch ms). */
  add(acc: A, value: unknown, time: number): A;
  /** Combines two partial accumulators; mutates and returns `a`, never changes `b`. */
  merge(a: A, b: A): A;
  /** The output value: JSON-safe (numbers, strings, null). */
  result(acc: A): R;
  /** A structured-cloneable copy of the accumulator (for checkpoints). */
  save(acc: A): unknown;
  /** Rebuilds an accumulator from what {@link Aggregate.save} returned. */
  load(state: unknown): A;
}

/** The error for a field value an aggregate cannot take (the record is dead-lettered). */
export function badValue(fn: string, field: string | undefined, value: unknown, want: string): SluiceError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new SluiceError(
    ErrorCode.RECORD,
    `${fn}(${field ?? ''}) cannot take ${shown} (${typeof value}); it needs ${want}`,
    { field, aggregate: fn },
  );
}

/** Folds `values` (raw field values) into one accumulator; for tests and reference computations. */
export function aggregateAll<A, R>(
  agg: Aggregate<A, R>,
  values: readonly unknown[],
  times?: readonly number[],
): A {
  let acc = agg.create();
  for (let i = 0; i < values.length; i++) {
    const p = agg.prepare(values[i]);
    if (p !== SKIP) acc = agg.add(acc, p, times?.[i] ?? 0);
  }
  return acc;
}
