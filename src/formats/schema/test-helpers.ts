/** Helpers of the schema-format tests (not part of the public API). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Producer } from '@platformatic/kafka';

const PROJECT = new URL('../../../', import.meta.url).pathname;

/** A draft-07 JSON Schema of an order: an integer `id` and `lines` with a `sku` and a `qty` ≥ 1. */
export const ORDER_JSON_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Order',
  type: 'object',
  required: ['id', 'lines'],
  properties: {
    id: { type: 'integer' },
    lines: {
      type: 'array',
      items: { type: 'object', required: ['sku'], properties: { qty: { type: 'integer', minimum: 1 } } },
    },
  },
};

/**
 * Runs `yaml` with the real CLI in `dir` (as `<name>.yaml`) and asserts it exits 0, showing its
 * stderr when not.
 *
 * @example
 * await sluiceRun(dir, 'p1', 'name: p\ninput: …');
 */
export async function sluiceRun(dir: string, name: string, yaml: string): Promise<void> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const run = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  run.stderr?.on('data', (d) => {
    stderr += d;
  });
  assert.equal(await new Promise((r) => run.once('exit', r)), 0, stderr);
}

/** The JSON values of a JSON Lines file. */
export function jsonLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Produces `values` (raw bytes, e.g. framed by hand) to `topic`, in order. */
export async function produceBytes(
  brokers: string[],
  topic: string,
  values: readonly Buffer[],
): Promise<void> {
  const producer = new Producer({ clientId: 'sluice-it', bootstrapBrokers: brokers, idempotent: true });
  try {
    await producer.send({ messages: values.map((value) => ({ topic, value })) });
  } finally {
    await producer.close();
  }
}
