import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalIsoAt, daysFromCivil } from './iso-time.ts';

const at = (s: string) => canonicalIsoAt(`,${s},`, 1, s.length);

test('canonicalIsoAt gives what Date.parse gives across minute, hour, day, month, year and leap-day boundaries, in either order', () => {
  const times = [
    '2023-12-31T23:59:59.999Z',
    '2024-01-01T00:00:00.000Z',
    '2024-01-01T00:00:59Z',
    '2024-01-01T00:01:00Z',
    '2024-01-01T00:59:59.999Z',
    '2024-01-01T01:00:00.000Z',
    '2024-01-31T23:59:59.999Z',
    '2024-02-01T00:00:00.000Z',
    '2024-02-28T23:59:59.999Z',
    '2024-02-29T00:00:00.000Z',
    '2024-03-01T00:00:00.000Z',
    '2000-02-29T12:00:00Z',
    '1970-01-01T00:00:00.000Z',
    '1969-12-31T23:59:59.999Z',
    '9999-12-31T23:59:59.999Z',
  ];
  // The date of the previous call is cached: each order makes each call follow a different date.
  for (const order of [times, [...times].reverse(), times.flatMap((t) => [t, times[0] as string])])
    for (const t of order) assert.equal(at(t), Date.parse(t), t);
});

test('canonicalIsoAt rejects an impossible date or time even right after a valid one of the same day or month', () => {
  const bad = [
    ['2024-02-29T00:00:00Z', '2023-02-29T00:00:00Z'], // no leap day in 2023
    ['2000-02-29T00:00:00Z', '1900-02-29T00:00:00Z'], // nor in 1900
    ['2024-04-30T00:00:00Z', '2024-04-31T00:00:00Z'],
    ['2024-12-31T00:00:00Z', '2024-13-01T00:00:00Z'],
    ['2024-01-01T00:00:00Z', '2024-00-01T00:00:00Z'],
    ['2024-01-01T00:00:00Z', '2024-01-00T00:00:00Z'],
    ['2024-01-01T23:00:00Z', '2024-01-01T24:00:00Z'],
    ['2024-01-01T00:59:00Z', '2024-01-01T00:60:00Z'],
    // A leap second is not in this layout's range: the general parser (`parseIsoTime`) takes it.
    ['2016-12-31T23:59:59Z', '2016-12-31T23:59:60Z'],
    ['2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.00xZ'],
    ['2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000+'],
    ['2024-01-01T00:00:00Z', '2024-01-01 00:00:00Z'],
    ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00+01:00'],
    ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00'],
  ];
  for (const [good, b] of bad) {
    assert.equal(at(good as string), Date.parse(good as string), good);
    assert.ok(Number.isNaN(at(b as string)), b);
  }
});

test('daysFromCivil counts days from 1970-01-01, years 0–99 included', () => {
  assert.equal(daysFromCivil(1970, 1, 1), 0);
  assert.equal(daysFromCivil(2024, 3, 1) - daysFromCivil(2024, 2, 28), 2);
  assert.equal(daysFromCivil(50, 6, 15) * 86_400_000, Date.parse('0050-06-15T00:00:00Z'));
});
