import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
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

test('system-clock sleeps on one signal share one abort listener, and an abort still rejects each', async () => {
  const ac = new AbortController();
  for (let i = 0; i < 50; i++) await systemClock.sleep(0, ac.signal);
  const pending = [systemClock.sleep(60_000, ac.signal), systemClock.sleep(60_000, ac.signal)];
  // One listener for every sleep that ran or waits (Node's EventTarget would otherwise chain them).
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
  ac.abort(new Error('stop'));
  for (const p of pending) await assert.rejects(p, /stop/);
});
