import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateAll } from './aggregate.ts';
import { compileAggregate, parseAggregateCall } from './parse.ts';

test('parses calls with fields, numbers, durations and quoted names', () => {
  assert.deepEqual(parseAggregateCall('count()'), { fn: 'count', args: [] });
  assert.deepEqual(parseAggregateCall(' sum( order.total ) '), {
    fn: 'sum',
    args: [{ kind: 'field', path: 'order.total' }],
  });
  assert.deepEqual(parseAggregateCall("percentile('risk score', 0.99)").args, [
    { kind: 'field', path: 'risk score' },
    { kind: 'number', value: 0.99, text: '0.99' },
  ]);
  assert.deepEqual(parseAggregateCall('ema(x, 5m)').args[1], { kind: 'duration', ms: 300_000, text: '5m' });
});

test('compiled aggregates read the named field', () => {
  const s = compileAggregate('sum(amount)');
  assert.equal(s.field, 'amount');
  assert.equal(String(s.result(aggregateAll(s, ['1.25', '2']))), '3.25');
  assert.equal(compileAggregate('count()').field, undefined);
  assert.equal(compileAggregate('rollingMean(latency, 1s, 60)').fn, 'rollingMean');
  assert.equal(compileAggregate('hdrPercentile(latency, 0.999, 2)').fn, 'hdrPercentile');
  assert.equal(compileAggregate('distinct(user, 14)').fn, 'distinct');
});

test('syntax errors point at the column', () => {
  assert.throws(() => compileAggregate('sum(amount'), /`sum\(amount` at column 11: expected `\)`/);
  assert.throws(() => compileAggregate('sum amount'), /expected `\(` after `sum`/);
  assert.throws(() => compileAggregate('sum(amount) + 1'), /unexpected `\+ 1` after the call/);
  assert.throws(() => compileAggregate('sum(,)'), /column 5: expected a name/);
  assert.throws(() => compileAggregate("sum('amount)"), /unterminated quoted field name/);
  assert.throws(() => compileAggregate('ema(x, 5parsecs)'), /not a duration/);
  assert.throws(() => compileAggregate(''), /expected a name/);
});

test('unknown functions get a suggestion', () => {
  assert.throws(
    () => compileAggregate('summ(amount)'),
    /unknown aggregate function `summ`; did you mean `sum`\?/,
  );
  assert.throws(
    () => compileAggregate('median(x)'),
    (err: Error) => {
      assert.match(err.message, /unknown aggregate function `median`/);
      assert.match(err.message, /known: .*`percentile`/);
      return true;
    },
  );
});

test('wrong arity and wrong argument kinds say how to write the call', () => {
  assert.throws(() => compileAggregate('sum()'), /`sum` takes 1 argument, got 0; write `sum\(field\)`/);
  assert.throws(() => compileAggregate('count(a, b)'), /`count` takes 0 to 1 arguments?, got 2/);
  assert.throws(
    () => compileAggregate('percentile(risk)'),
    /`percentile` takes 2 to 3 arguments, got 1; write `percentile\(field, quantile, \[relativeAccuracy\]\)`/,
  );
  assert.throws(
    () => compileAggregate('percentile(0.99, risk)'),
    /argument 1 \(`field`\) of `percentile` must be a field, got the number `0.99`/,
  );
  assert.throws(
    () => compileAggregate('ema(x, 10)'),
    /argument 2 \(`halfLife`\) of `ema` must be a duration such as `5m`, got the number `10`/,
  );
});

test('values out of range are config errors', () => {
  assert.throws(
    () => compileAggregate('percentile(risk, 1.5)'),
    /`percentile\(risk, 1.5\)`: percentile quantile must be a number from 0 to 1/,
  );
  assert.throws(() => compileAggregate('percentile(risk, -1)'), /quantile must be a number from 0 to 1/);
  assert.throws(() => compileAggregate('distinct(u, 2)'), /precision must be a whole number from 4 to 18/);
  assert.throws(() => compileAggregate('rollingMean(x, 1s, 0)'), /whole number of buckets/);
  assert.throws(
    () => compileAggregate('sum(x)x'),
    (err: Error & { code?: string }) => err.code === 'SLUICE_CONFIG',
  );
});
