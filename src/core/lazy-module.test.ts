import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { lazyModule } from './lazy-module.ts';

describe('lazyModule', () => {
  it('loads an ES module on the first call only, and returns the same namespace after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lazy-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      writeFileSync(
        join(dir, 'm.ts'),
        'globalThis.sluiceLazyLoads = (globalThis.sluiceLazyLoads ?? 0) + 1;\nexport const answer: number = 42;\n',
      );
      const load = lazyModule<{ answer: number }>(pathToFileURL(join(dir, 'main.ts')).href, './m.ts');
      const g = globalThis as { sluiceLazyLoads?: number };
      assert.equal(g.sluiceLazyLoads, undefined, 'nothing is loaded before the first call');
      assert.equal(load().answer, 42);
      assert.equal(load(), load());
      assert.equal(g.sluiceLazyLoads, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads the `.js` file of the same name from compiled JavaScript', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lazy-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      writeFileSync(join(dir, 'm.js'), 'export const compiled = true;\n');
      const load = lazyModule<{ compiled: boolean }>(pathToFileURL(join(dir, 'main.js')).href, './m.ts');
      assert.equal(load().compiled, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
