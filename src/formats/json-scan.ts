/**
 * Character-level reading of JSON text shared by the two shortcuts of the JSON Lines reader:
 * {@link JsonShapes} (whole objects of learned shapes, `json-shape.ts`) and `JsonProjection`
 * (only the fields a pipeline reads, `json-project.ts`). Each reader returns the index after what
 * it read, or -1 when it is not sure (the caller then leaves the line to `JSON.parse`, which gives
 * the exact value or the exact error).
 *
 * The text is one decoded piece of input; strings long enough to be views of it ("sliced
 * strings") are decoded again from its bytes, so a record never keeps the piece alive.
 * {@link scanCursor} keeps the byte position in step with the character position.
 */
import { BACKSLASH, DOT, LOWER_E, MINUS, NINE, PLUS, QUOTE, UPPER_E, ZERO } from './json-bytes.ts';

/**
 * Shortest string value copied out of the source bytes. V8 copies shorter slices itself;
 * longer ones would be views ("sliced strings") that keep the whole decoded piece alive for as
 * long as the record lives, so those are decoded again from the bytes instead.
 */
const COPY_FROM = 13;

export const SPACE = 0x20;
export const TAB = 0x09;
export const CR = 0x0d;
export const LF = 0x0a;
/** JSON numbers with at most this many integer digits and no fraction are summed exactly. */
const EXACT_DIGITS = 15;

/** Decodes `this[start..end)`: a copy, never a view of a larger string. */
type Decode = (this: Buffer, start: number, end: number) => string;
const bufferMethods = Buffer.prototype as unknown as { latin1Slice?: Decode; utf8Slice?: Decode };
// Buffer's own latin1Slice / utf8Slice (what toString calls after checking its arguments) save
// a third of the cost of a copy (measured: 9 % of the decoder's time went to toString's wrapper
// and 9 % to the copy). They are not documented, so toString stands in where they are missing.
const latin1Slice: Decode =
  bufferMethods.latin1Slice ??
  function (this: Buffer, start, end) {
    return this.toString('latin1', start, end);
  };
const utf8Slice: Decode =
  bufferMethods.utf8Slice ??
  function (this: Buffer, start, end) {
    return this.toString('utf8', start, end);
  };

/**
 * Where the line being read is in its bytes (`bytes[scanCursor.bytesAt + i]` is the first byte
 * of `text[i]` for the `i` reached so far), and where the last object read ended. Set
 * `bytesAt` before reading a line; the readers move it past the extra UTF-8 bytes of the strings
 * they pass.
 */
export const scanCursor = { bytesAt: 0, index: 0, high: 0 };

/**
 * The index of the first quote, backslash or control character at or after `from` (the end of
 * the plain part of a string or key), with the OR of the characters passed in
 * `scanCursor.high` (0x80 or more: some are not ASCII).
 */
export function plainRun(text: string, from: number): number {
  // One pass in JavaScript finds the end and checks every character (faster here than
  // indexOf plus a regular expression for control characters).
  let j = from;
  let c = text.charCodeAt(j);
  let high = 0;
  while (c >= SPACE && c !== QUOTE && c !== BACKSLASH) {
    high |= c;
    c = text.charCodeAt(++j);
  }
  scanCursor.high = high;
  return j;
}

/**
 * Reads the string starting at the quote `text[at]` into `values[k]`; returns the index after
 * its closing quote, or -1 when it is not sure (a raw control character, which JSON forbids in
 * a string, or an escape JSON rejects).
 */
export function readString(
  text: string,
  at: number,
  end: number,
  bytes: Buffer,
  values: unknown[],
  k: number,
): number {
  const j = plainRun(text, at + 1);
  const high = scanCursor.high;
  const c = text.charCodeAt(j);
  if (j >= end) return -1;
  if (c === BACKSLASH) return escapedString(text, at, j, end, high, values, k);
  if (c !== QUOTE) return -1;
  const from = scanCursor.bytesAt + at + 1;
  if (high < 0x80) {
    values[k] =
      j - at - 1 < COPY_FROM ? text.slice(at + 1, j) : latin1Slice.call(bytes, from, from + j - at - 1);
  } else {
    const extra = extraUtf8Bytes(text, at + 1, j);
    values[k] =
      j - at - 1 < COPY_FROM ? text.slice(at + 1, j) : utf8Slice.call(bytes, from, from + j - at - 1 + extra);
    scanCursor.bytesAt += extra;
  }
  return j + 1;
}

/**
 * {@link readString} for a string with an escape (its first backslash at `text[from]`): found by
 * scanning, decoded by `JSON.parse`, which copies it (so the value holds no view of `text`).
 */
function escapedString(
  text: string,
  at: number,
  from: number,
  end: number,
  high: number,
  values: unknown[],
  k: number,
): number {
  let j = from;
  for (;;) {
    if (j >= end) return -1;
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j += 2;
    else if (c === QUOTE) break;
    else if (c < SPACE) return -1;
    else {
      high |= c;
      j++;
    }
  }
  try {
    values[k] = JSON.parse(text.slice(at, j + 1));
  } catch {
    return -1;
  }
  // An escape is ASCII (`\u00e9` included): only raw characters add bytes.
  if (high >= 0x80) scanCursor.bytesAt += extraUtf8Bytes(text, at + 1, j);
  return j + 1;
}

/** How many more UTF-8 bytes than UTF-16 code units `text[from..to)` takes. */
export function extraUtf8Bytes(text: string, from: number, to: number): number {
  let extra = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    // 2 bytes below U+0800; 3 above; a surrogate pair (2 units) is 4 bytes: 1 extra per unit.
    if (c >= 0x80) extra += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdfff ? 1 : 2;
  }
  return extra;
}

/** The first index at or after `i` (at most `end`) that is not JSON whitespace. */
export function skipSpace(text: string, i: number, end: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (i >= end || (c !== SPACE && c !== TAB && c !== CR && c !== LF)) return i;
    i++;
  }
}

/**
 * Reads the JSON number starting at `text[at]` into `values[k]`; returns the index after it, or
 * -1 when it is no JSON number (a leading zero followed by digits is caught by the caller: the
 * next character is then no separator).
 */
export function readNumber(text: string, at: number, end: number, values: unknown[], k: number): number {
  let j = at;
  let c = text.charCodeAt(j);
  const negative = c === MINUS;
  if (negative) c = text.charCodeAt(++j);
  if (c < ZERO || c > NINE || j >= end) return -1;
  const digitsAt = j;
  let n = 0;
  if (c === ZERO) {
    c = text.charCodeAt(++j);
  } else {
    while (c >= ZERO && c <= NINE && j < end) {
      n = n * 10 + (c - ZERO);
      c = text.charCodeAt(++j);
    }
  }
  if (j < end && (c === DOT || c === LOWER_E || c === UPPER_E)) {
    if (c === DOT) {
      c = text.charCodeAt(++j);
      if (c < ZERO || c > NINE || j >= end) return -1;
      while (c >= ZERO && c <= NINE && j < end) c = text.charCodeAt(++j);
    }
    if (j < end && (c === LOWER_E || c === UPPER_E)) {
      c = text.charCodeAt(++j);
      if (c === PLUS || c === MINUS) c = text.charCodeAt(++j);
      if (c < ZERO || c > NINE || j >= end) return -1;
      while (c >= ZERO && c <= NINE && j < end) c = text.charCodeAt(++j);
    }
    // Same digits, same rounding: Number() and JSON.parse share V8's string-to-double.
    values[k] = Number(text.slice(at, j));
  } else if (j - digitsAt > EXACT_DIGITS) {
    values[k] = Number(text.slice(at, j));
  } else {
    values[k] = negative ? -n : n;
  }
  return j;
}

/** The index after the JSON number starting at `text[at]` (checked, not made), or -1 when it is none: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. */
export function skipNumber(text: string, at: number, end: number): number {
  let j = at;
  let c = text.charCodeAt(j);
  if (c === MINUS) c = text.charCodeAt(++j);
  if (j >= end || c < ZERO || c > NINE) return -1;
  if (c === ZERO) c = text.charCodeAt(++j);
  else while (j < end && c >= ZERO && c <= NINE) c = text.charCodeAt(++j);
  if (j < end && c === DOT) {
    c = text.charCodeAt(++j);
    if (j >= end || c < ZERO || c > NINE) return -1;
    while (j < end && c >= ZERO && c <= NINE) c = text.charCodeAt(++j);
  }
  if (j < end && (c === LOWER_E || c === UPPER_E)) {
    c = text.charCodeAt(++j);
    if (c === PLUS || c === MINUS) c = text.charCodeAt(++j);
    if (j >= end || c < ZERO || c > NINE) return -1;
    while (j < end && c >= ZERO && c <= NINE) c = text.charCodeAt(++j);
  }
  return j;
}
