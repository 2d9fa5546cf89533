import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { OperatorHarness } from './harness.ts';
import { route } from './route.ts';

const meta = (n: number): RecordMeta[] =>
  Array.from({ length: n }, (_, i) => ({ source: 's', position: { i } }));

test('route sends each record to the first matching port, else to the default', async () => {
  const h = new OperatorHarness(
    route<number>(
      [
        { when: (x) => x > 10, port: 'big' },
        { when: (x) => x > 5, port: 'medium' },
        { when: (x) => x > 100, port: 'never' },
      ],
      { default: 'small' },
    ),
  );
  await h.open();
  await h.process([1, 7, 200, 11, 3, 6], meta(6));
  assert.deepEqual(h.records('big'), [200, 11]);
  assert.deepEqual(h.records('medium'), [7, 6]);
  assert.deepEqual(h.records('small'), [1, 3]);
  assert.deepEqual(h.records('never'), []);
  assert.deepEqual(
    h.metas('big').map((m) => m?.position?.i),
    [2, 3],
  );
  assert.deepEqual(
    h.metas('small').map((m) => m?.position?.i),
    [0, 4],
  );
  assert.equal(h.deadLetters.length, 0);
});

test('route dead-letters an unmatched record when there is no default, with a clear error', async () => {
  const h = new OperatorHarness(
    route<number>([
      { when: (x) => x % 2 === 0, port: 'even' },
      { when: (x) => x === 3, port: 'three' },
    ]),
    { name: 'router' },
  );
  await h.open();
  await h.process([1, 2, 3, 5], meta(4));
  assert.deepEqual(h.records('even'), [2]);
  assert.deepEqual(h.records('three'), [3]);
  assert.deepEqual(
    h.deadLetters.map((d) => [d.record, d.meta?.position?.i]),
    [
      [1, 0],
      [5, 3],
    ],
  );
  const err = h.deadLetters[0]?.error;
  assert.ok(err instanceof SluiceError);
  assert.equal(err.code, ErrorCode.RECORD);
  assert.equal(
    err.message,
    'no route matched the record (ports: `even`, `three`); add a rule for it or a `default` port',
  );
});

test('route dead-letters a record whose predicate throws and routes the rest', async () => {
  const h = new OperatorHarness(
    route<{ v?: number }>([{ when: (r) => (r.v as number).toFixed(0) === '1', port: 'one' }], {
      default: 'rest',
    }),
  );
  await h.open();
  await h.process([{ v: 1 }, {}, { v: 2 }]);
  assert.deepEqual(h.records('one'), [{ v: 1 }]);
  assert.deepEqual(h.records('rest'), [{ v: 2 }]);
  assert.deepEqual(
    h.deadLetters.map((d) => d.record),
    [{}],
  );
});

test('route rejects reserved or missing ports', () => {
  assert.throws(() => route([]), /at least one rule or a `default` port/);
  assert.throws(() => route([{ when: () => true, port: 'dlq' }]), /`dlq` and the empty name are reserved/);
  assert.throws(() => route([], { default: '' }), /reserved/);
});
