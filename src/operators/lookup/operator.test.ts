import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SluiceError } from '../../core/errors.ts';
import { OperatorHarness, settle } from '../harness.ts';
import { approximateBytes, RowCache } from './cache.ts';
import { type LookupOptions, lookup } from './operator.ts';
import type { LookupProvider } from './provider.ts';

type Rec = Record<string, unknown>;

/** A store over a plain object that records every request. */
function store(rows: Record<string, unknown>, extra: Partial<LookupProvider> = {}) {
  const calls: string[][] = [];
  const provider: LookupProvider = {
    describe: 'test store',
    fetch: async (keys) => {
      calls.push([...keys]);
      return new Map(keys.filter((k) => rows[k] !== undefined).map((k) => [k, rows[k]]));
    },
    ...extra,
  };
  return { provider, calls };
}

async function harness(options: LookupOptions) {
  const op = lookup(options);
  const h = new OperatorHarness<Rec, Rec>(op);
  await h.open();
  return Object.assign(h, { metricsOf: () => op.metrics?.() ?? {} });
}

const USERS = {
  a: { tier: 'gold' },
  b: { tier: 'silver' },
  c: { tier: 'bronze' },
  d: { tier: 'x' },
  e: { tier: 'y' },
};

describe('lookup', () => {
  test('asks for each distinct uncached key once, batchSize at a time, and keeps input order', async () => {
    const { provider, calls } = store(USERS);
    const h = await harness({ provider, key: 'u', into: 'user', batchSize: 2, concurrency: 2 });
    const input = ['a', 'b', 'a', 'c', 'zz', 'd', 'e', 'b'].map((u, i) => ({ i, u }));
    await h.process(input);
    assert.deepEqual(calls, [
      ['a', 'b'],
      ['c', 'zz'],
      ['d', 'e'],
    ]);
    assert.deepEqual(
      h.records(),
      input.map((r) => ({ ...r, user: (USERS as Rec)[r.u] ?? null })),
    );
    // Cached now, the miss included: no request for a batch of known keys.
    await h.process([{ u: 'zz' }, { u: 'a' }]);
    assert.equal(calls.length, 3);
    const m = h.metricsOf();
    assert.equal(m.cacheMisses, 6); // a b c zz d e
    assert.equal(m.cacheHits, 2 + 2); // a, b again in the batch; zz, a in the next
    assert.equal(m.lookupRequests, 3);
    assert.equal(m.lookupKeys, 6);
    assert.equal(m.lookupNotFound, 1);
  });

  test('merges the row into the record without `into`; a miss leaves it unchanged', async () => {
    const { provider } = store({ a: { tier: 'gold', u: 'shadowed' } });
    const h = await harness({ provider, key: 'u' });
    await h.process([
      { u: 'a', n: 1 },
      { u: 'b', n: 2 },
    ]);
    assert.deepEqual(h.records(), [
      { u: 'shadowed', n: 1, tier: 'gold' },
      { u: 'b', n: 2 },
    ]);
  });

  test('onMiss drop and dlq; a record without the key field is a miss', async () => {
    const drop = await harness({ provider: store(USERS).provider, key: 'u', into: 'x', onMiss: 'drop' });
    await drop.process([{ u: 'a' }, { u: 'nope' }, { v: 1 }]);
    assert.deepEqual(drop.records(), [{ u: 'a', x: { tier: 'gold' } }]);
    assert.equal(drop.deadLetters.length, 0);

    const dlq = await harness({ provider: store(USERS).provider, key: 'u', into: 'x', onMiss: 'dlq' });
    await dlq.process([{ u: 'nope' }, { u: 'a' }, { v: 1 }]);
    assert.deepEqual(dlq.records(), [{ u: 'a', x: { tier: 'gold' } }]);
    assert.deepEqual(
      dlq.deadLetters.map((l) => [
        l.record,
        (l.error as SluiceError).context.key,
        (l.error as Error).message,
      ]),
      [
        [{ u: 'nope' }, 'nope', 'no row for key `nope` in test store (`onMiss: dlq`)'],
        [{ v: 1 }, undefined, 'the record has no lookup key (`onMiss: dlq`)'],
      ],
    );
  });

  test('a row that is not an object cannot be merged: the record goes to the dlq', async () => {
    const h = await harness({ provider: store({ a: 'plain text' }).provider, key: 'u' });
    await h.process([{ u: 'a' }]);
    assert.equal(h.records().length, 0);
    assert.match(
      String((h.deadLetters[0]?.error as Error | undefined)?.message),
      /not an object.*set `into: FIELD`/,
    );
  });

  test('ordered: false lets a fast request’s records overtake a slow one', async () => {
    const gates = new Map<string, () => void>();
    const provider: LookupProvider = {
      describe: 'gated',
      fetch: (keys) =>
        new Promise((resolve) => {
          gates.set(keys[0] as string, () => resolve(new Map(keys.map((k) => [k, { k }]))));
        }),
    };
    for (const ordered of [false, true]) {
      gates.clear();
      const h = await harness({ provider, key: 'u', into: 'r', batchSize: 1, concurrency: 2, ordered });
      const done = h.process([{ u: 'slow' }, { u: 'fast' }]);
      await settle();
      gates.get('fast')?.();
      await settle();
      gates.get('slow')?.();
      await done;
      assert.deepEqual(
        h.records().map((r) => r.u),
        ordered ? ['slow', 'fast'] : ['fast', 'slow'],
      );
    }
  });

  test('never has more than `concurrency` requests in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const provider: LookupProvider = {
      describe: 'counting',
      fetch: async (keys) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await settle(2);
        inFlight--;
        return new Map(keys.map((k) => [k, { k }]));
      },
    };
    const h = await harness({ provider, key: 'u', into: 'r', batchSize: 3, concurrency: 3 });
    await h.process(Array.from({ length: 100 }, (_, i) => ({ u: `k${i}` })));
    assert.equal(most, 3);
    assert.equal(h.records().length, 100);
  });

  test('retries a failing store, then dead-letters every record of the request with its key', async () => {
    let attempts = 0;
    const provider: LookupProvider = {
      describe: 'flaky store',
      fetch: async (keys) => {
        attempts++;
        if (keys.includes('down') || attempts === 1)
          throw new SluiceError('SLUICE_STAGE', 'connection refused', {}, { retryable: true });
        return new Map(keys.map((k) => [k, { k }]));
      },
    };
    const h = await harness({
      provider,
      key: 'u',
      into: 'r',
      batchSize: 2,
      concurrency: 1,
      retryTimeoutMs: 2000,
    });
    const done = h.process([{ u: 'ok1' }, { u: 'ok2' }, { u: 'down' }, { u: 'x' }, { u: 'down' }]);
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      await settle();
      h.clock.advance(500);
    }
    await done;
    // The first request failed once and was retried; the one holding `down` never got through.
    assert.deepEqual(h.records(), [
      { u: 'ok1', r: { k: 'ok1' } },
      { u: 'ok2', r: { k: 'ok2' } },
    ]);
    assert.deepEqual(
      h.deadLetters.map((l) => [l.record, (l.error as SluiceError).context.key]),
      [
        [{ u: 'down' }, 'down'],
        [{ u: 'x' }, 'x'],
        [{ u: 'down' }, 'down'],
      ],
    );
    assert.match(
      String((h.deadLetters[0]?.error as Error | undefined)?.message),
      /^looking up key `down` in flaky store: connection refused/,
    );
    const m = h.metricsOf();
    assert.equal(m.lookupFailures, 1);
    assert.ok((m.lookupRetries as number) >= 2);
    // Failures are not cached: the next batch asks again.
    const calls = attempts;
    await h.process([{ u: 'x' }]);
    assert.equal(attempts, calls + 1);
    assert.deepEqual(h.records().at(-1), { u: 'x', r: { k: 'x' } });
  });

  test('an error no retry can help dead-letters at once', async () => {
    const provider: LookupProvider = {
      describe: 's',
      fetch: async () => {
        throw new Error('syntax error at or near "FORM"');
      },
    };
    const h = await harness({ provider, key: 'u', into: 'r' });
    await h.process([{ u: 'a' }]);
    assert.equal(h.deadLetters.length, 1);
    assert.equal(h.metricsOf().lookupRetries, 0);
  });

  test('cache entries expire after ttl on the run’s clock; cache: false asks every time', async () => {
    const { provider, calls } = store(USERS);
    const h = await harness({ provider, key: 'u', into: 'r', cache: { maxEntries: 10, ttlMs: 1000 } });
    await h.process([{ u: 'a' }]);
    h.clock.advance(999);
    await h.process([{ u: 'a' }]);
    assert.equal(calls.length, 1);
    h.clock.advance(2);
    await h.process([{ u: 'a' }]);
    assert.equal(calls.length, 2);

    const none = store(USERS);
    const n = await harness({ provider: none.provider, key: 'u', into: 'r', cache: false });
    await n.process([{ u: 'a' }]);
    await n.process([{ u: 'a' }]);
    assert.equal(none.calls.length, 2);
  });

  test('rejects a batchSize or concurrency below 1', () => {
    assert.throws(
      () => lookup({ provider: store({}).provider, key: 'u', concurrency: 0 }),
      /`concurrency` must be/,
    );
  });
});

describe('RowCache', () => {
  test('keeps at most maxEntries, least recently used out first', () => {
    const c = new RowCache({ maxEntries: 2, clock: { now: () => 0, sleep: async () => {} } });
    c.set('a', 1);
    c.set('b', 2);
    c.get('a');
    c.set('c', 3);
    assert.deepEqual([c.get('a'), c.get('b'), c.get('c')], [{ row: 1 }, undefined, { row: 3 }]);
  });

  test('keeps at most maxBytes of estimated keys and rows', () => {
    const row = { name: 'x'.repeat(100) };
    const each = approximateBytes('k00') + approximateBytes(row);
    const c = new RowCache({ maxBytes: each * 10, clock: { now: () => 0, sleep: async () => {} } });
    for (let i = 0; i < 50; i++) c.set(`k${String(i).padStart(2, '0')}`, row);
    assert.equal(c.size, 10);
    assert.ok(c.bytes <= each * 10);
    assert.equal(approximateBytes({ id: 'u1', tier: 'gold' }), 72);
  });
});
