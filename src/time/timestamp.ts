/**
 * Event-time extraction: from a field holding an ISO-8601 string or an epoch number (seconds,
 * milliseconds or microseconds), or from a function. Runs once per record, so parsing is a
 * hand-written character loop (no regular expression, no `Date.parse` leniency).
 */
import type { RecordMeta } from '../core/message.ts';
import { canonicalIsoAt, daysFromCivil, MONTH_DAYS } from '../formats/iso-time.ts';

/** How the time field is written. `auto`: ISO-8601 strings, numbers (or digit strings) as epoch ms. */
export type TimeFormat = 'auto' | 'iso8601' | 'epochSeconds' | 'epochMillis' | 'epochMicros';

/** The time formats, for config schemas. */
export const TIME_FORMATS = ['auto', 'iso8601', 'epochSeconds', 'epochMillis', 'epochMicros'] as const;

/**
 * Returns a record's event time in epoch ms, or NaN when it has none that can be read — the
 * caller then dead-letters the record with {@link describeBadTimestamp}'s reason.
 */
export type TimestampExtractor = (record: unknown, meta: RecordMeta | undefined) => number;

function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(at + k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Parses an ISO-8601 / RFC 3339 date-time to epoch ms, or NaN. Accepts `YYYY-MM-DD`,
 * `YYYY-MM-DDTHH:MM[:SS[.fraction]]` (`T` or a space), then `Z`, `±HH:MM`, `±HHMM` or nothing —
 * no offset means UTC (a stream is not in the local time zone of the machine that runs it).
 * A fraction finer than a millisecond is truncated.
 *
 * @example
 * parseIsoTime('2024-05-01T12:00:00.250Z'); // 1714564800250
 * parseIsoTime('2024-02-30'); // NaN
 */
export function parseIsoTime(s: string): number {
  const n = s.length;
  if ((n === 24 || n === 20) && s.charCodeAt(n - 1) === 90 /* Z */) {
    const t = canonicalIsoAt(s, 0, n);
    if (!Number.isNaN(t)) return t;
  }
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return Number.NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > (MONTH_DAYS[mo - 1] as number)) return Number.NaN;
  if (mo === 2 && d === 29 && !(y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0))) return Number.NaN;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  let i = 10;
  if (i < n) {
    const t = s.charCodeAt(i);
    if (t !== 84 /* T */ && t !== 32 /* space */ && t !== 116 /* t */) return Number.NaN;
    h = digits(s, i + 1, 2);
    if (s.charCodeAt(i + 3) !== 58) return Number.NaN;
    mi = digits(s, i + 4, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59) return Number.NaN;
    i += 6;
    if (s.charCodeAt(i) === 58 /* : */) {
      sec = digits(s, i + 1, 2);
      // 60 admits a leap second, which epoch time folds into the next one.
      if (sec < 0 || sec > 60) return Number.NaN;
      i += 3;
      if (s.charCodeAt(i) === 46 /* . */ || s.charCodeAt(i) === 44 /* , */) {
        i++;
        let k = 0;
        for (; i < n; i++, k++) {
          const c = s.charCodeAt(i) - 48;
          if (c < 0 || c > 9) break;
          if (k < 3) ms = ms * 10 + c;
        }
        if (k === 0) return Number.NaN;
        for (; k < 3; k++) ms *= 10;
      }
    }
  }
  let offset = 0;
  if (i < n) {
    const z = s.charCodeAt(i);
    if ((z === 90 /* Z */ || z === 122) && i + 1 === n) offset = 0;
    else if (z === 43 /* + */ || z === 45 /* - */) {
      const oh = digits(s, i + 1, 2);
      const colon = s.charCodeAt(i + 3) === 58 ? 1 : 0;
      const om = digits(s, i + 3 + colon, 2);
      if (oh < 0 || oh > 23 || om < 0 || om > 59 || i + 5 + colon !== n) return Number.NaN;
      offset = (oh * 60 + om) * 60_000 * (z === 45 ? -1 : 1);
    } else return Number.NaN;
  }
  return daysFromCivil(y, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000 + ms - offset;
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  if (i === s.length) return false;
  let dot = false;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 && !dot) dot = true;
    else if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Converts one time value to epoch ms under `format`, or NaN when it cannot be read.
 *
 * @example
 * toEpochMillis(1714564800, 'epochSeconds'); // 1714564800000
 */
export function toEpochMillis(v: unknown, format: TimeFormat): number {
  let unit = 1;
  switch (format) {
    case 'iso8601':
      return typeof v === 'string' ? parseIsoTime(v) : Number.NaN;
    case 'epochSeconds':
      unit = 1000;
      break;
    case 'epochMicros':
      unit = 0.001;
      break;
    case 'auto':
      // No string is both an ISO time and digits (ISO has a '-' at 4), so trying ISO first —
      // what `auto` nearly always meets — gives the same answer without scanning twice.
      if (typeof v === 'string') {
        const t = parseIsoTime(v);
        if (!Number.isNaN(t) || !isDigits(v)) return t;
      }
      break;
    default:
      break;
  }
  let num: number;
  if (typeof v === 'number') num = v;
  else if (typeof v === 'string' && isDigits(v)) num = Number(v);
  else if (typeof v === 'bigint') return Number(unit === 0.001 ? v / 1000n : v * BigInt(unit));
  else if (v instanceof Date) return v.getTime();
  else return Number.NaN;
  if (!Number.isFinite(num)) return Number.NaN;
  return Math.floor(num * unit);
}

/**
 * An extractor reading `field` (a top-level name, or a dotted path `a.b`) in `format`.
 *
 * @example
 * const ts = fieldTimestamp('ts');
 * ts({ ts: '2024-05-01T00:00:00Z' }, undefined); // 1714521600000
 */
export function fieldTimestamp(field: string, format: TimeFormat = 'auto'): TimestampExtractor {
  const get = fieldGetter(field);
  if (format === 'iso8601') {
    return (r) => {
      const v = get(r);
      return typeof v === 'string' ? parseIsoTime(v) : Number.NaN;
    };
  }
  if (format === 'auto') {
    return (r) => {
      const v = get(r);
      // A number first: what a decoder's typed projection gives (epoch ms parsed from the bytes).
      if (typeof v === 'number') return Number.isFinite(v) ? Math.floor(v) : Number.NaN;
      if (typeof v === 'string') {
        // As `toEpochMillis(v, 'auto')`, with its ISO-first path inline (nearly every value).
        const t = parseIsoTime(v);
        if (!Number.isNaN(t) || !isDigits(v)) return t;
      }
      return toEpochMillis(v, format);
    };
  }
  return (r) => toEpochMillis(get(r), format);
}

/** The reason an extractor gave NaN for `record`, for the dead letter. */
export function describeBadTimestamp(field: string | undefined, record: unknown, format: TimeFormat): string {
  if (field === undefined) return 'the timestamp function returned no valid time (a finite epoch ms number)';
  const v = fieldGetter(field)(record);
  if (v === undefined || v === null) return `the record has no time field \`${field}\``;
  const want =
    format === 'auto'
      ? 'an ISO-8601 time (2024-05-01T12:00:00Z) or epoch milliseconds'
      : format === 'iso8601'
        ? 'an ISO-8601 time such as 2024-05-01T12:00:00Z'
        : `a number of ${format === 'epochSeconds' ? 'seconds' : format === 'epochMillis' ? 'milliseconds' : 'microseconds'} since 1970`;
  return `time field \`${field}\` is ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}, not ${want}`;
}

/**
 * A reader of a top-level field or a dotted path. A name that exists as a top-level key with a
 * dot in it (`"a.b"`) wins over the path, so CSV headers with dots still work.
 */
export function fieldGetter(field: string): (record: unknown) => unknown {
  // Generated per field (the name embedded with `JSON.stringify`, so it cannot inject code): each
  // getter is its own function with its own inline cache, a monomorphic named load. One closure
  // shared by every field was one keyed-load site across all of them, megamorphic once a step read
  // three fields (measured: ~2 % of a window's instructions in `KeyedLoadIC_Megamorphic`).
  if (!field.includes('.'))
    return new Function(
      'r',
      `return r === null || r === undefined ? undefined : r[${JSON.stringify(field)}];`,
    ) as (record: unknown) => unknown;
  const parts = field.split('.');
  return (r) => {
    const o = r as Record<string, unknown> | null;
    if (o !== null && typeof o === 'object' && field in o) return o[field];
    let cur: unknown = o;
    for (const p of parts) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string, unknown>)[p];
    }
    return cur;
  };
}
