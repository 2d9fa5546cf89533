/**
 * The everyday aggregates: `count`, exact `sum`, `min`, `max`, `mean` and a time-decayed
 * `ema`. Each is a factory returning an {@link Aggregate}; see that contract.
 */
import { Decimal as DecimalValue, QUOTIENT_SCALE } from '../core/decimal.ts';
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
  sumToValue,
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
 * `sum(field)`: the exact sum of decimals, numbers, bigints and decimal strings, as a
 * {@link DecimalValue} with as many fraction digits as the most precise input (`12.50` + `1.5` →
 * `14.00`) — the same type a decimal field has, so every sink writes it as it writes a decimal
 * (JSON `"14.00"`, CSV and PostgreSQL `14.00`) and a CEL step after the window compares it
 * (`total > 100`). Never floating point, so money stays exact; a value that is not a plain
 * decimal is a dead letter.
 *
 * @example
 * const s = sum('amount'); // s.result(acc).toString() === "14.00"
 */
export function sum(field: string): Aggregate<SumAcc, DecimalValue> {
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
    result: sumToValue,
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
  if (v instanceof DecimalValue) return v.toNumber();
  throw badValue(fn, field, v, 'a number or a numeric string');
}

/** A min/max accumulator: the extreme value as a number and as it was written. */
export interface Extreme {
  n: number;
  raw: unknown;
}

function extreme(fn: 'min' | 'max', field: string): Aggregate<Extreme, unknown> {
  const better = fn === 'min' ? (a: number, b: number) => a < b : (a: number, b: number) => a > b;
  const sign = fn === 'min' ? -1 : 1;
  /**
   * True when (n, raw) replaces the accumulator's value. NaN marks an empty accumulator. Two
   * decimals compare exactly (doubles may round two amounts to one number). Equal numbers spelt
   * differently ("1.0", "1") tie-break on the spelling, so the printed value does not depend on
   * arrival or merge order.
   */
  const wins = (n: number, raw: unknown, acc: Extreme): boolean => {
    if (Number.isNaN(acc.n)) return true;
    if (raw instanceof DecimalValue && acc.raw instanceof DecimalValue) {
      const c = raw.compare(acc.raw);
      return c === sign || (c === 0 && raw.toString() < acc.raw.toString());
    }
    return better(n, acc.n) || (n === acc.n && String(raw) < String(acc.raw));
  };
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
      const n = typeof v === 'number' ? v : v instanceof DecimalValue ? v.toNumber() : Number(v);
      const raw = typeof v === 'bigint' ? v.toString() : v;
      if (wins(n, raw, acc)) {
        acc.n = n;
        acc.raw = raw;
      }
      return acc;
    },
    merge(a, b) {
      if (!Number.isNaN(b.n) && wins(b.n, b.raw, a)) {
        a.n = b.n;
        a.raw = b.raw;
      }
      return a;
    },
    result: (acc) => acc.raw,
    save: (acc) => ({ n: acc.n, raw: acc.raw }),
    load: (s) => {
      const { n, raw } = s as Extreme;
      return { n, raw: DecimalValue.revive(raw) ?? raw };
    },
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

/** A mean accumulator: sum and count of numbers, and the exact sum and count of decimals. */
export interface MeanAcc {
  sum: number;
  n: number;
  /** The exact sum of the decimal values (absent until one arrives). */
  dec?: SumAcc;
  /** How many of the values were decimals. */
  dn?: number;
}

/**
 * `mean(field)`: the arithmetic mean. Of numbers, a float (a statistic). When the window held
 * decimals, an exact {@link DecimalValue}: their exact sum divided by the count, rounded half to
 * even to the largest input scale plus {@link QUOTIENT_SCALE} digits (`1.00`, `2.00`, `2.00` →
 * `1.66666667`); numbers in the same window are added as the decimals they print as. Null when
 * the window had no value.
 */
export function mean(field: string): Aggregate<MeanAcc, number | DecimalValue | null> {
  return {
    fn: 'mean',
    field,
    create: () => ({ sum: 0, n: 0 }),
    prepare(v) {
      if (v === null || v === undefined) return SKIP;
      return v instanceof DecimalValue ? v : numeric('mean', field, v);
    },
    add(acc, v) {
      if (typeof v === 'number') acc.sum += v;
      else {
        acc.dec = sumAdd(acc.dec ?? SUM_ZERO, prepareDecimal(v) as number | Decimal);
        acc.dn = (acc.dn ?? 0) + 1;
      }
      acc.n++;
      return acc;
    },
    merge(a, b) {
      a.sum += b.sum;
      a.n += b.n;
      if (b.dec !== undefined) {
        a.dec = sumMerge(a.dec ?? SUM_ZERO, b.dec);
        a.dn = (a.dn ?? 0) + (b.dn ?? 0);
      }
      return a;
    },
    result(acc) {
      if (acc.n === 0) return null;
      if (acc.dec === undefined) return acc.sum / acc.n;
      let total = sumToValue(acc.dec);
      if (acc.n !== acc.dn) total = total.add(DecimalValue.from(acc.sum));
      return total.div(new DecimalValue(BigInt(acc.n), 0), total.scale + QUOTIENT_SCALE);
    },
    save: (acc) => ({
      sum: acc.sum,
      n: acc.n,
      ...(acc.dec !== undefined ? { dec: sumToDecimal(acc.dec), dn: acc.dn } : {}),
    }),
    load: (s) => {
      const m = s as MeanAcc;
      return {
        sum: m.sum,
        n: m.n,
        ...(m.dec !== undefined ? { dec: { ...(m.dec as DecimalSum) }, dn: m.dn } : {}),
      };
    },
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
