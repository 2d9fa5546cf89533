/**
 * `Decimal`: an exact decimal number, the value money has in a record.
 *
 * A decimal is an integer number of `units` at a decimal `scale`: `473.98` is 47398 units at
 * scale 2, and it is printed back as `"473.98"` — the scale is part of the value, so `12.50`
 * stays `12.50`. Addition, subtraction, multiplication and comparison are exact; a quotient is
 * rounded half to even to a scale the caller names (CEL `/` and `mean` use {@link QUOTIENT_SCALE}
 * more digits than their operands). Every format writes a decimal as its exact text: in JSON a
 * string (`{"amount":"473.98"}`), in CSV and PostgreSQL the bare digits (`473.98`).
 *
 * Why bigint units and not a library (decimal.js, big.js): money needs fixed-point exactness
 * and an explicit scale, not a precision in significant digits; a bigint and a number survive
 * `structuredClone`/`v8.serialize` as data ({@link Decimal.revive} restores the class), and no
 * dependency enters the core.
 *
 * @example
 * const a = Decimal.parse('473.98')!;
 * a.add(Decimal.from('0.02')).toString(); // "474.00"
 * a.div(Decimal.from(3), 2).toString();   // "157.99"
 */

/** Largest scale (fraction digits) a decimal may have; more is a parse error, never a rounding. */
export const MAX_DECIMAL_SCALE = 100;
/** Most digits a decimal's units may have (keeps one bad value from costing seconds). */
export const MAX_DECIMAL_DIGITS = 1000;
/** Digits a quotient gets beyond the larger scale of its operands (CEL `/`, `mean`). */
export const QUOTIENT_SCALE = 6;

const POW10: bigint[] = [];
function pow10(n: number): bigint {
  if (n < 64) {
    let p = POW10[n];
    if (p === undefined) {
      p = 10n ** BigInt(n);
      POW10[n] = p;
    }
    return p;
  }
  return 10n ** BigInt(n);
}

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

/**
 * `n / d` rounded half to even (`d` ≠ 0): the rule for every rounding Sluice does on a
 * decimal (banker's rounding, Python's and IEEE 754's default, unbiased over many values).
 */
function divHalfEven(n: bigint, d: bigint): bigint {
  let q = n / d;
  const r = n % d;
  if (r === 0n) return q;
  const twice = abs(r) * 2n;
  const ad = abs(d);
  const away = n < 0n !== d < 0n ? -1n : 1n;
  if (twice > ad || (twice === ad && q % 2n !== 0n)) q += away;
  return q;
}

/** An exact decimal number: `units × 10^-scale`. Immutable. */
export class Decimal {
  /** The value times `10^scale`, an integer. */
  readonly units: bigint;
  /** Digits after the point, 0 to {@link MAX_DECIMAL_SCALE}. */
  readonly scale: number;

  /** `units × 10^-scale`; see {@link Decimal.parse} and {@link Decimal.from} for text and numbers. */
  constructor(units: bigint, scale = 0) {
    if (!Number.isInteger(scale) || scale < 0 || scale > MAX_DECIMAL_SCALE)
      throw new RangeError(`a decimal scale must be an integer from 0 to ${MAX_DECIMAL_SCALE}, got ${scale}`);
    this.units = units;
    this.scale = scale;
  }

  /**
   * Reads `[+-]digits[.digits][e[+-]digits]` exactly (the scale is the number of fraction digits
   * written, less the exponent: `"1.50"` has scale 2, `"1.5e3"` is 1500 at scale 0). No spaces,
   * no thousands separators, no `NaN`/`Infinity`. Undefined when `text` is not such a number.
   */
  static parse(text: string): Decimal | undefined {
    const n = text.length;
    let i = 0;
    const c0 = text.charCodeAt(0);
    if (c0 === 45 || c0 === 43) i = 1;
    const intStart = i;
    while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    const intEnd = i;
    let fracStart = i;
    let fracEnd = i;
    if (i < n && text.charCodeAt(i) === 46) {
      fracStart = ++i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      fracEnd = i;
    }
    const nd = intEnd - intStart + (fracEnd - fracStart);
    if (nd === 0 || nd > MAX_DECIMAL_DIGITS) return undefined;
    let exp = 0;
    if (i < n) {
      if ((text.charCodeAt(i) | 0x20) !== 101) return undefined;
      i++;
      let sign = 1;
      const c = text.charCodeAt(i);
      if (c === 45 || c === 43) {
        sign = c === 45 ? -1 : 1;
        i++;
      }
      const e0 = i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      if (i === e0 || i !== n || i - e0 > 6) return undefined;
      exp = sign * Number(text.slice(e0, i));
    }
    const digits = text.slice(intStart, intEnd) + text.slice(fracStart, fracEnd);
    let units = BigInt(digits);
    if (c0 === 45) units = -units;
    let scale = fracEnd - fracStart - exp;
    if (scale < 0) {
      if (digits.length - scale > MAX_DECIMAL_DIGITS) return undefined;
      units *= pow10(-scale);
      scale = 0;
    }
    if (scale > MAX_DECIMAL_SCALE) return undefined;
    return new Decimal(units, scale);
  }

  /**
   * A decimal from a decimal, a decimal string ({@link Decimal.parse}), a bigint, or a finite
   * number — taken as the shortest text that prints it (`0.1` → `0.1`, which is what its author
   * wrote, not the binary fraction). Throws a `RangeError` for anything else.
   */
  static from(v: Decimal | string | number | bigint): Decimal {
    const d = Decimal.tryFrom(v);
    if (d === undefined) throw new RangeError(`not a decimal number: ${String(v)}`);
    return d;
  }

  /** Like {@link Decimal.from}, but undefined (never a throw) for a value that is not a number. */
  static tryFrom(v: unknown): Decimal | undefined {
    if (v instanceof Decimal) return v;
    switch (typeof v) {
      case 'string':
        return Decimal.parse(v);
      case 'bigint':
        return new Decimal(v, 0);
      case 'number':
        if (Number.isSafeInteger(v)) return new Decimal(BigInt(v), 0);
        return Number.isFinite(v) ? Decimal.parse(String(v)) : undefined;
      default:
        return Decimal.revive(v);
    }
  }

  /**
   * The decimal a plain `{ units, scale }` object holds — what a decimal becomes after
   * `structuredClone` or `v8.serialize` (they keep data, not classes) — or undefined.
   */
  static revive(v: unknown): Decimal | undefined {
    if (v instanceof Decimal) return v;
    if (typeof v !== 'object' || v === null) return undefined;
    const { units, scale } = v as { units?: unknown; scale?: unknown };
    if (typeof units !== 'bigint' || typeof scale !== 'number') return undefined;
    return new Decimal(units, scale);
  }

  /** True when `v` is a {@link Decimal}. */
  static is(v: unknown): v is Decimal {
    return v instanceof Decimal;
  }

  /** This value at `scale` (more digits: exact; fewer: rounded half to even). */
  round(scale: number): Decimal {
    if (scale === this.scale) return this;
    if (scale > this.scale) return new Decimal(this.units * pow10(scale - this.scale), scale);
    return new Decimal(divHalfEven(this.units, pow10(this.scale - scale)), scale);
  }

  /** This value at `scale` when that needs no rounding (`1.5` at scale 2 is `1.50`), else undefined. */
  rescale(scale: number): Decimal | undefined {
    if (scale >= this.scale) return this.round(scale);
    const f = pow10(this.scale - scale);
    return this.units % f === 0n ? new Decimal(this.units / f, scale) : undefined;
  }

  /** `this + o`, exact, at the larger scale. */
  add(o: Decimal): Decimal {
    if (this.scale === o.scale) return new Decimal(this.units + o.units, this.scale);
    const s = Math.max(this.scale, o.scale);
    return new Decimal(this.round(s).units + o.round(s).units, s);
  }

  /** `this - o`, exact, at the larger scale. */
  sub(o: Decimal): Decimal {
    return this.add(o.neg());
  }

  /** `this × o`, exact, at the sum of the scales (capped at {@link MAX_DECIMAL_SCALE}, rounding half to even). */
  mul(o: Decimal): Decimal {
    const s = this.scale + o.scale;
    const u = this.units * o.units;
    if (s <= MAX_DECIMAL_SCALE) return new Decimal(u, s);
    return new Decimal(divHalfEven(u, pow10(s - MAX_DECIMAL_SCALE)), MAX_DECIMAL_SCALE);
  }

  /**
   * `this ÷ o` rounded half to even to `scale` digits (default: the larger scale of the two plus
   * {@link QUOTIENT_SCALE}). Throws a `RangeError` when `o` is zero.
   */
  div(
    o: Decimal,
    scale = Math.min(Math.max(this.scale, o.scale) + QUOTIENT_SCALE, MAX_DECIMAL_SCALE),
  ): Decimal {
    if (o.units === 0n) throw new RangeError('division by zero');
    // units × 10^(scale - this.scale + o.scale) / o.units, at `scale`.
    const shift = scale - this.scale + o.scale;
    const n = shift >= 0 ? this.units * pow10(shift) : this.units;
    const d = shift >= 0 ? o.units : o.units * pow10(-shift);
    return new Decimal(divHalfEven(n, d), scale);
  }

  /** `-this`. */
  neg(): Decimal {
    return new Decimal(-this.units, this.scale);
  }

  /** -1, 0 or 1 as `this` is below, equal to or above `o` (`1.5` equals `1.50`). */
  compare(o: Decimal): -1 | 0 | 1 {
    const s = Math.max(this.scale, o.scale);
    const a = this.scale === s ? this.units : this.units * pow10(s - this.scale);
    const b = o.scale === s ? o.units : o.units * pow10(s - o.scale);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /** True when both are the same number (`1.5` equals `1.50`). */
  equals(o: Decimal): boolean {
    return this.compare(o) === 0;
  }

  /** The nearest double (for statistics and sketches; not exact). */
  toNumber(): number {
    return Number(this.toString());
  }

  /** The exact text with exactly `scale` fraction digits: `"473.98"`, `"-0.50"`, `"12"`. */
  toString(): string {
    const neg = this.units < 0n;
    const digits = (neg ? -this.units : this.units).toString();
    if (this.scale === 0) return neg ? `-${digits}` : digits;
    const padded = digits.length > this.scale ? digits : digits.padStart(this.scale + 1, '0');
    const cut = padded.length - this.scale;
    return `${neg ? '-' : ''}${padded.slice(0, cut)}.${padded.slice(cut)}`;
  }

  /** JSON holds a decimal as its exact text, a string: `"473.98"` (a JSON number would be read back as a double). */
  toJSON(): string {
    return this.toString();
  }

  /** Shown as `473.98m` by `util.inspect` (the REPL, `console.log`). */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `${this.toString()}m`;
  }
}
