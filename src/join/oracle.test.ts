/**
 * The oracle test of the interval and window joins: generated left and right streams with
 * out-of-order, late and very late events arrive interleaved in batches of random sizes; the
 * results must equal a reference computed by judging each event against the watermark before
 * its batch and then pairing the accepted events by brute force over the sorted lists. In a
 * left outer join each unmatched left event appears exactly once, with `null`, and only after
 * the watermark passed the end of its range. Every event is accounted for: accepted + late.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { RecordMeta } from '../core/message.ts';
import { OperatorHarness } from '../operators/harness.ts';
import type { JoinSide, LateJoinRecord } from './base.ts';
import { rangeOf } from './interval.ts';
import { streamJoin } from './join.ts';
import type { JoinMatch } from './options.ts';

interface Ev {
  id: string;
  k: string;
  t: number;
}

const D = 3000; // maxOutOfOrder
const T0 = Date.UTC(2024, 0, 1);

/** Batches in arrival order, each from one side. */
type Batches = { side: JoinSide; events: Ev[] }[];

const streamArb = fc
  .record({
    steps: fc.array(
      fc.record({
        side: fc.constantFrom<JoinSide>('left', 'right'),
        key: fc.constantFrom('a', 'b', 'c'),
        advance: fc.integer({ min: 0, max: 2500 }),
        kind: fc.constantFrom('inOrder', 'inOrder', 'disorder', 'late', 'veryLate'),
        back: fc.integer({ min: 0, max: 40_000 }),
      }),
      { minLength: 10, maxLength: 200, size: 'max' },
    ),
    cuts: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 20 }),
  })
  .map(({ steps, cuts }): Batches => {
    // Each side has its own clock, so one side may run ahead of the other.
    const clocks = { left: T0, right: T0 };
    const events = steps.map((s, i) => {
      clocks[s.side] += s.advance;
      const now = clocks[s.side];
      let t = now;
      if (s.kind === 'disorder') t = now - (s.back % D);
      else if (s.kind === 'late') t = now - D - (s.back % 8000);
      else if (s.kind === 'veryLate') t = now - D - 20_000 - s.back;
      return { side: s.side, ev: { id: `${s.side[0]}${i}`, k: s.key, t } };
    });
    // Consecutive events of one side, cut into batches of the generated sizes.
    const batches: Batches = [];
    let c = 0;
    for (const { side, ev } of events) {
      const last = batches[batches.length - 1];
      if (last !== undefined && last.side === side && last.events.length < (cuts[c % cuts.length] as number))
        last.events.push(ev);
      else {
        batches.push({ side, events: [ev] });
        c++;
      }
    }
    return batches;
  });

interface Reference {
  pairs: string[];
  late: number;
  accepted: Ev[];
}

/** Judges each event against the watermark before its batch, then pairs by brute force. */
function reference(match: JoinMatch, outer: boolean, batches: Batches): Reference {
  const max = { left: Number.NEGATIVE_INFINITY, right: Number.NEGATIVE_INFINITY };
  let wm = Number.NEGATIVE_INFINITY;
  let late = 0;
  const accepted = { left: [] as Ev[], right: [] as Ev[] };
  for (const { side, events } of batches) {
    for (const e of events) {
      if (e.t > max[side]) max[side] = e.t;
      if (e.t <= wm) late++;
      else accepted[side].push(e);
    }
    wm = Math.max(wm, Math.min(max.left, max.right) - D - 1);
  }
  const left = [...accepted.left].sort((a, b) => a.t - b.t);
  const right = [...accepted.right].sort((a, b) => a.t - b.t);
  const pairs: string[] = [];
  for (const l of left) {
    const [from, to] = rangeOf(match, 'left', l.t);
    let matched = false;
    for (const r of right) {
      if (r.k !== l.k || r.t < from || r.t > to) continue;
      pairs.push(`${l.id}+${r.id}`);
      matched = true;
    }
    if (outer && !matched) pairs.push(`${l.id}+null`);
  }
  return { pairs: pairs.sort(), late, accepted: [...left, ...right] };
}

const seen = { pairs: 0, outer: 0, late: 0 };

/** Runs the join of `match` and compares with the reference of `refMatch` (the same, unless a test wants a failure). */
async function check(match: JoinMatch, outer: boolean, batches: Batches, refMatch = match): Promise<void> {
  const options =
    match.kind === 'interval' ? { between: [match.lower, match.upper] as const } : { tumbling: match.size };
  const h = new OperatorHarness(
    streamJoin({
      key: 'k',
      time: 't',
      ...options,
      type: outer ? 'left' : 'inner',
      watermark: { maxOutOfOrder: D },
      late: 'late',
    }),
  );
  await h.open();
  for (const { side, events } of batches) {
    const meta: RecordMeta[] = events.map(() => ({ source: side }));
    await h.process(events, meta, side);
  }
  // Before the end: every unmatched left emitted so far was emitted in a call whose watermark
  // (sent after the results of that call) passed the end of its range.
  let waiting: { id: string; to: number }[] = [];
  for (const o of h.outputs) {
    if ('signal' in o) {
      if (o.signal.kind !== 'watermark') continue;
      const wm = o.signal.time;
      for (const w of waiting)
        assert.ok(w.to <= wm, `left ${w.id} emitted with null before the watermark (${wm}) passed ${w.to}`);
      waiting = [];
      continue;
    }
    if (o.port !== 'out') continue;
    for (const r of o.batch.records as { left: Ev; right: Ev | null }[]) {
      if (r.right === null) waiting.push({ id: r.left.id, to: rangeOf(match, 'left', r.left.t)[1] });
    }
  }
  assert.deepEqual(waiting, [], 'left records emitted with null without a watermark past their range');
  await h.endInput('left');
  await h.endInput('right');
  await h.finish();
  const got = (h.records() as { left: Ev; right: Ev | null }[])
    .map((r) => `${r.left.id}+${r.right === null ? 'null' : r.right.id}`)
    .sort();
  const ref = reference(refMatch, outer, batches);
  assert.deepEqual(got, ref.pairs, 'results, each exactly once');
  const late = h.records('late') as unknown as LateJoinRecord[];
  assert.equal(late.length, ref.late, 'late events');
  for (const l of late) assert.ok(l.eventTime <= l.watermark);
  const input = batches.reduce((n, b) => n + b.events.length, 0);
  assert.equal(input, ref.accepted.length + late.length, 'count in = accepted + late');
  seen.pairs += got.filter((p) => !p.endsWith('+null')).length;
  seen.outer += got.filter((p) => p.endsWith('+null')).length;
  seen.late += late.length;
}

const matches: JoinMatch[] = [
  { kind: 'interval', lower: -5000, upper: 1000 },
  { kind: 'interval', lower: 2000, upper: 6000 },
  { kind: 'tumbling', size: 4000 },
];

describe('oracle: join results equal a sorted reference', () => {
  for (const match of matches) {
    for (const outer of [false, true]) {
      test(`${match.kind} ${JSON.stringify(match)} ${outer ? 'left outer' : 'inner'}`, async () => {
        await fc.assert(
          fc.asyncProperty(streamArb, (batches) => check(match, outer, batches)),
          { numRuns: 100 },
        );
      });
    }
  }

  test('the generated streams exercised matches, unmatched left records and late events', () => {
    assert.ok(seen.pairs > 100 && seen.outer > 100 && seen.late > 100, JSON.stringify(seen));
  });

  test('the oracle notices a wrong result (it can fail)', async () => {
    const batches: Batches = [
      { side: 'left', events: [{ id: 'l0', k: 'a', t: T0 }] },
      { side: 'right', events: [{ id: 'r1', k: 'a', t: T0 + 500 }] },
    ];
    const match: JoinMatch = { kind: 'interval', lower: -5000, upper: 1000 };
    assert.deepEqual(reference(match, false, batches).pairs, ['l0+r1']);
    await check(match, false, batches);
    await assert.rejects(check(match, false, batches, { kind: 'interval', lower: 0, upper: 100 }), /results/);
  });
});
