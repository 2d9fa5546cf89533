import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordMeta } from '../core/message.ts';
import { OperatorHarness } from './harness.ts';
import { filter, flatMap, map } from './map.ts';

const meta = (n: number): RecordMeta[] =>
  Array.from({ length: n }, (_, i) => ({ source: 'in', position: { line: i + 1 } }));

test('map applies fn to every record and keeps meta aligned', async () => {
  const h = new OperatorHarness(map((x: number) => x * 10));
  await h.open();
  await h.process([1, 2, 3], meta(3));
  assert.deepEqual(h.records(), [10, 20, 30]);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.line),
    [1, 2, 3],
  );
});

test('map dead-letters a throwing record with its meta and goes on with the batch', async () => {
  const boom = new Error('odd');
  const h = new OperatorHarness(
    map((x: number) => {
      if (x % 2 === 1) throw boom;
      return x;
    }),
  );
  await h.open();
  await h.process([1, 2, 3, 4], meta(4));
  assert.deepEqual(h.records(), [2, 4]);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.line),
    [2, 4],
  );
  assert.deepEqual(
    h.deadLetters.map((d) => [d.record, d.error, d.meta?.position?.line]),
    [
      [1, boom, 1],
      [3, boom, 3],
    ],
  );
});

test('map without input meta emits no meta; a fully failed batch emits nothing', async () => {
  const h = new OperatorHarness(
    map((x: number) => {
      if (x > 5) throw new Error('big');
      return x;
    }),
  );
  await h.open();
  await h.process([1]);
  assert.equal(h.batches()[0]?.meta, undefined);
  await h.process([6, 7]);
  assert.equal(h.batches().length, 1);
  assert.equal(h.deadLetters.length, 2);
});

test('map emits a fresh array, never the input one', async () => {
  const h = new OperatorHarness(map((x: number) => x));
  await h.open();
  const input = [1, 2];
  await h.process(input);
  assert.notEqual(h.batches()[0]?.records, input);
});

test('filter keeps matching records with their meta and dead-letters a throwing predicate', async () => {
  const h = new OperatorHarness(
    filter((x: number) => {
      if (x === 3) throw new Error('three');
      return x % 2 === 0;
    }),
  );
  await h.open();
  await h.process([1, 2, 3, 4, 5, 6], meta(6));
  assert.deepEqual(h.records(), [2, 4, 6]);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.line),
    [2, 4, 6],
  );
  assert.deepEqual(
    h.deadLetters.map((d) => d.record),
    [3],
  );
});

test('flatMap emits every output with its parent meta; a failing record leaves no partial output', async () => {
  const h = new OperatorHarness(
    flatMap(function* (s: string) {
      for (const w of s.split(' ')) {
        if (w === 'bad') throw new Error('bad word');
        yield w;
      }
    }),
  );
  await h.open();
  await h.process(['a b', 'c bad d', '', 'e'], meta(4));
  assert.deepEqual(h.records(), ['a', 'b', '', 'e']);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.line),
    [1, 1, 3, 4],
  );
  assert.deepEqual(
    h.deadLetters.map((d) => [d.record, (d.error as Error).message, d.meta?.position?.line]),
    [['c bad d', 'bad word', 2]],
  );
});

test('flatMap with zero outputs emits nothing', async () => {
  const h = new OperatorHarness(flatMap((_: number) => []));
  await h.open();
  await h.process([1, 2]);
  assert.equal(h.outputs.length, 0);
});
