import assert from 'node:assert/strict';
import { test } from 'node:test';
import { positionedBatch } from './positioned-batch.ts';

/** A position builder that counts its calls. */
function counting() {
  const calls = { n: 0 };
  const position = (line: number, offset: number) => {
    calls.n++;
    return { file: 'f.csv', line, offset };
  };
  return { calls, position };
}

test('meta is built on its first read, once, from consecutive lines or a list of lines', () => {
  const { calls, position } = counting();
  const b = positionedBatch(['a', 'b', 'c'], 'input', { firstLine: 2, offsets: [10, 14, 30] }, position);
  assert.equal(calls.n, 0);
  assert.deepEqual(b.origin, { source: 'input' });
  const meta = b.meta;
  assert.deepEqual(meta, [
    { source: 'input', position: { file: 'f.csv', line: 2, offset: 10 } },
    { source: 'input', position: { file: 'f.csv', line: 3, offset: 14 } },
    { source: 'input', position: { file: 'f.csv', line: 4, offset: 30 } },
  ]);
  assert.equal(calls.n, 3);
  assert.equal(b.meta, meta); // kept, not built again
  assert.equal(calls.n, 3);
  const listed = positionedBatch(
    ['a', 'b'],
    'in',
    { firstLine: 1, lines: [1, 5], offsets: [0, 40] },
    position,
  );
  assert.deepEqual(
    listed.meta?.map((m) => m?.position),
    [
      { file: 'f.csv', line: 1, offset: 0 },
      { file: 'f.csv', line: 5, offset: 40 },
    ],
  );
});

test('a spread or a structured clone of the batch carries its meta', () => {
  const { position } = counting();
  const b = positionedBatch([{ id: 1 }], 'input', { firstLine: 7, offsets: [99] }, position);
  const expected = [{ source: 'input', position: { file: 'f.csv', line: 7, offset: 99 } }];
  assert.deepEqual({ ...b }.meta, expected);
  const cloned = structuredClone(
    positionedBatch([{ id: 1 }], 'input', { firstLine: 7, offsets: [99] }, position),
  );
  assert.deepEqual(cloned, {
    kind: 'batch',
    records: [{ id: 1 }],
    origin: { source: 'input' },
    meta: expected,
  });
});

test('offsets or lines not as long as the records are refused, saying how many', () => {
  const { position } = counting();
  assert.throws(
    () => positionedBatch(['a', 'b'], 'in', { firstLine: 1, offsets: [0] }, position),
    /positionedBatch: 2 records need as many offsets and lines, got 1 and consecutive/,
  );
  assert.throws(
    () => positionedBatch(['a'], 'in', { firstLine: 1, lines: [1, 2], offsets: [0] }, position),
    /1 records need as many offsets and lines, got 1 and 2/,
  );
});
