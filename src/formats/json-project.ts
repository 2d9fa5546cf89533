/**
 * Projected JSON Lines: when a pipeline reads a known set of top-level fields (`core/projection.ts`;
 * a window reading `country, event_type, amount, ts`), each line is scanned once and only those
 * fields become JavaScript values. The other values are checked as JSON (strings, escapes,
 * numbers, literals, nested objects and arrays) and skipped without making strings, numbers or
 * objects of them, and the record is built by a function compiled for the field list.
 *
 * It never guesses: whatever it is not sure of — a wanted field holding an object or an array, a
 * wanted field missing, an escaped key, nesting deeper than {@link MAX_SKIP_DEPTH}, anything JSON
 * does not allow — makes {@link JsonProjection.parse} return `undefined`; the line then goes to
 * `JSON.parse` and {@link JsonProjection.pick}, which give the same record or the exact error of
 * the whole-line parser (dead letter, line, byte offset). A property test checks both paths agree.
 */
import type { FieldUse } from '../core/projection.ts';
import { canonicalIsoAt } from './iso-time.ts';
import {
  BACKSLASH,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  LOWER_F,
  LOWER_N,
  LOWER_T,
  LOWER_U,
  MINUS,
  NINE,
  OPEN_BRACE,
  OPEN_BRACKET,
  QUOTE,
  ZERO,
} from './json-bytes.ts';
import {
  extraUtf8Bytes,
  number as readNumber,
  string as readString,
  SPACE,
  cursor as scanCursor,
  skipNumber,
  skipSpace,
} from './json-shape.ts';
import type { LineShortcut } from './lines.ts';

/** Deepest nesting of a skipped value scanned here (deeper lines go to `JSON.parse`). */
const MAX_SKIP_DEPTH = 64;
/** Most member positions whose key is remembered (see `JsonProjection.tokens`). */
const MAX_TOKENS = 256;
/** Longest key remembered, with its quotes and colon. */
const MAX_TOKEN_CHARS = 64;
/** Most fields projected by the scanner (a bit each in a 31-bit mask). */
const MAX_FIELDS = 30;

/**
 * The wanted top-level fields of JSON Lines records, read from each line's text without parsing
 * the rest into values. Use it as the {@link LineShortcut} of a `LineDecoder` whose parser is
 * `(text) => projection.pick(parseJson(text))`.
 *
 * @example
 * const p = JsonProjection.create(['country', 'ts'], new Map([['ts', 'epochMillis']]))!;
 * const line = '{"id":7,"ts":"2024-05-01T12:00:00Z","country":"DE","note":"a, b"}';
 * p.parse(line, 0, line.length, Buffer.from(line), 0); // { country: 'DE', ts: 1714564800000 }
 */
export class JsonProjection implements LineShortcut<unknown> {
  /** The fields a record holds (each one the line has), in this order. */
  readonly fields: readonly string[];
  private readonly lengths: Int32Array;
  private readonly firsts: Int32Array;
  /** Per field: 1 when it is read as an `epochMillis` time (see `FieldUse`). */
  private readonly epoch: Uint8Array;
  /** The bits of every field: a line that sets fewer has a field missing. */
  private readonly all: number;
  private readonly values: unknown[];
  private readonly build: (values: unknown[]) => Record<string, unknown>;
  /**
   * Per member position: the key (`"key":`, quotes and colon) the last line scanned had there,
   * its index in {@link fields} (-1: not wanted) and its extra UTF-8 bytes. Lines of one layout
   * then have their keys recognised by one comparison each.
   */
  /** The characters of each remembered key, {@link MAX_TOKEN_CHARS} per position (0: none). */
  private readonly tokenCodes = new Uint16Array(MAX_TOKENS * MAX_TOKEN_CHARS);
  private readonly tokenLengths = new Int32Array(MAX_TOKENS);
  private readonly tokenFields = new Int32Array(MAX_TOKENS);
  private readonly tokenExtra = new Int32Array(MAX_TOKENS);

  private constructor(fields: readonly string[], uses: ReadonlyMap<string, FieldUse> | undefined) {
    this.fields = fields;
    this.lengths = Int32Array.from(fields, (f) => f.length);
    this.firsts = Int32Array.from(fields, (f) => f.charCodeAt(0));
    this.epoch = Uint8Array.from(fields, (f) => (uses?.get(f) === 'epochMillis' ? 1 : 0));
    this.all = 2 ** fields.length - 1;
    this.values = new Array(fields.length).fill(undefined);
    this.build = compileBuild(fields);
  }

  /**
   * A projection of `fields` (duplicates dropped), or undefined when it cannot be one: no field,
   * more than 30, or `__proto__` (an object literal would set the prototype instead). `uses`
   * as given to `RecordDecoder.project`: an `epochMillis` field holding a time in the
   * `Date#toISOString` layout becomes its epoch ms.
   */
  static create(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>): JsonProjection | undefined {
    const unique = [...new Set(fields)];
    if (unique.length === 0 || unique.length > MAX_FIELDS || unique.includes('__proto__')) return undefined;
    return new JsonProjection(unique, uses);
  }

  /**
   * The record of the wanted fields of `value` (a value `JSON.parse` returned for a line the
   * scanner did not take): for an object, its wanted own fields in {@link fields} order, an
   * `epochMillis` one as {@link parse} gives it; any other value as it is.
   */
  pick(value: unknown): unknown {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const out: Record<string, unknown> = {};
    const { fields, epoch } = this;
    for (let k = 0; k < fields.length; k++) {
      const f = fields[k] as string;
      if (!Object.hasOwn(value, f)) continue;
      const v = (value as Record<string, unknown>)[f];
      out[f] = epoch[k] === 1 ? asEpochMillis(v) : v;
    }
    return out;
  }

  /**
   * The record of the wanted fields of the line `text[start..end)` when it is a JSON object this
   * scan is sure of, else `undefined` (then `JSON.parse` and {@link pick}). The line's UTF-8
   * bytes must be in `bytes` from `bytesAt + start` on (long strings are copied from them, so a
   * record never holds a view of `text`).
   */
  parse(text: string, start: number, end: number, bytes: Buffer, bytesAt: number): unknown {
    scanCursor.bytesAt = bytesAt;
    let i = skipSpace(text, start, end);
    if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
    i = skipSpace(text, i + 1, end);
    const values = this.values;
    const epoch = this.epoch;
    let seen = 0;
    for (let p = 0; ; p++) {
      if (i >= end || text.charCodeAt(i) !== QUOTE) return undefined;
      let k: number;
      const n = p < MAX_TOKENS ? (this.tokenLengths[p] as number) : 0;
      let same = n > 0 && i + n < end;
      if (same) {
        const codes = this.tokenCodes;
        const base = p * MAX_TOKEN_CHARS;
        for (let t = 1; t < n; t++) {
          if (text.charCodeAt(i + t) !== codes[base + t]) {
            same = false;
            break;
          }
        }
      }
      if (same) {
        // The key the line before had here: known without reading it (the colon included).
        k = this.tokenFields[p] as number;
        scanCursor.bytesAt += this.tokenExtra[p] as number;
        i += n;
      } else {
        // The key: compared in place with the wanted names, never made a string.
        const j = plainRun(text, i + 1);
        if (j >= end || text.charCodeAt(j) !== QUOTE) return undefined;
        const extra = runHigh.value >= 0x80 ? extraUtf8Bytes(text, i + 1, j) : 0;
        scanCursor.bytesAt += extra;
        k = this.field(text, i + 1, j);
        if (text.charCodeAt(j + 1) === COLON && p < MAX_TOKENS) {
          this.learnToken(p, text.slice(i, j + 2), k, extra);
          i = j + 2;
        } else {
          i = skipSpace(text, j + 1, end);
          if (text.charCodeAt(i) !== COLON || i >= end) return undefined;
          i++;
        }
      }
      i = skipSpace(text, i, end);
      if (i >= end) return undefined;
      let c: number;
      if (k < 0) {
        i = skipValue(text, i, end, 0);
      } else {
        c = text.charCodeAt(i);
        if (c === QUOTE) {
          const ms = epoch[k] === 1 ? quotedIsoTime(text, i, end) : Number.NaN;
          if (Number.isNaN(ms)) {
            i = readString(text, i, end, bytes, values, k);
            // A time written another way (an escape, say): as `pick` gives it.
            if (epoch[k] === 1 && i > 0) values[k] = asEpochMillis(values[k]);
          } else {
            values[k] = ms;
            i += text.charCodeAt(i + 21) === QUOTE ? 22 : 26;
          }
        } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
          i = readNumber(text, i, end, values, k);
        } else if (c === LOWER_T && text.startsWith('true', i)) {
          values[k] = true;
          i += 4;
        } else if (c === LOWER_F && text.startsWith('false', i)) {
          values[k] = false;
          i += 5;
        } else if (c === LOWER_N && text.startsWith('null', i)) {
          values[k] = null;
          i += 4;
        } else {
          return undefined; // an object or an array: JSON.parse makes it
        }
        seen |= 1 << k;
      }
      if (i < 0) return undefined;
      i = skipSpace(text, i, end);
      if (i >= end) return undefined;
      c = text.charCodeAt(i);
      if (c === COMMA) {
        i = skipSpace(text, i + 1, end);
        continue;
      }
      if (c !== CLOSE_BRACE || skipSpace(text, i + 1, end) !== end || seen !== this.all) return undefined;
      // The object literal copies the values, so `values` is free for the next line.
      return this.build(values);
    }
  }

  /** Nothing to learn from `JSON.parse`'s values: the scan learns the keys' order itself. */
  learn(): void {}

  /** Remembers `"key":` as the `p`-th key of the lines to come. */
  private learnToken(p: number, token: string, k: number, extra: number): void {
    if (token.length > MAX_TOKEN_CHARS) return;
    for (let t = 0; t < token.length; t++) this.tokenCodes[p * MAX_TOKEN_CHARS + t] = token.charCodeAt(t);
    this.tokenLengths[p] = token.length;
    this.tokenFields[p] = k;
    this.tokenExtra[p] = extra;
  }

  /** The index in {@link fields} of the key `text[from..to)`, or -1. */
  private field(text: string, from: number, to: number): number {
    const n = to - from;
    const first = text.charCodeAt(from);
    const { lengths, firsts, fields } = this;
    for (let k = 0; k < lengths.length; k++) {
      if (lengths[k] === n && firsts[k] === first && text.startsWith(fields[k] as string, from)) return k;
    }
    return -1;
  }
}

/**
 * The epoch ms of the string at the quote `text[at]` when it is a time written as
 * `Date#toISOString` writes it (20 or 24 characters; its closing quote is then at `at + 21` or
 * `at + 25`), NaN otherwise. The same number the window's time extractor makes of the string.
 */
function quotedIsoTime(text: string, at: number, end: number): number {
  // canonicalIsoAt checks every character: digits and separators, no quote, backslash or control.
  if (at + 25 < end && text.charCodeAt(at + 25) === QUOTE) {
    const ms = canonicalIsoAt(text, at + 1, 24);
    if (!Number.isNaN(ms)) return ms;
  }
  return at + 21 < end && text.charCodeAt(at + 21) === QUOTE ? canonicalIsoAt(text, at + 1, 20) : Number.NaN;
}

/** `v` read as an `epochMillis` field: the epoch ms of a string in the `Date#toISOString` layout, else `v`. */
function asEpochMillis(v: unknown): unknown {
  if (typeof v !== 'string' || (v.length !== 20 && v.length !== 24)) return v;
  const ms = canonicalIsoAt(v, 0, v.length);
  return Number.isNaN(ms) ? v : ms;
}

/**
 * The index after the JSON value starting at `text[at]` (before `end`), checked but not made;
 * -1 when it is not valid JSON or nests deeper than {@link MAX_SKIP_DEPTH}.
 */
function skipValue(text: string, at: number, end: number, depth: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) return skipString(text, at, end);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumber(text, at, end);
  if (c === LOWER_T) return text.startsWith('true', at) ? at + 4 : -1;
  if (c === LOWER_F) return text.startsWith('false', at) ? at + 5 : -1;
  if (c === LOWER_N) return text.startsWith('null', at) ? at + 4 : -1;
  if (depth >= MAX_SKIP_DEPTH) return -1;
  if (c === OPEN_BRACE) return skipComposite(text, at, end, depth + 1, CLOSE_BRACE);
  if (c === OPEN_BRACKET) return skipComposite(text, at, end, depth + 1, CLOSE_BRACKET);
  return -1;
}

/**
 * {@link skipValue} of the object (`close` is `}`) or array (`]`) opening at `text[at]`, whose
 * members are `depth` levels deep.
 */
function skipComposite(text: string, at: number, end: number, depth: number, close: number): number {
  let i = skipSpace(text, at + 1, end);
  if (i < end && text.charCodeAt(i) === close) return i + 1;
  for (;;) {
    if (i >= end) return -1;
    if (close === CLOSE_BRACE) {
      if (text.charCodeAt(i) !== QUOTE) return -1;
      i = skipString(text, i, end);
      if (i < 0) return -1;
      i = skipSpace(text, i, end);
      if (i >= end || text.charCodeAt(i) !== COLON) return -1;
      i = skipSpace(text, i + 1, end);
      if (i >= end) return -1;
    }
    i = skipValue(text, i, end, depth);
    if (i < 0) return -1;
    i = skipSpace(text, i, end);
    if (i >= end) return -1;
    const c = text.charCodeAt(i);
    if (c === close) return i + 1;
    if (c !== COMMA) return -1;
    i = skipSpace(text, i + 1, end);
  }
}

/**
 * {@link skipValue} of the string opening at `text[at]`: no raw control character, only the
 * escapes JSON has (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u` and four hex digits).
 * Moves `scanCursor.bytesAt` past its extra UTF-8 bytes.
 */
function skipString(text: string, at: number, end: number): number {
  let j = at + 1;
  let high = 0;
  for (;;) {
    j = plainRun(text, j);
    high |= runHigh.value;
    if (j >= end) return -1;
    const c = text.charCodeAt(j);
    if (c === QUOTE) break;
    if (c !== BACKSLASH) return -1; // a raw control character
    const e = text.charCodeAt(j + 1);
    if (e === LOWER_U) {
      if (
        j + 5 >= end ||
        !isHex(text, j + 2) ||
        !isHex(text, j + 3) ||
        !isHex(text, j + 4) ||
        !isHex(text, j + 5)
      )
        return -1;
      j += 6;
    } else if (isSimpleEscape(e)) {
      j += 2;
    } else {
      return -1;
    }
  }
  // An escape is ASCII: only raw characters add bytes.
  if (high >= 0x80) scanCursor.bytesAt += extraUtf8Bytes(text, at + 1, j);
  return j + 1;
}

/** `"`, `\`, `/`, `b`, `f`, `n`, `r` or `t`: the letters of JSON's one-letter escapes. */
function isSimpleEscape(e: number): boolean {
  return (
    e === QUOTE ||
    e === BACKSLASH ||
    e === 0x2f ||
    e === 0x62 ||
    e === LOWER_F ||
    e === LOWER_N ||
    e === 0x72 ||
    e === LOWER_T
  );
}

function isHex(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** What {@link plainRun} saw: the OR of the characters it passed. */
const runHigh = { value: 0 };

/**
 * The index of the first quote, backslash or control character at or after `from` (the end of
 * the plain part of a string or key), with the OR of the characters passed in
 * `runHigh.value` (0x80 or more: some are not ASCII).
 */
function plainRun(text: string, from: number): number {
  // One pass in JavaScript finds the end and checks every character (faster here than
  // indexOf plus a regular expression for control characters).
  let j = from;
  let c = text.charCodeAt(j);
  let high = 0;
  while (c >= SPACE && c !== QUOTE && c !== BACKSLASH) {
    high |= c;
    c = text.charCodeAt(++j);
  }
  runHigh.value = high;
  return j;
}

/** Compiles the function that builds a record of `fields` from values in that order. */
function compileBuild(fields: readonly string[]): (values: unknown[]) => Record<string, unknown> {
  // An object literal gives every record the same hidden class at once. Each name is written as
  // a JSON string literal (a valid, inert property name; `__proto__` is refused by `create`), so
  // the generated source holds nothing from the input, only the pipeline's field names.
  const body = `return {${fields.map((f, i) => `${JSON.stringify(f)}: v[${i}]`).join(', ')}};`;
  return new Function('v', body) as (values: unknown[]) => Record<string, unknown>;
}
