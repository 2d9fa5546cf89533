import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Consumer } from '@platformatic/kafka';
import { ManualClock } from '../../core/clock.ts';
import { holdRevocations, REVOKE_HOLD_MAX_MS } from './consumer-revoke.ts';

const kMetadata = Symbol('plt.kafka.base.metadata');
const kGetApi = Symbol('plt.kafka.base.getApi');
type Assignment = { topic: string; partitions: number[] }[];

/**
 * A stand-in for `@platformatic/kafka` 2.12.1's consumer under `groupProtocol: 'consumer'`, with
 * its order of reconciliation (`#revokePartitions` then `#assignPartitions`, one synchronous call):
 * the event, then `[kMetadata]`, whose callback records the assignment and acknowledges it.
 */
class FakeConsumer extends EventEmitter {
  assignments: Assignment | null = null;
  generationId = 0;
  acknowledged: Assignment[] = [];
  heartbeatResponse = { memberEpoch: 7 };

  [kMetadata](_options: unknown, callback: (error: Error | null, metadata?: unknown) => void): void {
    queueMicrotask(() => callback(null, {}));
  }

  [kGetApi](
    _name: string,
    callback: (error: Error | null, api?: (...args: unknown[]) => void) => void,
  ): void {
    callback(null, (...args: unknown[]) => {
      const done = args.pop() as (error: Error | null, response: unknown) => void;
      done(null, this.heartbeatResponse);
    });
  }

  /** A heartbeat response with `next`: revokes (if it takes partitions away), records, acknowledges. */
  reconcile(next: Assignment, revokes: boolean): void {
    if (revokes) this.emit('consumer:group:rebalance', {});
    this.call(kMetadata, {}, () => {
      this.assignments = next;
      this.acknowledged.push(next);
    });
  }

  /** One heartbeat through `[kGetApi]`, as the client sends it. */
  heartbeat(): void {
    this.call(kGetApi, 'ConsumerGroupHeartbeat', (_e: Error | null, api: (...a: unknown[]) => void) =>
      api('connection', () => {}),
    );
  }

  /** Calls the symbol method `key` through the instance, as the client does, so a wrapper applies. */
  private call(key: symbol, ...args: unknown[]): void {
    const method = (this as unknown as Record<symbol, ((...a: unknown[]) => void) | undefined>)[key];
    method?.(...args);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function attach(c: FakeConsumer, revoking: () => Promise<void>, clock = new ManualClock()) {
  const changes: (Assignment | null)[] = [];
  const attached = holdRevocations(c as never, {
    revoking,
    changed: () => changes.push(c.assignments),
    clock,
    signal: new AbortController().signal,
  });
  return { attached, changes, clock };
}

test('a revocation is acknowledged only after the revoke step, and the source hears of it first', async () => {
  const c = new FakeConsumer();
  let finish!: () => void;
  let steps = 0;
  const { attached, changes } = attach(c, () => {
    steps++;
    return new Promise<void>((r) => {
      finish = r;
    });
  });
  assert.equal(attached, true);
  c.reconcile([{ topic: 't', partitions: [0, 1, 2] }], false);
  await tick();
  assert.deepEqual(changes, [[{ topic: 't', partitions: [0, 1, 2] }]]); // an assignment without revocation is not held
  c.reconcile([{ topic: 't', partitions: [0] }], true);
  await tick();
  c.reconcile([{ topic: 't', partitions: [0] }], true); // a later response repeats it while the step runs
  await tick();
  assert.equal(c.acknowledged.length, 1, 'acknowledged before the revoke step finished');
  assert.equal(steps, 1);
  finish();
  await tick();
  assert.equal(c.acknowledged.length, 3);
  assert.deepEqual(changes.at(-1), [{ topic: 't', partitions: [0] }]);
});

test('a revoke step that never finishes holds the revocation at most REVOKE_HOLD_MAX_MS', async () => {
  const c = new FakeConsumer();
  const { clock } = attach(c, () => new Promise<void>(() => {}));
  c.reconcile([], true);
  await tick();
  clock.advance(REVOKE_HOLD_MAX_MS - 1);
  await tick();
  assert.equal(c.acknowledged.length, 0);
  clock.advance(1);
  await tick();
  assert.equal(c.acknowledged.length, 1);
});

test('generationId follows the member epoch of heartbeat responses (offsets committed outside the client)', () => {
  const c = new FakeConsumer();
  attach(c, () => Promise.resolve());
  c.heartbeat();
  assert.equal(c.generationId, 7);
  c.heartbeatResponse = { memberEpoch: -1 }; // a leave
  c.heartbeat();
  assert.equal(c.generationId, 7);
});

test('the client version in use has the internals the hook relies on', async () => {
  const c = new Consumer({
    groupId: 'g',
    clientId: 'x',
    bootstrapBrokers: ['127.0.0.1:1'],
    groupProtocol: 'consumer',
  });
  try {
    const { attached } = attach(c as unknown as FakeConsumer, () => Promise.resolve());
    assert.equal(attached, true);
  } finally {
    await c.close(true).catch(() => {});
  }
});
