import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { Registry } from '../spec/registry.ts';
import { OperatorHarness } from './harness.ts';
import { batchSpec, operatorSpecs, throttleSpec } from './spec.ts';

const buildCtx = { baseDir: '.', pipelineName: 'p', stageName: 's' };

test('batch spec: defaults, durations and a working operator', async () => {
  assert.deepEqual(batchSpec.config.parse({}), { size: 500, maxWait: 100 });
  assert.deepEqual(batchSpec.config.parse({ size: 2, maxWait: '1m' }), { size: 2, maxWait: 60_000 });
  const op = batchSpec.create(batchSpec.config.parse({ size: 2, maxWait: '1s' }), buildCtx);
  const h = new OperatorHarness(op);
  await h.open();
  await h.process([1, 2, 3]);
  assert.deepEqual(h.records(), [1, 2]);
});

test('batch spec reports every problem at once, durations with how to write them', () => {
  const r = batchSpec.config.safeParse({ size: 0, maxWait: '5 minutes', flushMs: 3 });
  assert.equal(r.success, false);
  const issues = r.error?.issues.map((i) => [i.path.join('.'), i.message]) ?? [];
  assert.equal(issues.length, 3);
  assert.deepEqual(
    issues.find(([p]) => p === 'maxWait'),
    ['maxWait', '`5 minutes` is not a duration; use a number with ms, s, m, h or d, e.g. `500ms`'],
  );
  assert.ok(issues.some(([p]) => p === 'size'));
  assert.ok(issues.some(([, m]) => m?.includes('flushMs')));
});

test('throttle spec: rate required, mode defaults to bucket, bad values rejected', () => {
  assert.deepEqual(throttleSpec.config.parse({ rate: 5 }), { rate: 5, mode: 'bucket' });
  assert.deepEqual(throttleSpec.config.parse({ rate: 5, burst: 2, mode: 'pace' }), {
    rate: 5,
    burst: 2,
    mode: 'pace',
  });
  assert.equal(throttleSpec.config.safeParse({}).success, false);
  assert.equal(throttleSpec.config.safeParse({ rate: 0 }).success, false);
  assert.equal(throttleSpec.config.safeParse({ rate: 1, mode: 'fast' }).success, false);
  assert.equal(throttleSpec.config.safeParse({ rate: 1, burst: 1.5 }).success, false);
  const op = throttleSpec.create(throttleSpec.config.parse({ rate: 5 }), buildCtx);
  assert.equal(typeof op.process, 'function');
});

test('specs register, and their JSON Schema documents every field', () => {
  const reg = new Registry().add(...operatorSpecs);
  assert.equal(reg.get('operator', 'batch'), batchSpec);
  assert.equal(reg.get('operator', 'throttle'), throttleSpec);
  for (const spec of operatorSpecs) {
    const schema = z.toJSONSchema(spec.config, { io: 'input' }) as {
      properties: Record<string, { description?: string }>;
    };
    for (const [field, prop] of Object.entries(schema.properties)) {
      assert.ok(prop.description, `${spec.name}.${field} has no description`);
    }
  }
  const batchSchema = z.toJSONSchema(batchSpec.config, { io: 'input' }) as {
    properties: Record<string, { default?: unknown; type?: string }>;
  };
  assert.deepEqual(batchSchema.properties.maxWait, {
    ...batchSchema.properties.maxWait,
    type: 'string',
    default: '100ms',
  });
});
