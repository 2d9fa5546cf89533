import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from './clock.ts';

test('a system-clock sleep longer than setTimeout takes (24.8 days) does not fire at once', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  const abort = new AbortController();
  let settled = 'pending';
  const slept = systemClock.sleep(30 * 24 * 3600 * 1000, abort.signal).then(
    () => (settled = 'resolved'),
    () => (settled = 'aborted'),
  );
  // Node turns a delay above 2^31 − 1 ms into 1 ms (with a TimeoutOverflowWarning).
  await delay(30);
  assert.equal(settled, 'pending');
  abort.abort(new Error('done'));
  await slept;
  process.off('warning', onWarning);
  assert.equal(settled, 'aborted');
  assert.deepEqual(warnings, []);
});
