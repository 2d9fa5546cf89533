/**
 * The {@link StateBackend} contract (test/state/contract.ts) for the backends that need no
 * server: `memory` and the embedded `lmdb`. PostgreSQL and Redis run it in their `*.it.test.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { failureBatch, stateBackendContract } from '../../test/state/contract.ts';
import { lmdbBackend, memoryBackend } from './backend.ts';

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
