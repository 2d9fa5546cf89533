import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeBadTimestamp, fieldTimestamp, parseIsoTime, toEpochMillis } from './timestamp.ts';
import { WatermarkGenerator } from './watermark.ts';

test('ISO-8601 times parse exactly like Date.UTC', () => {
  assert.equal(parseIsoTime('2024-05-01T12:00:00Z'), Date.UTC(2024, 4, 1, 12));
  assert.equal(parseIsoTime('2024-05-01T12:00:00.250Z'), Date.UTC(2024, 4, 1, 12, 0, 0, 250));
  assert.equal(parseIsoTime('2024-05-01T12:00:00.123456789Z'), Date.UTC(2024, 4, 1, 12, 0, 0, 123));
  assert.equal(parseIsoTime('2024-05-01 12:00'), Date.UTC(2024, 4, 1, 12));
  assert.equal(parseIsoTime('2024-05-01T14:00:00+02:00'), Date.UTC(2024, 4, 1, 12));
  assert.equal(parseIsoTime('2024-05-01T10:30:00-0130'), Date.UTC(2024, 4, 1, 12));
  assert.equal(parseIsoTime('2024-05-01'), Date.UTC(2024, 4, 1));
  assert.equal(parseIsoTime('2024-02-29'), Date.UTC(2024, 1, 29));
});

test('malformed ISO-8601 times are NaN, not guessed', () => {
  for (const bad of [
    '',
    '2024',
    '2024-5-1',
    '2024-13-01',
    '2023-02-29',
    '2024-04-31',
    '2024-05-01T25:00Z',
    '2024-05-01T12:00:00.Z',
    '2024-05-01T12:00:00Zjunk',
    '2024-05-01T12:00:00+2',
    'May 1 2024',
    '2024-05-01X12:00',
  ]) {
    assert.ok(Number.isNaN(parseIsoTime(bad)), bad);
  }
});

test('epoch numbers in seconds, milliseconds and microseconds', () => {
  const ms = Date.UTC(2024, 4, 1);
  assert.equal(toEpochMillis(ms / 1000, 'epochSeconds'), ms);
  assert.equal(toEpochMillis(String(ms / 1000), 'epochSeconds'), ms);
  assert.equal(toEpochMillis(ms, 'epochMillis'), ms);
  assert.equal(toEpochMillis(ms * 1000 + 999, 'epochMicros'), ms);
  assert.equal(toEpochMillis(BigInt(ms) * 1000n, 'epochMicros'), ms);
  assert.equal(toEpochMillis(ms, 'auto'), ms);
  assert.equal(toEpochMillis(String(ms), 'auto'), ms);
  assert.equal(toEpochMillis('2024-05-01T00:00:00Z', 'auto'), ms);
  assert.ok(Number.isNaN(toEpochMillis('2024-05-01T00:00:00Z', 'epochMillis')));
  assert.ok(Number.isNaN(toEpochMillis(true, 'auto')));
  assert.ok(Number.isNaN(toEpochMillis(Number.POSITIVE_INFINITY, 'epochMillis')));
});

test('field extractors read nested paths; the reason names the field and the value', () => {
  const get = fieldTimestamp('meta.at', 'epochSeconds');
  assert.equal(get({ meta: { at: 10 } }, undefined), 10_000);
  assert.ok(Number.isNaN(get({ meta: {} }, undefined)));
  assert.equal(
    describeBadTimestamp('meta.at', { meta: {} }, 'epochSeconds'),
    'the record has no time field `meta.at`',
  );
  assert.equal(
    describeBadTimestamp('ts', { ts: 'soon' }, 'epochSeconds'),
    'time field `ts` is "soon", not a number of seconds since 1970',
  );
});

test('watermarks: bounded out-of-orderness, minimum over partitions, never backwards', () => {
  const g = new WatermarkGenerator({ maxOutOfOrder: 1000 });
  assert.equal(g.current(0), Number.NEGATIVE_INFINITY);
  g.observe(10_000, 'p0', 0);
  assert.equal(g.current(0), 8999);
  g.observe(5_000, 'p1', 0);
  assert.equal(g.current(0), 8999); // the slower partition cannot move it back
  g.observe(20_000, 'p0', 0);
  assert.equal(g.current(0), 8999); // p1 at 5 s holds it at 9 s − … until it catches up
  g.observe(30_000, 'p1', 0);
  assert.equal(g.current(0), 18_999);
  const state = structuredClone(g.save());
  const h = new WatermarkGenerator({ maxOutOfOrder: 1000 });
  h.load(state, 0);
  assert.equal(h.current(0), 18_999);
  assert.throws(() => new WatermarkGenerator({ maxOutOfOrder: -1 }), /maxOutOfOrder/);
});

test('watermarks from record meta: one partition per source and Kafka partition, as observe keys them', () => {
  const g = new WatermarkGenerator({ maxOutOfOrder: 0 });
  const meta = (source: string, partition?: number) =>
    partition === undefined ? { source } : { source, position: { partition, offset: 0 } };
  g.observeMeta(10_000, meta('k', 0), 0);
  g.observeMeta(12_000, meta('k', 0), 0);
  g.observeMeta(5_000, meta('k', 1), 0);
  g.observeMeta(7_000, undefined, 0);
  assert.equal(g.current(0), 4999);
  g.observeMeta(20_000, meta('k', 1), 0);
  g.observeMeta(20_000, undefined, 0);
  assert.equal(g.current(0), 11_999);
  g.observe(30_000, 'k#0', 0); // the same partition by its key
  g.observeMeta(40_000, meta('k', 1), 0);
  g.observeMeta(40_000, meta('f'), 0);
  assert.deepEqual(g.save().partitions.sort(), [
    ['', 20_000],
    ['f', 40_000],
    ['k#0', 30_000],
    ['k#1', 40_000],
  ]);
  assert.equal(g.current(0), 19_999);
});

test('an idle partition stops counting after idleTimeout; when all are idle the watermark holds', () => {
  const g = new WatermarkGenerator({ maxOutOfOrder: 0, idleTimeout: 100 });
  g.observe(50, 'slow', 0);
  g.observe(1000, 'fast', 0);
  assert.equal(g.current(0), 49);
  g.observe(2000, 'fast', 80);
  assert.equal(g.nextIdleCheck(), 100);
  assert.equal(g.current(100), 1999);
  assert.equal(g.current(10_000), 1999);
});

test('ISO times: the common layout and the general parser agree, years below 100 included', () => {
  for (const t of [0, -1, 1714564800250, 951782400000, 4107542400000, -62135596800000, 253402300799999]) {
    const s = new Date(t).toISOString();
    assert.equal(parseIsoTime(s), t, s);
    assert.equal(parseIsoTime(`${s.slice(0, 19)}Z`), Math.floor(t / 1000) * 1000, s);
  }
  // Date.UTC would read year 24 as 1924.
  assert.equal(parseIsoTime('0024-01-01T00:00:00Z'), Date.parse('0024-01-01T00:00:00Z'));
  assert.ok(Number.isNaN(parseIsoTime('2023-02-29T00:00:00.000Z')));
  assert.ok(Number.isNaN(parseIsoTime('2024-04-31T00:00:00Z')));
  assert.ok(Number.isNaN(parseIsoTime('2024-01-01T24:00:00.000Z')));
  assert.ok(Number.isNaN(parseIsoTime('2024-01-01T00:0a:00.000Z')));
  assert.equal(parseIsoTime('2024-02-29T23:59:59.999Z'), Date.parse('2024-02-29T23:59:59.999Z'));
});

test('an auto extractor reads a number as epoch ms exactly as toEpochMillis does (its fast path)', () => {
  const get = fieldTimestamp('ts');
  const values: unknown[] = [
    1714564800000,
    1714564800000.9,
    -1.5,
    -0,
    0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_VALUE,
    '1714564800000',
    '2024-05-01T12:00:00Z',
    12n,
    null,
    undefined,
  ];
  for (const v of values) assert.equal(get({ ts: v }, undefined), toEpochMillis(v, 'auto'), String(v));
});
