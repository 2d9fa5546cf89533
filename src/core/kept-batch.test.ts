import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { recordFunctionOperator } from '../config/module-steps.ts';
import { CelFilter, CelMap, ruleVersionKey } from '../expr/cel-operators.ts';
import { positionedBatch } from '../io/positioned-batch.ts';
import { filter, flatMap, map } from '../operators/map.ts';
import { fuseRecordSteps } from './fuse.ts';
import { Graph } from './graph.ts';
import { keptBatch } from './kept-batch.ts';
import { type Batch, batchOf, type RecordMeta } from './message.ts';
import type { Operator, StageContext } from './stage.ts';

/** A positioned batch of `records` (lines 10, 11, …; offsets 100 apart) that counts the positions it builds. */
function positioned(records: readonly unknown[]) {
  const built = { n: 0 };
  const batch = positionedBatch(
    records,
    'input',
    { firstLine: 10, offsets: records.map((_, i) => i * 100) },
    (line, offset) => {
      built.n++;
      return { file: 'in.csv', line, offset };
    },
  );
  return { batch, built };
}

const at = (line: number) => ({
  source: 'input',
  position: { file: 'in.csv', line, offset: (line - 10) * 100 },
});

/** Runs `op` over `batch` with a context that collects dead letters; returns what it emitted. */
async function through(op: Operator, batch: Batch) {
  const letters: { record: unknown; meta: RecordMeta | undefined; error: unknown }[] = [];
  const ctx = {
    name: 'step',
    deadLetter(record: unknown, error: unknown, meta?: RecordMeta) {
      letters.push({ record, meta, error });
    },
  } as unknown as StageContext;
  await op.open?.(ctx);
  const emitted: Batch[] = [];
  await op.process(batch, {
    emit(b: Batch) {
      emitted.push(b);
      return Promise.resolve();
    },
  } as never);
  return { out: emitted[0] as Batch, letters };
}

/** The one fused operator of `ops` in a chain (see `fuseRecordSteps`). */
function fused(...ops: Operator[]): Operator {
  const g = new Graph('t');
  let prev = g.addSource({ async run() {} }, { name: 's' });
  ops.forEach((op, i) => {
    const id = g.addOperator(op, { name: `o${i}` });
    g.connect(prev, id);
    prev = id;
  });
  const node = [...fuseRecordSteps(g).nodes.values()].find((n) => n.kind === 'operator');
  return node?.stage as Operator;
}

describe('keptBatch', () => {
  test('of a positioned batch: the kept records’ meta, built only when read, and the origin', () => {
    const { batch, built } = positioned(['a', 'b', 'c', 'd']);
    const kept = keptBatch(batch, ['d', 'b', 'b'], [3, 1, 1]);
    assert.equal(built.n, 0);
    assert.deepEqual(kept.origin, { source: 'input' });
    assert.deepEqual(kept.meta, [at(13), at(11), at(11)]);
    assert.equal(built.n, 3); // its own three, not the parent's four
    assert.equal(kept.meta, kept.meta);
    // A subset of the subset, still lazy.
    const again = keptBatch(keptBatch(batch, ['c', 'd'], [2, 3]), ['d'], [1]);
    assert.deepEqual(again.meta, [at(13)]);
  });

  test('of a batch whose meta is built or plain: the same meta objects picked; none without meta', () => {
    const { batch } = positioned(['a', 'b', 'c']);
    const meta = batch.meta as readonly RecordMeta[];
    const kept = keptBatch(batch, ['c'], [2]);
    assert.equal(kept.meta?.[0], meta[2]);
    assert.deepEqual(kept.origin, { source: 'input' });
    const m = [{ source: 'x' }, { source: 'y' }];
    assert.deepEqual(keptBatch(batchOf([1, 2], m), [2, 2], [1, 1]), batchOf([2, 2], [m[1], m[1]]) as Batch);
    assert.deepEqual(keptBatch(batchOf([1, 2]), [1], [0]), { kind: 'batch', records: [1] });
  });
});

describe('per-record steps over a byte source’s batch', () => {
  const rows = [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }];
  const steps: [string, () => Operator][] = [
    ['CelFilter', () => new CelFilter('n % 2 == 0')],
    ['filter', () => filter((r: { n: number }) => r.n % 2 === 0)],
    [
      'map → filter, fused',
      () =>
        fused(
          map((r: { n: number }) => r),
          filter((r: { n: number }) => r.n % 2 === 0),
        ),
    ],
  ];
  for (const [name, make] of steps) {
    test(`${name}: emits the kept records without building meta, keeping the origin; its meta is theirs`, async () => {
      const { batch, built } = positioned(rows);
      const { out } = await through(make(), batch);
      assert.deepEqual(out.records, [{ n: 2 }, { n: 4 }]);
      assert.equal(built.n, 0, 'meta built');
      assert.deepEqual(out.origin, { source: 'input' });
      assert.deepEqual(out.meta, [at(11), at(13)]);
    });
  }

  test('map, flatMap and a CEL map carry each record’s meta lazily too', async () => {
    const { batch, built } = positioned(rows);
    const cel = await through(new CelMap({ fields: { m: 'n * 10' } }), batch);
    assert.deepEqual(cel.out.origin, { source: 'input' });
    const mapped = (
      await through(
        map((r: { n: number }) => r.n * 10),
        batch,
      )
    ).out;
    const flat = (
      await through(
        flatMap((r: { n: number }) => (r.n === 2 ? [] : [r.n, r.n])),
        batch,
      )
    ).out;
    assert.equal(built.n, 0);
    assert.deepEqual(mapped.meta, [at(10), at(11), at(12), at(13)]);
    assert.deepEqual(flat.records, [1, 1, 3, 3, 4, 4]);
    assert.deepEqual(flat.meta, [at(10), at(10), at(12), at(12), at(13), at(13)]);
    assert.deepEqual(cel.out.meta, [at(10), at(11), at(12), at(13)]);
    // A failing record's letter reads its meta (the batch's is built then).
    const failing = await through(new CelMap({ fields: { m: '10 / (int(n) - 2)' } }), positioned(rows).batch);
    assert.deepEqual(
      failing.out.records.map((r) => (r as { m: number }).m),
      [-10, 10, 5],
    );
    assert.deepEqual(failing.out.meta, [at(10), at(12), at(13)]);
    assert.deepEqual(
      failing.letters.map((l) => l.meta),
      [at(11)],
    );
  });

  test('a `module:` step’s function carries each record’s meta lazily, arrays and drops included', async () => {
    const { batch, built } = positioned(rows);
    const step = recordFunctionOperator(
      (r) => ((r as { n: number }).n === 2 ? undefined : (r as { n: number }).n === 3 ? [30, 31] : r),
      'step.ts',
    );
    const { out } = await through(step, batch);
    assert.equal(built.n, 0);
    assert.deepEqual(out.origin, { source: 'input' });
    assert.deepEqual(out.records, [{ n: 1 }, 30, 31, { n: 4 }]);
    assert.deepEqual(out.meta, [at(10), at(12), at(12), at(13)]);
    const failing = await through(
      recordFunctionOperator((r) => {
        if ((r as { n: number }).n === 2) throw new Error('bad');
        return r;
      }, 'step.ts'),
      positioned(rows).batch,
    );
    assert.deepEqual(
      failing.letters.map((l) => l.meta),
      [at(11)],
    );
    assert.deepEqual(failing.out.meta, [at(10), at(12), at(13)]);
  });

  test('a failing record’s letter has its position; a budget error still names it in its message', async () => {
    const { batch } = positioned([{ n: 1 }, { n: 'x' }, { n: 2 }]);
    const { out, letters } = await through(new CelFilter('n > 0'), batch);
    assert.deepEqual(out.records, [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(
      letters.map((l) => l.meta),
      [at(11)],
    );
    const budget = positioned([{ xs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }]);
    const tight = new CelFilter({ expr: 'xs.all(x, xs.all(y, x + y > 0))', limits: { maxEvalSteps: 20 } });
    const failed = await through(tight, budget.batch);
    assert.equal(failed.letters.length, 1);
    assert.match(String((failed.letters[0]?.error as Error | undefined)?.message), /"line":10/);
    for (const op of [
      filter((r: { n: number }) => r.n.toFixed(0) !== ''),
      fused(
        map((r) => r),
        filter((r: { n: number }) => r.n.toFixed(0) !== ''),
      ),
    ]) {
      const p = positioned([{ n: 1 }, {}, { n: 2 }]);
      const { letters: ls } = await through(op, p.batch);
      assert.deepEqual(
        ls.map((l) => l.meta),
        [at(11)],
      );
    }
  });

  test('a CEL filter reading `meta`, or stamping rule versions, still gets and gives each record’s meta', async () => {
    const { batch } = positioned(rows);
    const reads = await through(new CelFilter('meta.position.line >= 12'), batch);
    assert.deepEqual(reads.out.records, [{ n: 3 }, { n: 4 }]);
    assert.deepEqual(reads.out.meta, [at(12), at(13)]);
    const stamping = new CelFilter({ expr: 'n > 2', stampVersion: true });
    const stamped = await through(stamping, positioned(rows).batch);
    assert.deepEqual(stamped.out.origin, { source: 'input' });
    assert.deepEqual(
      stamped.out.meta?.map((m) => m?.attributes?.[ruleVersionKey('step')]),
      [stamping.ruleVersion, stamping.ruleVersion],
    );
    assert.deepEqual(stamped.out.meta?.[0]?.position, at(12).position);
  });
});
