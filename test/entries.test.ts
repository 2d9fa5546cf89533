/**
 * The main entry `sluice` (src/index.ts) must not load the Kafka, PostgreSQL or Redis clients:
 * those belong to `sluice/kafka`, `sluice/postgres` and `sluice/redis`, which load them only when
 * a connector connects. `test/package.test.ts` checks the same on the built, installed package.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clientLibrariesIn, modulesLoadedBy } from './support/loaded-modules.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const entry = (name: string) => new URL(`../src/${name}.ts`, import.meta.url).href;

describe('entry modules', () => {
  it('importing `sluice` loads no client library', () => {
    const loaded = modulesLoadedBy([entry('index')], ROOT);
    assert.ok(
      loaded.some((url) => url.endsWith('/src/pipeline.ts')),
      'the hook saw no module of sluice',
    );
    assert.deepEqual(clientLibrariesIn(loaded), [], 'src/index.ts loads a client library');
  });

  it('the check sees a client library that is loaded', () => {
    const loaded = modulesLoadedBy([entry('index'), 'ioredis', 'pg'], ROOT);
    assert.deepEqual(clientLibrariesIn(loaded), ['pg', 'ioredis']);
  });

  it('the subpath entries load', () => {
    for (const name of ['kafka', 'postgres', 'pulsar', 'redis']) {
      const loaded = modulesLoadedBy([entry(name)], ROOT);
      assert.ok(
        loaded.some((url) => url.endsWith(`/src/${name}.ts`)),
        `src/${name}.ts did not load`,
      );
    }
  });
});
