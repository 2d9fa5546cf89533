/**
 * Percentile accuracy on 1M samples of a skewed (log-normal) distribution: within the sketch's
 * stated error of the exact value, for one sketch and for 8 merged shard sketches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Aggregate } from './aggregate.ts';
import { hdrPercentile, percentile } from './percentile.ts';

const N = 1_000_000;
const QS = [0.5, 0.99, 0.999];

/** A deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function logNormal(n: number): Float64Array {
  const r = rng(42);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r();
    const v = r();
    const mag = Math.sqrt(-2 * Math.log(u));
    out[i] = Math.exp(3 + 1.5 * mag * Math.cos(2 * Math.PI * v));
    if (i + 1 < n) out[i + 1] = Math.exp(3 + 1.5 * mag * Math.sin(2 * Math.PI * v));
  }
  return out;
}

const samples = logNormal(N);
const sorted = Float64Array.from(samples).sort();

function sketches<A>(
  make: (q: number) => Aggregate<A, number | null>,
  values: ArrayLike<number>,
  shards: number,
) {
  return QS.map((q) => {
    const agg = make(q);
    const parts = Array.from({ length: shards }, () => agg.create());
    for (let i = 0; i < values.length; i++) {
      const k = i % shards;
      parts[k] = agg.add(parts[k] as A, values[i], 0);
    }
    let acc = agg.create();
    for (const p of parts) acc = agg.merge(acc, p);
    return { q, value: agg.result(acc) as number };
  });
}

/** Relative error against the nearest of the exact values at the two ranks around q·(n−1). */
function relError(q: number, value: number, exact: Float64Array): number {
  const rank = q * (exact.length - 1);
  const lo = exact[Math.floor(rank)] as number;
  const hi = exact[Math.ceil(rank)] as number;
  if (value >= lo && value <= hi) return 0;
  return Math.min(Math.abs(value - lo) / lo, Math.abs(value - hi) / hi);
}

for (const shards of [1, 8]) {
  test(`DDSketch p50/p99/p99.9 of 1M log-normal samples within 1 % (${shards} shard${shards > 1 ? 's merged' : ''})`, () => {
    for (const { q, value } of sketches((q) => percentile('x', q), samples, shards)) {
      const err = relError(q, value, sorted);
      assert.ok(err <= 0.01, `p${q * 100}: ${value} is ${(err * 100).toFixed(3)} % off`);
    }
  });
}

test('HDR histogram p50/p99/p99.9 within 1 % (8 shards merged)', () => {
  const ints = samples.map((x) => Math.round(x * 100));
  const exact = Float64Array.from(ints).sort();
  for (const { q, value } of sketches((q) => hdrPercentile('x', q), ints, 8)) {
    const err = relError(q, value, exact);
    assert.ok(err <= 0.01, `p${q * 100}: ${value} is ${(err * 100).toFixed(3)} % off`);
  }
});

test('a sketch that is only a little off fails the check (the bound is not vacuous)', () => {
  const exactP99 = sorted[Math.floor(0.99 * (N - 1))] as number;
  assert.ok(relError(0.99, exactP99 * 1.02, sorted) > 0.01);
});
