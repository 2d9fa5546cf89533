import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../pipeline.ts';
import { fuseRecordSteps } from './fuse.ts';
import { type Batch, batchOf, type RecordMeta } from './message.ts';
import type { DeadLetter, Sink, Source } from './stage.ts';

function numbers(n: number): Source<number> {
  return {
    async run(out, ctx) {
      const records = Array.from({ length: n }, (_, i) => i);
      const meta: RecordMeta[] = records.map((i) => ({ source: ctx.name, position: { i } }));
      await out.emit(batchOf(records, meta));
    },
  };
}

function collect<T>(): Sink<T> & { got: T[]; meta: (RecordMeta | undefined)[] } {
  const s = {
    got: [] as T[],
    meta: [] as (RecordMeta | undefined)[],
    write(b: Batch<T>) {
      s.got.push(...b.records);
      s.meta.push(...(b.meta ?? b.records.map(() => undefined)));
    },
  };
  return s;
}

describe('fuseRecordSteps', () => {
  it('runs map → filter → map as one stage with the same results and aligned meta', async () => {
    const sink = collect<number>();
    const p = new Pipeline('fuse');
    p.from(numbers(20), { name: 'in' })
      .map((n: number) => n * 3)
      .filter((n: number) => n % 2 === 0)
      .map((n: number) => n + 1)
      .to(sink);
    const fused = fuseRecordSteps(p.graph);
    assert.deepEqual([...fused.nodes.keys()].sort(), ['in', 'map+filter+map#2', 'sink'].sort());
    assert.equal(p.graph.nodes.size, 5, 'the pipeline’s own graph is unchanged');
    const summary = await p.run().done;
    const expected = Array.from({ length: 20 }, (_, i) => i * 3)
      .filter((n) => n % 2 === 0)
      .map((n) => n + 1);
    assert.deepEqual(sink.got, expected);
    assert.deepEqual(
      sink.meta.map((m) => m?.position?.i),
      expected.map((v) => (v - 1) / 3),
      'each record keeps its own meta',
    );
    assert.ok(summary.stages.some((s) => s.name === 'map+filter+map#2' && s.component === 'map+filter+map'));
  });

  it('does not fuse across a fan-out, a buffered edge or a merge', () => {
    const p = new Pipeline('nofuse');
    const mapped = p.from(numbers(1)).map((n: number) => n);
    mapped.filter(() => true).to(collect());
    mapped.to(collect());
    const q = new Pipeline('buffered');
    q.from(numbers(1))
      .map((n: number) => n)
      .filter(() => true, { buffer: { size: 8 } })
      .to(collect());
    const r = new Pipeline('merge');
    const a = r.from(numbers(1), { name: 'a' }).map((n: number) => n);
    const b = r.from(numbers(1), { name: 'b' }).map((n: number) => n);
    a.merge([b]).to(collect());
    assert.equal(fuseRecordSteps(p.graph), p.graph);
    assert.equal(fuseRecordSteps(q.graph), q.graph);
    assert.equal(fuseRecordSteps(r.graph), r.graph);
  });

  it('sends a record that fails in a fused step to the dlq, naming the step, and goes on', async () => {
    const sink = collect<number>();
    const dead = collect<DeadLetter>();
    const p = new Pipeline('fuse-dlq');
    p.from(numbers(6), { name: 'in' })
      .map((n: number) => n * 10, { name: 'times10' })
      .filter(
        (n: number) => {
          if (n === 30) throw new Error('thirty is not allowed');
          return true;
        },
        { name: 'check' },
      )
      .to(sink);
    p.dlq(dead);
    await p.run().done;
    assert.deepEqual(sink.got, [0, 10, 20, 40, 50]);
    assert.equal(dead.got.length, 1);
    const letter = dead.got[0] as DeadLetter;
    assert.equal(letter.stage, 'times10+check');
    assert.equal(letter.record, 30, 'the record as the failing step saw it');
    assert.equal(letter.error.step, 'check');
    assert.match(String(letter.error.message), /step `check`: thirty is not allowed/);
    assert.deepEqual(letter.position, { i: 3 });
  });
});
