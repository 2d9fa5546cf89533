/**
 * Where one byte value (the CSV delimiter) occurs in a buffer, found 16 bytes at a time by a tiny
 * WebAssembly SIMD loop into a list of positions that the decoder then walks. Asking
 * `String#indexOf` for every field costs a call per field (≈ 9 ns: 183 ms for the 20 M commas of
 * a 200 MB file); SIMD passes over commas, quotes and LFs plus walking their lists took ~100 ms
 * against ~300 ms by `indexOf`. Inside the CSV row loop the gain is smaller (its own work per
 * field dominates): 4–7 % of the decoder's CPU time projected, 2–4 % whole rows. Without
 * WebAssembly (e.g. `node --jitless`) the list is filled by `Buffer#indexOf` instead: same
 * answers, no speed-up.
 */
import type { Buffer } from 'node:buffer';

/** Bytes searched per pass: one decoding window and its joined tail; memory ≈ 704 KiB. */
const SEGMENT = 128 * 1024;

/** Unsigned LEB128, as the WebAssembly binary format writes integers. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/**
 * The module: `scan(n, out, byte, base)` reads bytes `[0, n)` of its memory (`n` a multiple of
 * 16), writes `base + i` for every `i` whose byte is `byte`, ascending, as i32s from `out`, and
 * returns how many it wrote. Written out by hand (no toolchain); the loop, in text form:
 * `v = v128.load(i); m = i8x16.bitmask(i8x16.eq(v, splat(byte)));
 * while (m) { store(o, base + i + ctz(m)); o += 4; m &= m - 1 }`.
 */
function moduleBytes(pages: number): Uint8Array {
  const SIMD = 0xfd;
  const get = 0x20;
  const set = 0x21;
  // params: 0 n, 1 out, 2 byte, 3 base; locals: 4 i, 5 m, 6 o (i32), 7 splat (v128)
  const body = [
    2,
    3,
    0x7f,
    1,
    0x7b,
    get,
    1,
    set,
    6,
    get,
    2,
    SIMD,
    0x0f,
    set,
    7, // splat = i8x16.splat(byte)
    0x02,
    0x40,
    0x03,
    0x40, // block loop
    get,
    4,
    get,
    0,
    0x4f,
    0x0d,
    1, // br_if (i >= n) out
    get,
    4,
    SIMD,
    0x00,
    0x00,
    0x00, // v128.load align=1 offset=0
    get,
    7,
    SIMD,
    0x23,
    SIMD,
    0x64,
    set,
    5, // m = bitmask(eq(v, splat))
    0x02,
    0x40,
    0x03,
    0x40, // block loop
    get,
    5,
    0x45,
    0x0d,
    1, // br_if (m == 0) out
    get,
    6,
    get,
    3,
    get,
    4,
    0x6a,
    get,
    5,
    0x68,
    0x6a,
    0x36,
    0x02,
    0x00, // store(o, base + i + ctz(m))
    get,
    6,
    0x41,
    4,
    0x6a,
    set,
    6, // o += 4
    get,
    5,
    get,
    5,
    0x41,
    1,
    0x6b,
    0x71,
    set,
    5, // m &= m - 1
    0x0c,
    0,
    0x0b,
    0x0b, // br loop; end; end
    get,
    4,
    0x41,
    16,
    0x6a,
    set,
    4, // i += 16
    0x0c,
    0,
    0x0b,
    0x0b, // br loop; end; end
    get,
    6,
    get,
    1,
    0x6b,
    0x41,
    2,
    0x76, // (o - out) >> 2
    0x0b,
  ];
  const section = (id: number, content: number[]) => [id, ...leb(content.length), ...content];
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, [1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // (i32 ×4) → i32
    ...section(3, [1, 0]),
    ...section(5, [1, 0, ...leb(pages)]),
    ...section(7, [2, ...name('scan'), 0, 0, ...name('mem'), 2, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

type Scan = (n: number, out: number, byte: number, base: number) => number;

/** The part of the WebAssembly API used here (the project's `lib` settings do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { scan: Scan; mem: { buffer: ArrayBuffer } } };
}

/** The SIMD scanner and its memory, or undefined where WebAssembly (or its SIMD) is missing. */
function instantiate(segment: number): { scan: Scan; memory: ArrayBuffer } | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return undefined;
  const pages = Math.ceil((segment + 16 + (segment + 1) * 4) / 65536);
  try {
    // Compiled once per size; every decoder gets its own instance (its own memory), since a
    // sink called from one decoder's row loop may run another decoder.
    let module = compiled.get(pages);
    if (module === undefined) {
      module = new wasm.Module(moduleBytes(pages));
      compiled.set(pages, module);
    }
    const { exports } = new wasm.Instance(module);
    return { scan: exports.scan, memory: exports.mem.buffer };
  } catch {
    return undefined;
  }
}

/**
 * The segment for a {@link ByteIndex} whose first buffer holds `bytes`: the smallest power of two
 * from 4 KiB up to 128 KiB that covers it (a later, longer buffer only takes more scans). Powers
 * of two keep the compiled modules per size few.
 */
export function scanSegment(bytes: number): number {
  let s = 4096;
  while (s < bytes && s < SEGMENT) s *= 2;
  return s;
}

/** Compiled scanner modules by memory size in pages. */
const compiled = new Map<number, object>();

/**
 * Lists where one byte value occurs in a stretch of a buffer: {@link scan} fills {@link pos} with
 * the positions in `[from, end)` (ascending, absolute), followed by `end` itself as a sentinel,
 * and returns `end` (at most {@link SEGMENT} bytes on from `from`, and at most `buf.length`).
 * The caller walks the list with its own cursor and scans on from `end` when it reaches the
 * sentinel before `buf.length`.
 *
 * @example
 * const idx = new ByteIndex(44);
 * const end = idx.scan(Buffer.from('a,b,,c'), 1);
 * [end, ...idx.pos.subarray(0, 4)]; // [6, 1, 3, 4, 6]
 */
export class ByteIndex {
  /** The positions found by the last {@link scan}, then its end. */
  readonly pos: Int32Array;
  private readonly byte: number;
  private readonly segment: number;
  private readonly wasm: { scan: Scan; memory: ArrayBuffer } | undefined;
  /** Copy of the bytes being scanned (WebAssembly memory from 0). */
  private readonly input: Uint8Array;
  private readonly posAt: number;

  /** Finds `byte`; `segment` (a multiple of 16; small in tests) is how far one scan looks. */
  constructor(byte: number, segment = SEGMENT) {
    this.byte = byte;
    this.segment = segment;
    this.wasm = instantiate(segment);
    this.posAt = segment + 16;
    if (this.wasm !== undefined) {
      this.input = new Uint8Array(this.wasm.memory, 0, segment + 16);
      this.pos = new Int32Array(this.wasm.memory, this.posAt, segment + 1);
    } else {
      this.input = new Uint8Array(0);
      this.pos = new Int32Array(segment + 1);
    }
  }

  /** Lists the positions in `[from, end)` of `buf`; returns `end`. */
  scan(buf: Buffer, from: number): number {
    const b = Math.min(from + this.segment, buf.length);
    const n = b - from;
    let count = 0;
    if (n > 0 && this.wasm !== undefined) {
      const input = this.input;
      input.set(buf.subarray(from, b), 0);
      const padded = (n + 15) & ~15;
      // The padding must not match: any other byte value.
      input.fill(this.byte ^ 1, n, padded);
      count = this.wasm.scan(padded, this.posAt, this.byte, from);
    } else {
      for (let i = buf.indexOf(this.byte, from); i !== -1 && i < b; i = buf.indexOf(this.byte, i + 1)) {
        this.pos[count++] = i;
      }
    }
    this.pos[count] = b;
    return b;
  }
}
