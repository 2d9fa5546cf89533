import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeldAcks } from './acks.ts';

describe('pulsar HeldAcks', () => {
  it('acknowledges through a count, in order, once', () => {
    const acks = new HeldAcks();
    const sent: string[] = [];
    const send = (id: string) => {
      sent.push(id);
      return true;
    };
    for (const id of ['a', 'b', 'c', 'd']) acks.hold(id);
    acks.through(2, send);
    acks.through(2, send);
    assert.deepEqual(sent, ['a', 'b']);
    acks.through(10, send);
    assert.deepEqual(sent, ['a', 'b', 'c', 'd']);
    assert.equal(acks.acked, 4);
    assert.equal(acks.size, 0);
  });

  it('a barrier covers only what was emitted before it', () => {
    const acks = new HeldAcks();
    const sent: string[] = [];
    const send = (id: string) => {
      sent.push(id);
      return true;
    };
    acks.hold('a');
    acks.emitted();
    const b1 = acks.nextBarrier();
    acks.hold('b'); // handed on after the barrier
    acks.barrierComplete(b1, send);
    assert.deepEqual(sent, ['a']);
    acks.emitted();
    const b2 = acks.nextBarrier();
    const b3 = acks.nextBarrier();
    acks.barrierComplete(b3, send); // b2 is skipped, b3 covers it
    acks.barrierComplete(b2, send);
    assert.deepEqual(sent, ['a', 'b']);
  });

  it('counts acks that could not be sent and does not hold them again', () => {
    const acks = new HeldAcks();
    acks.hold('a');
    acks.through(1, () => false);
    assert.equal(acks.unsent, 1);
    assert.equal(acks.size, 0);
  });

  it('holds a message from the time it is handed on until it is acknowledged', () => {
    const acks = new HeldAcks();
    for (const id of ['a', 'b', 'c']) acks.hold(id);
    assert.ok(acks.holds('a') && acks.holds('c'));
    assert.ok(!acks.holds('z'), 'never handed on');
    acks.through(2, () => true);
    assert.ok(!acks.holds('a') && !acks.holds('b'), 'acknowledged');
    assert.ok(acks.holds('c'));
  });
});
