/**
 * A faster `JSON.parse` for JSON Lines whose lines are objects of a few recurring shapes — the
 * common case of a log or an export: `{"id":1,"ts":"…","status":"paid",…}` again and again,
 * maybe with an optional key or two, maybe with nested objects (`"user":{"id":7,…}`).
 *
 * Written by hand because no library does this: JSON parsers on npm are general (and slower
 * than V8's `JSON.parse`). The trick is that a known shape needs almost no parsing: the keys
 * are compared, not read (against a trie of the key sequences seen, so optional keys and a few
 * record types cost nothing extra); numbers and strings without escapes are cut straight out of the
 * text; the object is built by a function compiled for the shape (an object literal, so V8
 * gives every record the same hidden class at once). On the `jsonl` benchmark's lines the decoder
 * runs 1.3–1.7× faster with it than with `JSON.parse` alone (bench/README.md).
 *
 * It never guesses: whatever it is not sure of — another key, an array, whitespace inside a
 * number, an escape it cannot decode, a control character, anything after the closing brace —
 * makes {@link JsonShapes.parse} return `undefined`, and the caller runs `JSON.parse` on the
 * line, which gives the exact value or the exact error. A fuzz test checks it agrees with
 * `JSON.parse` on random and mutated lines.
 */

import { isUtf8 } from 'node:buffer';
import { parseJson } from './json.ts';
import {
  BACKSLASH,
  CLOSE_BRACE,
  COLON,
  COMMA,
  DOT,
  LOWER_E,
  MINUS,
  NINE,
  OPEN_BRACE,
  PLUS,
  QUOTE,
  UPPER_E,
  ZERO,
} from './json-bytes.ts';

/** Most distinct key sequences (shapes) learned per input. */
const MAX_SHAPES = 64;
/** Most keys, over all shapes (a trie node per key, shared by shapes with the same start). */
const MAX_KEY_NODES = 4096;
/** Deepest object nesting learned (the line's object is depth 0). */
const MAX_DEPTH = 4;
/** Most keys in one shape (wider objects go to `JSON.parse`). */
const MAX_KEYS = 256;
/** Longest wait, in values, between two attempts to learn from values with no learnable shape. */
const MAX_LEARN_BACKOFF = 1024;
/** Lines per check of how often the shortcut is taken. */
const WINDOW = 4096;
/** Below this share of lines taken in a window, the shortcut pauses (its misses cost time). */
const MIN_TAKEN_SHARE = 0.25;
/** Lines a paused shortcut lets go by before it tries again. */
const PAUSE_LINES = 16 * WINDOW;
/**
 * Shortest string value copied out of the source bytes. V8 copies shorter slices itself;
 * longer ones would be views ("sliced strings") that keep the whole decoded piece alive for as
 * long as the record lives, so those are decoded again from the bytes instead.
 */
export const COPY_FROM = 13;

/** The space character, JSON whitespace (for the scanners that reuse these readers). */
export const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
/** JSON numbers with at most this many integer digits and no fraction are summed exactly. */
const EXACT_DIGITS = 15;
/** A key that is written the same in JSON and in a JavaScript object literal, and is no index. */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * A key in a trie of learned shapes: the path from the root spells a shape's keys in order.
 * `build` is set where a shape ends: it makes the object from the values in key order.
 * `object` is the trie of the shapes of objects seen as this key's value.
 */
interface KeyNode {
  /** The key as written in JSON, with its quotes: `"id"`. */
  readonly quoted: string;
  readonly next: KeyNode[];
  build: ((values: unknown[]) => Record<string, unknown>) | undefined;
  object: KeyNode | undefined;
}

const newNode = (quoted: string): KeyNode => ({ quoted, next: [], build: undefined, object: undefined });

/**
 * The shapes of JSON objects seen so far in one input, and a parser for lines of those shapes.
 * Feed it every value `JSON.parse` produced ({@link learn}); ask it first ({@link parse}).
 *
 * @example
 * const shapes = new JsonShapes();
 * const text = '{"a":1,"b":"x"}\n{"a":2,"b":"y"}';
 * shapes.learn(JSON.parse(text.slice(0, 15)));
 * shapes.parse(text, 16, 31, Buffer.from(text), 0); // { a: 2, b: 'y' }
 */
export class JsonShapes {
  private readonly root = newNode('');
  private keyNodes = 0;
  private shapes = 0;
  /** Values to let pass before the next attempt to learn; doubles after each failed attempt. */
  private learnBackoff = 1;
  private learnWait = 0;
  /** Lines tried and taken in the current window, and lines left while paused. */
  private tried = 0;
  private taken = 0;
  private paused = 0;
  /** The values of the object being parsed at each depth. */
  private readonly stack: unknown[][] = Array.from({ length: MAX_DEPTH + 1 }, () => []);

  /**
   * Parses `text[start..end)`, one line, when it is an object of a learned shape; returns
   * `undefined` when it is not (or not surely), and the caller must use `JSON.parse`.
   * The line's UTF-8 bytes must be in `bytes` from `bytesAt + start` on: long string values
   * are decoded again from them, so the result never holds a view of `text`.
   */
  parse(text: string, start: number, end: number, bytes: Buffer, bytesAt: number): unknown {
    if (this.paused > 0) {
      this.paused--;
      return undefined;
    }
    if (this.root.next.length === 0) return undefined;
    // Keys, numbers, literals and separators are ASCII, so only string values move the byte
    // position away from the character position; `string` keeps `cursor.bytesAt` in step.
    cursor.bytesAt = bytesAt;
    let value = parseObject(this.root, text, skipSpace(text, start, end), end, bytes, this.stack, 0);
    if (value !== undefined && skipSpace(text, cursor.index, end) !== end) value = undefined;
    if (value !== undefined) this.taken++;
    if (++this.tried === WINDOW) {
      // Input that rarely fits a learned shape (keys that differ per line, arrays): trying
      // costs more than it saves, so try again only much later.
      if (this.taken < WINDOW * MIN_TAKEN_SHARE) this.paused = PAUSE_LINES;
      this.tried = 0;
      this.taken = 0;
    }
    return value;
  }

  /**
   * Shows a value `JSON.parse` returned for a line that {@link parse} did not take: an object
   * whose keys are plain names and whose values are strings, numbers, booleans, null or such
   * objects (up to 4 deep; no arrays) is learned as a shape, within the limits on shapes and keys.
   */
  learn(value: unknown): void {
    if (this.paused > 0) return;
    if (this.learnWait > 0) {
      this.learnWait--;
      return;
    }
    if (this.addShape(this.root, value, 0)) {
      this.learnBackoff = 1;
    } else {
      // Input whose values have no shape it can learn (arrays) is checked less and less often.
      this.learnWait = this.learnBackoff;
      this.learnBackoff = Math.min(this.learnBackoff * 2, MAX_LEARN_BACKOFF);
    }
  }

  /** Adds the shape of an object to the trie at `root`; false when it has none or a limit is hit. */
  private addShape(root: KeyNode, value: unknown, depth: number): boolean {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    if (this.shapes >= MAX_SHAPES || depth > MAX_DEPTH) return false;
    const keys = Object.keys(value);
    if (keys.length === 0 || keys.length > MAX_KEYS) return false;
    for (const key of keys) {
      if (!PLAIN_KEY.test(key) || key === '__proto__') return false;
      const v = (value as Record<string, unknown>)[key];
      if (Array.isArray(v)) return false;
    }
    let node = root;
    for (const key of keys) {
      const quoted = JSON.stringify(key);
      let child = node.next.find((n) => n.quoted === quoted);
      if (child === undefined) {
        if (this.keyNodes >= MAX_KEY_NODES) return false;
        child = newNode(quoted);
        node.next.push(child);
        this.keyNodes++;
      }
      const v = (value as Record<string, unknown>)[key];
      if (v !== null && typeof v === 'object') {
        child.object ??= newNode('');
        if (!this.addShape(child.object, v, depth + 1)) return false;
      }
      node = child;
    }
    if (node.build === undefined) {
      node.build = compileBuild(keys);
      this.shapes++;
    }
    return true;
  }
}

/**
 * Parses the object starting at `text[at]` (`{`) when its keys follow a path of the trie at
 * `root` to a learned shape; sets `cursor.index` after its `}`. Undefined when it is not sure.
 */
function parseObject(
  root: KeyNode,
  text: string,
  at: number,
  end: number,
  bytes: Buffer,
  stack: unknown[][],
  depth: number,
): unknown {
  if (text.charCodeAt(at) !== OPEN_BRACE) return undefined;
  const values = stack[depth]!;
  let node = root;
  let i = at;
  for (let k = 0; ; k++) {
    i = skipSpace(text, i + 1, end);
    const key = nextKey(node, text, i);
    if (key === undefined) return undefined;
    node = key;
    i = skipSpace(text, i + key.quoted.length, end);
    if (text.charCodeAt(i) !== COLON) return undefined;
    i = skipSpace(text, i + 1, end);
    const c = text.charCodeAt(i);
    let next: number;
    if (c === QUOTE) {
      next = string(text, i, end, bytes, values, k);
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      next = number(text, i, end, values, k);
    } else if (text.startsWith('true', i)) {
      values[k] = true;
      next = i + 4;
    } else if (text.startsWith('false', i)) {
      values[k] = false;
      next = i + 5;
    } else if (text.startsWith('null', i)) {
      values[k] = null;
      next = i + 4;
    } else if (c === OPEN_BRACE && key.object !== undefined && depth < MAX_DEPTH) {
      const inner = parseObject(key.object, text, i, end, bytes, stack, depth + 1);
      if (inner === undefined) return undefined;
      values[k] = inner;
      next = cursor.index;
    } else {
      return undefined;
    }
    if (next < 0) return undefined;
    i = skipSpace(text, next, end);
    const separator = text.charCodeAt(i);
    if (separator === CLOSE_BRACE) {
      const build = node.build;
      if (build === undefined) return undefined;
      cursor.index = i + 1;
      // The object literal copies the values, so `values` is free for the next object.
      return build(values);
    }
    if (separator !== COMMA) return undefined;
  }
}

/** The child of `node` whose quoted key starts at `text[at]`, or undefined. */
function nextKey(node: KeyNode, text: string, at: number): KeyNode | undefined {
  const next = node.next;
  for (let n = 0; n < next.length; n++) {
    const child = next[n]!;
    // The quoted key ends with its quote, so `"id"` cannot match the start of `"idx"`.
    if (text.startsWith(child.quoted, at)) return child;
  }
  return undefined;
}

/** Decodes `this[start..end)`: a copy, never a view of a larger string. */
type Decode = (this: Buffer, start: number, end: number) => string;
const bufferMethods = Buffer.prototype as unknown as { latin1Slice?: Decode; utf8Slice?: Decode };
// Buffer's own latin1Slice / utf8Slice (what toString calls after checking its arguments) save
// a third of the cost of a copy (measured: 9 % of the decoder's time went to toString's wrapper
// and 9 % to the copy). They are not documented, so toString stands in where they are missing.
export const latin1Slice: Decode =
  bufferMethods.latin1Slice ??
  function (this: Buffer, start, end) {
    return this.toString('latin1', start, end);
  };
export const utf8Slice: Decode =
  bufferMethods.utf8Slice ??
  function (this: Buffer, start, end) {
    return this.toString('utf8', start, end);
  };

/**
 * Where the line being parsed is in its bytes (`bytes[cursor.bytesAt + i]` is the first byte
 * of `text[i]` for the `i` reached so far), and where the last object parsed ended.
 */
export const cursor = { bytesAt: 0, index: 0 };

/**
 * Reads the string starting at the quote `text[at]` into `values[k]`; returns the index after
 * its closing quote, or -1 when it is not sure (a raw control character, which JSON forbids in
 * a string, or an escape JSON rejects).
 */
export function string(
  text: string,
  at: number,
  end: number,
  bytes: Buffer,
  values: unknown[],
  k: number,
): number {
  // One pass in JavaScript finds the end and checks every character (faster here than
  // indexOf plus a regular expression for control characters).
  let j = at + 1;
  let c = text.charCodeAt(j);
  let high = 0;
  while (c >= SPACE && c !== QUOTE && c !== BACKSLASH) {
    high |= c;
    c = text.charCodeAt(++j);
  }
  if (j >= end) return -1;
  if (c === BACKSLASH) return escapedString(text, at, j, end, high, values, k);
  if (c !== QUOTE) return -1;
  const from = cursor.bytesAt + at + 1;
  if (high < 0x80) {
    values[k] =
      j - at - 1 < COPY_FROM ? text.slice(at + 1, j) : latin1Slice.call(bytes, from, from + j - at - 1);
  } else {
    const extra = extraUtf8Bytes(text, at + 1, j);
    values[k] =
      j - at - 1 < COPY_FROM ? text.slice(at + 1, j) : utf8Slice.call(bytes, from, from + j - at - 1 + extra);
    cursor.bytesAt += extra;
  }
  return j + 1;
}

/**
 * {@link string} for a string with an escape (its first backslash at `text[from]`): found by
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
  if (high >= 0x80) cursor.bytesAt += extraUtf8Bytes(text, at + 1, j);
  return j + 1;
}

/** How many more UTF-8 bytes than UTF-16 code units `text[from..to)` takes. */
function extraUtf8Bytes(text: string, from: number, to: number): number {
  let extra = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    // 2 bytes below U+0800; 3 above; a surrogate pair (2 units) is 4 bytes: 1 extra per unit.
    if (c >= 0x80) extra += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdfff ? 1 : 2;
  }
  return extra;
}

/**
 * `JSON.parse` of UTF-8 bytes holding one JSON value (a Kafka message value, say), through
 * `shapes` when the value is of a shape seen before (at most 5 levels deep). Throws what
 * `JSON.parse` throws, and a `SLUICE_PARSE` error for a value nesting deeper than 512 levels
 * (see `parseJson`), which no later step could walk. Bytes that
 * are not valid UTF-8 go to `JSON.parse` as decoded (bad sequences become U+FFFD), as before.
 *
 * @example
 * const shapes = new JsonShapes();
 * parseJsonBytes(Buffer.from('{"a":1}'), shapes); // { a: 1 } (JSON.parse; shape learned)
 * parseJsonBytes(Buffer.from('{"a":2}'), shapes); // { a: 2 } (the shortcut)
 */
export function parseJsonBytes(bytes: Buffer, shapes: JsonShapes): unknown {
  const text = bytes.toString('utf8');
  // The shortcut copies long strings from the bytes, so they must be exactly the text's UTF-8.
  if (!text.includes('\uFFFD') || isUtf8(bytes)) {
    const value = shapes.parse(text, 0, text.length, bytes, 0);
    if (value !== undefined) return value;
  }
  const value = parseJson(text);
  shapes.learn(value);
  return value;
}

/**
 * Compiles the function that builds an object of `keys` from values in that order. `keys` must
 * not hold `__proto__` (an object literal would set the prototype): shapes take plain names only
 * (PLAIN_KEY), and `JsonProjection.create` refuses it.
 */
export function compileBuild(keys: readonly string[]): (values: unknown[]) => Record<string, unknown> {
  // An object literal gives every record of the shape the same hidden class at once. Each key is
  // written as a JSON string literal (a valid, inert property name), so the generated source
  // holds nothing from the input but those names.
  const body = `return {${keys.map((key, i) => `${JSON.stringify(key)}: v[${i}]`).join(', ')}};`;
  return new Function('v', body) as (values: unknown[]) => Record<string, unknown>;
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
export function number(text: string, at: number, end: number, values: unknown[], k: number): number {
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
