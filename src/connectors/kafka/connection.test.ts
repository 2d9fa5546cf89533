import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { isCancellation, SluiceError } from '../../core/errors.ts';
import { brokerFailure, isConnectionError, isTransientKafkaError, waitForBrokers } from './connection.ts';

/** A client failure as `@platformatic/kafka` reports an unreachable broker. */
function unreachable(): Error {
  const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'PLT_KFK_NETWORK' });
  return Object.assign(new Error('Cannot connect to any broker.'), { errors: [inner] });
}

/** Advances `clock` through every sleep until `done` settles. */
async function drive(clock: ManualClock, done: Promise<unknown>): Promise<void> {
  let finished = false;
  done.then(
    () => (finished = true),
    () => (finished = true),
  );
  for (let i = 0; i < 10_000 && !finished; i++) {
    await new Promise((r) => setImmediate(r));
    if (clock.pendingSleeps > 0) clock.advance(50);
  }
}

function context(clock: ManualClock, signal = new AbortController().signal) {
  const warnings: string[] = [];
  const log = { info() {}, warn: (m: string) => warnings.push(m), error() {} };
  return { ctx: { name: 'in', clock, log, signal }, warnings };
}

describe('kafka connection', () => {
  it('classifies an unreachable broker once, as a retryable error naming the brokers', () => {
    assert.ok(isConnectionError(unreachable()));
    const err = brokerFailure(unreachable(), ['127.0.0.1:1']);
    assert.ok(err instanceof SluiceError && err.retryable);
    assert.match((err as Error).message, /^Kafka at `127\.0\.0\.1:1` is not reachable: connect ECONNREFUSED/);
    const other = new Error('bad config');
    assert.equal(brokerFailure(other, ['b:1']), other);
    assert.ok(isTransientKafkaError(Object.assign(new Error('NOT_COORDINATOR'), { canRetry: true })));
    assert.ok(!isTransientKafkaError(Object.assign(new Error('PRODUCER_FENCED'), { canRetry: false })));
  });

  it('waits for the brokers with one warning per attempt, then returns the value', async () => {
    const clock = new ManualClock(0);
    const { ctx, warnings } = context(clock);
    let calls = 0;
    const done = waitForBrokers(
      'joining group `g`',
      ['127.0.0.1:1'],
      ctx,
      async () => {
        if (++calls < 4) throw unreachable();
        return 'joined';
      },
      { maxDelayMs: 1000 },
    );
    await drive(clock, done);
    assert.equal(await done, 'joined');
    assert.equal(warnings.length, 3);
    assert.match(
      warnings[0] as string,
      /^Joining group `g` failed \(Kafka at `127\.0\.0\.1:1` is not reachable: connect ECONNREFUSED 127\.0\.0\.1:1\); retrying in 250 ms \(attempt 2\)\. Start the broker or fix `brokers`$/,
    );
  });

  it('throws any other failure at once', async () => {
    const clock = new ManualClock(0);
    const { ctx, warnings } = context(clock);
    const err = Object.assign(new Error('COORDINATOR_NOT_AVAILABLE'), { canRetry: true });
    await assert.rejects(
      waitForBrokers('joining', ['b:1'], ctx, async () => Promise.reject(err), { maxDelayMs: 1000 }),
      (e) => e === err,
    );
    assert.deepEqual(warnings, []);
  });

  it('gives up after `connectTimeout` with one message saying what to do', async () => {
    const clock = new ManualClock(0);
    const { ctx } = context(clock);
    const done = waitForBrokers(
      'joining group `g`',
      ['127.0.0.1:1'],
      ctx,
      async () => Promise.reject(unreachable()),
      {
        maxDelayMs: 1000,
        connectTimeoutMs: 1500,
      },
    );
    await drive(clock, done);
    await assert.rejects(done, (e: Error) => {
      assert.match(
        e.message,
        /^Kafka at `127\.0\.0\.1:1` was not reachable while joining group `g`: \d+ attempts in \d+ ms failed \(last: connect ECONNREFUSED 127\.0\.0\.1:1\), and `connectTimeout` is 1500 ms\. Start the broker, fix `brokers`, or raise `connectTimeout`$/,
      );
      return true;
    });
  });

  it('resolves undefined when the run is asked to stop, and rejects when it is cancelled', async () => {
    const clock = new ManualClock(0);
    const stop = new AbortController();
    const { ctx } = context(clock);
    const stopped = waitForBrokers('joining', ['b:1'], ctx, async () => Promise.reject(unreachable()), {
      maxDelayMs: 1000,
      stopSignal: stop.signal,
    });
    await new Promise((r) => setImmediate(r));
    stop.abort();
    assert.equal(await stopped, undefined);

    const cancel = new AbortController();
    const c = context(clock, cancel.signal);
    const cancelled = waitForBrokers('joining', ['b:1'], c.ctx, async () => Promise.reject(unreachable()), {
      maxDelayMs: 1000,
    });
    await new Promise((r) => setImmediate(r));
    cancel.abort();
    await assert.rejects(cancelled, (e) => isCancellation(e));
  });
});
