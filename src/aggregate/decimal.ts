/**
 * Exact decimal arithmetic for money: `sum` never goes through floating point.
 *
 * A value is an integer number of units at a decimal `scale` (`"12.34"` is 1234 units at scale
 * 2). While the units stay below 2^47 and the scale below 32, a value or a running sum is *packed*
 * into one double, `units × 32 + scale` (exact, since that stays below 2^52): adding two packed
 * numbers is float arithmetic, and an accumulator is a number, not an object. Beyond, a sum
 * spills into a {@link DecimalSum}, whose units are a JS number while exact (|lo| ≤ 2^52) plus a
 * bigint for the rest. Never floating point in the sense of rounding: every operation is exact.
 */

import { Decimal as DecimalValue } from '../core/decimal.ts';

/** Two to the 52nd: below it, adding one safe value of at most this size stays exact. */
const LIMIT = 2 ** 52;
const POW10: readonly number[] = Array.from({ length: 16 }, (_, i) => 10 ** i);
/** Units below this (in magnitude) pack with their scale into one double: `units × 32 + scale`. */
const PACK_LIMIT = 2 ** 47;

/** A parsed decimal: `units × 10^-scale`, with `units` a number when it is a safe integer ≤ 2^52. */
export interface Decimal {
  readonly units: number | bigint;
  readonly scale: number;
}

/** The exact-sum accumulator: `(lo + hi) × 10^-scale`. Mutable; structured-cloneable. */
export interface DecimalSum {
  lo: number;
  hi: bigint;
  scale: number;
}

/**
 * Parses a plain decimal string (`-12.50`, `+3`, `0.001`): optional sign, digits, optional
 * fraction. No exponent, no spaces, no thousands separators — a CSV cell such as `"1,200"` is
 * rejected rather than guessed at. Returns undefined when `s` is not such a string.
 *
 * @example
 * parseDecimal('12.34'); // { units: 1234, scale: 2 }
 */
export function parseDecimal(s: string): Decimal | undefined {
  return scanDecimal(s) ? scannedDecimal(s) : undefined;
}

/** The {@link Decimal} of `s`, which {@link scanDecimal} just read into {@link scanned}. */
function scannedDecimal(s: string): Decimal {
  const { units, digits, scale, negative } = scanned;
  // Fifteen digits always fit a double exactly; longer ones go through bigint.
  if (digits > 15) {
    let text = s.replace('.', '');
    if (text.charCodeAt(0) === 43) text = text.slice(1);
    return { units: BigInt(text), scale };
  }
  return { units: negative ? -units : units, scale };
}

/** What {@link scanDecimal} read last; reused so scanning allocates nothing. */
const scanned = { units: 0, digits: 0, scale: 0, negative: false };

/**
 * Reads `[+-]digits[.digits]` into {@link scanned} (units exact only up to 15 digits: callers
 * check `digits`). Returns false when `s` is not such a decimal.
 */
function scanDecimal(s: string): boolean {
  const n = s.length;
  let i = 0;
  let negative = false;
  const c0 = s.charCodeAt(0);
  if (c0 === 45 /* - */ || c0 === 43 /* + */) {
    negative = c0 === 45;
    i = 1;
  }
  let units = 0;
  let digits = 0;
  let scale = 0;
  let dot = false;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      units = units * 10 + (c - 48);
      digits++;
      if (dot) scale++;
    } else if (c === 46 /* . */ && !dot) {
      dot = true;
    } else return false;
  }
  if (digits === 0 || (dot && scale === 0)) return false;
  scanned.units = units;
  scanned.digits = digits;
  scanned.scale = scale;
  scanned.negative = negative;
  return true;
}

/**
 * Converts a number, bigint or decimal string to a {@link Decimal}; undefined when it is none
 * of those. A non-integer number is taken as the decimal it prints as (`0.1` → `"0.1"`), which
 * is the value its author wrote.
 */
export function toDecimal(v: unknown): Decimal | undefined {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return { units: v, scale: 0 };
    if (!Number.isFinite(v)) return undefined;
    if (Number.isInteger(v)) return { units: BigInt(v), scale: 0 };
    const text = String(v);
    return text.includes('e') ? parseDecimal(v.toFixed(20).replace(/0+$/, '')) : parseDecimal(text);
  }
  if (typeof v === 'string') return parseDecimal(v);
  if (typeof v === 'bigint') return { units: v, scale: 0 };
  return undefined;
}

/**
 * Like {@link toDecimal}, but a value whose units are a number below 2^47 at a scale below 32 —
 * every amount of money in practice — comes back packed into one number, `units × 32 + scale`
 * (exact: the product stays below 2^52), so preparing a value allocates nothing. Other values
 * come back as a {@link Decimal}; undefined when `v` is not a decimal at all. {@link decimalAddPrepared}
 * takes both forms.
 *
 * @example
 * prepareDecimal('12.34'); // 1234 * 32 + 2 = 39490
 */
export function prepareDecimal(v: unknown): number | Decimal | undefined {
  // A string first: what a CSV or JSON amount nearly always is.
  if (typeof v === 'string') {
    const n = v.length;
    // Up to 14 digits (and a sign and a dot) the units stay below 2^47: scan without allocating.
    if (n > 0 && n <= 16) {
      if (!scanDecimal(v)) return undefined;
      const { units, digits, scale, negative } = scanned;
      // 15 or 16 digits: built from the same scan, not scanned again.
      return digits <= 14 ? (negative ? -units : units) * 32 + scale : scannedDecimal(v);
    }
    return parseDecimal(v);
  }
  if (v instanceof DecimalValue) {
    const u = v.units;
    return u < 140737488355328n && u > -140737488355328n && v.scale < 32 ? Number(u) * 32 + v.scale : v;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v < PACK_LIMIT && v > -PACK_LIMIT) return v * 32;
  const d = toDecimal(v);
  if (d === undefined) return undefined;
  return typeof d.units === 'number' && d.units < PACK_LIMIT && d.units > -PACK_LIMIT && d.scale < 32
    ? d.units * 32 + d.scale
    : d;
}

/** A running exact sum: packed into a number while small (see the module comment), else a {@link DecimalSum}. */
export type SumAcc = number | DecimalSum;

/** The packed zero (0 at scale 0). */
export const SUM_ZERO = 0;

/**
 * Adds a value {@link prepareDecimal} returned to a running sum; returns the new sum (`acc` itself,
 * changed, once it is a {@link DecimalSum}).
 */
export function sumAdd(acc: SumAcc, v: number | Decimal): SumAcc {
  if (typeof acc === 'number' && typeof v === 'number') {
    const au = Math.floor(acc / 32);
    const as = acc - au * 32;
    const vu = Math.floor(v / 32);
    const vs = v - vu * 32;
    // An inexact product is always beyond the limit, so it takes the exact path below.
    const d = as - vs;
    const u =
      d === 0 ? au + vu : d > 0 ? au + vu * (POW10[d] ?? PACK_LIMIT) : au * (POW10[-d] ?? PACK_LIMIT) + vu;
    if (u < PACK_LIMIT && u > -PACK_LIMIT) return u * 32 + (d >= 0 ? as : vs);
  }
  const sum = typeof acc === 'number' ? unpack(acc) : acc;
  decimalAddPrepared(sum, v);
  return sum;
}

/** Adds running sum `b` into `a`; returns the new sum (`a` itself once it is an object). Never changes `b`. */
export function sumMerge(a: SumAcc, b: SumAcc): SumAcc {
  if (typeof b === 'number') return sumAdd(a, b);
  return decimalMerge(typeof a === 'number' ? unpack(a) : a, b);
}

/** A running sum as a {@link DecimalSum} (a copy when it is one; for checkpoints). */
export function sumToDecimal(acc: SumAcc): DecimalSum {
  return typeof acc === 'number' ? unpack(acc) : { lo: acc.lo, hi: acc.hi, scale: acc.scale };
}

/** The running sum as an exact {@link DecimalValue} (what `sum` outputs). */
export function sumToValue(acc: SumAcc): DecimalValue {
  if (typeof acc === 'number') {
    const units = Math.floor(acc / 32);
    return new DecimalValue(BigInt(units), acc - units * 32);
  }
  return new DecimalValue(acc.hi + BigInt(acc.lo), acc.scale);
}

function unpack(packed: number): DecimalSum {
  const units = Math.floor(packed / 32);
  return { lo: units, hi: 0n, scale: packed - units * 32 };
}

/** Adds a value {@link prepareDecimal} returned to `acc` exactly. */
export function decimalAddPrepared(acc: DecimalSum, v: number | Decimal): void {
  if (typeof v === 'number') {
    const units = Math.floor(v / 32);
    decimalAdd(acc, units, v - units * 32);
  } else decimalAdd(acc, v.units, v.scale);
}

function rescale(acc: DecimalSum, scale: number): void {
  const d = scale - acc.scale;
  const f = POW10[d];
  if (acc.hi !== 0n) acc.hi *= 10n ** BigInt(d);
  if (f !== undefined && Math.abs(acc.lo) * f <= LIMIT) acc.lo *= f;
  else {
    acc.hi += BigInt(acc.lo) * 10n ** BigInt(d);
    acc.lo = 0;
  }
  acc.scale = scale;
}

/** Adds `units × 10^-scale` to `acc` exactly. */
export function decimalAdd(acc: DecimalSum, units: number | bigint, scale: number): void {
  if (scale > acc.scale) rescale(acc, scale);
  const d = acc.scale - scale;
  if (typeof units === 'number') {
    const f = POW10[d];
    if (f !== undefined) {
      // An inexact product is always beyond the limit, so it takes the bigint path below.
      const u = units * f;
      if (u <= LIMIT && u >= -LIMIT) {
        acc.lo += u;
        if (acc.lo > LIMIT || acc.lo < -LIMIT) {
          acc.hi += BigInt(acc.lo);
          acc.lo = 0;
        }
        return;
      }
    }
    acc.hi += BigInt(units) * 10n ** BigInt(d);
    return;
  }
  acc.hi += d === 0 ? units : units * 10n ** BigInt(d);
}

/** Adds `b` into `a` exactly; `b` is unchanged. */
export function decimalMerge(a: DecimalSum, b: DecimalSum): DecimalSum {
  if (b.scale > a.scale) rescale(a, b.scale);
  decimalAdd(a, b.lo, b.scale);
  if (b.hi !== 0n) decimalAdd(a, b.hi, b.scale);
  return a;
}

/** The sum as a plain decimal string with `scale` fraction digits (`"14.50"`, `"-3"`). */
export function decimalToString(acc: DecimalSum): string {
  // Without a bigint part the units are an exact integer double (|lo| ≤ 2^52): print it directly.
  if (acc.hi === 0n) return unitsToString(acc.lo, acc.scale);
  const total = acc.hi + BigInt(acc.lo);
  if (acc.scale === 0) return total.toString();
  const neg = total < 0n;
  return withPoint(neg, (neg ? -total : total).toString(), acc.scale);
}

/** `units × 10^-scale` as a plain decimal string, for an exact integer double `units`. */
function unitsToString(units: number, scale: number): string {
  if (scale === 0) return String(units === 0 ? 0 : units); // no "-0"
  const neg = units < 0;
  return withPoint(neg, String(neg ? -units : units), scale);
}

function withPoint(neg: boolean, abs: string, scale: number): string {
  const digits = abs.length > scale ? abs : abs.padStart(scale + 1, '0');
  const cut = digits.length - scale;
  return `${neg ? '-' : ''}${digits.slice(0, cut)}.${digits.slice(cut)}`;
}
