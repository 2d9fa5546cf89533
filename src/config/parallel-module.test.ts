import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatProblem } from '../spec/problems.ts';
import { buildPipeline, lintPipelineFile } from './build.ts';
import { loadPipelineFile } from './load.ts';
import { collected, testRegistry } from './test-registry.ts';

const registry = testRegistry();
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-parallel-module-'));
  writeFileSync(
    join(dir, 'score.ts'),
    `export default (r: { id: number; user: string }) => {
  if (r.id % 10 === 4) throw new Error('no fours');
  return r.id % 10 === 7 ? undefined : { ...r, score: r.id * 3 };
};
export const op = { async process() {} };
`,
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

const records = JSON.stringify(Array.from({ length: 50 }, (_, id) => ({ id, user: `u${id % 6}` })));

async function run(step: string, id: string) {
  const file = join(dir, `${id}.yaml`);
  writeFileSync(
    file,
    `input: { memory: { records: ${records}, batchSize: 7 } }\npipeline:\n  - module: ./score.ts\n${step}output: { collect: { id: ${id} } }\ndlq: { collect: { id: ${id}-dead } }\n`,
  );
  const { pipeline } = await buildPipeline(await loadPipelineFile(file, { registry, env: {} }));
  await pipeline.run().done;
  const dead = (collected.get(`${id}-dead`) ?? []) as { record: unknown; error: { message: string } }[];
  return { out: collected.get(id), dead: dead.map((d) => [d.record, d.error.message]) };
}

async function lint(yaml: string): Promise<string[]> {
  const file = join(dir, 'lint.yaml');
  writeFileSync(file, yaml);
  return (await lintPipelineFile(file, { registry, env: {} })).map((p) =>
    formatProblem(p).replace(`${dir}/`, ''),
  );
}

describe('`parallelism` on a module step', () => {
  it('gives the records and dead letters of one thread, keyed and unkeyed', async () => {
    const one = await run('', 'par-none');
    assert.equal((one.out as unknown[]).length, 40);
    assert.equal(one.dead.length, 5);
    assert.equal(one.dead[0]?.[1], 'module `./score.ts` threw: no fours');
    assert.deepEqual(await run('    parallelism: 1\n', 'par-1'), one);
    assert.deepEqual(await run('    parallelism: 2\n', 'par-2'), one);
    assert.deepEqual(await run('    parallelism: 2\n    key: user\n', 'par-2-key'), one);
  });

  it('lint says what is wrong with `parallelism` and `key`', async () => {
    const head = 'input: { memory: {} }\npipeline:\n';
    const tail = 'output: { collect: { id: lint-out } }\n';
    assert.deepEqual(await lint(`${head}  - module: ./score.ts\n    parallelism: 0\n${tail}`), [
      'lint.yaml:4:18: error: pipeline[0].parallelism: `parallelism` must be `auto` or a whole number from 1 to 256, got number 0',
    ]);
    assert.deepEqual(await lint(`${head}  - module: ./score.ts\n    key: user\n${tail}`), [
      'lint.yaml:4:5: error: pipeline[0].key: `key` beside `module` chooses the worker thread of each record: add `parallelism: 2` (or `auto`), or remove `key`',
    ]);
    assert.deepEqual(
      await lint(`${head}  - module: ./score.ts\n    parallelism: 2\n    key: { a: 1 }\n${tail}`),
      [
        'lint.yaml:5:10: error: pipeline[0].key: `key` must be a field name or a list of field names, got a map',
      ],
    );
    assert.deepEqual(
      await lint(`${head}  - module: { path: ./score.ts, export: op }\n    parallelism: auto\n${tail}`),
      [
        'lint.yaml:3:5: error: pipeline[0]: `parallelism` runs a per-record function on worker threads, but export `op` of module `./score.ts` is an operator object, whose state lives on one thread; export a function `(record) => record | record[] | undefined`, or remove `parallelism`',
      ],
    );
    assert.deepEqual(
      await lint(`${head}  - module: ./score.ts\n    parallelism: auto\n    key: [user, id]\n${tail}`),
      [],
    );
  });
});
