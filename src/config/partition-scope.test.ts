import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultRegistry } from '../components.ts';
import { problemsOf } from '../spec/problems.ts';
import { buildPipeline } from './build.ts';
import { loadPipelineFile } from './load.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-scope-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function build(yaml: string) {
  const file = join(dir, 'p.yaml');
  writeFileSync(file, yaml);
  return buildPipeline(await loadPipelineFile(file, { registry: defaultRegistry, env: {} }));
}

async function problems(yaml: string): Promise<string[]> {
  try {
    await build(yaml);
    return [];
  } catch (err) {
    return problemsOf(err).map((p) => p.message);
  }
}

const window = `  - window: { key: user, time: ts, tumbling: 1m, aggregate: { n: count() } }\n`;

describe('checkpoint scope: partition', () => {
  it('wraps each stateful step per partition and passes the scope on', async () => {
    const built = await build(
      `name: s\ninput:\n  kafka: { brokers: 127.0.0.1:9092, topic: t, group: g }\npipeline:\n  - filter: 'true'\n${window}output:\n  stdout: {}\ncheckpoint: { interval: 1s, dir: shared, scope: partition }\n`,
    );
    assert.equal(built.checkpoint?.scope, 'partition');
    const stages = [...built.pipeline.graph.nodes.values()].filter((n) => n.kind === 'operator');
    const metrics = stages.map((n) => Object.keys(n.stage.metrics?.() ?? {}));
    assert.ok(
      metrics.some((m) => m.includes('partitionSlices')),
      'the window is partition-scoped',
    );
    assert.ok(!metrics.some((m, i) => m.includes('partitionSlices') && stages[i]?.component === 'filter'));
  });

  it('needs a kafka input and takes no write-ahead log', async () => {
    const found = await problems(
      `name: s\ninput:\n  generate: { count: 10 }\npipeline:\n${window}output:\n  stdout: {}\ncheckpoint: { interval: 1s, scope: partition, wal: true }\n`,
    );
    assert.ok(
      found.some((m) => m.includes('`scope: partition` needs a `kafka` input')),
      found.join('\n'),
    );
    assert.ok(
      found.some((m) => m.includes('does not take `wal`')),
      found.join('\n'),
    );
  });

  it('refuses exactly-once into a sink whose transactions belong to the whole pipeline', async () => {
    const pg = `  postgres: { url: postgres://u@127.0.0.1/db, table: t, exactlyOnce: true }\n`;
    const found = await problems(
      `name: s\ninput:\n  kafka: { brokers: 127.0.0.1:9092, topic: t, group: g }\npipeline:\n${window}output:\n${pg}checkpoint: { interval: 1s, scope: partition }\n`,
    );
    assert.ok(
      found.some((m) => m.includes('`exactlyOnce` on the postgres sink') && m.includes('scope: partition')),
      found.join('\n'),
    );
    // kafka → kafka keeps exactly-once across the members: no such problem.
    const kafka = `  kafka: { brokers: 127.0.0.1:9092, topic: out, exactlyOnce: true }\n`;
    const none = await problems(
      `name: s\ninput:\n  kafka: { brokers: 127.0.0.1:9092, topic: t, group: g }\npipeline:\n${window}output:\n${kafka}checkpoint: { interval: 1s, scope: partition }\n`,
    );
    assert.ok(!none.some((m) => m.includes('does not work under')), none.join('\n'));
  });
});
