/**
 * `parallel` on the `kafka` source, spelt in a pipeline file against the real broker: the first
 * step (a `module:` step) runs inside the source on many records at once, records finish out of
 * order, and the group's committed offset never passes a record that has not finished.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultRegistry } from '../../components.ts';
import { buildPipeline } from '../../config/build.ts';
import { loadPipelineFile } from '../../config/load.ts';
import type { Logger } from '../../core/stage.ts';
import { readCommitted } from './group.ts';
import { decodeDone } from './offsets.ts';
import { createTopic, fresh, messageCount, produce, readValues } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const quiet: Logger = { info() {}, warn() {}, error() {} };

async function run(dir: string, name: string, yaml: string) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const { pipeline, runOptions } = await buildPipeline(
    await loadPipelineFile(file, { registry: defaultRegistry, env: {} }),
  );
  return pipeline.run({ ...runOptions, log: quiet });
}

test('`parallel` in a pipeline file: out-of-order completion never commits past an unfinished record', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-parallel-it-'));
  try {
    const input = await createTopic(BROKERS, 'par-in', 1);
    const output = await createTopic(BROKERS, 'par-out', 1);
    const group = fresh('par');
    const N = 60;
    const STUCK = 9;
    await produce(
      BROKERS,
      input,
      Array.from({ length: N }, (_, i) => ({ key: `k${i % 5}`, value: JSON.stringify({ id: i }) })),
    );
    // Later records often finish first; record STUCK never does (until the run is cancelled).
    writeFileSync(
      join(dir, 'slow.ts'),
      `export default async (r: { id: number }) => {
  if (r.id === ${STUCK}) return new Promise(() => {});
  await new Promise((resolve) => setTimeout(resolve, (r.id * 7919) % 7));
  return { ...r, enriched: true };
};
`,
    );
    writeFileSync(
      join(dir, 'pass.ts'),
      'export default (r: { id: number }) => ({ ...r, enriched: true });\n',
    );
    const yaml = (step: string) =>
      [
        'name: it-parallel',
        'input:',
        `  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${group}, commitInterval: 50ms, idleTimeout: 1500ms,`,
        '           parallel: { mode: unordered, concurrency: 16 } }',
        'pipeline:',
        `  - module: ./${step}`,
        'output:',
        `  kafka: { brokers: ${BROKERS[0]}, topic: ${output} }`,
        '',
      ].join('\n');

    const first = await run(dir, 'slow', yaml('slow.ts'));
    let commit: { offset: number; metadata: string | null } | undefined;
    for (let tries = 0; tries < 300; tries++) {
      commit = (await readCommitted(BROKERS, 'sluice-it', group, [input])).get(`${input}:0`);
      if (
        (await messageCount(BROKERS, output)) === N - 1 &&
        commit !== undefined &&
        decodeDone(commit.metadata, STUCK).size === N - 1 - STUCK
      )
        break;
      // Whenever a commit is seen, it is at or before the stuck record.
      if (commit !== undefined) assert.ok(commit.offset <= STUCK, `committed ${commit.offset} past ${STUCK}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(
      await messageCount(BROKERS, output),
      N - 1,
      'the records after the stuck one were not held back',
    );
    assert.equal(commit?.offset, STUCK, 'the committed offset stops at the unfinished record');
    assert.deepEqual(
      [...decodeDone(commit?.metadata, STUCK)].sort((a, b) => a - b),
      Array.from({ length: N - 1 - STUCK }, (_, i) => STUCK + 1 + i),
      'the records finished past it travel in the commit metadata',
    );
    await first.stop({ drain: false }).catch(() => {});

    // A restart of the same group processes the unfinished record only, then commits the end.
    await (await run(dir, 'pass', yaml('pass.ts'))).done;
    const values = (await readValues(BROKERS, output)).map((v) => JSON.parse(v) as { id: number });
    assert.equal(values.length, N);
    assert.deepEqual(
      values.map((v) => v.id).sort((a, b) => a - b),
      Array.from({ length: N }, (_, i) => i),
      'every record once',
    );
    const last = (await readCommitted(BROKERS, 'sluice-it', group, [input])).get(`${input}:0`);
    assert.equal(last?.offset, N);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('`parallel` needs a `module:` function as the first step, said by lint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-parallel-lint-'));
  try {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'name: bad',
        'input: { kafka: { brokers: 127.0.0.1:1, topic: t, parallel: { concurrency: 4 } } }',
        "pipeline: [ { filter: 'true' } ]",
        'output: { stdout: {} }',
        '',
      ].join('\n'),
    );
    await assert.rejects(
      buildPipeline(await loadPipelineFile(file, { registry: defaultRegistry, env: {} })),
      /runs the pipeline's first step inside the source .* must be a `module:` step/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
