/**
 * End to end with `checkpoint.store: redis://…`: a keyed counting pipeline run through the real
 * CLI is SIGKILLed at exact points and at random moments and restarted; its output equals an
 * uninterrupted run's byte for byte (see test/crash/store-crash.ts). Needs the real Redis
 * (`npm run services -- up redis`, which `npm test` runs for this file's name).
 */
import { describe, it } from 'node:test';
import { redisBackend } from '../src/state/redis.ts';
import { storeCrashTest } from './crash/store-crash.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('checkpoints in Redis', { timeout: 240_000 }, () => {
  it('SIGKILLed and restarted, the keyed pipeline writes exactly the output of an uninterrupted run', () =>
    storeCrashTest({
      store: REDIS_URL,
      open: (namespace) => redisBackend({ url: REDIS_URL, namespace, log: { warn() {} } }),
    }));
});
