import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch, RecordMeta } from '../core/message.ts';
import { positionedBatch } from '../io/positioned-batch.ts';
import { OperatorHarness } from '../operators/harness.ts';
import { type WindowOptions, windowOperator } from './window.ts';

const T = Date.UTC(2024, 4, 1, 12, 0, 0);
const at = (s: number) => new Date(T + s * 1000).toISOString();
type Rec = Record<string, unknown>;

/** Batches of a file source: records with the line and offset each starts at. */
const BATCHES: Rec[][] = [
  [
    { k: 'a', ts: at(1), v: '1' },
    { k: 'b', ts: at(2), v: '2' },
    { k: 'a', ts: at(3), v: '3' },
  ],
  [
    { k: 'a', ts: 'yesterday', v: '1' }, // bad time
    { ts: at(4), v: '1' }, // no key
    { k: 'a', ts: at(5), v: 'lots' }, // bad aggregate input
    { k: 'b', ts: at(6), v: '4' },
  ],
  [{ k: 'a', ts: at(100), v: '5' }], // moves the watermark past the first windows
  [
    { k: 'a', ts: at(7), v: '6' }, // late
    { k: 'b', ts: at(101), v: '7' },
  ],
];

const position = (line: number, offset: number) => ({ file: 'in.jsonl', line, offset });

/** Each batch as a positioned batch (meta built on first read) and as a batch with its meta built. */
function both(counter: { n: number }) {
  let line = 1;
  const lazy: Batch<Rec>[] = [];
  const eager: Batch<Rec>[] = [];
  for (const records of BATCHES) {
    const offsets = records.map((_, i) => (line + i) * 100);
    const firstLine = line;
    line += records.length;
    const counted = (l: number, o: number) => {
      counter.n++;
      return position(l, o);
    };
    lazy.push(positionedBatch(records, 'input', { firstLine, offsets }, counted));
    const meta: RecordMeta[] = offsets.map((o, i) => ({
      source: 'input',
      position: position(firstLine + i, o),
    }));
    eager.push({ kind: 'batch', records, meta });
  }
  return { lazy, eager };
}

async function run(
  options: Partial<WindowOptions<Rec>>,
  batches: readonly Batch<Rec>[],
  after?: (i: number) => void,
) {
  const op = windowOperator<Rec>({
    key: 'k',
    time: 'ts',
    timeFormat: 'iso8601',
    tumbling: '10s',
    watermark: { maxOutOfOrder: '1s' },
    aggregate: { n: 'count()', s: 'sum(v)' },
    ...options,
  } as WindowOptions<Rec>);
  const h = new OperatorHarness(op);
  await h.open();
  for (let i = 0; i < batches.length; i++) {
    await op.process(batches[i] as Batch<Rec>, h.out);
    after?.(i);
  }
  await h.finish();
  return {
    results: h.records(),
    late: h.records('late'),
    lateMeta: h.metas('late'),
    signals: h.outputs.filter((o) => 'signal' in o),
    dead: h.deadLetters.map((d) => ({ record: d.record, message: (d.error as Error).message, meta: d.meta })),
  };
}

for (const [name, options] of [
  ['tumbling, late events as dead letters', {}],
  ['tumbling with a `late` output', { late: 'late' }],
  ['sliding', { sliding: { size: '10s', slide: '5s' }, tumbling: undefined }],
  ['sessions', { session: { gap: '5s' }, tumbling: undefined }],
] as const) {
  test(`${name}: a batch whose meta is built on first read gives what the built meta gives`, async () => {
    const counter = { n: 0 };
    const { lazy, eager } = both(counter);
    const built: number[] = [];
    const got = await run(options as Partial<WindowOptions<Rec>>, lazy, () => built.push(counter.n));
    const want = await run(options as Partial<WindowOptions<Rec>>, eager);
    assert.deepEqual(got, want);
    assert.ok(want.dead.length >= 3, 'bad time, no key, bad input');
    assert.ok(want.dead.every((d) => Number(d.meta?.position?.line) > 3));
    // The first batch is all good: nothing read its meta. The second has dead letters: it was built once.
    assert.equal(built[0], 0);
    assert.equal(built[1], 4);
  });
}

test('a time function of the record and its meta gets each record’s own meta', async () => {
  const counter = { n: 0 };
  const { lazy, eager } = both(counter);
  const seen: unknown[] = [];
  const time = (r: unknown, m: RecordMeta | undefined) => {
    seen.push(m?.position?.line);
    return Date.parse((r as Rec).ts as string);
  };
  const got = await run({ time, timeFormat: undefined }, lazy);
  const lines = seen.splice(0);
  const want = await run({ time, timeFormat: undefined }, eager);
  assert.deepEqual(got, want);
  assert.deepEqual(lines, seen);
  assert.deepEqual(lines.slice(0, 4), [1, 2, 3, 4]);
});
