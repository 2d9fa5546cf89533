import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { offAbort, onAbort } from './abort-waiters.ts';
import { Channel } from './channel.ts';
import { untilAborted } from './sending.ts';

describe('onAbort', () => {
  test('calls each wait still registered once, when the signal aborts', () => {
    const c = new AbortController();
    const calls: string[] = [];
    const a = onAbort(c.signal, () => calls.push('a'));
    onAbort(c.signal, () => calls.push('b'));
    offAbort(a);
    // `a`'s slot is reused by `d`; ending `a` again must not end `d`.
    onAbort(c.signal, () => calls.push('d'));
    offAbort(a);
    c.abort();
    c.abort();
    assert.deepEqual(calls.sort(), ['b', 'd']);
  });

  test('on a signal aborted already, calls the function in a microtask', async () => {
    const c = new AbortController();
    c.abort();
    let called = 0;
    onAbort(c.signal, () => called++);
    assert.equal(called, 0);
    await Promise.resolve();
    assert.equal(called, 1);
  });

  test('the runtime’s waits share one abort listener per signal, and still end on abort', async () => {
    // One `abort` listener per wait left chains of removed listeners that kept delivered
    // batches alive through scavenges (see abort-waiters.ts).
    const c = new AbortController();
    const ch = new Channel<number>({ capacity: 1 });
    ch.trySend(0);
    const parked = [ch.send(1, c.signal), ch.send(2, c.signal)];
    const empty = new Channel<number>({ capacity: 1 });
    const reading = empty.readable(c.signal);
    const calls = [
      untilAborted(new Promise(() => {}), c.signal),
      untilAborted(new Promise(() => {}), c.signal),
    ];
    assert.equal(getEventListeners(c.signal, 'abort').length, 1);
    // Waits that end free their slots: the listener count stays at one.
    assert.equal(ch.tryRecv(), 0);
    await parked[0];
    await untilAborted(Promise.resolve(7), c.signal);
    assert.equal(getEventListeners(c.signal, 'abort').length, 1);
    c.abort();
    for (const p of [parked[1], reading, ...calls])
      await assert.rejects(p as Promise<unknown>, (err: Error) =>
        /cancel/i.test(`${err.name} ${err.message}`),
      );
  });
});
