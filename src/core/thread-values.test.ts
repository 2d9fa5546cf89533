import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal } from './decimal.ts';
import { reviveCloned } from './thread-values.ts';

describe('reviveCloned', () => {
  it('gives cloned decimals their class back at any depth, in place', () => {
    const sent = {
      id: 1,
      amount: Decimal.from('1.10'),
      lines: [{ price: Decimal.from('-0.005') }, Decimal.from('7')],
      byAccount: new Map([['a', Decimal.from('2.5')]]),
      at: new Date(0),
      note: 'x',
    };
    const received = structuredClone(sent) as typeof sent;
    assert.equal(received.amount instanceof Decimal, false); // what postMessage does
    const revived = reviveCloned(received) as typeof sent;
    assert.equal(revived, received);
    assert.ok(revived.amount instanceof Decimal);
    assert.equal(revived.amount.toString(), '1.10');
    assert.equal((revived.lines[0] as { price: Decimal }).price.toString(), '-0.005');
    assert.equal((revived.lines[1] as Decimal).toString(), '7');
    assert.equal(revived.byAccount.get('a')?.toString(), '2.5');
    assert.ok(revived.at instanceof Date);
    assert.equal(JSON.stringify(revived), JSON.stringify(sent));
  });

  it('a decimal on its own, and a batch of records', () => {
    assert.ok(reviveCloned(structuredClone(Decimal.from('3.14'))) instanceof Decimal);
    const batch = reviveCloned(structuredClone([{ a: Decimal.from('1') }, null, 5, 'x'])) as unknown[];
    assert.ok((batch[0] as { a: unknown }).a instanceof Decimal);
    assert.deepEqual(batch.slice(1), [null, 5, 'x']);
  });

  it('leaves alone what is not exactly a cloned decimal', () => {
    const notDecimals = [
      { units: 1n, scale: 2, extra: true },
      { units: 1, scale: 2 },
      { units: 1n, scale: 1.5 },
      { units: 1n, scale: -1 },
      { units: 1n, scale: 101 },
      { units: 1n },
    ];
    for (const o of notDecimals) {
      const copy = structuredClone(o);
      const out = reviveCloned(copy);
      assert.equal(
        out instanceof Decimal,
        false,
        JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      );
      assert.deepEqual(out, o);
    }
    const withProto = Object.assign(new (class Point {})(), { units: 1n, scale: 2 });
    assert.equal(reviveCloned(withProto), withProto);
  });
});
