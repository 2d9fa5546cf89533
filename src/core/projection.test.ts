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
/** A step reading `fields` that passes its input records on (a filter). */
const passing = (fields: readonly string[] | undefined): Operator =>
  ({ process() {}, readsFields: fields, passesRecords: true }) as Operator;
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

  it('reads through a step that passes records on: its fields and its consumers’, whose uses it keeps unless it reads the field', () => {
    const g = new Graph('p');
    const src = projectable();
    const s = g.addSource(src, { name: 's' });
    const f = g.addOperator(passing(['status']), { name: 'f' });
    const f2 = g.addOperator(passing(['risk']), { name: 'f2' });
    const w = g.addOperator(reader(['ts', 'country'], { ts: 'epochMillis' }), { name: 'w' });
    g.connect(s, f);
    g.connect(f, f2);
    g.connect(f2, w);
    g.connect(w, g.addSink(sink, { name: 'out' }));
    assert.deepEqual(projectSources(g).get('s'), ['status', 'risk', 'ts', 'country']);
    assert.deepEqual([...(src.uses ?? [])], [['ts', 'epochMillis']]);
    // A filter reading the time field itself: the field stays as the input has it.
    const g2 = new Graph('p');
    const src2 = projectable();
    const s2 = g2.addSource(src2, { name: 's' });
    const f3 = g2.addOperator(passing(['ts']), { name: 'f' });
    g2.connect(s2, f3);
    g2.connect(f3, g2.addOperator(reader(['ts'], { ts: 'epochMillis' }), { name: 'w' }));
    assert.deepEqual(projectSources(g2).get('s'), ['ts']);
    assert.equal(src2.uses?.size, 0);
  });

  it('leaves a source whole when a step it passes records to may read anything or writes them', () => {
    for (const build of [
      (g: Graph, f: string) => g.connect(f, g.addSink(sink, { name: 'out' })),
      (g: Graph, f: string) => g.connect(f, g.addOperator(reader(undefined), { name: 'm' })),
      (g: Graph, f: string) => {
        const f2 = g.addOperator(passing(undefined), { name: 'f2' });
        g.connect(f, f2);
        g.connect(f2, g.addOperator(reader(['x']), { name: 'w' }));
      },
      (g: Graph, f: string) => {
        g.connect(f, g.addOperator(reader(['x']), { name: 'w' }));
        g.connect(f, g.addSink(sink, { name: 'copy' }));
      },
      // Its records go nowhere: nothing says what is read of them.
      (_g: Graph, _f: string) => {},
    ]) {
      const g = new Graph('p');
      const src = projectable();
      const f = g.addOperator(passing(['status']), { name: 'f' });
      g.connect(g.addSource(src, { name: 's' }), f);
      build(g, f);
      assert.equal(projectSources(g).size, 0);
      assert.equal(src.fields, undefined);
    }
  });
});
