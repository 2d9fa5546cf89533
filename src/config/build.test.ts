import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { defaultRegistry } from '../components.ts';
import { batchOf } from '../core/message.ts';
import { formatProblem, problemsOf } from '../spec/problems.ts';
import { defineComponent, Registry } from '../spec/registry.ts';
import { buildPipeline, lintPipelineFile } from './build.ts';
import { loadPipelineFile, parsePipeline } from './load.ts';
import { loadPipelineModule, recordFunctionOperator } from './module-steps.ts';
import { collected, testRegistry } from './test-registry.ts';

const registry = testRegistry();
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-build-'));
  writeFileSync(
    join(dir, 'steps.ts'),
    `export default (r: { id: number }) => (r.id === 2 ? undefined : r.id === 3 ? [r, { id: 33 }] : { ...r, seen: true });
export async function later(r: { id: number }) { if (r.id === 1) throw new Error('no ones'); return r; }
export const op = { ports: ['odd'], async process(b: { records: { id: number }[] }, out: { emit(b: unknown, p?: string): Promise<void> }) {
  await out.emit({ kind: 'batch', records: b.records.filter((r) => r.id % 2 === 1) }, 'odd');
  await out.emit({ kind: 'batch', records: b.records.filter((r) => r.id % 2 === 0) });
} };
export const notAStep = 42;
`,
  );
  writeFileSync(join(dir, 'throws.ts'), `throw new Error('boom at import');\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function build(yaml: string) {
  const file = join(dir, 'p.yaml');
  writeFileSync(file, yaml);
  return buildPipeline(await loadPipelineFile(file, { registry, env: {} }));
}

async function buildProblems(yaml: string): Promise<string[]> {
  try {
    await build(yaml);
  } catch (err) {
    const ps = problemsOf(err);
    if (ps.length === 0) throw err;
    return ps.map((p) => formatProblem(p).replace(`${dir}/`, ''));
  }
  return [];
}

const edges = (p: { graph: { edges: { from: string; port: string; to: string }[] } }) =>
  p.graph.edges.map((e) => `${e.from}.${e.port}→${e.to}`);

describe('buildPipeline', () => {
  it('resolves `checkpoint.store` with the pipeline name as its default namespace', async () => {
    const base = 'input: { memory: {} }\noutput: { collect: { id: cs } }\n';
    const one = await build(`name: orders\n${base}checkpoint: { interval: 1s, store: 'redis://h:6379' }\n`);
    assert.equal(one.checkpoint?.store, 'redis://h:6379');
    assert.equal(one.checkpoint?.namespace, 'orders');
    const two = await build(
      `name: orders\n${base}checkpoint: { interval: 1s, store: 'postgres://h/db', namespace: eu }\n`,
    );
    assert.equal(two.checkpoint?.namespace, 'eu');
    const embedded = await build(`name: orders\n${base}checkpoint: { interval: 1s }\n`);
    assert.equal(embedded.checkpoint?.store, undefined);
    assert.match(embedded.checkpoint?.dir ?? '', /\.sluice\/orders$/);
  });

  it('builds input → steps → output and runs it', async () => {
    const { pipeline, runOptions } = await build(
      'name: b1\ninput: { memory: { records: [{ a: 1 }, { a: 2 }, { a: 3 }] } }\npipeline:\n  - tag: { field: t, value: x }\noutput: { collect: { id: b1 } }\nchannelCapacity: 3\nmaxErrorRate: 0.5\nmaxStateBytes: 1000000\n',
    );
    assert.deepEqual(runOptions, { maxErrorRate: 0.5, channelCapacity: 3, maxStateBytes: 1000000 });
    assert.deepEqual(edges(pipeline), ['input.out→tag', 'tag.out→output']);
    const summary = await pipeline.run(runOptions).done;
    assert.equal(summary.pipeline, 'b1');
    assert.deepEqual(collected.get('b1'), [
      { a: 1, t: 'x' },
      { a: 2, t: 'x' },
      { a: 3, t: 'x' },
    ]);
  });

  it('fans out a list under `output` with a buffer per branch', async () => {
    const { pipeline } = await build(
      'input: { memory: { records: [1, 2] } }\noutput:\n  - collect: { id: f1 }\n  - collect: { id: f2 }\n    buffer: { size: 1, overflow: block }\n',
    );
    assert.deepEqual(edges(pipeline), ['input.out→output[0]', 'input.out→output[1]']);
    assert.deepEqual(pipeline.graph.edges[1]?.buffer, { size: 1, overflow: 'block' });
    await pipeline.run().done;
    assert.deepEqual(collected.get('f1'), [1, 2]);
    assert.deepEqual(collected.get('f2'), [1, 2]);
  });

  it('connects the side outputs a step declares to `outputs:` of the same name', async () => {
    const { pipeline } = await build(
      `input: { memory: { records: [{ k: 1 }, { k: 2 }, { k: 3 }] } }
pipeline:
  - split: { field: k, routes: { one: 1, three: 3 } }
output: { collect: { id: s-main } }
outputs:
  one: { collect: { id: s-one } }
  three: { collect: { id: s-three } }
`,
    );
    assert.deepEqual(edges(pipeline).sort(), [
      'input.out→split',
      'split.one→outputs.one',
      'split.out→output',
      'split.three→outputs.three',
    ]);
    await pipeline.run().done;
    assert.deepEqual(collected.get('s-main'), [{ k: 2 }]);
    assert.deepEqual(collected.get('s-one'), [{ k: 1 }]);
    assert.deepEqual(collected.get('s-three'), [{ k: 3 }]);
  });

  it('reports a side output a step emits on that `outputs:` lacks, and an output nothing emits on', async () => {
    assert.deepEqual(
      await buildProblems(
        'input: { memory: {} }\npipeline:\n  - split: { field: k, routes: { high: 1 } }\noutput: { collect: { id: x } }\noutputs:\n  low: { collect: { id: y } }\n',
      ),
      [
        'p.yaml:3:5: error: pipeline[0]: step `split` emits on side output `high`, but `outputs:` has no `high`; add `outputs: { high: { file: { path: high.jsonl, format: jsonl } } }` (outputs defined: `low`)',
        'p.yaml:6:8: error: outputs.low: no step emits on side output `low` (steps emit on: `high`); name it in a step (e.g. `late: low` of a `window`, a route of a `route`) or remove it',
      ],
    );
  });

  it('routes dead letters to the `dlq` sink', async () => {
    const { pipeline } = await build(
      'input: { memory: { records: [{ a: 1 }, { bad: 1 }] } }\npipeline:\n  - reject: { field: bad }\noutput: { collect: { id: d-out } }\ndlq: { collect: { id: d-dead } }\n',
    );
    const summary = await pipeline.run().done;
    assert.equal(summary.deadLetters, 1);
    assert.deepEqual(collected.get('d-out'), [{ a: 1 }]);
    const [letter] = collected.get('d-dead') as { stage: string; record: unknown; error: { code: string } }[];
    assert.equal(letter?.stage, 'reject');
    assert.deepEqual(letter?.record, { bad: 1 });
    assert.equal(letter?.error.code, 'SLUICE_RECORD');
  });

  it('passes baseDir, the pipeline name and the stage name to factories', async () => {
    const { pipeline } = await build(
      'name: ctx\ninput: { memory: { records: [7] } }\noutput: { collect: { id: c, file: out.jsonl }, name: sink }\n',
    );
    await pipeline.run().done;
    const { readFileSync } = await import('node:fs');
    assert.equal(readFileSync(join(dir, 'out.jsonl'), 'utf8'), '7\n');
    assert.ok(pipeline.graph.nodes.has('sink'));
  });
});

describe('module steps', () => {
  it('runs a per-record function: keep, drop, flatten; and an async one whose throw dead-letters', async () => {
    const { pipeline } = await build(
      `input: { memory: { records: [{ id: 1 }, { id: 2 }, { id: 3 }] } }
pipeline:
  - module: ./steps.ts
  - module: { path: ./steps.ts, export: later }
    name: later
output: { collect: { id: m-out } }
dlq: { collect: { id: m-dead } }
`,
    );
    await pipeline.run().done;
    assert.deepEqual(collected.get('m-out'), [{ id: 3 }, { id: 33 }]);
    const dead = collected.get('m-dead') as { stage: string; error: { message: string }; record: unknown }[];
    assert.equal(dead.length, 1);
    assert.equal(dead[0]?.stage, 'later');
    assert.equal(dead[0]?.error.message, 'module `./steps.ts` threw: no ones');
    assert.deepEqual(dead[0]?.record, { id: 1, seen: true });
  });

  it('uses an exported operator object, with the side outputs it declares in `ports`', async () => {
    const { pipeline } = await build(
      `input: { memory: { records: [{ id: 1 }, { id: 2 }] } }
pipeline:
  - module: { path: ./steps.ts, export: op }
output: { collect: { id: o-even } }
outputs:
  odd: { collect: { id: o-odd } }
`,
    );
    assert.ok(edges(pipeline).includes('steps.odd→outputs.odd'));
    await pipeline.run().done;
    assert.deepEqual(collected.get('o-even'), [{ id: 2 }]);
    assert.deepEqual(collected.get('o-odd'), [{ id: 1 }]);
  });

  it('reports a missing export, a wrong export and a module that fails to load — all at once', async () => {
    assert.deepEqual(
      await buildProblems(
        'input: { memory: {} }\npipeline:\n  - module: { path: ./steps.ts, export: nope }\n  - module: { path: ./steps.ts, export: notAStep }\n  - module: ./throws.ts\noutput: { collect: { id: x } }\n',
      ),
      [
        'p.yaml:3:5: error: pipeline[0]: module `./steps.ts` has no export `nope`; its exports: `default`, `later`, `notAStep` and `op` (pick one with `module: { path: ./steps.ts, export: NAME }`)',
        'p.yaml:4:5: error: pipeline[1]: export `notAStep` of module `./steps.ts` is number; export a function `(record) => record | record[] | undefined` or an operator object with a `process(batch, out)` method',
        'p.yaml:5:5: error: pipeline[2]: cannot load module `./throws.ts`: boom at import',
      ],
    );
  });

  it('recordFunctionOperator fails the stage when a record throws before open (no context to dead-letter to)', async () => {
    const op = recordFunctionOperator(() => {
      throw new Error('x');
    }, 'f.ts');
    await assert.rejects(
      Promise.resolve(op.process(batchOf([1]), { emit: async () => {}, signal: async () => {} })),
      /module `f.ts` threw: x/,
    );
  });
});

describe('lintPipelineFile', () => {
  it('returns the warnings of a good file and every problem of a bad one', async () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(
      good,
      // An unresolved YAML tag is a warning, not an error.
      'name: !note good\ninput: { memory: {} }\noutput: { collect: { id: x } }\ndlq: { collect: { id: d } }\ncheckpoint: { interval: 1s }\n',
    );
    const w = await lintPipelineFile(good, { registry, env: {} });
    assert.deepEqual(
      w.map((p) => p.severity),
      ['warning'],
    );
    const missing = await lintPipelineFile(join(dir, 'nope.yaml'), { registry, env: {} });
    assert.match(
      formatProblem(missing[0] as never),
      /nope\.yaml: error: cannot read the pipeline file: no such file/,
    );
  });

  it('says what exactly-once sinks need before anything connects', async () => {
    const file = join(dir, 'eos.yaml');
    writeFileSync(
      file,
      [
        'name: eos',
        'input: { file: { path: in.jsonl, format: jsonl } }',
        'output:',
        '  - kafka: { brokers: 127.0.0.1:1, topic: a, exactlyOnce: true }',
        '  - kafka: { brokers: 127.0.0.1:1, topic: b, exactlyOnce: true }',
        '',
      ].join('\n'),
    );
    const problems = await lintPipelineFile(file, { registry: defaultRegistry, env: {} });
    const text = problems.map((p) => formatProblem(p));
    assert.equal(
      problems.filter((p) => p.message.includes('commits once per checkpoint')).length,
      2,
      text.join('\n'),
    );
    assert.match(text[0]!, /eos\.yaml:4:\d+: error: .*add `checkpoint: \{ interval: 10s \}` to the pipeline/);
    assert.ok(
      text.some((t) =>
        /eos\.yaml:5:\d+: error: .*two kafka sinks with `exactlyOnce` .* keep `exactlyOnce` on one of them/.test(
          t,
        ),
      ),
      text.join('\n'),
    );
  });

  it('checks partition scope and offset-committing sinks by the capabilities specs declare, not by name', async () => {
    const caps = new Registry().add(
      defineComponent({
        name: 'shards',
        kind: 'source',
        stability: 'experimental',
        summary: 'A partitioned test source.',
        config: z.object({}),
        capabilities: { partitionedPositions: true },
        create: () => ({ async run() {} }),
      }),
      defineComponent({
        name: 'txn',
        kind: 'sink',
        stability: 'experimental',
        summary: 'A sink that commits the `shards` offsets in its transactions.',
        config: z.object({ exactlyOnce: z.boolean().default(false) }),
        capabilities: { commitsSourceOffsets: 'shards' },
        create: () => ({ write() {} }),
      }),
    );
    const file = join(dir, 'caps.yaml');
    writeFileSync(
      file,
      [
        'name: caps',
        'input: { shards: {} }',
        'output:',
        '  - txn: { exactlyOnce: true }',
        '  - txn: { exactlyOnce: true }',
        'checkpoint: { interval: 1s, scope: partition }',
        '',
      ].join('\n'),
    );
    const text = (await lintPipelineFile(file, { registry: caps, env: {} })).map((p) => formatProblem(p));
    assert.ok(!text.some((t) => t.includes('`scope: partition` needs')), text.join('\n'));
    assert.ok(
      text.some((t) => /caps\.yaml:5:\d+: error: .*two txn sinks with `exactlyOnce`/.test(t)),
      text.join('\n'),
    );
  });

  it('points `scope: partition` problems at the checkpoint settings that cause them', async () => {
    const file = join(dir, 'scope.yaml');
    writeFileSync(
      file,
      [
        'name: scope',
        'input: { generate: { count: 1 } }',
        'output: { stdout: {} }',
        'checkpoint:',
        '  interval: 1s',
        '  scope: partition',
        '  wal: true',
        '',
      ].join('\n'),
    );
    const text = (await lintPipelineFile(file, { registry: defaultRegistry, env: {} })).map((p) =>
      formatProblem(p),
    );
    assert.ok(
      text.some((t) => /scope\.yaml:6:\d+: error: .*`scope: partition` needs a `kafka` input/.test(t)),
      text.join('\n'),
    );
    assert.ok(
      text.some((t) => /scope\.yaml:7:\d+: error: .*does not take `wal`/.test(t)),
      text.join('\n'),
    );
  });

  it('parsePipeline never throws, even for garbage', () => {
    for (const text of ['', '{', ': :', '[1, 2', 'input: [', '\t\tx', 'a: !!binary zz']) {
      const r = parsePipeline(text, 'g.yaml', { registry });
      assert.ok(
        r.problems.some((p) => p.severity === 'error'),
        `no error for ${JSON.stringify(text)}`,
      );
    }
  });
});

describe('loadPipelineModule', () => {
  it('loads a default-exported Pipeline, or a function returning one; rejects anything else', async () => {
    const core = new URL('../pipeline.ts', import.meta.url).href;
    writeFileSync(
      join(dir, 'pipe.ts'),
      `import { Pipeline } from '${core}';\nexport default () => new Pipeline('from-module');\n`,
    );
    writeFileSync(join(dir, 'bad.ts'), 'export default 3;\n');
    assert.equal((await loadPipelineModule(join(dir, 'pipe.ts'))).graph.name, 'from-module');
    await assert.rejects(loadPipelineModule(join(dir, 'bad.ts')), /the default export must be a `Pipeline`/);
    // A script that runs its own pipeline exports nothing: the message says how to run it.
    writeFileSync(join(dir, 'script.ts'), 'export const ran = true;\n');
    await assert.rejects(
      loadPipelineModule(join(dir, 'script.ts')),
      /got nothing; .* \(code at the module's top level ran when it was imported: .*`node .*script\.ts`, or runs it only `if \(import\.meta\.main\)`\)/,
    );
    await assert.rejects(loadPipelineModule(join(dir, 'none.ts')), /no such file/);
  });
});
