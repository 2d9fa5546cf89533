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
import { canonicalIsoBytes } from './csv/iso-bytes.ts';
import { canonicalIsoAt } from './iso-time.ts';
import {
  BACKSLASH,
  CLOSE_BRACE,
  CLOSE_BRACKET,
  COLON,
  COMMA,
  DOT,
  LOWER_E,
  LOWER_F,
  LOWER_N,
  LOWER_T,
  LOWER_U,
  MINUS,
  NINE,
  OPEN_BRACE,
  OPEN_BRACKET,
  PLUS,
  QUOTE,
  UPPER_E,
  ZERO,
} from './json-bytes.ts';
import {
  COPY_FROM,
  compileBuild,
  latin1Slice,
  number as readNumber,
  string as readString,
  SPACE,
  cursor as scanCursor,
  skipSpace as skipTextSpace,
  utf8Slice,
} from './json-shape.ts';
import type { LineShortcut } from './lines.ts';
import { SHORT_STRING_BYTES, ShortStrings } from './short-strings.ts';

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/** Deepest nesting of a skipped value scanned here (deeper lines go to `JSON.parse`). */
const MAX_SKIP_DEPTH = 64;
/** Most member positions whose key is remembered (see `JsonProjection.tokens`). */
const MAX_TOKENS = 256;
/** Longest key remembered, in UTF-8 bytes with its quotes and colon. */
const MAX_TOKEN_BYTES = 64;
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
  /** The UTF-8 bytes of each field's name. */
  private readonly names: readonly Uint8Array[];
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
  /** The UTF-8 bytes of each remembered key, {@link MAX_TOKEN_BYTES} per position. */
  private readonly tokenBytes = new Uint8Array(MAX_TOKENS * MAX_TOKEN_BYTES);
  /**
   * The first 16 bytes of each remembered key as four little-endian 32-bit words, and the masks
   * of the bytes that are the key's (0 past its end): compared without a loop or a branch.
   */
  private readonly tokenWords = new Int32Array(MAX_TOKENS * 4);
  private readonly tokenMasks = new Int32Array(MAX_TOKENS * 4);
  /** A view of the last `bytes` given, for its 32-bit loads. */
  private view = new DataView(new ArrayBuffer(0));
  private viewOf: Buffer | undefined;
  private readonly tokenLengths = new Int32Array(MAX_TOKENS);
  private readonly tokenFields = new Int32Array(MAX_TOKENS);
  private readonly tokenExtra = new Int32Array(MAX_TOKENS);
  /**
   * Short ASCII strings of wanted fields, one shared string per value (by field, switched off for a
   * field whose values seldom repeat): a country or an event type is then the same string object
   * every line, whose hash V8 keeps, and the window's key lookups by it cost about what the CSV
   * decoder's interned values cost (a fresh string is hashed and looked up in V8's string table
   * at each lookup: `KeyTable#get` took 61 ms of the vs-go JSONL run).
   */
  private readonly intern = new ShortStrings(MAX_FIELDS);

  private constructor(fields: readonly string[], uses: ReadonlyMap<string, FieldUse> | undefined) {
    this.fields = fields;
    this.names = fields.map((f) => new Uint8Array(Buffer.from(f)));
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
    // The line is scanned in its bytes (an element load costs less than `charCodeAt`); only the
    // wanted values are read from `text`, at `b - scanCursor.bytesAt`: keys, numbers, literals
    // and separators are ASCII, so only non-ASCII keys and strings move the two apart.
    scanCursor.bytesAt = bytesAt;
    let b = skipSpace(bytes, bytesAt + start);
    if (bytes[b] !== OPEN_BRACE) return undefined;
    b = skipSpace(bytes, b + 1);
    const { values, epoch, tokenBytes, tokenLengths, tokenWords, tokenMasks } = this;
    if (bytes !== this.viewOf) {
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length) as DataView<ArrayBuffer>;
      this.viewOf = bytes;
    }
    const view = this.view;
    const last = bytes.length - 16;
    let seen = 0;
    for (let p = 0; ; p++) {
      if (bytes[b] !== QUOTE) return undefined;
      let k: number;
      const n = p < MAX_TOKENS ? (tokenLengths[p] as number) : 0;
      let same = n > 0 && b <= last;
      if (same) {
        const w = 4 * p;
        same =
          (((view.getInt32(b, true) ^ (tokenWords[w] as number)) & (tokenMasks[w] as number)) |
            ((view.getInt32(b + 4, true) ^ (tokenWords[w + 1] as number)) & (tokenMasks[w + 1] as number)) |
            ((view.getInt32(b + 8, true) ^ (tokenWords[w + 2] as number)) & (tokenMasks[w + 2] as number)) |
            ((view.getInt32(b + 12, true) ^ (tokenWords[w + 3] as number)) &
              (tokenMasks[w + 3] as number))) ===
          0;
        if (same && n > 16) {
          const base = p * MAX_TOKEN_BYTES;
          let t = 16;
          while (t < n && bytes[b + t] === tokenBytes[base + t]) t++;
          same = t === n;
        }
      }
      if (same) {
        // The key the line before had here: known without reading it (the colon included).
        k = this.tokenFields[p] as number;
        scanCursor.bytesAt += this.tokenExtra[p] as number;
        b += n;
      } else {
        // The key: compared in place with the wanted names, never made a string.
        const j = plainRun(bytes, b + 1);
        if (bytes[j] !== QUOTE) return undefined;
        const extra = runHigh.value >= 0x80 ? extraBytes(bytes, b + 1, j) : 0;
        scanCursor.bytesAt += extra;
        k = this.field(bytes, b + 1, j);
        if (bytes[j + 1] === COLON && p < MAX_TOKENS) {
          this.learnToken(p, bytes, b, j + 2, k, extra);
          b = j + 2;
        } else {
          b = skipSpace(bytes, j + 1);
          if (bytes[b] !== COLON) return undefined;
          b++;
        }
      }
      b = skipSpace(bytes, b);
      if (k < 0) {
        b = skipValue(bytes, b, 0);
        if (b < 0) return undefined;
      } else {
        let i = b - scanCursor.bytesAt;
        if (i >= end) return undefined;
        const c = text.charCodeAt(i);
        if (c === QUOTE) {
          const ms = epoch[k] === 1 ? quotedIsoTime(bytes, b) : Number.NaN;
          if (Number.isNaN(ms)) {
            const j = plainRun(bytes, b + 1);
            if (bytes[j] === QUOTE) {
              values[k] =
                runHigh.value < 0x80 && j - b - 1 <= SHORT_STRING_BYTES
                  ? this.intern.get(view, b + 1, j - b - 1, text, i + 1, k)
                  : plainString(text, i, bytes, b + 1, j);
              i = j + 1 - scanCursor.bytesAt;
            } else {
              i = readString(text, i, end, bytes, values, k);
            }
            // A time written another way (an escape, say): as `pick` gives it.
            if (epoch[k] === 1 && i > 0) values[k] = asEpochMillis(values[k]);
          } else {
            values[k] = ms;
            i += bytes[b + 21] === QUOTE ? 22 : 26;
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
        if (i < 0) return undefined;
        seen |= 1 << k;
        b = i + scanCursor.bytesAt;
      }
      b = skipSpace(bytes, b);
      const c = bytes[b];
      if (c === COMMA) {
        b = skipSpace(bytes, b + 1);
        continue;
      }
      if (c !== CLOSE_BRACE || seen !== this.all) return undefined;
      // Back to `text` for the end: the bytes after the line's are not the line's.
      const i = b + 1 - scanCursor.bytesAt;
      if (skipTextSpace(text, i, end) !== end) return undefined; // also when i > end
      // The object literal copies the values, so `values` is free for the next line.
      return this.build(values);
    }
  }

  /** Nothing to learn from `JSON.parse`'s values: the scan learns the keys' order itself. */
  learn(): void {}

  /** Remembers `"key":`, `bytes[from..to)`, as the `p`-th key of the lines to come. */
  private learnToken(p: number, bytes: Buffer, from: number, to: number, k: number, extra: number): void {
    if (to - from > MAX_TOKEN_BYTES) return;
    this.tokenBytes.set(bytes.subarray(from, to), p * MAX_TOKEN_BYTES);
    for (let w = 0; w < 4; w++) {
      let word = 0;
      let mask = 0;
      for (let t = 4 * w + 3; t >= 4 * w; t--) {
        word = (word << 8) | (from + t < to ? (bytes[from + t] as number) : 0);
        mask = (mask << 8) | (from + t < to ? 0xff : 0);
      }
      this.tokenWords[4 * p + w] = word;
      this.tokenMasks[4 * p + w] = mask;
    }
    this.tokenLengths[p] = to - from;
    this.tokenFields[p] = k;
    this.tokenExtra[p] = extra;
  }

  /** The index in {@link fields} of the key whose UTF-8 bytes are `bytes[from..to)`, or -1. */
  private field(bytes: Buffer, from: number, to: number): number {
    const names = this.names;
    for (let k = 0; k < names.length; k++) {
      const name = names[k] as Uint8Array;
      if (name.length !== to - from) continue;
      let t = 0;
      while (t < name.length && bytes[from + t] === name[t]) t++;
      if (t === name.length) return k;
    }
    return -1;
  }
}

/**
 * The string at the quote `text[at]` whose UTF-8 bytes `bytes[from..to)` (up to its closing
 * quote) hold no quote, backslash or control character, as {@link plainRun} found them: short
 * ones sliced from `text` (V8 copies them), longer ones decoded again from the bytes (a slice
 * would be a view pinning `text`). Moves `scanCursor.bytesAt` past its extra UTF-8 bytes.
 */
function plainString(text: string, at: number, bytes: Buffer, from: number, to: number): string {
  const n = to - from;
  if (runHigh.value < 0x80)
    return n < COPY_FROM ? text.slice(at + 1, at + 1 + n) : latin1Slice.call(bytes, from, to);
  const extra = extraBytes(bytes, from, to);
  scanCursor.bytesAt += extra;
  return n - extra < COPY_FROM ? text.slice(at + 1, at + 1 + n - extra) : utf8Slice.call(bytes, from, to);
}

/**
 * The epoch ms of the string at the quote `bytes[at]` when it is a time written as
 * `Date#toISOString` writes it (20 or 24 characters; its closing quote is then at `at + 21` or
 * `at + 25`), NaN otherwise. The same number the window's time extractor makes of the string.
 * Read from the bytes (an element load costs about half a `charCodeAt`: 68 → ~30 ms per 815 k
 * times of the vs-go JSONL run). Every byte it accepts is ASCII (digits and separators, no
 * quote, backslash, control character or newline), so it never reads past the line, and the
 * string's bytes are its characters.
 */
function quotedIsoTime(bytes: Buffer, at: number): number {
  if (bytes[at + 25] === QUOTE) {
    const ms = canonicalIsoBytes(bytes, at + 1, 24);
    if (!Number.isNaN(ms)) return ms;
  }
  return bytes[at + 21] === QUOTE ? canonicalIsoBytes(bytes, at + 1, 20) : Number.NaN;
}

/** `v` read as an `epochMillis` field: the epoch ms of a string in the `Date#toISOString` layout, else `v`. */
function asEpochMillis(v: unknown): unknown {
  if (typeof v !== 'string' || (v.length !== 20 && v.length !== 24)) return v;
  const ms = canonicalIsoAt(v, 0, v.length);
  return Number.isNaN(ms) ? v : ms;
}

/**
 * The index after the JSON value starting at `bytes[at]`, checked but not made; -1 when it is
 * not valid JSON or nests deeper than {@link MAX_SKIP_DEPTH}. Bytes past the buffer read as
 * `undefined`, which no check accepts, and a line's last value is followed by its newline, so
 * no scan here needs the line's end; the caller checks where the object ended.
 */
function skipValue(bytes: Buffer, at: number, depth: number): number {
  const c = bytes[at] as number;
  if (c === QUOTE) return skipString(bytes, at);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumber(bytes, at);
  if (c === LOWER_T)
    return bytes[at + 1] === 0x72 && bytes[at + 2] === LOWER_U && bytes[at + 3] === 0x65 ? at + 4 : -1;
  if (c === LOWER_F)
    return bytes[at + 1] === 0x61 &&
      bytes[at + 2] === 0x6c &&
      bytes[at + 3] === 0x73 &&
      bytes[at + 4] === 0x65
      ? at + 5
      : -1;
  if (c === LOWER_N)
    return bytes[at + 1] === LOWER_U && bytes[at + 2] === 0x6c && bytes[at + 3] === 0x6c ? at + 4 : -1;
  if (depth >= MAX_SKIP_DEPTH) return -1;
  if (c === OPEN_BRACE) return skipComposite(bytes, at, depth + 1, CLOSE_BRACE);
  if (c === OPEN_BRACKET) return skipComposite(bytes, at, depth + 1, CLOSE_BRACKET);
  return -1;
}

/**
 * {@link skipValue} of the object (`close` is `}`) or array (`]`) opening at `bytes[at]`, whose
 * members are `depth` levels deep.
 */
function skipComposite(bytes: Buffer, at: number, depth: number, close: number): number {
  let i = skipSpace(bytes, at + 1);
  if (bytes[i] === close) return i + 1;
  for (;;) {
    if (close === CLOSE_BRACE) {
      if (bytes[i] !== QUOTE) return -1;
      i = skipString(bytes, i);
      if (i < 0) return -1;
      i = skipSpace(bytes, i);
      if (bytes[i] !== COLON) return -1;
      i = skipSpace(bytes, i + 1);
    }
    i = skipValue(bytes, i, depth);
    if (i < 0) return -1;
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === close) return i + 1;
    if (c !== COMMA) return -1;
    i = skipSpace(bytes, i + 1);
  }
}

/**
 * {@link skipValue} of the string opening at `bytes[at]`: no raw control character, only the
 * escapes JSON has (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u` and four hex digits).
 * Moves `scanCursor.bytesAt` past its extra UTF-8 bytes.
 */
function skipString(bytes: Buffer, at: number): number {
  let j = at + 1;
  let high = 0;
  for (;;) {
    j = plainRun(bytes, j);
    high |= runHigh.value;
    const c = bytes[j];
    if (c === QUOTE) break;
    if (c !== BACKSLASH) return -1; // a raw control character, or past the buffer
    const e = bytes[j + 1] as number;
    if (e === LOWER_U) {
      if (!isHex(bytes[j + 2]) || !isHex(bytes[j + 3]) || !isHex(bytes[j + 4]) || !isHex(bytes[j + 5]))
        return -1;
      j += 6;
    } else if (isSimpleEscape(e)) {
      j += 2;
    } else {
      return -1;
    }
  }
  // An escape is ASCII: only raw characters add bytes.
  if (high >= 0x80) scanCursor.bytesAt += extraBytes(bytes, at + 1, j);
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

function isHex(c: number | undefined): boolean {
  return (
    c !== undefined && ((c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66))
  );
}

/** What {@link plainRun} saw: the OR of the bytes it passed. */
const runHigh = { value: 0 };

/**
 * The index of the first quote, backslash or control character at or after `from` (the end of
 * the plain part of a string or key), with the OR of the bytes passed in `runHigh.value`
 * (0x80 or more: some are not ASCII).
 */
function plainRun(bytes: Buffer, from: number): number {
  // One pass in JavaScript finds the end and checks every byte (faster here than indexOf plus
  // a regular expression for control characters).
  let j = from;
  let t = PLAIN[bytes[j] as number] as number;
  let high = 0;
  while (t > 0) {
    high |= t;
    t = PLAIN[bytes[++j] as number] as number;
  }
  runHigh.value = high;
  return j;
}

/** Per byte: 0 for a quote, a backslash or a control character, 0x80 for a non-ASCII byte, else 1. */
const PLAIN = Uint8Array.from({ length: 256 }, (_, c) =>
  c < SPACE || c === QUOTE || c === BACKSLASH ? 0 : c >= 0x80 ? 0x80 : 1,
);

/**
 * How many more UTF-8 bytes than UTF-16 code units the valid UTF-8 `bytes[from..to)` takes:
 * its continuation bytes, less one per four-byte sequence (two code units).
 */
function extraBytes(bytes: Buffer, from: number, to: number): number {
  let extra = 0;
  for (let i = from; i < to; i++) {
    const c = bytes[i] as number;
    if (c >= 0x80) extra += c < 0xc0 ? 1 : c >= 0xf0 ? -1 : 0;
  }
  return extra;
}

/** The first index at or after `i` whose byte is not JSON whitespace. */
function skipSpace(bytes: Buffer, i: number): number {
  let c = bytes[i];
  while (c === SPACE || c === TAB || c === CR || c === LF) c = bytes[++i];
  return i;
}

/** The index after the JSON number starting at `bytes[at]` (checked, not made), or -1 when it is none: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. */
function skipNumber(bytes: Buffer, at: number): number {
  let j = at;
  let c = bytes[j] as number;
  if (c === MINUS) c = bytes[++j] as number;
  if (!(c >= ZERO && c <= NINE)) return -1;
  if (c === ZERO) c = bytes[++j] as number;
  else while (c >= ZERO && c <= NINE) c = bytes[++j] as number;
  if (c === DOT) {
    c = bytes[++j] as number;
    if (!(c >= ZERO && c <= NINE)) return -1;
    while (c >= ZERO && c <= NINE) c = bytes[++j] as number;
  }
  if (c === LOWER_E || c === UPPER_E) {
    c = bytes[++j] as number;
    if (c === PLUS || c === MINUS) c = bytes[++j] as number;
    if (!(c >= ZERO && c <= NINE)) return -1;
    while (c >= ZERO && c <= NINE) c = bytes[++j] as number;
  }
  return j;
}
