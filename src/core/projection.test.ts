import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from './graph.ts';
import { projectSources } from './projection.ts';
import type { Operator, Sink, Source } from './stage.ts';

function projectable(): Source & { fields?: readonly string[] } {
  const s: Source & { fields?: readonly string[]; project(f: readonly string[]): void } = {
    async run() {},
    project(f) {
      s.fields = f;
    },
  };
  return s;
}
const reader = (fields: readonly string[] | undefined): Operator =>
  ({ process() {}, readsFields: fields }) as Operator;
const sink: Sink = { write() {} };

describe('projectSources', () => {
  it('tells a source the union of the fields its readers read', () => {
    const g = new Graph('p');
    const src = projectable();
    const s = g.addSource(src, { name: 's' });
    const a = g.addOperator(reader(['ts', 'country']), { name: 'a' });
    const b = g.addOperator(reader(['amount', 'ts']), { name: 'b' });
    const out = g.addSink(sink, { name: 'out' });
    g.connect(s, a);
    g.connect(s, b);
    g.connect(a, out);
    g.connect(b, out);
    assert.deepEqual(projectSources(g).get('s'), ['ts', 'country', 'amount']);
    assert.deepEqual(src.fields, ['ts', 'country', 'amount']);
  });

  it('leaves a source whole when a reader may read anything, it feeds a sink, or a dlq writes records', () => {
    for (const build of [
      (g: Graph, s: string) => g.connect(s, g.addOperator(reader(undefined), { name: 'a' })),
      (g: Graph, s: string) => g.connect(s, g.addSink(sink, { name: 'out' })),
      (g: Graph, s: string) => {
        g.connect(s, g.addOperator(reader(['x']), { name: 'a' }));
        g.dlqNode = g.addSink(sink, { name: 'dlq' });
      },
    ]) {
      const g = new Graph('p');
      const src = projectable();
      build(g, g.addSource(src, { name: 's' }));
      assert.equal(projectSources(g).size, 0);
      assert.equal(src.fields, undefined);
    }
  });
});
