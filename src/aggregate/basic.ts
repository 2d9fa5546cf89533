/**
 * The everyday aggregates: `count`, exact `sum`, `min`, `max`, `mean` and a time-decayed
 * `ema`. Each is a factory returning an {@link Aggregate}; see that contract.
 */
import { type Aggregate, badValue, SKIP } from './aggregate.ts';
import {
  type Decimal,
  type DecimalSum,
  prepareDecimal,
  SUM_ZERO,
  type SumAcc,
  sumAdd,
  sumMerge,
  sumToDecimal,
  sumToString,
} from './decimal.ts';

/**
 * `count()` counts records; `count(field)` counts records whose field is not null/absent.
 * The accumulator is a plain number, so counting allocates nothing.
 *
 * @example
 * const c = count(); c.result(c.add(c.add(c.create(), 1, 0), 1, 0)); // 2
 */
export function count(field?: string): Aggregate<number, number> {
  return {
    fn: 'count',
    field,
    create: () => 0,
    prepare: (v) => (field !== undefined && (v === null || v === undefined) ? SKIP : 1),
    add: (acc) => acc + 1,
    merge: (a, b) => a + b,
    result: (acc) => acc,
    save: (acc) => acc,
    load: (s) => s as number,
  };
}

/**
 * `sum(field)`: the exact sum of numbers, bigints and decimal strings, as a decimal string with
 * as many fraction digits as the most precise input (`"12.50"` + `"1.5"` → `"14.00"`). Never
 * floating point, so money stays exact; a value that is not a plain decimal is a dead letter.
 *
 * @example
 * const s = sum('amount'); // s.result(acc) === "14.00"
 */
export function sum(field: string): Aggregate<SumAcc, string> {
  return {
    fn: 'sum',
    field,
    create: () => SUM_ZERO,
    // Values and small running sums are packed numbers (see decimal.ts): nothing is allocated
    // per record, and a window's sum is not an object of its own until it outgrows 2^47 units.
    prepare(v) {
      if (v === null || v === undefined) return SKIP;
      const d = prepareDecimal(v);
      if (d === undefined)
        throw badValue('sum', field, v, 'a number or a plain decimal string such as "12.50"');
      return d;
    },
    add: (acc, v) => sumAdd(acc, v as number | Decimal),
    merge: sumMerge,
    result: sumToString,
    save: sumToDecimal,
    load: (s) => ({ ...(s as DecimalSum) }),
  };
}

/** Numbers as they are; numeric strings as the number they spell (the string is kept for output). */
function numeric(fn: string, field: string, v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw badValue(fn, field, v, 'a number');
    return v;
  }
  if (typeof v === 'string' && v.length > 0) {
    const n = Number(v);
    if (!Number.isNaN(n) && v.trim() === v) return n;
  }
  if (typeof v === 'bigint') return Number(v);
  throw badValue(fn, field, v, 'a number or a numeric string');
}

/** A min/max accumulator: the extreme value as a number and as it was written. */
export interface Extreme {
  n: number;
  raw: unknown;
}

function extreme(fn: 'min' | 'max', field: string): Aggregate<Extreme, unknown> {
  const better = fn === 'min' ? (a: number, b: number) => a < b : (a: number, b: number) => a > b;
  return {
    fn,
    field,
    create: () => ({ n: Number.NaN, raw: null }),
    prepare(v) {
      if (v === null || v === undefined) return SKIP;
      numeric(fn, field, v);
      return v;
    },
    add(acc, v) {
      const n = typeof v === 'number' ? v : Number(v);
      const raw = typeof v === 'bigint' ? v.toString() : v;
      // NaN marks an empty accumulator. Equal numbers spelt differently ("1.0", "1") tie-break
      // on the spelling, so the printed value does not depend on arrival or merge order.
      if (Number.isNaN(acc.n) || better(n, acc.n) || (n === acc.n && String(raw) < String(acc.raw))) {
        acc.n = n;
        acc.raw = raw;
      }
      return acc;
    },
    merge(a, b) {
      if (
        !Number.isNaN(b.n) &&
        (Number.isNaN(a.n) || better(b.n, a.n) || (b.n === a.n && String(b.raw) < String(a.raw)))
      ) {
        a.n = b.n;
        a.raw = b.raw;
      }
      return a;
    },
    result: (acc) => acc.raw,
    save: (acc) => ({ n: acc.n, raw: acc.raw }),
    load: (s) => ({ ...(s as Extreme) }),
  };
}

/**
 * `min(field)`: the smallest value (numbers and numeric strings compare as numbers; the value is
 * output as it was written, so `"9.50"` stays a string). Null when the window had no value.
 */
export function min(field: string): Aggregate<Extreme, unknown> {
  return extreme('min', field);
}

/** `max(field)`: the largest value; see {@link min}. */
export function max(field: string): Aggregate<Extreme, unknown> {
  return extreme('max', field);
}

/** A mean accumulator: sum and count. */
export interface MeanAcc {
  sum: number;
  n: number;
}

/**
 * `mean(field)`: the arithmetic mean as a float (a statistic, not money: use `sum` for money).
 * Null when the window had no value.
 */
export function mean(field: string): Aggregate<MeanAcc, number | null> {
  return {
    fn: 'mean',
    field,
    create: () => ({ sum: 0, n: 0 }),
    prepare: (v) => (v === null || v === undefined ? SKIP : numeric('mean', field, v)),
    add(acc, v) {
      acc.sum += v as number;
      acc.n++;
      return acc;
    },
    merge(a, b) {
      a.sum += b.sum;
      a.n += b.n;
      return a;
    },
    result: (acc) => (acc.n === 0 ? null : acc.sum / acc.n),
    save: (acc) => ({ sum: acc.sum, n: acc.n }),
    load: (s) => ({ ...(s as MeanAcc) }),
  };
}

/** An EMA accumulator: weighted sum and weight, both relative to reference time `t`. */
export interface EmaAcc {
  t: number;
  s: number;
  w: number;
}

/**
 * `ema(field, halfLife)`: an exponentially time-decayed average in event time — a value
 * `halfLife` older than the newest one weighs half as much. Unlike the textbook recursive EMA
 * it does not depend on arrival order, so it is mergeable: weights are kept relative to the
 * newest event time and rescaled when a newer one arrives.
 *
 * @example
 * ema('risk', 60_000); // one-minute half-life
 */
export function ema(field: string, halfLifeMs: number): Aggregate<EmaAcc, number | null> {
  if (!(halfLifeMs > 0)) throw new RangeError(`ema half-life must be > 0 ms, got ${halfLifeMs}`);
  const k = Math.LN2 / halfLifeMs;
  const fold = (acc: EmaAcc, t: number, s: number, w: number) => {
    if (acc.w === 0) {
      acc.t = t;
      acc.s = s;
      acc.w = w;
    } else if (t > acc.t) {
      const f = Math.exp(-(t - acc.t) * k);
      acc.s = acc.s * f + s;
      acc.w = acc.w * f + w;
      acc.t = t;
    } else {
      const f = Math.exp(-(acc.t - t) * k);
      acc.s += s * f;
      acc.w += w * f;
    }
    return acc;
  };
  return {
    fn: 'ema',
    field,
    create: () => ({ t: 0, s: 0, w: 0 }),
    prepare: (v) => (v === null || v === undefined ? SKIP : numeric('ema', field, v)),
    add: (acc, v, time) => fold(acc, time, v as number, 1),
    merge: (a, b) => (b.w === 0 ? a : fold(a, b.t, b.s, b.w)),
    result: (acc) => (acc.w === 0 ? null : acc.s / acc.w),
    save: (acc) => ({ t: acc.t, s: acc.s, w: acc.w }),
    load: (s) => ({ ...(s as EmaAcc) }),
  };
}
