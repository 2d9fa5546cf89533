/**
 * The README's TypeScript quickstart is `examples/quickstart.ts` (but for the import path), and
 * that file runs through the CLI as the README says — issue #15: the README showed a program that
 * ran its pipeline itself, so `sluice run` ran it and then failed for want of a default export.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { shown, sluice } from './support/cli.ts';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

test('the README’s TypeScript quickstart is examples/quickstart.ts, and `sluice run` runs it', () => {
  const readme = read('README.md');
  const at = readme.indexOf('As TypeScript (`examples/quickstart.ts`');
  assert.ok(at >= 0, 'the README introduces the TypeScript quickstart');
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
  const example = read('examples/quickstart.ts')
    .replace(/^\/\*\*[\s\S]*?\*\/\n/, '')
    .replace("from '../src/index.ts'", "from 'sluice'");
  assert.equal(block, example);

  const run = sluice(['run', 'examples/quickstart.ts'], { cwd: root.pathname });
  assert.equal(run.code, 0, shown(run));
  assert.match(run.stderr, /^Finished `quickstart-ts`/m, shown(run));
});
