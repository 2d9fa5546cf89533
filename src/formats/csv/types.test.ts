import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal } from '../../core/decimal.ts';
import { conversionProblem, converterFor, FAIL, parseIsoTimestamp } from './types.ts';

describe('CSV column types', () => {
  it('int: sign and digits, safe integers only', () => {
    const c = converterFor('int')!;
    assert.deepEqual(['42', '-7', '+3', '', '1.0', '0x10', ' 1', '9007199254740993'].map(c), [
      42,
      -7,
      3,
      null,
      FAIL,
      FAIL,
      FAIL,
      FAIL,
    ]);
  });

  it('float: decimal notation with exponent, nothing else', () => {
    const c = converterFor('float')!;
    assert.deepEqual(['1.5', '-.5', '2.', '1e3', '1E-2', 'Infinity', '0x1', '1e', '.', ''].map(c), [
      1.5,
      -0.5,
      2,
      1000,
      0.01,
      FAIL,
      FAIL,
      FAIL,
      FAIL,
      null,
    ]);
  });

  it('decimal: an exact Decimal, printed as written; with scale, exactly that many digits, never rounded', () => {
    const text = (v: unknown) => (v instanceof Decimal ? v.toString() : v);
    assert.deepEqual(
      ['12.30', '+1', '-0.5', '473.98', '1e2', 'abc', ''].map(converterFor('decimal')!).map(text),
      ['12.30', '1', '-0.5', '473.98', FAIL, FAIL, null],
    );
    const cents = converterFor({ type: 'decimal', scale: 2 })!;
    const got = ['473.98', '12.3', '-0.05', '7', '.5', '-.5', '1.234', '99999999999999999999.99'].map(cents);
    assert.deepEqual(got.map(text), [
      '473.98',
      '12.30',
      '-0.05',
      '7.00',
      '0.50',
      '-0.50',
      FAIL,
      '99999999999999999999.99',
    ]);
    assert.ok(got[0] instanceof Decimal && got[0].scale === 2 && got[0].units === 47398n);
    assert.throws(() => converterFor({ type: 'decimal', scale: -1 }), /scale/);
  });

  it('says why a value was refused: too many fraction digits for the scale, or not the type', () => {
    const cents = { type: 'decimal', scale: 2 } as const;
    assert.equal(
      conversionProblem(cents, '1.234'),
      "has 3 fraction digits, more than the column's `scale: 2` (never rounded)",
    );
    assert.equal(conversionProblem(cents, '1e2'), 'is not a valid decimal');
    assert.equal(conversionProblem(cents, 'abc'), 'is not a valid decimal');
    assert.equal(conversionProblem('decimal', 'abc'), 'is not a valid decimal');
    assert.equal(conversionProblem('int', '1.5'), 'is not a valid int');
  });

  it('bool: the usual spellings, any case', () => {
    const c = converterFor('bool')!;
    assert.deepEqual(['true', 'FALSE', 'Yes', 'no', '1', '0', 't', 'F', 'maybe', ''].map(c), [
      true,
      false,
      true,
      false,
      true,
      false,
      true,
      false,
      FAIL,
      null,
    ]);
  });

  it('timestamp: ISO-8601 to epoch ms, offset-less read as UTC', () => {
    assert.equal(parseIsoTimestamp('2024-02-29'), Date.UTC(2024, 1, 29));
    assert.equal(parseIsoTimestamp('2024-05-01T12:34:56.789Z'), Date.UTC(2024, 4, 1, 12, 34, 56, 789));
    assert.equal(parseIsoTimestamp('2024-05-01 12:34'), Date.UTC(2024, 4, 1, 12, 34));
    assert.equal(parseIsoTimestamp('2024-05-01T12:00:00-0130'), Date.UTC(2024, 4, 1, 13, 30));
    assert.equal(parseIsoTimestamp('2024-05-01T00:00:00.123456+00:00'), Date.UTC(2024, 4, 1, 0, 0, 0, 123));
    for (const bad of [
      '2023-02-29',
      '2024-13-01',
      '2024-05-01T24:00',
      '05/01/2024',
      '2024-05-01T12:00:00Zx',
      '2024-5-1',
    ]) {
      assert.equal(parseIsoTimestamp(bad), FAIL, bad);
    }
  });

  it('string: no conversion; unknown types are rejected', () => {
    assert.equal(converterFor('string'), undefined);
    assert.throws(() => converterFor('money' as never), /unknown column type `money`/);
  });
});
