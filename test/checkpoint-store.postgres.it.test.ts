/**
 * End to end with `checkpoint.store: postgres://…`: a keyed counting pipeline run through the
 * real CLI is SIGKILLed at exact points and at random moments and restarted; its output equals an
 * uninterrupted run's byte for byte (see test/crash/store-crash.ts). Needs the real PostgreSQL
 * (`npm run services -- up postgres`, which `npm test` runs for this file's name).
 */
import { describe, it } from 'node:test';
import { postgresBackend } from '../src/state/postgres.ts';
import { storeCrashTest } from './crash/store-crash.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';

describe('checkpoints in PostgreSQL', { timeout: 240_000 }, () => {
  it('SIGKILLed and restarted, the keyed pipeline writes exactly the output of an uninterrupted run', () =>
    storeCrashTest({ store: PG_URL, open: (namespace) => postgresBackend({ url: PG_URL, namespace }) }));
});
