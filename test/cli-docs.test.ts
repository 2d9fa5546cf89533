/**
 * The checked-in component reference must be what the specs generate. When this fails,
 * regenerate it: `node scripts/gen-docs.ts`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { defaultRegistry } from '../src/components.ts';
import { componentsMarkdown } from '../src/config/docs.ts';
import { TOP_LEVEL } from '../src/config/keys.ts';

it('docs/components.md matches the component specs (regenerate: node scripts/gen-docs.ts)', () => {
  const checkedIn = readFileSync(new URL('../docs/components.md', import.meta.url), 'utf8');
  assert.equal(
    checkedIn,
    componentsMarkdown(defaultRegistry),
    'docs/components.md is out of date; run `node scripts/gen-docs.ts`',
  );
});

it('every built-in component has a summary, and every field a description', () => {
  for (const spec of defaultRegistry.list()) {
    assert.ok(spec.summary.length > 0, `${spec.kind} ${spec.name} has no summary`);
  }
  assert.ok(defaultRegistry.list('source').length > 0);
  assert.ok(defaultRegistry.list('sink').length > 0);
});

it('docs/components.md lists every top-level key of a pipeline file (#15: they were only in `sluice schema`)', () => {
  const doc = componentsMarkdown(defaultRegistry);
  const section = doc.slice(doc.indexOf('## The pipeline file'), doc.indexOf('## Sources'));
  for (const key of TOP_LEVEL) assert.match(section, new RegExp(`^\\| \`${key}\` \\|`, 'm'), key);
  assert.match(section, /^\| `output` \| a sink or list of sinks \| \*\*required\*\* \|/m);
  assert.match(section, /^\| `checkpoint\.interval` \| string \| \*\*required\*\* \|/m);
});
