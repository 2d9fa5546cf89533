import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rejoinFlowCalls, windowSpec } from './spec.ts';

const ctx = { baseDir: '.', pipelineName: 'p', stageName: 'window' };

test('the DESIGN.md window step validates and declares its `late` port', () => {
  const parsed = windowSpec.config.safeParse({
    key: ['country', 'event_type'],
    time: 'ts',
    tumbling: '1m',
    watermark: { maxOutOfOrder: '5m' },
    allowedLateness: '1h',
    // What YAML makes of `{ …, p99: percentile(risk, 0.99) }` in a flow mapping.
    aggregate: { count: 'count()', amount: 'sum(amount)', p99: 'percentile(risk', '0.99)': null },
    late: 'late',
  });
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  assert.deepEqual(Object.keys(parsed.data.aggregate), ['count', 'amount', 'p99']);
  assert.equal(parsed.data.aggregate.p99, 'percentile(risk, 0.99)');
  assert.deepEqual(windowSpec.ports?.(parsed.data), ['late']);
  assert.equal(typeof windowSpec.create(parsed.data, ctx).process, 'function');
});

test('rejoining stops at a key with a value and leaves balanced calls alone', () => {
  assert.deepEqual(rejoinFlowCalls({ a: 'sum(x)', b: 'count()' }), { a: 'sum(x)', b: 'count()' });
  assert.deepEqual(rejoinFlowCalls({ a: 'percentile(x', b: 'count()' }), { a: 'percentile(x', b: 'count()' });
  assert.deepEqual(rejoinFlowCalls({ a: 'percentile(x', '0.5': null, '0.01)': null }), {
    a: 'percentile(x, 0.5, 0.01)',
  });
});

test('bad window configs are rejected with every problem', () => {
  const bad = windowSpec.config.safeParse({
    time: 'ts',
    tumbling: '1m',
    session: { gap: '5m' },
    aggregate: { n: 'count(', p: 'percentile(risk, 2)', m: 'median(x)' },
  });
  assert.equal(bad.success, false);
  const text = JSON.stringify(bad.error?.issues);
  assert.match(text, /`count\(` at column 7: expected an argument/);
  assert.match(text, /quantile must be a number from 0 to 1/);
  assert.match(text, /unknown aggregate function `median`/);
  assert.match(text, /give only one of `tumbling`, `session`/);
  const none = windowSpec.config.safeParse({ tumbling: '1m', aggregate: { n: 'count()' } });
  assert.match(JSON.stringify(none.error?.issues), /needs `time`/);
  const empty = windowSpec.config.safeParse({ time: 'ts', tumbling: '1m', aggregate: {} });
  assert.match(JSON.stringify(empty.error?.issues), /at least one aggregate/);
  const dur = windowSpec.config.safeParse({ time: 'ts', tumbling: 'soon', aggregate: { n: 'count()' } });
  assert.match(JSON.stringify(dur.error?.issues), /not a duration/);
});

test('the window rules the TypeScript API checks are reported by YAML too, each at its option', () => {
  const bad = windowSpec.config.safeParse({
    key: 'revision',
    time: 'ts',
    sliding: { size: '1m', slide: '7s' },
    aggregate: { n: 'count(', windowStart: 'count()' },
    late: 'out',
  });
  assert.equal(bad.success, false);
  const issues = (bad.error?.issues ?? []).map((i) => [i.path.join('.'), i.message]);
  assert.deepEqual(issues, [
    ['aggregate.n', '`count(` at column 7: expected an argument'], // once, though both checks see it
    ['sliding', 'the size (60000 ms) must be a whole multiple of the slide (7000 ms)'],
    ['aggregate.windowStart', 'aggregate name `windowStart` is taken by the window result; rename it'],
    ['key', 'key field `revision` is taken by the window result; rename it first'],
    ['late', '`late` names a side output; `out` cannot be one'],
  ]);
});

test('a sliding window that puts each event in millions of windows is refused at lint, with what to do', () => {
  const base = { time: 'ts', aggregate: { n: 'count()' } };
  const huge = windowSpec.config.safeParse({ ...base, sliding: { size: '1d', slide: '1ms' } });
  assert.equal(huge.success, false);
  const message = huge.error?.issues.map((i) => i.message).join('; ') ?? '';
  assert.match(message, /86,400,000 windows, more than 10,000; use a longer slide, a tumbling window/);
  // An hour every second (3,600 windows per event) is a real use and stays allowed.
  assert.ok(windowSpec.config.safeParse({ ...base, sliding: { size: '1h', slide: '1s' } }).success);
});
