import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPONENT_MODULES, keysOf, registryFor } from './component-modules.ts';
import { defaultRegistry } from './components.ts';
import { specsIn } from './spec/registry.ts';

test('each line of the module index names exactly the components its module defines', async () => {
  const indexed = COMPONENT_MODULES.flatMap((m) => m.names).sort();
  const registered = [...new Set(defaultRegistry.list().map((s) => s.name))].sort();
  assert.deepEqual(indexed, registered);
  for (const m of COMPONENT_MODULES) {
    const names = [...new Set(specsIn(await m.load()).map((s) => s.name))].sort();
    assert.deepEqual(names, [...m.names].sort(), 'names listed for a module are the ones it defines');
  }
});

test('registryFor loads only the modules of the names it is given', async () => {
  const r = await registryFor(['name', 'input', 'file', 'output', 'stdout', 'path', 'format']);
  assert.ok(r.get('source', 'file'));
  assert.ok(r.get('sink', 'file'));
  assert.ok(r.get('sink', 'stdout'));
  assert.equal(r.get('source', 'kafka'), undefined);
  assert.equal(r.get('operator', 'window'), undefined);
});

test('keysOf collects mapping keys at any depth and the words of --set overrides', () => {
  const doc = {
    input: { file: { path: 'x' } },
    pipeline: [{ route: { routes: { big: [{ window: {} }] } } }],
  };
  const keys = keysOf(doc, ['output.kafka.topic=t', 'dlq={postgres: {url: u}}']);
  for (const k of ['input', 'file', 'route', 'big', 'window', 'output', 'kafka', 'postgres'])
    assert.ok(keys.has(k), k);
});
