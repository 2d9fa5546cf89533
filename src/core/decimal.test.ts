import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pythonDecimal } from '../../test/support/python-decimal.ts';
import { Decimal, QUOTIENT_SCALE } from './decimal.ts';

/** Decimal text as people and files write it: sign, digits, fraction, sometimes an exponent. */
const decimalText = fc
  .tuple(
    fc.constantFrom('', '-', '+'),
    fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 10n ** 40n })),
    fc.integer({ min: 0, max: 12 }),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant('') },
      fc.integer({ min: -8, max: 8 }).map((e) => `e${e}`),
    ),
  )
  .map(([sign, digits, scale, exp]) => {
    const s = digits.toString().padStart(scale + 1, '0');
    return `${sign}${scale === 0 ? s : `${s.slice(0, -scale)}.${s.slice(-scale)}`}${exp}`;
  });

describe('Decimal', () => {
  it('parses, prints and rounds', () => {
    const d = (s: string) => Decimal.parse(s)?.toString();
    assert.deepEqual(['473.98', '-0.05', '+1', '.5', '5.', '1.5e3', '1.50e1', '1e-3', '007.10'].map(d), [
      '473.98',
      '-0.05',
      '1',
      '0.5',
      '5',
      '1500',
      '15.0',
      '0.001',
      '7.10',
    ]);
    for (const bad of [
      '',
      '-',
      '.',
      'e5',
      '1,200',
      ' 1',
      '1 ',
      'NaN',
      'Infinity',
      '0x10',
      '1e',
      '1.2.3',
      `1e-${101}`,
    ])
      assert.equal(Decimal.parse(bad), undefined, bad);
    assert.equal(Decimal.from(0.1).toString(), '0.1');
    assert.equal(Decimal.from(2n ** 70n).toString(), (2n ** 70n).toString());
    assert.equal(Decimal.from('2.5').round(0).toString(), '2');
    assert.equal(Decimal.from('3.5').round(0).toString(), '4');
    assert.equal(Decimal.from('-2.5').round(0).toString(), '-2');
    assert.equal(Decimal.from('1.5').rescale(2)?.toString(), '1.50');
    assert.equal(Decimal.from('1.234').rescale(2), undefined);
    assert.equal(JSON.stringify({ a: Decimal.from('473.98') }), '{"a":"473.98"}');
    assert.equal(Decimal.revive(structuredClone(Decimal.from('-1.20')))?.toString(), '-1.20');
    assert.throws(() => Decimal.from('1').div(Decimal.from('0')), /division by zero/);
  });

  it('agrees with a bigint oracle on addition and order', () => {
    fc.assert(
      fc.property(decimalText, decimalText, (a, b) => {
        const x = Decimal.parse(a)!;
        const y = Decimal.parse(b)!;
        const s = Math.max(x.scale, y.scale);
        const ux = x.units * 10n ** BigInt(s - x.scale);
        const uy = y.units * 10n ** BigInt(s - y.scale);
        assert.equal(x.add(y).units, ux + uy);
        assert.equal(x.add(y).scale, s);
        assert.equal(x.compare(y), ux < uy ? -1 : ux > uy ? 1 : 0);
      }),
    );
  });

  it('parse → arithmetic → print equals Python’s decimal', () => {
    const pairs = fc.sample(fc.tuple(decimalText, decimalText, fc.integer({ min: 0, max: 10 })), {
      numRuns: 1500,
      seed: 42,
    });
    const cases: string[] = [];
    const ours: string[] = [];
    for (const [a, b, scale] of pairs) {
      const x = Decimal.parse(a)!;
      const y = Decimal.parse(b)!;
      cases.push(`parse\t${a}`, `add\t${a}\t${b}`, `sub\t${a}\t${b}`, `mul\t${a}\t${b}`, `cmp\t${a}\t${b}`);
      cases.push(`round\t${a}\t${scale}`);
      ours.push(
        x.toString(),
        x.add(y).toString(),
        x.sub(y).toString(),
        x.mul(y).toString(),
        String(x.compare(y)),
      );
      ours.push(x.round(scale).toString());
      if (y.units !== 0n) {
        cases.push(
          `div\t${a}\t${b}\t${scale}`,
          `div\t${a}\t${b}\t${Math.max(x.scale, y.scale) + QUOTIENT_SCALE}`,
        );
        ours.push(x.div(y, scale).toString(), x.div(y).toString());
      }
    }
    const want = pythonDecimal(cases);
    for (let i = 0; i < cases.length; i++) assert.equal(ours[i], want[i], cases[i]);
  });
});
