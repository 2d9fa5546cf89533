/**
 * Typed CSV columns: the declared type of a column and the converter that turns a field's text
 * into that type. Converters never throw and never use a regex: they return {@link FAIL} for a
 * value that does not match, so the decoder can report a dead letter naming the column and value
 * without paying for an exception per bad field.
 */
import { Decimal } from '../../core/decimal.ts';

/** A column type name, as written in YAML (`amount: decimal`). */
export type CsvTypeName = 'string' | 'int' | 'float' | 'decimal' | 'bool' | 'timestamp';

/**
 * A column type: a name, or an object for the types that take parameters.
 *
 * - `string`: the text as is.
 * - `int`: a JS number; only optional sign and digits, and only safe integers (beyond 2^53 use
 *   `decimal`, which stays exact).
 * - `float`: a JS number from `[+-]digits[.digits][e[+-]digits]` (no hex, no `Infinity`).
 * - `decimal`: money stays exact — a {@link Decimal} (`473.98` → 47398 units at scale 2, printed
 *   back as `473.98` by every sink). Without `scale` it keeps the fraction digits written
 *   (`12.5` and `12.50` are both 12.5, printed as written); with `scale: n` every value has
 *   exactly `n` digits (`12.5` with scale 2 → `12.50`) and more fraction digits than `n` is an
 *   error (the row is a dead letter), never a rounding. No exponent, spaces or separators.
 * - `bool`: `true`/`false`, `1`/`0`, `yes`/`no`, `t`/`f` (any case).
 * - `timestamp`: ISO-8601 (`2024-05-01`, `2024-05-01T12:00:00.123Z`, `…+02:00`, a space instead of
 *   `T`) to epoch milliseconds; a time without an offset is read as UTC, never as local time.
 *
 * An empty field of a typed column (not `string`) becomes `null`.
 *
 * @example
 * const types: Record<string, CsvType> = { id: 'int', amount: { type: 'decimal', scale: 2 }, ts: 'timestamp' };
 */
export type CsvType =
  | CsvTypeName
  | { readonly type: 'decimal'; readonly scale?: number }
  | { readonly type: Exclude<CsvTypeName, 'decimal'> };

/** A value a CSV record can hold. */
export type CsvValue = string | number | bigint | boolean | Decimal | null;

/** Returned by a converter for a field that does not match its type. */
export const FAIL: unique symbol = Symbol('csv-conversion-failed');

/** Turns one field's text into a typed value, or {@link FAIL}. */
export type Converter = (text: string) => CsvValue | typeof FAIL;

const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const D0 = 48;
const D9 = 57;

/** Index after the digits starting at `i` (== `i` when there are none). */
function digits(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < D0 || c > D9) break;
    i++;
  }
  return i;
}

function toInt(s: string): CsvValue | typeof FAIL {
  if (s.length === 0) return null;
  let i = 0;
  const c0 = s.charCodeAt(0);
  if (c0 === MINUS || c0 === PLUS) i = 1;
  const e = digits(s, i);
  if (e === i || e !== s.length) return FAIL;
  const v = Number(s);
  return Number.isSafeInteger(v) ? v : FAIL;
}

/** True when `s` is `[+-]digits[.digits]([eE][+-]digits)?` with at least one digit before or after the dot. */
function isDecimalText(s: string, allowExponent: boolean): boolean {
  let i = 0;
  const n = s.length;
  const c0 = s.charCodeAt(0);
  if (c0 === MINUS || c0 === PLUS) i = 1;
  const a = digits(s, i);
  let nd = a - i;
  i = a;
  if (i < n && s.charCodeAt(i) === DOT) {
    const b = digits(s, i + 1);
    nd += b - i - 1;
    i = b;
  }
  if (nd === 0) return false;
  if (allowExponent && i < n && (s.charCodeAt(i) | 0x20) === 101) {
    i++;
    const c = s.charCodeAt(i);
    if (c === MINUS || c === PLUS) i++;
    const b = digits(s, i);
    if (b === i) return false;
    i = b;
  }
  return i === n;
}

function toFloat(s: string): CsvValue | typeof FAIL {
  if (s.length === 0) return null;
  return isDecimalText(s, true) ? Number(s) : FAIL;
}

function toDecimal(s: string): CsvValue | typeof FAIL {
  if (s.length === 0) return null;
  if (!isDecimalText(s, false)) return FAIL;
  return Decimal.parse(s) ?? FAIL;
}

function decimalAtScale(scale: number): Converter {
  return (s) => {
    if (s.length === 0) return null;
    if (!isDecimalText(s, false)) return FAIL;
    return Decimal.parse(s)?.rescale(scale) ?? FAIL;
  };
}

function toBool(s: string): CsvValue | typeof FAIL {
  switch (s.length) {
    case 0:
      return null;
    case 1: {
      const c = s.charCodeAt(0) | 0x20;
      if (c === 0x31 /* 1 */ || c === 116 /* t */ || c === 121 /* y */) return true;
      if (c === 0x30 /* 0 */ || c === 102 /* f */ || c === 110 /* n */) return false;
      return FAIL;
    }
    default: {
      const l = s.toLowerCase();
      if (l === 'true' || l === 'yes') return true;
      if (l === 'false' || l === 'no') return false;
      return FAIL;
    }
  }
}

/** Reads exactly `n` digits at `i` as a number, or -1. */
function fixed(s: string, i: number, n: number): number {
  if (i + n > s.length) return -1;
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(i + k);
    if (c < D0 || c > D9) return -1;
    v = v * 10 + (c - D0);
  }
  return v;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Parses an ISO-8601 date or date-time to epoch ms without `Date.parse`, which accepts many
 * non-ISO forms and reads offset-less times as local time.
 */
export function parseIsoTimestamp(s: string): number | typeof FAIL {
  const y = fixed(s, 0, 4);
  if (y < 0 || s.charCodeAt(4) !== MINUS) return FAIL;
  const mo = fixed(s, 5, 2);
  if (mo < 1 || mo > 12 || s.charCodeAt(7) !== MINUS) return FAIL;
  const d = fixed(s, 8, 2);
  if (d < 1 || d > DAYS[mo - 1]!) return FAIL;
  if (mo === 2 && d === 29 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0))) return FAIL;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  let i = 10;
  const n = s.length;
  if (i < n) {
    const t = s.charCodeAt(i);
    if (t !== 84 /* T */ && t !== 32 /* space */ && t !== 116 /* t */) return FAIL;
    h = fixed(s, 11, 2);
    if (h < 0 || h > 23 || s.charCodeAt(13) !== 58) return FAIL;
    mi = fixed(s, 14, 2);
    if (mi < 0 || mi > 59) return FAIL;
    i = 16;
    if (s.charCodeAt(i) === 58) {
      sec = fixed(s, 17, 2);
      if (sec < 0 || sec > 59) return FAIL;
      i = 19;
      if (s.charCodeAt(i) === DOT || s.charCodeAt(i) === 44) {
        const e = digits(s, i + 1);
        if (e === i + 1) return FAIL;
        // Milliseconds from the first three fraction digits; finer digits are truncated.
        let scale = 100;
        for (let k = i + 1; k < e && k < i + 4; k++) {
          ms += (s.charCodeAt(k) - D0) * scale;
          scale /= 10;
        }
        i = e;
      }
    }
    let off = 0;
    if (i < n) {
      const z = s.charCodeAt(i);
      if (z === 90 /* Z */ || z === 122 /* z */) {
        i++;
      } else if (z === PLUS || z === MINUS) {
        const oh = fixed(s, i + 1, 2);
        if (oh < 0 || oh > 23) return FAIL;
        let j = i + 3;
        if (s.charCodeAt(j) === 58) j++;
        const om = fixed(s, j, 2);
        if (om < 0 || om > 59) return FAIL;
        off = (z === PLUS ? 1 : -1) * (oh * 60 + om);
        i = j + 2;
      } else {
        return FAIL;
      }
    }
    if (i !== n) return FAIL;
    return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - off * 60_000;
  }
  return Date.UTC(y, mo - 1, d);
}

function toTimestamp(s: string): CsvValue | typeof FAIL {
  if (s.length === 0) return null;
  return parseIsoTimestamp(s);
}

/** The name of a column type, for messages. */
export function typeName(t: CsvType): CsvTypeName {
  return typeof t === 'string' ? t : t.type;
}

/**
 * What is wrong with `value`, which the converter of type `t` refused, for a dead letter's
 * message: a decimal with more fraction digits than its column's `scale` says so (it is never
 * rounded); any other value "is not a valid" type.
 *
 * @example
 * conversionProblem({ type: 'decimal', scale: 2 }, '1.234');
 * // "has 3 fraction digits, more than the column's `scale: 2` (never rounded)"
 */
export function conversionProblem(t: CsvType, value: string): string {
  if (typeof t === 'object' && t.type === 'decimal' && t.scale !== undefined) {
    const d = isDecimalText(value, false) ? Decimal.parse(value) : undefined;
    if (d !== undefined && d.scale > t.scale)
      return `has ${d.scale} fraction digits, more than the column's \`scale: ${t.scale}\` (never rounded)`;
  }
  return `is not a valid ${typeName(t)}`;
}

/**
 * The converter for a column type, or `undefined` for `string` (no conversion). Throws a plain
 * `Error` naming the problem for an unknown type or a bad `scale`; the caller wraps it as a config
 * error.
 */
export function converterFor(t: CsvType): Converter | undefined {
  switch (typeName(t)) {
    case 'string':
      return undefined;
    case 'int':
      return toInt;
    case 'float':
      return toFloat;
    case 'decimal': {
      const scale = typeof t === 'object' && 'scale' in t ? t.scale : undefined;
      if (scale === undefined) return toDecimal;
      if (!Number.isInteger(scale) || scale < 0 || scale > 30)
        throw new Error(`decimal scale must be an integer from 0 to 30, got ${String(scale)}`);
      return decimalAtScale(scale);
    }
    case 'bool':
      return toBool;
    case 'timestamp':
      return toTimestamp;
    default:
      throw new Error(
        `unknown column type \`${String(typeName(t))}\`; use one of string, int, float, decimal, bool, timestamp`,
      );
  }
}
