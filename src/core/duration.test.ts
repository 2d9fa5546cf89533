import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_DURATION_MS, parseDuration } from './duration.ts';
import { ErrorCode, SluiceError } from './errors.ts';

test('parseDuration reads every unit', () => {
  assert.equal(parseDuration('0ms'), 0);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('1m'), 60_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1d'), 86_400_000);
  assert.equal(parseDuration(' 10s '), 10_000);
});

test('parseDuration takes a number as milliseconds', () => {
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration(0), 0);
});

test('parseDuration rejects what is not a duration, saying how to write one', () => {
  for (const bad of ['5 minutes', '', 'ms', '10', '-1s', '1.s', '1S', '1sec', '1m30s', '1e3ms', 'NaNms']) {
    assert.throws(
      () => parseDuration(bad),
      (err: unknown) =>
        err instanceof SluiceError &&
        err.code === ErrorCode.CONFIG &&
        err.message === `\`${bad}\` is not a duration; use a number with ms, s, m, h or d, e.g. \`500ms\``,
      bad,
    );
  }
  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => parseDuration(bad), /is not a duration/);
  }
});

test('parseDuration bounds durations at 100 years, as text and as a number', () => {
  assert.equal(parseDuration('36500d'), 36_500 * 86_400_000);
  assert.equal(parseDuration(MAX_DURATION_MS), MAX_DURATION_MS);
  for (const bad of [
    '99999999999999999999d',
    '36525.1d',
    '1e400ms'.replace('e400', '0'.repeat(400)),
    MAX_DURATION_MS + 1,
  ]) {
    assert.throws(
      () => parseDuration(bad),
      (err: unknown) =>
        err instanceof SluiceError &&
        err.code === ErrorCode.CONFIG &&
        /longer than 100 years/.test(err.message),
      String(bad).slice(0, 30),
    );
  }
});
