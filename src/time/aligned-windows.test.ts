import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchOf } from '../core/message.ts';
import type { StageContext } from '../core/stage.ts';
import { AlignedWindowSet } from './aligned-windows.ts';
import type { SlidingWindows, TumblingWindows } from './assigners.ts';
import type { KeyTable } from './key-table.ts';
import { type SavedWindow, WindowCore } from './window-core.ts';
import { type WindowOptions, windowPlan } from './window-options.ts';

type Ev = { k: string; t: number };

/** An aligned window set over a core whose context collects dead letters; time is passed in. */
function aligned(o: Partial<WindowOptions<Ev>>) {
  const plan = windowPlan<Ev>({ key: 'k', time: 't', aggregate: { n: 'count()' }, ...o });
  const core = new WindowCore<Ev>(plan);
  const dead: unknown[] = [];
  core.ctx = { name: 'w', deadLetter: (r: unknown) => dead.push(r) } as unknown as StageContext;
  const set = new AlignedWindowSet(core, plan.assigner as TumblingWindows | SlidingWindows);
  /** Moves the watermark to `wm` (as the operator does) and returns the results made. */
  const advance = (wm: number) => {
    set.fireSome(Number.POSITIVE_INFINITY);
    set.drainPending();
    set.advance(wm);
    set.fireSome(Number.POSITIVE_INFINITY);
    const out = core.out.map((r) => [r.k, r.windowStart, r.n, r.revision]);
    core.out = [];
    return out;
  };
  const ingest = (evs: Ev[], wm = Number.NEGATIVE_INFINITY) => set.ingest(batchOf(evs), 0, wm);
  return { set, core, dead, advance, ingest };
}

const iso = (ms: number) => new Date(ms).toISOString();

test('tumbling: events go to the bucket of their start; a bucket fires when the watermark reaches its end − 1', () => {
  const { ingest, advance, core } = aligned({ tumbling: 10 });
  ingest([
    { k: 'a', t: 0 },
    { k: 'a', t: 9 },
    { k: 'b', t: 5 },
    { k: 'a', t: 10 },
  ]);
  assert.equal(core.openWindows, 3);
  assert.deepEqual(advance(8), []);
  assert.deepEqual(advance(9), [
    ['a', iso(0), 2, 1],
    ['b', iso(0), 1, 1],
  ]);
  assert.equal(core.openWindows, 1); // no lateness: [0, 10) is dropped as it fires
  assert.deepEqual(advance(19), [['a', iso(10), 1, 1]]);
});

test('sliding: an event belongs to size / slide windows, oldest fired first', () => {
  const { ingest, advance } = aligned({ sliding: { size: 30, slide: 10 } });
  ingest([{ k: 'a', t: 25 }]);
  assert.deepEqual(advance(Number.POSITIVE_INFINITY), [
    ['a', iso(0), 1, 1],
    ['a', iso(10), 1, 1],
    ['a', iso(20), 1, 1],
  ]);
});

test('lateness: within it an update is queued; past it the event goes to the dead-letter output without `late`', () => {
  const { ingest, advance, set, core, dead } = aligned({ tumbling: 10, allowedLateness: 10 });
  ingest([{ k: 'a', t: 1 }]);
  assert.deepEqual(advance(9), [['a', iso(0), 1, 1]]);
  ingest([{ k: 'a', t: 2 }], 9); // late but within lateness
  set.drainPending();
  assert.deepEqual(
    core.out.map((r) => [r.n, r.revision, r.update]),
    [[2, 2, true]],
  );
  core.out = [];
  assert.deepEqual(advance(19), []); // dropped
  ingest([{ k: 'a', t: 3 }], 19);
  assert.deepEqual(dead, [{ k: 'a', t: 3 }]);
  assert.equal(core.lateCount, 1);
});

test('a key silent for a window keeps its purged window as a husk for one more purge, then is forgotten', () => {
  const { ingest, advance, set } = aligned({ tumbling: 10 });
  const latest = (set as unknown as { latest: KeyTable<unknown> }).latest;
  ingest([
    { k: 'a', t: 0 },
    { k: 'b', t: 0 },
  ]);
  advance(9);
  assert.equal(latest.size, 2); // both husks
  ingest([{ k: 'a', t: 10 }]); // `a` revives its husk
  advance(19);
  ingest([{ k: 'a', t: 20 }]);
  advance(29);
  assert.deepEqual(latest.keys(), ['a']);
});

test('save and restore keep every window, its bucket state and its key list', () => {
  const a = aligned({ sliding: { size: 20, slide: 10 }, allowedLateness: 100 });
  a.ingest([
    { k: 'a', t: 5 },
    { k: 'a', t: 15 },
    { k: 'b', t: 12 },
  ]);
  a.advance(19); // [0, 20) fires and stays for its lateness
  const saved = structuredClone(a.set.save());
  const b = aligned({ sliding: { size: 20, slide: 10 }, allowedLateness: 100 });
  b.set.restore(saved);
  const order = (ws: readonly SavedWindow[]) =>
    [...ws].sort((x, y) => x.start - y.start || (x.ck < y.ck ? -1 : 1));
  assert.deepEqual(order(b.set.save()), order(saved));
  assert.equal(b.set.firstEnd(), 10); // [-10, 10) is kept for its lateness
  assert.equal(b.core.openWindows, a.core.openWindows);
  // The restored key list takes a late event into both of its windows.
  b.ingest([{ k: 'a', t: 16 }], 19);
  b.set.drainPending();
  assert.deepEqual(
    b.core.out.map((r) => [r.k, r.windowStart, r.n, r.revision]),
    [['a', iso(0), 3, 2]],
  );
  b.core.out = [];
  assert.deepEqual(b.advance(Number.POSITIVE_INFINITY), [
    ['a', iso(10), 2, 1],
    ['b', iso(10), 1, 1],
  ]);
});

test('two key fields: the head hint of a pair follows husks, forgotten keys and a restore', () => {
  const two = () => aligned({ key: ['k', 'j'], tumbling: 10 });
  const ev = (k: string, t: number) => ({ k, j: 'x', t }) as Ev;
  const { ingest, advance, set, core } = two();
  const latest = (set as unknown as { latest: KeyTable<unknown> }).latest;
  ingest([ev('a', 0), ev('a', 1), ev('b', 2)]);
  ingest([ev('b', 3)]); // a later chunk: `b`'s window becomes the hint of its pair
  assert.deepEqual(advance(9), [
    ['a', iso(0), 2, 1],
    ['b', iso(0), 2, 1],
  ]);
  // `a`'s purged window (a husk, its hint) is revived; `b` stays silent.
  ingest([ev('a', 10), ev('a', 11)]);
  assert.deepEqual(advance(19), [['a', iso(10), 2, 1]]);
  ingest([ev('a', 20)]);
  advance(29); // `b`'s husk is forgotten: out of `latest`, yet still the hint of its pair
  assert.deepEqual(latest.keys(), ['a\u0000x']);
  ingest([ev('b', 30), ev('b', 31), ev('a', 32)]);
  assert.equal(latest.size, 2); // `b` is back, with one new window (not its forgotten husk)
  assert.deepEqual(advance(39), [
    ['b', iso(30), 2, 1],
    ['a', iso(30), 1, 1],
  ]);
  // A restore replaces every window: hints of the windows before it are dropped (an event after
  // it counted into the replaced window would leave the restored one at 1).
  ingest([ev('a', 40)]);
  const saved = structuredClone(set.save());
  ingest([ev('a', 41)]); // into the window the restore is about to replace
  set.restore(saved);
  ingest([ev('a', 42)]);
  assert.deepEqual(advance(49), [['a', iso(40), 2, 1]]);
  assert.equal(core.out.length, 0);
});
