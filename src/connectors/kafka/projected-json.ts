/**
 * Projected JSON message values: when every step after a `kafka` source reads a known set of
 * top-level fields (`core/projection.ts`), a value is scanned once as bytes and only those fields
 * become JavaScript values — no string of the whole value, no strings or numbers for the fields
 * nobody reads. A flat object of strings, numbers and literals is the case it takes; whatever it
 * is not sure of (a wanted string with an escape, a nested object or array, a control character,
 * a number JSON does not allow, anything after the closing brace) makes {@link ProjectedJson.parse}
 * return `undefined`, and the caller decodes the whole value as before and picks the fields
 * ({@link pickFields}), so results and errors are those of `JSON.parse`.
 */
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
} from '../../formats/json-bytes.ts';

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number) => c >= ZERO && c <= NINE;

/** The end of the JSON number starting at `i`, or -1 when the bytes there are not one. */
function numberEnd(b: Buffer, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  if (i >= end || !isDigit(b[i] as number)) return -1;
  if (b[i] === ZERO) i++;
  else while (i < end && isDigit(b[i] as number)) i++;
  if (i < end && b[i] === DOT) {
    i++;
    if (i >= end || !isDigit(b[i] as number)) return -1;
    while (i < end && isDigit(b[i] as number)) i++;
  }
  if (i < end && (b[i] === LOWER_E || b[i] === UPPER_E)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    if (i >= end || !isDigit(b[i] as number)) return -1;
    while (i < end && isDigit(b[i] as number)) i++;
  }
  return i;
}

/** Whether `b[at..at+lit.length)` spells the ASCII literal `lit`. */
function literalAt(b: Buffer, at: number, lit: string): boolean {
  for (let k = 0; k < lit.length; k++) if (b[at + k] !== lit.charCodeAt(k)) return false;
  return true;
}

/**
 * The top-level fields of JSON object values that a source's consumers read.
 *
 * @example
 * const p = new ProjectedJson(['country', 'amount']);
 * p.parse(Buffer.from('{"id":1,"country":"DE","amount":"2.50","note":"…"}')); // { country: 'DE', amount: '2.50' }
 */
export class ProjectedJson {
  /** The wanted field names, and each as UTF-8 bytes for comparing keys without decoding them. */
  readonly fields: readonly string[];
  private readonly keys: readonly Buffer[];

  constructor(fields: readonly string[]) {
    this.fields = fields;
    this.keys = fields.map((f) => Buffer.from(f, 'utf8'));
  }

  /** The index in {@link fields} of the key in `b[start..end)`, or -1. */
  private wanted(b: Buffer, start: number, end: number): number {
    const n = end - start;
    for (let k = 0; k < this.keys.length; k++) {
      const key = this.keys[k] as Buffer;
      if (key.length !== n) continue;
      let j = 0;
      while (j < n && key[j] === b[start + j]) j++;
      if (j === n) return k;
    }
    return -1;
  }

  /**
   * The object of the wanted fields of the JSON object in `b`, or `undefined` when this scan is
   * not sure (the caller then decodes `b` whole, which also reports invalid JSON).
   */
  parse(b: Buffer): Record<string, unknown> | undefined {
    const end = b.length;
    let i = 0;
    while (i < end && isSpace(b[i] as number)) i++;
    if (b[i] !== OPEN_BRACE) return undefined;
    i++;
    const out: Record<string, unknown> = {};
    let first = true;
    for (;;) {
      while (i < end && isSpace(b[i] as number)) i++;
      if (b[i] === CLOSE_BRACE && first) {
        i++;
        break;
      }
      if (b[i] !== QUOTE) return undefined;
      const keyStart = ++i;
      while (i < end && b[i] !== QUOTE && b[i] !== BACKSLASH && (b[i] as number) >= 0x20) i++;
      if (b[i] !== QUOTE) return undefined; // an escaped key, a control character, or the end
      const field = this.wanted(b, keyStart, i);
      i++;
      while (i < end && isSpace(b[i] as number)) i++;
      if (b[i] !== COLON) return undefined;
      i++;
      while (i < end && isSpace(b[i] as number)) i++;
      const c = b[i];
      let value: unknown;
      if (c === QUOTE) {
        const s = ++i;
        for (;;) {
          const d = b[i];
          if (d === undefined || d < 0x20) return undefined;
          if (d === QUOTE) break;
          if (d === BACKSLASH) {
            if (field >= 0) return undefined; // JSON.parse decodes escapes
            i += 2;
            continue;
          }
          i++;
        }
        if (field >= 0) value = b.toString('utf8', s, i);
        i++;
      } else if (c === MINUS || (c !== undefined && isDigit(c))) {
        const e = numberEnd(b, i, end);
        if (e < 0) return undefined;
        if (field >= 0) value = Number(b.toString('latin1', i, e));
        i = e;
      } else if (c === 0x74 && literalAt(b, i, 'true')) {
        value = true;
        i += 4;
      } else if (c === 0x66 && literalAt(b, i, 'false')) {
        value = false;
        i += 5;
      } else if (c === 0x6e && literalAt(b, i, 'null')) {
        value = null;
        i += 4;
      } else return undefined; // an object, an array, or not JSON
      if (field >= 0) out[this.fields[field] as string] = value;
      first = false;
      while (i < end && isSpace(b[i] as number)) i++;
      if (b[i] === COMMA) {
        i++;
        while (i < end && isSpace(b[i] as number)) i++;
        if (b[i] !== QUOTE) return undefined;
        continue;
      }
      if (b[i] !== CLOSE_BRACE) return undefined;
      i++;
      break;
    }
    while (i < end && isSpace(b[i] as number)) i++;
    return i === end ? out : undefined;
  }
}

/** The wanted `fields` of a decoded value (an object); any other value as it is. */
export function pickFields(value: unknown, fields: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value))
    return value;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!Object.hasOwn(value, f)) continue;
    const v = (value as Record<string, unknown>)[f];
    // `out.__proto__ = v` would set the prototype, not a field (JSON.parse makes it a field).
    if (f === '__proto__')
      Object.defineProperty(out, f, { value: v, enumerable: true, writable: true, configurable: true });
    else out[f] = v;
  }
  return out;
}
