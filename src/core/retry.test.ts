import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from './clock.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import { backoffDelay, humanMs, isRetryable, retryableError, retrying } from './retry.ts';

/** Lets every pending promise callback run, so a retry loop reaches its next sleep. */
const settle = () => new Promise((r) => setImmediate(r));

/** Advances `clock` one sleep at a time until `done` settles; returns the waits it saw. */
async function driveUntil(clock: ManualClock, done: Promise<unknown>): Promise<number[]> {
  let finished = false;
  done.then(
    () => (finished = true),
    () => (finished = true),
  );
  const waits: number[] = [];
  for (let i = 0; i < 1000 && !finished; i++) {
    await settle();
    if (finished) break;
    if (clock.pendingSleeps > 0) {
      const before = clock.now();
      // Step 1 ms at a time to learn the exact length of the wait.
      while (clock.pendingSleeps > 0) clock.advance(1);
      waits.push(clock.now() - before);
    }
  }
  return waits;
}

function logger(): { warn: (m: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (m) => lines.push(m) };
}

describe('retrying', () => {
  it('retries retryable failures with doubling waits up to the maximum, then returns the value', async () => {
    const clock = new ManualClock(0);
    const log = logger();
    let calls = 0;
    const result = retrying(
      async (attempt) => {
        calls++;
        if (attempt < 6) throw retryableError('connection refused', undefined);
        return 'ok';
      },
      { what: 'reading `t`', clock, log, minDelayMs: 100, maxDelayMs: 500 },
    );
    const waits = await driveUntil(clock, result);
    assert.equal(await result, 'ok');
    assert.equal(calls, 6);
    assert.deepEqual(waits, [100, 200, 400, 500, 500]);
    assert.equal(log.lines.length, 5);
    assert.match(
      log.lines[0] as string,
      /^Reading `t` failed \(connection refused\); retrying in 100 ms \(attempt 2\)$/,
    );
  });

  it('throws a failure that is not retryable at once, without a warning', async () => {
    const log = logger();
    const bad = new SluiceError(ErrorCode.CONFIG, 'password authentication failed');
    await assert.rejects(
      retrying(
        async () => {
          throw bad;
        },
        { what: 'connecting', clock: new ManualClock(0), log },
      ),
      (err) => err === bad,
    );
    assert.deepEqual(log.lines, []);
  });

  it('gives up after timeoutMs with the error giveUp builds, and says when it will give up', async () => {
    const clock = new ManualClock(0);
    const log = logger();
    const result = retrying(
      async () => {
        throw retryableError('timeout', undefined);
      },
      {
        what: 'writing',
        clock,
        log,
        logEvery: 'first',
        timeoutMs: 1000,
        giveUp: (err, attempts, spent) =>
          new Error(`gave up after ${attempts} attempts in ${spent} ms: ${String(err)}`),
      },
    );
    const waits = await driveUntil(clock, result);
    await assert.rejects(result, /gave up after 5 attempts in 1000 ms/);
    // 100 + 200 + 400 + 300 (the rest of the second): the last wait ends at the deadline.
    assert.deepEqual(waits, [100, 200, 400, 300]);
    assert.equal(log.lines.length, 1, 'logEvery: first warns once per episode');
    assert.match(log.lines[0] as string, /giving up after 1 s/);
  });

  it('rejects with a cancellation when the signal aborts during a wait', async () => {
    const clock = new ManualClock(0);
    const abort = new AbortController();
    const result = retrying(
      async () => {
        throw retryableError('down', undefined);
      },
      { what: 'connecting', clock, signal: abort.signal },
    );
    await settle();
    assert.equal(clock.pendingSleeps, 1);
    abort.abort(new Error('stop'));
    await assert.rejects(result, (err) => err instanceof SluiceError && err.code === ErrorCode.CANCELLED);
  });

  it('calls onFailure before each wait (e.g. to drop a broken connection)', async () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    const result = retrying(
      async (attempt) => {
        if (attempt < 3) throw retryableError('lost', undefined);
        return attempt;
      },
      { what: 'x', clock, onFailure: (_err, attempt) => void seen.push(attempt) },
    );
    await driveUntil(clock, result);
    assert.equal(await result, 3);
    assert.deepEqual(seen, [1, 2]);
  });
});

describe('retrying warnings', () => {
  it('name the setting that bounds the retries and ask a hint function at each warning', async () => {
    const clock = new ManualClock(0);
    const log = logger();
    let pending = 0;
    const result = retrying(
      async (attempt) => {
        pending += 10;
        if (attempt < 3) throw retryableError('refused', undefined);
        return attempt;
      },
      {
        what: 'writing to `t`',
        clock,
        log,
        timeoutMs: 120_000,
        setting: 'retryTimeout',
        hint: () => `${pending} rows are sent again then`,
      },
    );
    await driveUntil(clock, result);
    assert.equal(await result, 3);
    assert.deepEqual(log.lines, [
      'Writing to `t` failed (refused); retrying in 100 ms (attempt 2, giving up after 2 min, `retryTimeout`). 10 rows are sent again then',
      'Writing to `t` failed (refused); retrying in 200 ms (attempt 3, giving up after 2 min, `retryTimeout`). 20 rows are sent again then',
    ]);
  });
});

describe('backoffDelay', () => {
  it('doubles from the minimum to the maximum', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffDelay(n)),
      [100, 200, 400, 800, 1600, 3200, 5000, 5000],
    );
    assert.deepEqual(
      [1, 2, 3].map((n) => backoffDelay(n, { minDelayMs: 50, maxDelayMs: 150 })),
      [50, 100, 150],
    );
  });
});

describe('isRetryable', () => {
  it('reads the flag on the error, a client canRetry, or on what it wraps', () => {
    assert.equal(isRetryable(retryableError('x', undefined)), true);
    assert.equal(isRetryable(new SluiceError(ErrorCode.STAGE, 'x')), false);
    assert.equal(isRetryable(Object.assign(new Error('net'), { canRetry: true })), true);
    assert.equal(isRetryable(new Error('wrapped', { cause: retryableError('inner', undefined) })), true);
    assert.equal(
      isRetryable(new AggregateError([new Error('a'), Object.assign(new Error('b'), { canRetry: true })])),
      true,
    );
    assert.equal(isRetryable(new Error('plain')), false);
    assert.equal(isRetryable('a string'), false);
  });
});

describe('humanMs', () => {
  it('writes durations for messages', () => {
    assert.equal(humanMs(250), '250 ms');
    assert.equal(humanMs(5000), '5 s');
    assert.equal(humanMs(180_000), '3 min');
  });
});
