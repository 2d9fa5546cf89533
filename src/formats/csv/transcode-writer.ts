/**
 * The output half of the CSV → JSON Lines transcoder (`transcode.ts`): rows given as field spans
 * of the input bytes become JSON Lines bytes — each value between prepared key prefixes
 * (`{"id":"`, `","name":"`…), escaped as `JSON.stringify` escapes strings — in output buffers
 * handed on per batch and taken back once the receiver released them.
 */
import { Buffer } from 'node:buffer';

/** Field flag: the value holds a byte JSON escapes (a control character, `"`, `\`). */
export const F_ESC = 1;
/** Field flag: the value holds a byte ≥ 0x80 (copied as it is; the parser checks it is UTF-8). */
export const F_HIGH = 2;
/** Field flag: a quoted field holding doubled quotes: every second one is dropped. */
export const F_DOUBLED = 4;

/** Bytes of an output buffer (more for a batch that needs more). */
const OUT_BYTES = 256 * 1024;
/** Spare bytes after what `write` writes: a word copy may run up to 3 bytes past its end. */
const SLACK = 4;
/** Released output buffers kept for reuse, at most. */
const OUT_KEPT = 8;

/** The JSON escape of each byte below 0x20 and of `"` and `\`, as `JSON.stringify` writes it. */
const ESCAPES: (Uint8Array | undefined)[] = Array.from({ length: 256 }, (_, c) => {
  if (c >= 0x20 && c !== 0x22 && c !== 0x5c) return undefined;
  return Buffer.from(JSON.stringify(String.fromCharCode(c)).slice(1, -1), 'latin1');
});

/** True when JSON escapes byte `c` inside a string (`JSON.stringify`'s rule for one byte). */
export function jsonEscapes(c: number): boolean {
  return ESCAPES[c] !== undefined;
}

/**
 * The order in which `JSON.stringify` writes the keys of a record with the (unique) column
 * `names`: as indices into `names`. An object puts integer-like keys (`"0"`, `"42"`) first in
 * ascending order, then the others in insertion order, so a header `b,1,a` is written `1, b, a`.
 *
 * @example
 * keyOrder(['b', '1', 'a']); // [1, 0, 2]
 */
export function keyOrder(names: readonly string[]): number[] {
  const at = new Map(names.map((n, i) => [n, i]));
  // `Object.fromEntries` defines own properties (a `__proto__` column included), as the
  // decoder's row constructor does.
  return Object.keys(Object.fromEntries(names.map((n) => [n, 0]))).map((k) => at.get(k) as number);
}

/** Where a batch of rows goes; see `TranscodeSink.rows` in `transcode.ts`. */
export type RowsOut = (bytes: Uint8Array, count: number, release: () => void) => void;

/**
 * Writes rows as JSON Lines into output buffers. Set the layout first ({@link objects} or
 * {@link arrays}); then {@link write} each row, and {@link flush} hands on what was written.
 *
 * @example
 * const w = new JsonLinesRowWriter(0x22);
 * w.objects(['id']);
 * const row = Buffer.from('7');
 * w.write(row, new DataView(row.buffer, row.byteOffset, 1), Int32Array.of(0), Int32Array.of(1), Uint8Array.of(0), 1, 1);
 * w.flush((bytes) => console.log(Buffer.from(bytes).toString())); // {"id":"7"}
 */
export class JsonLinesRowWriter {
  /** Rows written since the last {@link flush}. */
  count = 0;
  private readonly quote: number;
  /** Per output position: the column written there. */
  private order: number[] = [];
  /**
   * The bytes around the values, one after the other: before output position `k`'s value come
   * bytes `[at[k], at[k + 1])` (`{"id":"`, then `","name":"`…), after the last one `[at[n],
   * at[n + 1])` (`"}` and a newline); read through {@link aroundView}, which has {@link SLACK}
   * zero bytes after them for word reads.
   */
  private aroundBytes = 0;
  private aroundView = new DataView(new ArrayBuffer(SLACK));
  private at = new Int32Array(0);
  private out: Buffer = Buffer.allocUnsafeSlow(OUT_BYTES);
  private outView = new DataView(this.out.buffer, this.out.byteOffset, this.out.length);
  /**
   * Output buffers the receiver released, for the next batches. Why: a fresh buffer per batch is
   * native memory that only a garbage collection frees, and the transcoder allocates so few
   * objects that collections are rare: peak RSS rose by ~30 MB on a 200 MB input (measured).
   */
  private readonly spare: Buffer[] = [];
  private o = 0;

  /** `quote`: the CSV quote byte (doubled in a quoted field). */
  constructor(quote: number) {
    this.quote = quote;
  }

  /** Rows are objects keyed by the (unique) column `names`, in `JSON.stringify`'s key order. */
  objects(names: readonly string[]): void {
    this.order = keyOrder(names);
    this.setAround(
      this.order.map((col, k) => `${k === 0 ? '{' : '",'}${JSON.stringify(names[col])}:"`),
      '"}\n',
    );
  }

  /** Rows are arrays of `n` strings (an input without column names). */
  arrays(n: number): void {
    this.order = Array.from({ length: n }, (_, i) => i);
    this.setAround(
      this.order.map((_, k) => (k === 0 ? '["' : '","')),
      '"]\n',
    );
  }

  private setAround(before: readonly string[], after: string): void {
    const parts = [...before, after].map((t) => Buffer.from(t, 'utf8'));
    const around = Buffer.concat(parts);
    this.aroundBytes = around.length;
    const padded = new Uint8Array(around.length + SLACK);
    padded.set(around);
    this.aroundView = new DataView(padded.buffer);
    this.at = new Int32Array(parts.length + 1);
    for (let k = 0; k < parts.length; k++)
      this.at[k + 1] = (this.at[k] as number) + (parts[k] as Buffer).length;
  }

  /**
   * Writes one row: `f` fields (as many as the layout has), field `i` being bytes
   * `[starts[i], ends[i])` of `buf` (`input` is a view of `buf`) with `flags[i]` (`F_*`);
   * `fieldBytes` bounds the JSON of the values (6 bytes per input byte of a flagged field).
   *
   * Bytes that need no escape are copied four at a time (`DataView` words, which V8 compiles to
   * single loads and stores: 40 MB 255 → 210 ms against a byte loop); a word may run past the end
   * of what it copies (the output keeps {@link SLACK} spare bytes, the next write overwrites
   * them), but never past the end of the input.
   */
  write(
    buf: Buffer,
    input: DataView,
    starts: Int32Array,
    ends: Int32Array,
    flags: Uint8Array,
    f: number,
    fieldBytes: number,
  ): void {
    const at = this.at;
    this.reserve(this.aroundBytes + fieldBytes + SLACK);
    const out = this.outView;
    const around = this.aroundView;
    let o = this.o;
    const order = this.order;
    const len = buf.length;
    for (let k = 0; k < f; k++) {
      const j = at[k] as number;
      const n = (at[k + 1] as number) - j;
      for (let t = 0; t < n; t += 4) out.setUint32(o + t, around.getUint32(j + t, true), true);
      o += n;
      const col = order[k] as number;
      const a = starts[col] as number;
      const b = ends[col] as number;
      if (((flags[col] as number) & (F_ESC | F_DOUBLED)) !== 0) {
        o = this.escaped(buf, a, b, (flags[col] as number) & F_DOUBLED, o);
      } else if (b + 3 <= len) {
        for (let t = 0; t < b - a; t += 4) out.setUint32(o + t, input.getUint32(a + t, true), true);
        o += b - a;
      } else {
        for (let i = a; i < b; i++) out.setUint8(o++, buf[i] as number);
      }
    }
    const j = at[f] as number;
    const n = (at[f + 1] as number) - j;
    for (let t = 0; t < n; t += 4) out.setUint32(o + t, around.getUint32(j + t, true), true);
    this.o = o + n;
    this.count++;
  }

  /** Writes the value of bytes `[a, b)` JSON-escaped at `o`, dropping every second quote of a doubled pair. */
  private escaped(buf: Buffer, a: number, b: number, doubled: number, o: number): number {
    const out = this.out;
    const Q = this.quote;
    for (let i = a; i < b; i++) {
      const c = buf[i] as number;
      if (doubled !== 0 && c === Q) i++;
      const esc = ESCAPES[c];
      if (esc === undefined) out[o++] = c;
      else for (let j = 0; j < esc.length; j++) out[o++] = esc[j] as number;
    }
    return o;
  }

  /** Room for `n` more output bytes. */
  private reserve(n: number): void {
    if (this.o + n <= this.out.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(this.out.length * 2, this.o + n));
    this.out.copy(bigger, 0, 0, this.o);
    this.out = bigger;
    this.outView = new DataView(bigger.buffer, bigger.byteOffset, bigger.length);
  }

  /**
   * Hands the rows written since the last call (if any) to `out`, and goes on in another buffer:
   * one the receiver released, or a new one. Its `release`, called once the receiver is done with
   * the bytes (a second call does nothing), lets a later batch reuse that memory.
   */
  flush(out: RowsOut): void {
    if (this.count === 0) return;
    const full = this.out;
    const bytes = full.subarray(0, this.o);
    const n = this.count;
    this.out = this.spare.pop() ?? Buffer.allocUnsafeSlow(OUT_BYTES);
    this.outView = new DataView(this.out.buffer, this.out.byteOffset, this.out.length);
    this.o = 0;
    this.count = 0;
    let released = false;
    out(bytes, n, () => {
      // Once only: a second call must not hand out the buffer twice.
      if (released) return;
      released = true;
      if (this.spare.length < OUT_KEPT) this.spare.push(full);
    });
  }
}
