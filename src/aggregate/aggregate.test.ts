import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Decimal } from '../core/decimal.ts';
import { type Aggregate, aggregateAll, SKIP } from './aggregate.ts';
import { count, ema, max, mean, min, sum } from './basic.ts';
import { parseDecimal } from './decimal.ts';
import { distinct, SPARSE_LIMIT } from './hll.ts';
import { hdrPercentile, percentile } from './percentile.ts';
import { RollingWindow, rollingMean } from './rolling.ts';

/** Splits `xs` at the cut points into consecutive parts. */
function split<T>(xs: readonly T[], cuts: readonly number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (xs.length + 1)))].sort((a, b) => a - b);
  const parts: T[][] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(xs.slice(prev, p));
    prev = p;
  }
  parts.push(xs.slice(prev));
  return parts;
}

/** Folds each part, round-trips it through save/structuredClone/load, merges them in a shuffled order. */
function mergedResult<A, R>(
  agg: Aggregate<A, R>,
  values: unknown[],
  times: number[],
  cuts: number[],
  order: number[],
): R {
  const idx = values.map((_, i) => i);
  const parts = split(idx, cuts).map((part) =>
    aggregateAll(
      agg,
      part.map((i) => values[i]),
      part.map((i) => times[i] as number),
    ),
  );
  const restored = parts.map((a) => agg.load(structuredClone(agg.save(a))));
  // Merge in an order other than the input's: aggregates are commutative.
  const perm = restored.map((_, i) => i).sort((a, b) => (order[a] ?? 0) - (order[b] ?? 0) || a - b);
  let acc = agg.create();
  for (const i of perm) acc = agg.merge(acc, restored[i] as A);
  return agg.result(acc);
}

function oneResult<A, R>(agg: Aggregate<A, R>, values: unknown[], times: number[]): R {
  return agg.result(aggregateAll(agg, values, times));
}

const decimalString = fc
  .tuple(fc.integer({ min: -1_000_000_000, max: 1_000_000_000 }), fc.integer({ min: 0, max: 4 }))
  .map(([units, scale]) => {
    const neg = units < 0;
    const digits = String(Math.abs(units)).padStart(scale + 1, '0');
    return `${neg ? '-' : ''}${scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`}`;
  });

const money = fc.oneof(
  decimalString,
  fc.integer({ min: -1e12, max: 1e12 }),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
  fc.constant(null),
);
const decimalValue = fc
  .tuple(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.integer({ min: 0, max: 4 }))
  .map(([units, scale]) => new Decimal(units, scale));
const numbers = fc.oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.constant(null));
const positive = fc.double({ min: 0.001, max: 1e6, noNaN: true });
const cuts = fc.array(fc.nat(), { maxLength: 6 });
const order = fc.array(fc.nat(), { maxLength: 8 });

/** A property: for any input and any split, merged partials give the one-pass result. */
function mergeable<A, R>(
  name: string,
  agg: Aggregate<A, R>,
  values: fc.Arbitrary<unknown>,
  eq?: (a: R, b: R) => void,
): void {
  test(`${name}: merged partials equal one aggregate over all, after save/load`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(values, fc.integer({ min: 0, max: 10_000_000 })), { maxLength: 300 }),
        cuts,
        order,
        (rows, c, o) => {
          const vs = rows.map((r) => r[0]);
          const ts = rows.map((r) => r[1]);
          const whole = oneResult(agg, vs, ts);
          const merged = mergedResult(agg, vs, ts, c, o);
          if (eq) eq(merged, whole);
          else assert.deepEqual(merged, whole);
        },
      ),
      { numRuns: 150 },
    );
  });
}

const close = (a: number | null, b: number | null) => {
  if (a === null || b === null) return assert.equal(a, b);
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${a} ≠ ${b}`);
};

describe('every aggregate is mergeable and serialisable', () => {
  mergeable('count()', count(), fc.anything());
  mergeable('count(field)', count('x'), numbers);
  mergeable('sum', sum('x'), money);
  mergeable('min', min('x'), fc.oneof(numbers, decimalString));
  mergeable('max', max('x'), fc.oneof(numbers, decimalString));
  mergeable('mean', mean('x'), numbers);
  mergeable('sum of decimals', sum('x'), fc.oneof(decimalValue, money));
  mergeable('min of decimals', min('x'), fc.oneof(decimalValue, fc.constant(null)));
  mergeable('max of decimals', max('x'), fc.oneof(decimalValue, fc.constant(null)));
  mergeable('mean of decimals and integers', mean('x'), fc.oneof(decimalValue, numbers));
  mergeable('ema', ema('x', 60_000), numbers, close);
  mergeable('rollingMean', rollingMean('x', 1000, 60), numbers);
  mergeable(
    'distinct',
    distinct('x'),
    fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.string({ maxLength: 3 })),
  );
  mergeable(
    'percentile',
    percentile('x', 0.9),
    fc.oneof(positive, fc.double({ min: -1e6, max: -0.001, noNaN: true }), fc.constant(0)),
  );
  mergeable('hdrPercentile', hdrPercentile('x', 0.99), fc.integer({ min: 0, max: 1_000_000 }));
});

test('sum is exact where floating point is not', () => {
  const s = sum('x');
  assert.equal(String(s.result(aggregateAll(s, ['0.1', '0.2']))), '0.3');
  assert.equal(String(s.result(aggregateAll(s, [0.1, 0.2]))), '0.3');
  assert.equal(String(s.result(aggregateAll(s, ['12.50', '1.5']))), '14.00');
  assert.equal(String(s.result(aggregateAll(s, ['-0.05', '0.01']))), '-0.04');
  assert.equal(String(s.result(aggregateAll(s, []))), '0');
  // Past 2^53 a double loses units; the bigint spill keeps them.
  assert.equal(String(s.result(aggregateAll(s, ['9007199254740993.01', '1']))), '9007199254740994.01');
  assert.equal(String(s.result(aggregateAll(s, [2n ** 70n, 1]))), (2n ** 70n + 1n).toString());
  const many = Array.from({ length: 10_000 }, () => '0.01');
  assert.equal(String(s.result(aggregateAll(s, many))), '100.00');
});

test('sum gives a Decimal, like the decimal field it sums, for decimals, numbers and strings alike', () => {
  const s = sum('x');
  for (const values of [
    [Decimal.from('473.98'), Decimal.from('0.02')],
    [473.98, 0.02],
    ['473.98', '0.02'],
  ]) {
    const r = s.result(aggregateAll(s, values));
    assert.ok(r instanceof Decimal, `sum of ${typeof values[0]}: ${typeof r}`);
    assert.deepEqual([r.units, r.scale], [47400n, 2]);
    assert.equal(JSON.stringify({ total: r }), '{"total":"474.00"}');
  }
  const big = s.result(aggregateAll(s, ['9007199254740993.01', '1']));
  assert.ok(big instanceof Decimal);
  assert.equal(big.toString(), '9007199254740994.01');
});

test('sum stays exact across the packed-number limit, in any order and merge', () => {
  // Values and small sums are packed doubles (units × 32 + scale) below 2^47 units; beyond,
  // the accumulator spills to a bigint-backed object. Both sides of the edge must agree.
  const s = sum('x');
  const edge = 2n ** 47n;
  const big = [(edge - 1n).toString(), '1', '0.001', (-edge).toString(), '140737488355327.5', '-0.5'];
  const want = '140737488355327.001'; // (2^47 − 1) + 1 + 0.001 − 2^47 + 140737488355327.5 − 0.5
  assert.equal(String(s.result(aggregateAll(s, big))), want);
  assert.equal(String(s.result(aggregateAll(s, [...big].reverse()))), want);
  const merged = s.merge(aggregateAll(s, big.slice(0, 3)), aggregateAll(s, big.slice(3)));
  assert.equal(String(s.result(merged)), want);
  assert.equal(String(s.result(s.load(structuredClone(s.save(aggregateAll(s, big)))))), want);
});

test('sum rejects what is not a plain decimal, and skips null', () => {
  const s = sum('amount');
  for (const bad of [
    '',
    '1,200',
    '1e5',
    ' 1',
    '1.',
    '.',
    'abc',
    '--1',
    true,
    {},
    Number.NaN,
    Number.POSITIVE_INFINITY,
  ]) {
    assert.throws(() => s.prepare(bad), /sum\(amount\) cannot take/, String(bad));
  }
  assert.equal(s.prepare(null), SKIP);
  assert.equal(s.prepare(undefined), SKIP);
  assert.deepEqual(parseDecimal('+3.25'), { units: 325, scale: 2 });
});

test('min and max keep the value as written and compare numerically', () => {
  const lo = min('x');
  const hi = max('x');
  const vs = ['9.50', '10.00', 3, '-1'];
  assert.equal(lo.result(aggregateAll(lo, vs)), '-1');
  assert.equal(hi.result(aggregateAll(hi, vs)), '10.00');
  assert.equal(lo.result(lo.create()), null);
  assert.throws(() => lo.prepare('ten'), /min\(x\) cannot take "ten"/);
});

test('mean, ema and rolling mean', () => {
  const m = mean('x');
  assert.equal(m.result(aggregateAll(m, [1, 2, 3, null])), 2);
  assert.equal(m.result(m.create()), null);
  const e = ema('x', 1000);
  // A value one half-life older weighs half: (10·0.5 + 20·1) / 1.5.
  close(e.result(aggregateAll(e, [10, 20], [0, 1000])), 25 / 1.5);
  close(e.result(aggregateAll(e, [20, 10], [1000, 0])), 25 / 1.5);
  const r = new RollingWindow(mean('x'), 1000, 3);
  r.add(0, 100); // bucket 0 — falls out once bucket 3 arrives
  r.add(1500, 2);
  r.add(3100, 4);
  assert.equal(r.result(), 3);
  r.add(500, 1000); // older than the range: dropped
  assert.equal(r.result(), 3);
  assert.throws(() => ema('x', 0), /half-life/);
});

test('distinct is exact while small and within 3 % when large', () => {
  const d = distinct('x');
  const small = Array.from({ length: SPARSE_LIMIT }, (_, i) => `u${i % 100}`);
  assert.equal(d.result(aggregateAll(d, small)), 100);
  const big = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);
  const est = d.result(aggregateAll(d, [...big, ...big]));
  assert.ok(Math.abs(est - 100_000) / 100_000 < 0.03, `estimate ${est}`);
  assert.throws(() => distinct('x', 30), /precision/);
});

test('percentile arguments are checked', () => {
  assert.throws(() => percentile('x', 1.5), /quantile must be a number from 0 to 1/);
  assert.throws(() => percentile('x', -0.1), /quantile/);
  assert.throws(() => percentile('x', 0.5, 2), /relative accuracy/);
  assert.throws(() => hdrPercentile('x', 0.5, 9), /significant digits/);
  assert.throws(() => percentile('x', 0.5).prepare('fast'), /percentile\(x\) cannot take "fast"/);
  assert.throws(() => hdrPercentile('x', 0.5).prepare(-3), /non-negative/);
  const p = percentile('x', 0.5);
  assert.equal(p.result(p.create()), null);
});
