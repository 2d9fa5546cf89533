import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OperatorHarness } from './harness.ts';
import { serial } from './serial.ts';

interface Transfer {
  id: number;
  from: string;
  to: string;
  amount: bigint;
}

/** Deterministic pseudo-random numbers (xorshift), so failures reproduce. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function transfers(n: number, accounts: number, seed: number): Transfer[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, id) => {
    const from = `a${Math.floor(r() * accounts)}`;
    let to = `a${Math.floor(r() * accounts)}`;
    if (to === from) to = `a${(Number(from.slice(1)) + 1) % accounts}`;
    return { id, from, to, amount: BigInt(1 + Math.floor(r() * 60)) };
  });
}

/** The sequential reference: each transfer applied in order when the payer can afford it. */
function reference(ts: readonly Transfer[], opening: bigint) {
  const bal = new Map<string, bigint>();
  const applied: number[] = [];
  for (const t of ts) {
    const from = bal.get(t.from) ?? opening;
    if (from < t.amount) continue;
    bal.set(t.from, from - t.amount);
    bal.set(t.to, (bal.get(t.to) ?? opening) + t.amount);
    applied.push(t.id);
  }
  return { bal, applied };
}

/** The ledger function, with random delays so calls interleave. */
function ledger(opening: bigint, seed: number, live: { inFlight: number; max: number; perKey: Set<string> }) {
  const r = rng(seed);
  return serial<Transfer, bigint>({
    keys: ['from', 'to'],
    concurrency: 8,
    ports: ['rejected'],
    fn: async (t, s) => {
      for (const k of s.keys) {
        assert.ok(!live.perKey.has(k), `key ${k} runs twice at once`);
        live.perKey.add(k);
      }
      live.inFlight++;
      live.max = Math.max(live.max, live.inFlight);
      try {
        const from = s.get(t.from) ?? opening;
        await new Promise((res) => setTimeout(res, Math.floor(r() * 3)));
        if (from < t.amount) {
          s.emit({ ...t, reason: 'insufficient funds' }, 'rejected');
          return undefined;
        }
        s.set(from - t.amount, t.from);
        s.set((s.get(t.to) ?? opening) + t.amount, t.to);
        return { ...t, balance: from - t.amount };
      } finally {
        live.inFlight--;
        for (const k of s.keys) live.perKey.delete(k);
      }
    },
  });
}

test('serial equals the sequential run: keys one at a time, others concurrently, results in input order', async () => {
  const ts = transfers(400, 6, 7);
  const live = { inFlight: 0, max: 0, perKey: new Set<string>() };
  const op = ledger(100n, 3, live);
  const h = new OperatorHarness(op);
  await h.open();
  for (let i = 0; i < ts.length; i += 100) await h.process(ts.slice(i, i + 100));
  const want = reference(ts, 100n);
  assert.deepEqual(
    h.records().map((r) => (r as Transfer).id),
    want.applied,
  );
  assert.equal(h.records('rejected').length, ts.length - want.applied.length);
  assert.ok(live.max > 1, 'different keys ran concurrently');
  // The state is the reference's balances; a snapshot restores into a new instance.
  const saved = structuredClone(op.snapshot?.(1));
  const restored = ledger(100n, 5, { inFlight: 0, max: 0, perKey: new Set() });
  const again = new OperatorHarness(restored);
  await again.open();
  await restored.restore?.(saved);
  const more = transfers(200, 6, 11).map((t) => ({ ...t, id: t.id + 1000 }));
  await again.process(more);
  const all = reference([...ts, ...more], 100n);
  assert.deepEqual(
    again.records().map((r) => (r as Transfer).id),
    all.applied.filter((id) => id >= 1000),
  );
});

test('a throwing call dead-letters its record and keeps its key’s value', async () => {
  const h = new OperatorHarness(
    serial<{ k: string; v: number }, number>({
      key: 'k',
      fn: (r, s) => {
        s.set((s.get() ?? 0) + r.v);
        if (r.v < 0) throw new Error('negative');
        return { k: r.k, total: s.get() };
      },
    }),
  );
  await h.open();
  await h.process([
    { k: 'a', v: 1 },
    { k: 'a', v: -5 },
    { k: 'a', v: 2 },
  ]);
  assert.deepEqual(h.records(), [
    { k: 'a', total: 1 },
    { k: 'a', total: 3 },
  ]);
  assert.equal(h.deadLetters.length, 1);
  assert.match(String(h.deadLetters[0]?.error), /negative/);
});

test('a key outside the record’s keys is refused', async () => {
  const h = new OperatorHarness(
    serial<{ k: string }, number>({ key: 'k', fn: (_r, s) => s.set(1, 'other') }),
  );
  await h.open();
  await h.process([{ k: 'a' }]);
  assert.match(String(h.deadLetters[0]?.error), /not a key of the record/);
});
