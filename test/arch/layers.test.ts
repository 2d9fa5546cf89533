/**
 * The folders of `src/` are layers: a module imports only from its own folder or from a layer
 * below it, and a connector never imports another connector. This test reads every shipped
 * module's relative imports (static and dynamic) and fails on an import that goes up or across.
 * Tests and test helpers are exempt (they may reach anywhere).
 *
 * To place a new folder, add it to {@link LAYERS}; if it must use something from above, the
 * interface it drives belongs to it (a port owned by the lower layer, as `core/checkpointing.ts`).
 */
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

/** Lowest first. Folders on one line are siblings: neither imports the other. */
const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['spec', 'clients', 'metrics'],
  ['formats', 'aggregate', 'state'],
  ['io', 'checkpoint'],
  ['operators'],
  ['expr', 'time'],
  ['join'],
  ['connectors'],
  ['pipeline.ts', 'component-modules.ts'],
  ['components.ts'],
  ['config'],
  ['cli'],
  ['index.ts', 'kafka.ts', 'postgres.ts', 'pulsar.ts', 'redis.ts'],
];

const SRC = resolve(import.meta.dirname, '../../src');

/** The top-level entry of `src/` a file belongs to: its first folder, or its own name. */
function unitOf(file: string): string {
  return relative(SRC, file).split('/')[0] as string;
}

function rankOf(unit: string): number {
  const rank = LAYERS.findIndex((layer) => layer.includes(unit));
  assert.notEqual(rank, -1, `src/${unit} is in no layer: add it to LAYERS in test/arch/layers.test.ts`);
  return rank;
}

/** `connectors/<name>` of a file under `src/connectors/`, else undefined. */
function connectorOf(file: string): string | undefined {
  const parts = relative(SRC, file).split('/');
  return parts[0] === 'connectors' && parts.length > 2 ? parts[1] : undefined;
}

const isTestOnly = (file: string) => /\.test\.ts$|test-helpers\.ts$|\/test-registry\.ts$/.test(file);
const IMPORT = /(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

describe('layers of src/', () => {
  const files = globSync('**/*.ts', { cwd: SRC })
    .map((f) => resolve(SRC, f))
    .filter((f) => !isTestOnly(f));

  it('finds the modules', () => {
    assert.ok(files.length > 100, `only ${files.length} modules found under ${SRC}`);
  });

  it('has every module import only from its own folder or a layer below', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = unitOf(file);
      for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const target = resolve(dirname(file), m[1] as string);
        if (!target.startsWith(SRC)) continue;
        const to = unitOf(target);
        if (to === from) {
          const a = connectorOf(file);
          const b = connectorOf(target);
          if (a !== undefined && b !== undefined && a !== b) {
            wrong.push(`src/${relative(SRC, file)} imports another connector: ${m[1]}`);
          }
          continue;
        }
        if (rankOf(to) >= rankOf(from)) {
          wrong.push(`src/${relative(SRC, file)} (${from}) imports ${m[1]} (${to}), which is not below it`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});
