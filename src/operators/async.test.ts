import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { flatMapAsync, mapAsync } from './async.ts';
import { OperatorHarness, settle } from './harness.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

/** A user function whose calls the test settles by hand, counting calls in flight. */
function controlled() {
  const calls = new Map<number, Deferred<string>>();
  let inFlight = 0;
  let maxInFlight = 0;
  const fn = (x: number) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const d = deferred<string>();
    calls.set(x, d);
    return d.promise.finally(() => inFlight--);
  };
  return {
    fn,
    calls,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

test('mapAsync never has more than `concurrency` calls in flight and starts the next one as one settles', async () => {
  const c = controlled();
  const h = new OperatorHarness(mapAsync(c.fn, { concurrency: 3 }));
  await h.open();
  const done = h.process([0, 1, 2, 3, 4, 5, 6]);
  await settle();
  assert.deepEqual([...c.calls.keys()], [0, 1, 2]);
  c.calls.get(1)?.resolve('r1');
  await settle();
  assert.deepEqual([...c.calls.keys()], [0, 1, 2, 3]);
  for (const x of [0, 2, 3, 4, 5, 6]) {
    await settle();
    c.calls.get(x)?.resolve(`r${x}`);
  }
  await done;
  assert.equal(c.maxInFlight, 3);
  assert.deepEqual(h.records(), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
});

test('mapAsync ordered keeps input order even when later calls finish first', async () => {
  const c = controlled();
  const h = new OperatorHarness(mapAsync(c.fn, { concurrency: 4, ordered: true }));
  await h.open();
  const meta: RecordMeta[] = [0, 1, 2, 3].map((i) => ({ source: 's', position: { i } }));
  const done = h.process([0, 1, 2, 3], meta);
  await settle();
  for (const x of [3, 2, 1, 0]) {
    c.calls.get(x)?.resolve(`r${x}`);
    await settle();
  }
  await done;
  assert.deepEqual(h.records(), ['r0', 'r1', 'r2', 'r3']);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.i),
    [0, 1, 2, 3],
  );
});

test('mapAsync unordered emits in completion order, each record with its own meta', async () => {
  const c = controlled();
  const meta: RecordMeta[] = [0, 1, 2].map((i) => ({ source: 's', position: { i } }));
  const h3 = new OperatorHarness(mapAsync(c.fn, { concurrency: 3, ordered: false }));
  await h3.open();
  const done = h3.process([0, 1, 2], meta);
  await settle();
  for (const x of [2, 0, 1]) {
    c.calls.get(x)?.resolve(`r${x}`);
    await settle();
  }
  await done;
  assert.deepEqual(h3.records(), ['r2', 'r0', 'r1']);
  assert.deepEqual(
    h3.metas().map((m) => m?.position?.i),
    [2, 0, 1],
  );
});

test('mapAsync unordered: a slow record does not hold back the rest of the batch', async () => {
  const c = controlled();
  const h = new OperatorHarness(mapAsync(c.fn, { concurrency: 2, ordered: false }));
  await h.open();
  const done = h.process([0, 1, 2, 3, 4]);
  await settle();
  for (const x of [1, 2, 3, 4]) {
    c.calls.get(x)?.resolve(`r${x}`);
    await settle();
  }
  // Record 0 still in flight; the finished ones already left in chunks of `concurrency`.
  assert.deepEqual(h.records(), ['r1', 'r2', 'r3', 'r4']);
  c.calls.get(0)?.resolve('r0');
  await done;
  assert.deepEqual(h.records(), ['r1', 'r2', 'r3', 'r4', 'r0']);
});

test('mapAsync dead-letters rejected and synchronously throwing calls with their meta', async () => {
  const h = new OperatorHarness(
    mapAsync(
      (x: number) => {
        if (x === 1) throw new Error('sync');
        if (x === 2) return Promise.reject(new Error('async'));
        return Promise.resolve(x * 2);
      },
      { concurrency: 2 },
    ),
  );
  await h.open();
  const meta: RecordMeta[] = [0, 1, 2, 3].map((i) => ({ source: 's', position: { i } }));
  await h.process([0, 1, 2, 3], meta);
  assert.deepEqual(h.records(), [0, 6]);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.i),
    [0, 3],
  );
  assert.deepEqual(
    h.deadLetters.map((d) => [d.record, (d.error as Error).message, d.meta?.position?.i]),
    [
      [1, 'sync', 1],
      [2, 'async', 2],
    ],
  );
});

test('mapAsync: process returns only when its batch is done, so nothing is in flight at a signal or at finish', async () => {
  const c = controlled();
  const h = new OperatorHarness(mapAsync(c.fn, { concurrency: 2 }));
  await h.open();
  let finished = false;
  const done = h.process([0, 1]).then(() => {
    finished = true;
  });
  await settle();
  assert.equal(finished, false);
  c.calls.get(0)?.resolve('a');
  await settle();
  assert.equal(finished, false);
  c.calls.get(1)?.resolve('b');
  await done;
  assert.equal(c.inFlight, 0);
  await h.finish();
  assert.deepEqual(h.records(), ['a', 'b']);
});

test('mapAsync stops waiting when the run is cancelled and passes the signal to fn', async () => {
  let seen: AbortSignal | undefined;
  const h = new OperatorHarness(
    mapAsync(
      (_x: number, signal: AbortSignal) => {
        seen = signal;
        return new Promise<number>(() => {});
      },
      { concurrency: 2 },
    ),
  );
  await h.open();
  const done = h.process([1, 2, 3]);
  await settle();
  h.controller.abort(new Error('stop'));
  await assert.rejects(
    done,
    (err: unknown) => err instanceof SluiceError && err.code === ErrorCode.CANCELLED,
  );
  assert.equal(seen?.aborted, true);
});

test('flatMapAsync flattens results with parent meta and dead-letters a failing iterable', async () => {
  const h = new OperatorHarness(
    flatMapAsync(
      async (x: number) => {
        if (x === 2)
          return (function* () {
            yield 99;
            throw new Error('mid-iteration');
          })();
        return Array.from({ length: x }, (_, k) => x * 10 + k);
      },
      { concurrency: 2 },
    ),
  );
  await h.open();
  const meta: RecordMeta[] = [0, 1, 2, 3].map((i) => ({ source: 's', position: { i } }));
  await h.process([0, 1, 2, 3], meta);
  assert.deepEqual(h.records(), [10, 30, 31, 32]);
  assert.deepEqual(
    h.metas().map((m) => m?.position?.i),
    [1, 3, 3, 3],
  );
  assert.deepEqual(
    h.deadLetters.map((d) => d.record),
    [2],
  );
});

test('mapAsync rejects a bad concurrency', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => mapAsync(async (x) => x, { concurrency: bad }),
      /concurrency must be a whole number ≥ 1/,
    );
  }
});

test('mapAsync `ordered: key` runs one call per key at a time, keys overlapping, and keeps each key in order', async () => {
  const calls = new Map<string, Deferred<string>>();
  const started: string[] = [];
  const fn = (r: { k: string; n: number }) => {
    const id = `${r.k}${r.n}`;
    started.push(id);
    const d = deferred<string>();
    calls.set(id, d);
    return d.promise;
  };
  const h = new OperatorHarness(mapAsync(fn, { concurrency: 4, ordered: 'key', key: 'k' }));
  await h.open();
  const input = [
    { k: 'a', n: 1 },
    { k: 'a', n: 2 },
    { k: 'b', n: 1 },
    { k: 'a', n: 3 },
    { k: 'b', n: 2 },
  ];
  const done = h.process(input);
  await settle();
  // a2 and a3 wait behind a1, b2 behind b1: two calls in flight although 4 are allowed.
  assert.deepEqual(started, ['a1', 'b1']);
  calls.get('b1')?.resolve('b1');
  await settle();
  assert.deepEqual(started, ['a1', 'b1', 'b2']);
  calls.get('b2')?.resolve('b2');
  calls.get('a1')?.resolve('a1');
  await settle();
  assert.deepEqual(started, ['a1', 'b1', 'b2', 'a2']);
  calls.get('a2')?.resolve('a2');
  await settle();
  calls.get('a3')?.resolve('a3');
  await done;
  // Completion order across keys, input order within each key.
  assert.deepEqual(h.records(), ['b1', 'b2', 'a1', 'a2', 'a3']);
});

test('mapAsync `ordered: key` dead-letters a record whose key function throws and goes on', async () => {
  const h = new OperatorHarness(
    mapAsync(async (r: { k: string }) => r.k, {
      ordered: 'key',
      key: (r: { k: string }) => {
        if (r.k === 'bad') throw new Error('no key');
        return r.k;
      },
    }),
  );
  await h.open();
  await h.process([{ k: 'a' }, { k: 'bad' }, { k: 'a' }]);
  assert.deepEqual(h.records(), ['a', 'a']);
  assert.equal(h.deadLetters.length, 1);
});

test('mapAsync: `ordered: key` needs `key`, and `key` needs `ordered: key`', () => {
  assert.throws(() => mapAsync(async (x) => x, { ordered: 'key' }), /`ordered: key` needs `key`/);
  assert.throws(() => mapAsync(async (x) => x, { key: 'id' }), /`key` is used only with `ordered: key`/);
});
