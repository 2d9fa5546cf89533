/**
 * The oracle test: a generated stream with out-of-order, late and very late events goes
 * through the window operator in batches of random sizes; the results (finals plus updates,
 * the last revision of each key + windowStart winning, retractions removing a row) must equal a
 * reference computed by sorting the accepted events — for tumbling, sliding and session
 * windows. Every event must be accounted for: in = aggregated + late + dead letters.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { OperatorHarness } from '../operators/harness.ts';
import { mod } from './assigners.ts';
import { type LateEvent, type WindowOptions, windowOperator } from './window.ts';

interface Ev {
  id: number;
  k: string;
  t: number | string;
  cents: number;
}

const D = 4000; // maxOutOfOrder
const L = 10_000; // allowedLateness
const T0 = Date.UTC(2024, 0, 1);

type Spec =
  | { kind: 'tumbling'; size: number }
  | { kind: 'sliding'; size: number; slide: number }
  | { kind: 'session'; gap: number };

const cents = (c: number) => {
  const neg = c < 0;
  const s = String(Math.abs(c)).padStart(3, '0');
  return `${neg ? '-' : ''}${s.slice(0, -2)}.${s.slice(-2)}`;
};

/** The events (in arrival order) and how they are cut into batches. */
const streamArb = fc
  .record({
    steps: fc.array(
      fc.record({
        key: fc.constantFrom('a', 'b', 'c'),
        advance: fc.integer({ min: 0, max: 3000 }),
        kind: fc.constantFrom('inOrder', 'inOrder', 'inOrder', 'disorder', 'late', 'veryLate', 'bad'),
        back: fc.integer({ min: 0, max: 60_000 }),
        cents: fc.integer({ min: -500, max: 100_000 }),
      }),
      { minLength: 20, maxLength: 250, size: 'max' },
    ),
    cuts: fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 30 }),
  })
  .map(({ steps, cuts }) => {
    let clock = T0;
    const events: Ev[] = steps.map((s, id) => {
      clock += s.advance;
      let t: number | string = clock;
      if (s.kind === 'disorder') t = clock - (s.back % D);
      else if (s.kind === 'late') t = clock - D - (s.back % L);
      else if (s.kind === 'veryLate') t = clock - D - L - 30_000 - s.back;
      else if (s.kind === 'bad') t = 'not a time';
      return { id, k: s.key, t, cents: s.cents };
    });
    const batches: Ev[][] = [];
    let i = 0;
    for (let c = 0; i < events.length; c++) {
      const n = cuts[c % cuts.length] as number;
      batches.push(events.slice(i, i + n));
      i += n;
    }
    return batches;
  });

/** Window starts of `t` under an aligned spec, newest first. */
function alignedStarts(spec: Exclude<Spec, { kind: 'session' }>, t: number): number[] {
  const step = spec.kind === 'sliding' ? spec.slide : spec.size;
  const out: number[] = [];
  for (let s = t - mod(t, step); s > t - spec.size; s -= step) out.push(s);
  return out;
}

interface Row {
  k: string;
  start: number;
  end: number;
  count: number;
  sum: number;
}

/** The reference: judge each event against the watermark before its batch, then group by sorting. */
function reference(
  spec: Spec,
  batches: Ev[][],
): { rows: Map<string, Row>; late: number; dead: number; aggregated: number } {
  let maxT = Number.NEGATIVE_INFINITY;
  let wm = Number.NEGATIVE_INFINITY;
  let late = 0;
  let dead = 0;
  let aggregated = 0;
  const accepted: { k: string; t: number; cents: number; start?: number }[] = [];
  // Sessions: live events per key (not yet purged), and finished sessions.
  const live = new Map<string, { t: number; cents: number }[]>();
  const done: Row[] = [];
  const sessionsOf = (k: string, evs: { t: number; cents: number }[], gap: number): Row[] => {
    const sorted = [...evs].sort((x, y) => x.t - y.t);
    const rows: Row[] = [];
    for (const e of sorted) {
      const cur = rows[rows.length - 1];
      if (cur !== undefined && e.t < cur.end) {
        cur.end = Math.max(cur.end, e.t + gap);
        cur.count++;
        cur.sum += e.cents;
      } else rows.push({ k, start: e.t, end: e.t + gap, count: 1, sum: e.cents });
    }
    return rows;
  };
  for (const batch of batches) {
    for (const e of batch) {
      if (typeof e.t !== 'number') {
        dead++;
        continue;
      }
      const t = e.t;
      if (e.t > maxT) maxT = e.t;
      if (spec.kind === 'session') {
        const evs = live.get(e.k) ?? [];
        const hit = sessionsOf(e.k, evs, spec.gap).some((s) => s.start < t + spec.gap && t < s.end);
        if (!hit && e.t + spec.gap - 1 + L <= wm) {
          late++;
          continue;
        }
        evs.push({ t: e.t, cents: e.cents });
        live.set(e.k, evs);
        aggregated++;
        continue;
      }
      const starts = alignedStarts(spec, e.t).filter((s) => s + spec.size - 1 + L > wm);
      if (starts.length === 0) {
        late++;
        continue;
      }
      aggregated++;
      for (const s of starts) accepted.push({ k: e.k, t: e.t, cents: e.cents, start: s });
    }
    wm = Math.max(wm, maxT - D - 1);
    if (spec.kind === 'session') {
      for (const [k, evs] of live) {
        const keep: { t: number; cents: number }[] = [];
        for (const s of sessionsOf(k, evs, spec.gap)) {
          const mine = evs.filter((e) => e.t >= s.start && e.t < s.end);
          if (s.end - 1 + L <= wm) done.push(s);
          else keep.push(...mine);
        }
        live.set(k, keep);
      }
    }
  }
  const rows = new Map<string, Row>();
  if (spec.kind === 'session') {
    for (const [k, evs] of live) done.push(...sessionsOf(k, evs, spec.gap));
    for (const r of done) rows.set(`${r.k}|${r.start}`, r);
  } else {
    accepted.sort((x, y) => (x.start as number) - (y.start as number) || x.t - y.t);
    for (const a of accepted) {
      const id = `${a.k}|${a.start}`;
      const r = rows.get(id) ?? {
        k: a.k,
        start: a.start as number,
        end: (a.start as number) + spec.size,
        count: 0,
        sum: 0,
      };
      r.count++;
      r.sum += a.cents;
      rows.set(id, r);
    }
  }
  return { rows, late, dead, aggregated };
}

function options(spec: Spec): WindowOptions<Ev> {
  const base: WindowOptions<Ev> = {
    key: 'k',
    time: 't',
    watermark: { maxOutOfOrder: D },
    allowedLateness: L,
    aggregate: { count: 'count()', amount: 'sum(amount)' },
    late: 'late',
  };
  if (spec.kind === 'tumbling') return { ...base, tumbling: spec.size };
  if (spec.kind === 'sliding') return { ...base, sliding: { size: spec.size, slide: spec.slide } };
  return { ...base, session: { gap: spec.gap } };
}

async function run(spec: Spec, batches: Ev[][]) {
  const h = new OperatorHarness(windowOperator(options(spec)));
  await h.open();
  for (const b of batches)
    await h.process(b.map((e) => ({ k: e.k, t: e.t, amount: cents(e.cents), id: e.id })) as unknown as Ev[]);
  await h.finish();
  return h;
}

/** What the generated streams exercised, so a test can tell they were not all trivial. */
const seen = { updates: 0, late: 0, retractions: 0, dead: 0 };

async function check(spec: Spec, batches: Ev[][]): Promise<void> {
  const h = await run(spec, batches);
  for (const r of h.records()) {
    if (r.update === true) seen.updates++;
    if (r.retracted === true) seen.retractions++;
  }
  seen.late += h.records('late').length;
  seen.dead += h.deadLetters.length;
  const ref = reference(spec, batches);
  // Last revision wins; a retraction deletes the row.
  const last = new Map<string, Record<string, unknown>>();
  const seenRevision = new Map<string, number>();
  for (const r of h.records()) {
    const id = `${r.k}|${Date.parse(r.windowStart as string)}`;
    const prev = seenRevision.get(id) ?? 0;
    assert.ok((r.revision as number) > prev, `revisions of ${id} go up: ${prev} then ${r.revision}`);
    assert.equal(
      r.update,
      prev > 0 || (r.revision as number) > 1,
      `update flag of ${id} revision ${r.revision}`,
    );
    seenRevision.set(id, r.revision as number);
    if (r.retracted === true) last.delete(id);
    else last.set(id, r);
  }
  const got = [...last.entries()]
    .map(([id, r]) => ({
      id,
      end: Date.parse(r.windowEnd as string),
      count: r.count,
      amount: String(r.amount),
    }))
    .sort((x, y) => x.id.localeCompare(y.id));
  const want = [...ref.rows.entries()]
    .map(([id, r]) => ({ id, end: r.end, count: r.count, amount: cents(r.sum) }))
    .sort((x, y) => x.id.localeCompare(y.id));
  assert.deepEqual(got, want);
  const late = h.records('late') as unknown as LateEvent[];
  assert.equal(late.length, ref.late, 'late events');
  for (const l of late) assert.ok(l.latenessMs >= 0);
  assert.equal(h.deadLetters.length, ref.dead, 'dead letters');
  const input = batches.reduce((n, b) => n + b.length, 0);
  assert.equal(
    input,
    ref.aggregated + late.length + h.deadLetters.length,
    'count in = aggregated + late + dead',
  );
}

const specs: Spec[] = [
  { kind: 'tumbling', size: 10_000 },
  { kind: 'sliding', size: 15_000, slide: 5000 },
  { kind: 'session', gap: 5000 },
];

describe('oracle: window results equal a sorted reference', () => {
  for (const spec of specs) {
    test(`${spec.kind} windows`, async () => {
      await fc.assert(
        fc.asyncProperty(streamArb, (batches) => check(spec, batches)),
        { numRuns: 100 },
      );
    });
  }

  test('the generated streams exercised updates, late events, retractions and dead letters', () => {
    assert.ok(
      seen.updates > 0 && seen.late > 0 && seen.retractions > 0 && seen.dead > 0,
      JSON.stringify(seen),
    );
  });

  test('the oracle notices a wrong result (it can fail)', async () => {
    const batches: Ev[][] = [[{ id: 0, k: 'a', t: T0, cents: 100 }]];
    const h = await run({ kind: 'tumbling', size: 10_000 }, batches);
    const ref = reference({ kind: 'tumbling', size: 10_000 }, [[{ id: 0, k: 'a', t: T0, cents: 101 }]]);
    assert.notEqual(String(h.records()[0]?.amount), cents([...ref.rows.values()][0]?.sum ?? 0));
  });
});
