import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProjectedJson, pickFields } from './projected-json.ts';

const FIELDS = ['country', 'ts', 'amount', 'ok'];

/** What the projection must equal: JSON.parse of the whole value, then the fields picked. */
const expected = (s: string) => pickFields(JSON.parse(s), FIELDS);

describe('ProjectedJson', () => {
  const p = new ProjectedJson(FIELDS);

  it('keeps only the wanted fields of a flat object, in input order', () => {
    const s =
      '{"id":1,"ts":"2026-01-01T00:00:00.037Z","user":"u@example.com","country":"DE","amount":"12.50","note":"a \\"quoted\\" b","ok":true,"n":null}';
    assert.deepEqual(p.parse(Buffer.from(s)), expected(s));
    assert.deepEqual(Object.keys(p.parse(Buffer.from(s)) ?? {}), ['ts', 'country', 'amount', 'ok']);
  });

  it('decodes numbers, literals, UTF-8 and whitespace as JSON.parse does', () => {
    for (const s of [
      ' { "amount" : -1.5e3 , "country" : "Ünïcødé ✓", "ok" : false } \n',
      '{"amount":0,"ts":null}',
      '{}',
      '{"country":"DE","country":"FR"}',
      '{"x":[1,2],"amount":"1"}'.replace('[1,2]', '"skipped"'),
    ]) {
      assert.deepEqual(p.parse(Buffer.from(s)), expected(s), s);
    }
  });

  it('gives up (undefined) on what it is not sure of, so the caller parses whole', () => {
    for (const s of [
      '{"country":"D\\u0045"}', // an escape in a wanted string
      '{"nested":{"a":1},"country":"DE"}',
      '{"list":[1],"country":"DE"}',
      '{"amount":01}',
      '{"amount":1.}',
      '{"amount":+1}',
      '{"country":"DE"} x',
      '{"country":"DE",}',
      '{"country":"D\tE"}',
      '[1,2]',
      '"text"',
      '{"country":"DE"',
      '{"a":tru}',
    ]) {
      assert.equal(p.parse(Buffer.from(s)), undefined, s);
    }
  });

  it('pickFields leaves values that are not objects as they are', () => {
    assert.deepEqual(pickFields([1, 2], FIELDS), [1, 2]);
    assert.equal(pickFields(null, FIELDS), null);
    assert.deepEqual(pickFields({ country: 'DE', x: 1 }, FIELDS), { country: 'DE' });
  });

  it('pickFields keeps a field named __proto__ as a field, as JSON.parse made it', () => {
    const picked = pickFields(JSON.parse('{"__proto__":{"admin":true},"x":1}'), ['__proto__']) as object;
    assert.deepEqual(Object.keys(picked), ['__proto__']);
    assert.equal(Object.getPrototypeOf(picked), Object.prototype);
    assert.equal((picked as { admin?: unknown }).admin, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(picked, '__proto__')?.value, { admin: true });
  });
});
