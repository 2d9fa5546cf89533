/**
 * The {@link StateBackend} contract (test/state/contract.ts) for the backends that need no
 * server: `memory` and the embedded `lmdb`. PostgreSQL and Redis run it in their `*.it.test.ts`.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { failureBatch, stateBackendContract } from '../../test/state/contract.ts';
import { lmdbBackend, memoryBackend } from './backend.ts';
import { openStateBackend } from './open.ts';

const root = mkdtempSync(join(tmpdir(), 'sluice-backends-'));
after(() => rmSync(root, { recursive: true, force: true }));

stateBackendContract({ name: 'memory', persistent: false, open: async () => memoryBackend() });

stateBackendContract({
  name: 'lmdb',
  persistent: true,
  open: (ns) => lmdbBackend({ dir: join(root, ns) }),
  // LMDB refuses keys over 1978 bytes inside the transaction, after earlier puts of the batch.
  failingWrite: async (ns) => ({
    backend: await lmdbBackend({ dir: join(root, ns) }),
    batch: failureBatch(new Map([['k'.repeat(4000), Buffer.from('too long a key')]])),
    error: /writing the state store/,
  }),
});

describe('openStateBackend', () => {
  it('opens LMDB for a folder, and names the accepted schemes for another URL (never its password)', async () => {
    const b = await openStateBackend({ dir: join(root, 'open-lmdb') });
    assert.equal(b.kind, 'lmdb');
    await b.close();
    await assert.rejects(
      openStateBackend({ url: 'mysql://user:secret@db/x', namespace: 'n' }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLUICE_CONFIG');
        assert.match(
          err.message,
          /`mysql:\/\/…` is not a state store; use a URL starting with `postgres:\/\/`/,
        );
        assert.doesNotMatch(err.message, /secret/);
        return true;
      },
    );
  });
});
