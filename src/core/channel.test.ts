import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Channel, CLOSED, EMPTY } from './channel.ts';
import { ErrorCode, SluiceError } from './errors.ts';

describe('Channel', () => {
  it('queues up to capacity, then makes send wait until the receiver takes an item', async () => {
    const ch = new Channel<number>({ capacity: 2 });
    await ch.send(1);
    await ch.send(2);
    let third = false;
    const pending = ch.send(3).then(() => {
      third = true;
    });
    await Promise.resolve();
    assert.equal(third, false, 'send must wait while the channel is full');
    assert.equal(ch.tryRecv(), 1);
    await pending;
    assert.equal(third, true);
    assert.deepEqual([ch.tryRecv(), ch.tryRecv(), ch.tryRecv()], [2, 3, EMPTY]);
  });

  it('releases a producer blocked on a full channel when the signal aborts', async () => {
    const ch = new Channel<number>({ capacity: 1 });
    const ac = new AbortController();
    await ch.send(1, ac.signal);
    const blocked = ch.send(2, ac.signal);
    ac.abort(new Error('user pressed stop'));
    await assert.rejects(
      blocked,
      (err: unknown) => err instanceof SluiceError && err.code === ErrorCode.CANCELLED,
    );
    assert.equal(ch.tryRecv(), 1);
    assert.equal(ch.tryRecv(), EMPTY, 'the aborted item must not be delivered');
  });

  it('releases blocked producers and readers on cancel, dropping queued items', async () => {
    const ch = new Channel<number>({ capacity: 1 });
    await ch.send(1);
    const blocked = ch.send(2);
    const other = new Channel<number>({ capacity: 1 });
    const reader = other.readable();
    const reason = new Error('boom');
    ch.cancel(reason);
    other.cancel(reason);
    await assert.rejects(blocked, /boom/);
    await assert.rejects(reader, /boom/);
    assert.throws(() => ch.tryRecv(), /boom/);
  });

  it('drains queued and parked items after close, then reports CLOSED', async () => {
    const ch = new Channel<string>({ capacity: 1 });
    await ch.send('a');
    const parked = ch.send('b');
    ch.close();
    assert.throws(
      () => ch.trySend('c'),
      (e: unknown) => e instanceof SluiceError && e.code === ErrorCode.CHANNEL_CLOSED,
    );
    assert.equal(await ch.recv(), 'a');
    await parked;
    assert.equal(await ch.recv(), 'b');
    assert.equal(await ch.recv(), CLOSED);
    assert.equal(ch.tryRecv(), CLOSED);
  });

  it('wakes a waiting reader on send and on close', async () => {
    const ch = new Channel<number>({ capacity: 4 });
    const r1 = ch.recv();
    await ch.send(7);
    assert.equal(await r1, 7);
    const r2 = ch.recv();
    ch.close();
    assert.equal(await r2, CLOSED);
  });

  it('dropOldest never blocks and counts what it dropped', async () => {
    const ch = new Channel<number>({ capacity: 2, overflow: 'dropOldest' });
    for (let i = 1; i <= 5; i++) await ch.send(i);
    assert.equal(ch.dropped, 3);
    assert.deepEqual([ch.tryRecv(), ch.tryRecv(), ch.tryRecv()], [4, 5, EMPTY]);
  });

  it('overflow `error` throws a message that names the buffer and what to do', () => {
    const ch = new Channel<number>({ capacity: 1, overflow: 'error', name: 'branch-a' });
    ch.trySend(1);
    assert.throws(
      () => ch.trySend(2),
      /buffer `branch-a` is full .* overflow policy is `error`; raise its buffer size/,
    );
  });

  it('tracks queued weight and its peak', async () => {
    const ch = new Channel<number[]>({ capacity: 3, weigh: (a) => a.length });
    await ch.send([1, 2, 3]);
    await ch.send([4]);
    assert.equal(ch.queuedWeight, 4);
    ch.tryRecv();
    assert.equal(ch.queuedWeight, 1);
    assert.equal(ch.peakQueuedWeight, 4);
  });

  it('rejects a capacity below 1', () => {
    assert.throws(() => new Channel({ capacity: 0 }), /capacity must be a whole number ≥ 1/);
  });

  it('keeps FIFO order for many parked senders', async () => {
    const ch = new Channel<number>({ capacity: 1 });
    const sends = [];
    for (let i = 0; i < 10; i++) sends.push(ch.send(i));
    const got: number[] = [];
    for (let i = 0; i < 10; i++) got.push((await ch.recv()) as number);
    await Promise.all(sends);
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('dropOldest skips items that must be kept, and waits when nothing can be dropped', async () => {
    const ch = new Channel<string>({
      capacity: 3,
      overflow: 'dropOldest',
      droppable: (x) => x.startsWith('data'),
    });
    await ch.send('signal-1');
    await ch.send('data-1');
    await ch.send('signal-2');
    await ch.send('data-2');
    assert.equal(ch.dropped, 1);
    assert.deepEqual([ch.tryRecv(), ch.tryRecv(), ch.tryRecv()], ['signal-1', 'signal-2', 'data-2']);
    const only = new Channel<string>({ capacity: 1, overflow: 'dropOldest', droppable: () => false });
    await only.send('keep');
    assert.equal(only.trySend('next'), false, 'nothing droppable: the sender must wait');
  });
});
