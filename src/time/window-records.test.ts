import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WindowKeys } from './window-records.ts';

test('a key function returning a key nested too deep to write gives a problem, not a stack overflow', () => {
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 5000; i++) deep = { a: deep };
  const keys = new WindowKeys(undefined, () => ({ user: deep }));
  assert.equal(keys.read({}, 0), undefined);
  assert.match(keys.problem ?? '', /^the key function returned a key that cannot be written: /);
  const ok = new WindowKeys(undefined, (r) => ({ user: (r as { u: string }).u }));
  assert.equal(ok.read({ u: 'x' }, 0), '["x"]');
});
