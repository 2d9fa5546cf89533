import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Decimal } from '../core/decimal.ts';
import { barrier, watermark } from '../core/message.ts';
import { OperatorHarness } from '../operators/harness.ts';
import { type WindowOptions, windowOperator } from './window.ts';

const T = Date.UTC(2024, 4, 1, 12, 0, 0);
const at = (s: number) => new Date(T + s * 1000).toISOString();

async function harness<T = Record<string, unknown>>(o: Partial<WindowOptions<T>>) {
  const op = windowOperator<T>({ aggregate: { n: 'count()' }, ...o } as WindowOptions<T>);
  const h = new OperatorHarness(op);
  await h.open();
  return { h, op };
}

test('a stop before the end of the input never passes open windows off as final (§4 of #15)', async () => {
  const input = [
    { user: 'a', ts: at(1), amount: '1.10' },
    { user: 'a', ts: at(70), amount: '2.00' },
  ];
  const ended = async (stopped: boolean, checkpointing: boolean) => {
    const stop = new AbortController();
    const op = windowOperator<Record<string, unknown>>({
      key: ['user'],
      time: 'ts',
      tumbling: '1m',
      watermark: { maxOutOfOrder: '1s' },
      aggregate: { n: 'count()', total: 'sum(amount)' },
    } as WindowOptions<Record<string, unknown>>);
    const h = new OperatorHarness(op, { stopSignal: stop.signal, checkpointing });
    await h.open();
    await h.process(input);
    if (stopped) stop.abort();
    await h.finish();
    return h.records().map((r) => `${r.windowStart} n=${r.n} partial=${r.partial ?? false}`);
  };
  // The end of the input: every window is complete and final.
  assert.deepEqual(await ended(false, false), [`${at(0)} n=1 partial=false`, `${at(60)} n=1 partial=false`]);
  // A stop without checkpoints: the window the watermark closed is final; the open one is marked partial.
  assert.deepEqual(await ended(true, false), [`${at(0)} n=1 partial=false`, `${at(60)} n=1 partial=true`]);
  // A stop under checkpoints: the open window stays in the checkpoint for the next run to fire.
  assert.deepEqual(await ended(true, true), [`${at(0)} n=1 partial=false`]);
});

test('results carry key fields, ISO window bounds, aggregates, revision and update', async () => {
  const { h } = await harness({
    key: ['country', 'type'],
    time: 'ts',
    tumbling: '1m',
    watermark: { maxOutOfOrder: '5s' },
    aggregate: { n: 'count()', amount: 'sum(amount)', top: 'max(risk)' },
  });
  await h.process([
    { country: 'DE', type: 'login', ts: at(1), amount: '1.10', risk: 5 },
    { country: 'DE', type: 'login', ts: at(2), amount: '2.20', risk: 9 },
    { country: 'FR', type: 'login', ts: at(3), amount: '5', risk: 1 },
  ]);
  assert.deepEqual(h.records(), []); // the watermark has not passed the window end
  await h.process([{ country: 'DE', type: 'x', ts: at(66), amount: '0', risk: 0 }]);
  assert.deepEqual(h.records(), [
    {
      country: 'DE',
      type: 'login',
      windowStart: at(0),
      windowEnd: at(60),
      n: 2,
      amount: Decimal.from('3.30'),
      top: 9,
      revision: 1,
      update: false,
    },
    {
      country: 'FR',
      type: 'login',
      windowStart: at(0),
      windowEnd: at(60),
      n: 1,
      amount: Decimal.from('5'),
      top: 1,
      revision: 1,
      update: false,
    },
  ]);
  // The watermark goes downstream after the results.
  assert.deepEqual(h.outputs.at(-1), { signal: watermark(T + 60_999) });
});

test('a late event within allowedLateness emits an update; beyond it goes to `late` with its lateness', async () => {
  const { h } = await harness({
    key: 'k',
    time: 'ts',
    tumbling: '10s',
    watermark: {},
    allowedLateness: '20s',
    late: 'late',
  });
  await h.process([{ k: 'a', ts: at(1) }]);
  await h.process([{ k: 'a', ts: at(15) }]); // watermark 14.999: window [0,10) fires
  await h.process([{ k: 'a', ts: at(2) }]); // late, within lateness: update
  await h.process([{ k: 'a', ts: at(45) }]); // watermark 44.999 ≥ 9.999 + 20: [0,10) dropped
  await h.process([{ k: 'a', ts: at(3) }]);
  await h.finish();
  const first = h.records().filter((r) => r.windowStart === at(0));
  assert.deepEqual(
    first.map((r) => [r.n, r.revision, r.update]),
    [
      [1, 1, false],
      [2, 2, true],
    ],
  );
  assert.deepEqual(h.records('late'), [
    {
      event: { k: 'a', ts: at(3) },
      eventTime: at(3),
      watermark: new Date(T + 44_999).toISOString(),
      latenessMs: 15_000,
    },
  ]);
});

test('without a `late` output, late events are dead letters, never dropped silently', async () => {
  const { h, op } = await harness({ key: 'k', time: 'ts', tumbling: '10s', watermark: {} });
  await h.process([{ k: 'a', ts: at(30) }]);
  await h.process([{ k: 'a', ts: at(1) }]);
  assert.equal(h.deadLetters.length, 1);
  const err = h.deadLetters[0]?.error as Error;
  assert.match(err.message, /later than allowedLateness.*set `late:`/);
  assert.equal(op.metrics().lateEvents, 1);
  assert.deepEqual(op.ports, []);
});

test('bad records are dead letters with the reason: time, key, aggregate input', async () => {
  const { h } = await harness({
    key: 'k',
    time: 'ts',
    timeFormat: 'iso8601',
    tumbling: '10s',
    aggregate: { s: 'sum(v)' },
  });
  const meta = { source: 'in', position: { line: 7 } };
  await h.process(
    [
      { k: 'a', ts: '2024-13-01T00:00:00Z', v: 1 },
      { k: 'a', ts: 1714564800000, v: 1 },
      { ts: at(1), v: 1 },
      { k: 'a', ts: at(1), v: 'lots' },
      { k: 'a', ts: at(1), v: '2.5' },
    ],
    [meta, meta, meta, meta, meta],
  );
  await h.finish();
  const msgs = h.deadLetters.map((d) => (d.error as Error).message);
  assert.deepEqual(msgs.slice(0, 3), [
    'time field `ts` is "2024-13-01T00:00:00Z", not an ISO-8601 time such as 2024-05-01T12:00:00Z',
    'time field `ts` is 1714564800000, not an ISO-8601 time such as 2024-05-01T12:00:00Z',
    'the record has no key field `k`',
  ]);
  assert.match(msgs[3] as string, /sum\(v\) cannot take "lots"/);
  assert.deepEqual(h.deadLetters[0]?.meta, meta);
  // The bad value left no trace: the sum holds only the good record.
  assert.deepEqual(
    h.records().map((r) => r.s),
    [Decimal.from('2.5')],
  );
});

test('a key function gives the key fields; without a key there is one window', async () => {
  const { h } = await harness<{ user: string; ts: number }>({
    key: (r) => ({ domain: r.user.split('@')[1] ?? '' }),
    time: 'ts',
    tumbling: 1000,
  });
  await h.process([
    { user: 'a@x.org', ts: 10 },
    { user: 'b@x.org', ts: 20 },
    { user: 'c@y.org', ts: 30 },
  ]);
  await h.finish();
  assert.deepEqual(
    h.records().map((r) => [r.domain, r.n]),
    [
      ['x.org', 2],
      ['y.org', 1],
    ],
  );
  const g = await harness({ time: 'ts', tumbling: 1000 });
  await g.h.process([{ ts: 1 }, { ts: 2 }]);
  await g.h.finish();
  assert.deepEqual(g.h.records(), [
    {
      windowStart: new Date(0).toISOString(),
      windowEnd: new Date(1000).toISOString(),
      n: 2,
      revision: 1,
      update: false,
    },
  ]);
});

test('sliding windows: an event counts in size/slide windows', async () => {
  const { h } = await harness({ time: 'ts', sliding: { size: '30s', slide: '10s' } });
  await h.process([{ ts: T + 25_000 }]);
  await h.finish();
  assert.deepEqual(
    h.records().map((r) => r.windowStart),
    [at(0), at(10), at(20)],
  );
});

test('sessions merge when a late event bridges them; the swallowed session is retracted', async () => {
  const { h } = await harness({
    key: 'k',
    time: 'ts',
    session: { gap: '10s' },
    watermark: {},
    allowedLateness: '1m',
  });
  await h.process([
    { k: 'a', ts: at(0) },
    { k: 'a', ts: at(15) },
  ]);
  await h.process([{ k: 'a', ts: at(40) }]); // both sessions fire
  await h.process([{ k: 'a', ts: at(8) }]); // bridges [0,10) and [15,25)
  const recs = h.records();
  assert.deepEqual(
    recs.map((r) => [r.windowStart, r.windowEnd, r.n ?? null, r.revision, r.update, r.retracted ?? false]),
    [
      [at(0), at(10), 1, 1, false, false],
      [at(15), at(25), 1, 1, false, false],
      [at(15), at(25), null, 2, true, true],
      [at(0), at(25), 3, 2, true, false],
    ],
  );
});

test('count trigger fires every n events; early trigger fires open windows on the clock', async () => {
  const c = await harness({ time: 'ts', tumbling: '1m', trigger: { count: 2 } });
  await c.h.process([{ ts: 1 }, { ts: 2 }]);
  await c.h.process([{ ts: 3 }]);
  await c.h.finish();
  assert.deepEqual(
    c.h.records().map((r) => [r.n, r.revision]),
    [
      [2, 1],
      [3, 2],
    ],
  );
  const e = await harness({ time: 'ts', tumbling: '1m', trigger: { early: '10s' } });
  await e.h.process([{ ts: 1 }]);
  assert.equal(await e.h.fireTimerIfDue(), false);
  e.h.clock.advance(10_000);
  assert.equal(await e.h.fireTimerIfDue(), true);
  assert.deepEqual(
    e.h.records().map((r) => [r.n, r.revision]),
    [[1, 1]],
  );
  e.h.clock.advance(10_000);
  await e.h.fireTimerIfDue(); // nothing changed: no new result
  await e.h.process([{ ts: 2 }]);
  await e.h.finish();
  assert.deepEqual(
    e.h.records().map((r) => [r.n, r.revision, r.update]),
    [
      [1, 1, false],
      [2, 2, true],
    ],
  );
});

test('processing-time tumbling windows flush on the clock', async () => {
  const { h } = await harness({ key: 'route', processingTime: true, tumbling: '1m' });
  h.clock.advance(T);
  await h.process([{ route: '/a' }, { route: '/a' }]);
  h.clock.advance(30_000);
  await h.process([{ route: '/b' }]);
  assert.equal(await h.fireTimerIfDue(), false);
  h.clock.advance(30_000);
  assert.equal(await h.fireTimerIfDue(), true);
  assert.deepEqual(
    h.records().map((r) => [r.route, r.n, r.windowStart]),
    [
      ['/a', 2, at(0)],
      ['/b', 1, at(0)],
    ],
  );
});

test('an idle partition stops holding the watermark back after idleTimeout', async () => {
  const { h } = await harness({ time: 'ts', tumbling: '10s', watermark: { idleTimeout: '1m' } });
  const p0 = { source: 'kafka', position: { partition: 0 } };
  const p1 = { source: 'kafka', position: { partition: 1 } };
  await h.process([{ ts: T + 1000 }, { ts: T + 1000 }], [p0, p1]);
  h.clock.advance(30_000);
  await h.process([{ ts: T + 30_000 }], [p0]);
  assert.deepEqual(h.records(), []); // partition 1 is at 1 s and holds the watermark back
  h.clock.advance(29_999);
  assert.equal(await h.fireTimerIfDue(), false);
  h.clock.advance(1); // partition 1 silent for a minute: idle
  assert.equal(await h.fireTimerIfDue(), true);
  assert.deepEqual(
    h.records().map((r) => r.n),
    [2],
  );
});

test('upstream watermarks fire windows; barriers pass through', async () => {
  const { h } = await harness({ time: 'ts', tumbling: '10s' });
  await h.process([{ ts: 5 }]);
  await h.signal(barrier(3));
  assert.deepEqual(h.outputs, [{ signal: barrier(3) }]);
  await h.signal(watermark(9_999));
  assert.deepEqual(
    h.records().map((r) => r.n),
    [1],
  );
});

test('windows are purged: memory does not grow with the number of windows seen', async () => {
  const { h, op } = await harness({
    key: 'k',
    time: 'ts',
    tumbling: '1s',
    watermark: {},
    allowedLateness: '2s',
  });
  for (let s = 0; s < 2000; s++)
    await h.process([
      { k: 'a', ts: s * 1000 },
      { k: 'b', ts: s * 1000 + 1 },
    ]);
  assert.ok(op.metrics().windowsOpen <= 8, `open windows: ${op.metrics().windowsOpen}`);
  assert.equal(op.metrics().windowResults, 2 * 1999);
});

test('a window of many keys fires in bounded batches; keys gone for two windows are forgotten', async () => {
  const { h, op } = await harness({ key: 'k', time: 'ts', tumbling: '1s', watermark: {} });
  // 10,000 keys in second 0, then only key `z` for a while.
  await h.process(Array.from({ length: 10_000 }, (_, i) => ({ k: `k${i}`, ts: i % 1000 })));
  for (let s = 1; s < 6; s++) await h.process([{ k: 'z', ts: s * 1000 }]);
  const batches = h.outputs.flatMap((o) => ('batch' in o ? [o.batch.records.length] : []));
  assert.equal(
    batches.reduce((a, b) => a + b, 0),
    10_000 + 4,
  ); // every key of second 0, and `z` of seconds 1–4
  assert.ok(Math.max(...batches) <= 4096, `largest result batch: ${Math.max(...batches)}`);
  // Purged windows stay as husks for reuse by their key for one more window, no longer.
  const latest = (op as unknown as { windows: { latest: Map<string, unknown> } }).windows.latest;
  assert.ok(latest.size <= 2, `keys held: ${latest.size}`);
  // A key that comes back after its windows were purged gets a fresh window.
  await h.process([{ k: 'k7', ts: 6000 }]);
  await h.finish();
  // `z`'s purged window is reused (revived) for its next one each second.
  assert.deepEqual(
    h
      .records()
      .filter((r) => r.k === 'z')
      .map((r) => [r.windowStart, r.n, r.revision]),
    [1, 2, 3, 4, 5].map((sec) => [new Date(sec * 1000).toISOString(), 1, 1]),
  );
  const k7 = h.records().filter((r) => r.k === 'k7');
  assert.deepEqual(
    k7.map((r) => [r.windowStart, r.n, r.revision]),
    [
      [new Date(0).toISOString(), 1, 1],
      [new Date(6000).toISOString(), 1, 1],
    ],
  );
});

test('snapshot and restore: a run resumed from a snapshot ends like one that never stopped', async () => {
  const opts = {
    key: 'k',
    time: 'ts',
    tumbling: '10s',
    watermark: { maxOutOfOrder: '2s' },
    allowedLateness: '10s',
    late: 'late',
    aggregate: { n: 'count()', s: 'sum(v)', p: 'percentile(v, 0.5)', d: 'distinct(k)' },
  } as const;
  const input = Array.from({ length: 60 }, (_, i) => ({
    k: `k${i % 3}`,
    ts: ((i * 7919) % 50) * 1000,
    v: `${i}.5`,
  }));
  const whole = await harness(opts);
  for (let i = 0; i < 60; i += 6) await whole.h.process(input.slice(i, i + 6));
  await whole.h.finish();
  const a = await harness(opts);
  for (let i = 0; i < 30; i += 6) await a.h.process(input.slice(i, i + 6));
  const state = structuredClone(a.op.snapshot());
  const b = await harness(opts);
  await b.op.restore(state);
  for (let i = 30; i < 60; i += 6) await b.h.process(input.slice(i, i + 6));
  await b.h.finish();
  assert.deepEqual([...a.h.records(), ...b.h.records()], whole.h.records());
  assert.deepEqual([...a.h.records('late'), ...b.h.records('late')], whole.h.records('late'));
});

test('config problems are reported together, with what to write', () => {
  assert.throws(
    () => windowOperator({ aggregate: { n: 'count()' } }),
    /needs one of `tumbling`, `sliding` or `session`/,
  );
  assert.throws(() => windowOperator({ tumbling: '1m', aggregate: { n: 'count()' } }), /needs `time`/);
  assert.throws(
    () =>
      windowOperator({
        time: 'ts',
        tumbling: '1m',
        key: 'revision',
        aggregate: { windowStart: 'count()', x: 'summ(a)' },
      }),
    (err: Error) =>
      /aggregate `x`: .*did you mean `sum`/.test(err.message) &&
      /aggregate name `windowStart` is taken/.test(err.message) &&
      /key field `revision` is taken/.test(err.message),
  );
  assert.throws(
    () => windowOperator({ time: 'ts', sliding: { size: '1m', slide: '7s' }, aggregate: { n: 'count()' } }),
    /whole multiple of the slide/,
  );
  assert.throws(
    () => windowOperator({ processingTime: true, session: { gap: '1m' }, aggregate: { n: 'count()' } }),
    /tumbling only/,
  );
  assert.throws(
    () => windowOperator({ time: 'ts', tumbling: '1m', late: 'out', aggregate: { n: 'count()' } }),
    /`out` cannot be one/,
  );
});

test('an `auto` time field is an epochMillis use: its epoch ms give the results its ISO text gives', async () => {
  const o = { key: 'k', time: 'ts', tumbling: '1m', aggregate: { n: 'count()', s: 'sum(v)' } } as const;
  assert.deepEqual([...(windowOperator(o).fieldUses ?? [])], [['ts', 'epochMillis']]);
  // Not when the text matters or the field is read otherwise too.
  assert.equal(windowOperator({ ...o, timeFormat: 'iso8601' }).fieldUses, undefined);
  assert.equal(windowOperator({ ...o, key: 'ts' }).fieldUses, undefined);
  assert.equal(windowOperator({ ...o, aggregate: { n: 'count(ts)' } }).fieldUses, undefined);
  assert.equal(windowOperator({ ...o, late: 'late' }).fieldUses, undefined);
  const results = async (asNumber: boolean) => {
    const { h } = await harness(o);
    const recs = [1, 30, 61, 62, 125].map((s, i) => ({
      k: 'a',
      ts: asNumber ? T + s * 1000 : at(s),
      v: `${i}.5`,
    }));
    await h.process(recs);
    await h.finish();
    return h.records();
  };
  const text = await results(false);
  assert.equal(text.length, 3);
  assert.deepEqual(await results(true), text);
});
