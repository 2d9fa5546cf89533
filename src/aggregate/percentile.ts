/**
 * Percentiles with mergeable sketches: `percentile(field, q)` with DDSketch
 * (`@datadog/sketches-js`, relative value error ≤ 1 % by default) and `hdrPercentile(field, q)`
 * with an HDR histogram (`hdr-histogram-js`, integers, 3 significant digits by default).
 */

import { createRequire } from 'node:module';
import type { DDSketch } from '@datadog/sketches-js';
import type * as Hdr from 'hdr-histogram-js';
import { Decimal } from '../core/decimal.ts';
import { type Aggregate, badValue, SKIP } from './aggregate.ts';

// The sketch libraries are loaded on the first `percentile`/`hdrPercentile`, not when this module
// is: `hdr-histogram-js` alone adds ~20 MB to a process's RSS, which a job without percentiles
// (most of them) should not pay. Both are CommonJS, so a synchronous `require` loads them.
const require = createRequire(import.meta.url);
let sketchesLib: typeof import('@datadog/sketches-js') | undefined;
let hdrLib: typeof Hdr | undefined;
const sketches = () => {
  sketchesLib ??= require('@datadog/sketches-js') as typeof import('@datadog/sketches-js');
  return sketchesLib;
};
const hdrHistogram = () => {
  hdrLib ??= require('hdr-histogram-js') as typeof Hdr;
  return hdrLib;
};

function checkQuantile(fn: string, q: number): void {
  if (!(typeof q === 'number' && q >= 0 && q <= 1))
    throw new RangeError(`${fn} quantile must be a number from 0 to 1 (0.99 for p99), got ${q}`);
}

/**
 * The number a value is sketched as: a number, a numeric string, or a {@link Decimal} as its
 * nearest double (a sketch is approximate by design: its relative accuracy is far coarser than
 * the double's 1e-16, so an amount loses nothing the quantile could show).
 */
function finiteNumber(fn: string, field: string, v: unknown): number {
  const n =
    typeof v === 'number'
      ? v
      : v instanceof Decimal
        ? v.toNumber()
        : typeof v === 'string' && v.length > 0 && v.trim() === v
          ? Number(v)
          : Number.NaN;
  if (!Number.isFinite(n)) throw badValue(fn, field, v, 'a finite number or a numeric string');
  return n;
}

interface StoreState {
  bins: number[];
  count: number;
  minKey: number;
  maxKey: number;
  offset: number;
}

type Store = DDSketch['store'];

function saveStore(s: Store): StoreState {
  return { bins: s.bins.slice(), count: s.count, minKey: s.minKey, maxKey: s.maxKey, offset: s.offset };
}

function loadStore(s: Store, st: StoreState): void {
  s.bins = st.bins.slice();
  s.count = st.count;
  s.minKey = st.minKey;
  s.maxKey = st.maxKey;
  s.offset = st.offset;
}

/**
 * Merges sketch `b` into `a`. Done here rather than with `DDSketch.merge`, which (in 2.1.1)
 * forgets the negative-value store; the stores' own merges are correct.
 */
export function mergeSketch(a: DDSketch, b: DDSketch): DDSketch {
  if (!a.mergeable(b)) throw new RangeError('cannot merge DDSketches of different relative accuracy');
  if (b.count === 0) return a;
  a.store.merge(b.store);
  a.negativeStore.merge(b.negativeStore);
  a.zeroCount += b.zeroCount;
  a.count += b.count;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  return a;
}

/**
 * `percentile(field, q[, relativeAccuracy])`: the q-quantile (0 ≤ q ≤ 1) of a numeric field,
 * from a DDSketch: the answer is within `relativeAccuracy` (default 0.01 = 1 %) of the true
 * value at that rank, for any distribution, and sketches merge exactly. Null for an empty window.
 * Saved without protobuf (the library's `toProto` needs `protobufjs`): the stores' bins as arrays.
 *
 * @example
 * percentile('risk', 0.99);
 */
export function percentile(
  field: string,
  q: number,
  relativeAccuracy = 0.01,
): Aggregate<DDSketch, number | null> {
  checkQuantile('percentile', q);
  if (!(relativeAccuracy > 0 && relativeAccuracy < 1))
    throw new RangeError(`percentile relative accuracy must be between 0 and 1, got ${relativeAccuracy}`);
  const Sketch = sketches().DDSketch;
  return {
    fn: 'percentile',
    field,
    // Measured: an empty DDSketch (two stores of preallocated bins) takes ~2.2 KB, a full one ~2.4 KB.
    bytes: 2400,
    create: () => new Sketch({ relativeAccuracy }),
    prepare: (v) => (v === null || v === undefined ? SKIP : finiteNumber('percentile', field, v)),
    add(acc, v) {
      acc.accept(v as number);
      return acc;
    },
    merge: mergeSketch,
    result: (acc) => (acc.count === 0 ? null : acc.getValueAtQuantile(q)),
    save: (acc) => ({
      zeroCount: acc.zeroCount,
      min: acc.min,
      max: acc.max,
      count: acc.count,
      sum: acc.sum,
      pos: saveStore(acc.store),
      neg: saveStore(acc.negativeStore),
    }),
    load(state) {
      const s = state as {
        zeroCount: number;
        min: number;
        max: number;
        count: number;
        sum: number;
        pos: StoreState;
        neg: StoreState;
      };
      const d = new Sketch({ relativeAccuracy });
      loadStore(d.store, s.pos);
      loadStore(d.negativeStore, s.neg);
      d.zeroCount = s.zeroCount;
      d.min = s.min;
      d.max = s.max;
      d.count = s.count;
      d.sum = s.sum;
      return d;
    },
  };
}

/** The HDR histogram type of `hdr-histogram-js`. */
export type HdrHistogram = ReturnType<typeof Hdr.build>;

/**
 * `hdrPercentile(field, q[, digits])`: the q-quantile of a non-negative integer field (latencies
 * in ms or µs; a fraction is rounded) from an HDR histogram with `digits` significant decimal
 * digits (1–5, default 3: values within 0.1 %). Uses the library's pure-JS histogram, so nothing
 * needs an asynchronous WebAssembly start. Null for an empty window.
 *
 * @example
 * hdrPercentile('latencyMs', 0.999);
 */
export function hdrPercentile(field: string, q: number, digits = 3): Aggregate<HdrHistogram, number | null> {
  checkQuantile('hdrPercentile', q);
  if (!Number.isInteger(digits) || digits < 1 || digits > 5)
    throw new RangeError(
      `hdrPercentile significant digits must be a whole number from 1 to 5, got ${digits}`,
    );
  const hdr = hdrHistogram();
  const build = () =>
    hdr.build({ numberOfSignificantValueDigits: digits as 1 | 2 | 3 | 4 | 5, useWebAssembly: false });
  return {
    fn: 'hdrPercentile',
    field,
    // Measured at 3 digits: ~1 KB empty, ~9 KB once values spread over a few hundred buckets.
    bytes: 1000 * digits,
    create: build,
    prepare(v) {
      if (v === null || v === undefined) return SKIP;
      const n = Math.round(finiteNumber('hdrPercentile', field, v));
      if (n < 0 || !Number.isSafeInteger(n))
        throw badValue('hdrPercentile', field, v, 'a non-negative number');
      return n;
    },
    add(acc, v) {
      acc.recordValue(v as number);
      return acc;
    },
    merge(a, b) {
      a.add(b);
      return a;
    },
    result: (acc) => (acc.totalCount === 0 ? null : acc.getValueAtPercentile(q * 100)),
    save: (acc) => hdr.encodeIntoCompressedBase64(acc),
    load(state) {
      const h = build();
      h.add(hdr.decodeFromCompressedBase64(state as string, 32, false));
      return h;
    },
  };
}
