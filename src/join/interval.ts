/**
 * The interval join (and the window join, its special case): a left record at `tl` and a right
 * record at `tr` with the same key match when `tr − tl` lies in `[lower, upper]` — or, for a
 * window join, when both fall in the same tumbling window. Both sides are buffered per key; each
 * arriving record is matched against the other side's buffer and then buffered itself.
 *
 * Purging: a record can match only records of the other side within its range (`rangeOf`); once
 * the watermark reaches the end of that range no record it could match can come (it would be
 * late), so it is dropped — and in a left outer join a left record dropped without ever having
 * matched is emitted once, with `null` for the right side. Every accepted pair of records that
 * match is emitted exactly once, whatever the arrival order: the first of the two to arrive is
 * still buffered when the second comes (the second is not late, so the watermark has not passed
 * the end of the first's range).
 */
import type { RecordMeta } from '../core/message.ts';
import { mod } from '../time/assigners.ts';
import type { JoinAlgorithm, JoinResults, JoinSide } from './base.ts';
import { MinHeap } from './heap.ts';
import type { JoinMatch } from './options.ts';

interface Entry {
  readonly side: JoinSide;
  readonly key: string;
  readonly time: number;
  readonly record: unknown;
  readonly meta: RecordMeta | undefined;
  /** The watermark at which it can match nothing more: the end of its range. */
  readonly expires: number;
  /** Arrival order, so ties in `expires` purge (and emit) in arrival order. */
  readonly seq: number;
  matched: boolean;
}

/** One key's buffered records. */
interface Buffers {
  left: Entry[];
  right: Entry[];
}

/** A buffered record in a checkpoint: `[side, key, time, record, meta, matched]`. */
type SavedEntry = [JoinSide, string, number, unknown, RecordMeta | undefined, boolean];

/**
 * The times of the other side a record of `side` at `time` matches, inclusive: `[from, to]`.
 *
 * @example
 * rangeOf({ kind: 'interval', lower: -300_000, upper: 60_000 }, 'left', 1_000_000); // [700000, 1060000]
 */
export function rangeOf(match: JoinMatch, side: JoinSide, time: number): [number, number] {
  if (match.kind === 'tumbling') {
    const start = time - mod(time, match.size);
    return [start, start + match.size - 1];
  }
  return side === 'left'
    ? [time + match.lower, time + match.upper]
    : [time - match.upper, time - match.lower];
}

/** The interval (or window) join's state; see the module comment. */
export class IntervalJoin implements JoinAlgorithm {
  private readonly match: JoinMatch;
  private readonly outer: boolean;
  private readonly results: JoinResults;
  private readonly byKey = new Map<string, Buffers>();
  private readonly expiry = new MinHeap<Entry>((a, b) => a.expires - b.expires || a.seq - b.seq);
  private seq = 0;

  constructor(match: JoinMatch, outer: boolean, results: JoinResults) {
    this.match = match;
    this.outer = outer;
    this.results = results;
  }

  get held(): number {
    return this.expiry.size;
  }

  add(side: JoinSide, key: string, time: number, record: unknown, meta: RecordMeta | undefined): void {
    const [from, to] = rangeOf(this.match, side, time);
    const entry: Entry = { side, key, time, record, meta, expires: to, seq: this.seq++, matched: false };
    let buffers = this.byKey.get(key);
    if (buffers === undefined) {
      buffers = { left: [], right: [] };
      this.byKey.set(key, buffers);
    }
    const others = side === 'left' ? buffers.right : buffers.left;
    const results = this.results;
    for (const o of others) {
      if (o.time < from || o.time > to) continue;
      if (side === 'left') {
        results.push(record, o.record, meta);
        entry.matched = true;
      } else {
        results.push(o.record, record, o.meta);
        o.matched = true;
      }
    }
    buffers[side].push(entry);
    this.expiry.push(entry);
  }

  advance(wm: number): void {
    const heap = this.expiry;
    for (let e = heap.peek(); e !== undefined && e.expires <= wm; e = heap.peek()) {
      heap.pop();
      const buffers = this.byKey.get(e.key) as Buffers;
      const list = buffers[e.side];
      const at = list.indexOf(e);
      if (at >= 0) list.splice(at, 1);
      if (buffers.left.length === 0 && buffers.right.length === 0) this.byKey.delete(e.key);
      if (this.outer && e.side === 'left' && !e.matched) this.results.push(e.record, null, e.meta);
    }
  }

  save(): { seq: number; entries: SavedEntry[] } {
    const entries: SavedEntry[] = [];
    const held = [...this.expiry.items()].sort((a, b) => a.seq - b.seq);
    for (const e of held) entries.push([e.side, e.key, e.time, e.record, e.meta, e.matched]);
    return { seq: this.seq, entries };
  }

  load(state: unknown): void {
    const s = state as ReturnType<IntervalJoin['save']>;
    this.byKey.clear();
    this.expiry.clear();
    // Entries were saved in arrival order; numbering them again keeps it.
    let seq = 0;
    for (const [side, key, time, record, meta, matched] of s.entries) {
      const [, to] = rangeOf(this.match, side, time);
      const entry: Entry = { side, key, time, record, meta, expires: to, seq: seq++, matched };
      let buffers = this.byKey.get(key);
      if (buffers === undefined) {
        buffers = { left: [], right: [] };
        this.byKey.set(key, buffers);
      }
      buffers[side].push(entry);
      this.expiry.push(entry);
    }
    this.seq = Math.max(seq, s.seq);
  }
}
