import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from './graph.ts';
import { type FieldUse, projectSources } from './projection.ts';
import type { Operator, Sink, Source } from './stage.ts';

type Projected = Source & { fields?: readonly string[]; uses?: ReadonlyMap<string, FieldUse> | undefined };

function projectable(): Projected {
  const s: Projected & { project(f: readonly string[], u?: ReadonlyMap<string, FieldUse>): void } = {
    async run() {},
    project(f, u) {
      s.fields = f;
      s.uses = u;
    },
  };
  return s;
}
const reader = (fields: readonly string[] | undefined, uses?: Record<string, FieldUse>): Operator =>
  ({ process() {}, readsFields: fields, fieldUses: uses && new Map(Object.entries(uses)) }) as Operator;
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

  it('with a dlq, projects only a source that can rebuild whole records, and says so', () => {
    const g = new Graph('p');
    let whole: boolean | undefined;
    const src = Object.assign(projectable(), {
      project(f: readonly string[], _u: unknown, w?: boolean) {
        whole = w;
        src.fields = f;
      },
      async wholeRecords() {
        return [];
      },
    });
    g.connect(g.addSource(src, { name: 's' }), g.addOperator(reader(['x']), { name: 'a' }));
    g.dlqNode = g.addSink(sink, { name: 'dlq' });
    assert.deepEqual(projectSources(g).get('s'), ['x']);
    assert.equal(whole, true);
  });

  it('leaves a source whole when a reader may read anything, it feeds a sink, or a dlq writes records it cannot rebuild', () => {
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

  it('passes on a field use only when every reader of that field reads it that way', () => {
    const g = new Graph('p');
    const src = projectable();
    const s = g.addSource(src, { name: 's' });
    const a = g.addOperator(reader(['ts', 'at', 'k'], { ts: 'epochMillis', at: 'epochMillis' }), {
      name: 'a',
    });
    // Reads `at` plainly (say, as a key): `at` must stay as the input has it.
    const b = g.addOperator(reader(['at', 'n'], { n: 'epochMillis' }), { name: 'b' });
    const out = g.addSink(sink, { name: 'out' });
    g.connect(s, a);
    g.connect(s, b);
    g.connect(a, out);
    g.connect(b, out);
    projectSources(g);
    assert.deepEqual(
      [...(src.uses ?? [])],
      [
        ['ts', 'epochMillis'],
        ['n', 'epochMillis'],
      ],
    );
  });
});
