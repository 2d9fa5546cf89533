/**
 * `distinct(field)`: approximate distinct count with HyperLogLog.
 *
 * Written here rather than taken from npm: the packages there (`hyperloglog`, `hyperloglog32`,
 * `hyperlolo`, `node-hll`) are unmaintained for years, use the deprecated `new Buffer`, need
 * node-gyp, or lack a small-set mode; HyperLogLog itself is ~100 lines. This one is exact for
 * small sets (a set of hashes up to {@link SPARSE_LIMIT}), then switches to 2^p one-byte
 * registers (standard error 1.04/√(2^p): 1.6 % at the default p = 12, 4 KiB per window).
 */
import { type Aggregate, SKIP } from './aggregate.ts';

/** Distinct hashes kept exactly before switching to registers. */
export const SPARSE_LIMIT = 256;

/** cyrb53: a fast 53-bit string hash (public domain, bryc); 53 bits keep collisions negligible. */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A HyperLogLog sketch: a set of hashes while small, registers once large. */
export interface Hll {
  readonly p: number;
  sparse: Set<number> | undefined;
  regs: Uint8Array | undefined;
}

function bitLength(x: number): number {
  const hi = Math.floor(x / 4294967296);
  return hi > 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(x >>> 0);
}

function addHashToRegs(regs: Uint8Array, p: number, h: number): void {
  const m = 1 << p;
  const idx = h % m;
  const rest = Math.floor(h / m);
  const width = 53 - p;
  const rank = width - bitLength(rest) + 1;
  if (rank > (regs[idx] as number)) regs[idx] = rank;
}

function densify(s: Hll): Uint8Array {
  const regs = new Uint8Array(1 << s.p);
  for (const h of s.sparse ?? []) addHashToRegs(regs, s.p, h);
  s.sparse = undefined;
  s.regs = regs;
  return regs;
}

/** Adds one hash to the sketch. */
export function hllAdd(s: Hll, h: number): void {
  if (s.sparse !== undefined) {
    s.sparse.add(h);
    if (s.sparse.size > SPARSE_LIMIT) densify(s);
  } else addHashToRegs(s.regs as Uint8Array, s.p, h);
}

/** Merges `b` into `a` (same precision); `b` is unchanged. */
export function hllMerge(a: Hll, b: Hll): Hll {
  if (a.p !== b.p) throw new RangeError(`cannot merge HyperLogLog sketches of precision ${a.p} and ${b.p}`);
  if (b.sparse !== undefined) {
    for (const h of b.sparse) hllAdd(a, h);
    return a;
  }
  const ra = a.regs ?? densify(a);
  const rb = b.regs as Uint8Array;
  for (let i = 0; i < ra.length; i++) if ((rb[i] as number) > (ra[i] as number)) ra[i] = rb[i] as number;
  return a;
}

/** The estimated number of distinct values (exact while the sketch is sparse). */
export function hllCount(s: Hll): number {
  if (s.sparse !== undefined) return s.sparse.size;
  const regs = s.regs as Uint8Array;
  const m = regs.length;
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < m; i++) {
    const r = regs[i] as number;
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / m);
  const e = (alpha * m * m) / sum;
  // Linear counting is more accurate while many registers are still empty.
  if (e <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
  return Math.round(e);
}

/**
 * `distinct(field[, precision])`: approximate count of distinct values (compared as strings,
 * so `1` and `"1"` are one value). Exact up to {@link SPARSE_LIMIT} values. Null/absent values
 * are not counted.
 *
 * @example
 * distinct('userId', 14); // 16 KiB registers, ~0.8 % standard error
 */
export function distinct(field: string, precision = 12): Aggregate<Hll, number> {
  if (!Number.isInteger(precision) || precision < 4 || precision > 18)
    throw new RangeError(`distinct precision must be a whole number from 4 to 18, got ${precision}`);
  const p = precision;
  return {
    fn: 'distinct',
    field,
    // A set of a few hashes is ~0.2 KB, 255 of them ~9 KB, the registers 2^p bytes (4 KiB at p = 12);
    // most windows see few distinct values (1M windows of `percentile` + `distinct` took 2.9 GB).
    bytes: Math.min(1 << p, 1024),
    create: () => ({ p, sparse: new Set<number>(), regs: undefined }),
    prepare: (v) => (v === null || v === undefined ? SKIP : hash53(typeof v === 'string' ? v : String(v))),
    add(acc, h) {
      hllAdd(acc, h as number);
      return acc;
    },
    merge: hllMerge,
    result: hllCount,
    save: (acc) =>
      acc.sparse !== undefined ? { p, sparse: [...acc.sparse] } : { p, regs: acc.regs?.slice() },
    load(state) {
      const s = state as { p: number; sparse?: number[]; regs?: Uint8Array };
      return {
        p: s.p,
        sparse: s.sparse ? new Set(s.sparse) : undefined,
        regs: s.regs ? s.regs.slice() : undefined,
      };
    },
  };
}
