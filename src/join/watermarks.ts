/**
 * The watermark of a two-input join: each side's own (bounded out-of-orderness over its source
 * partitions, `WatermarkGenerator`), merged by minimum, and the larger of that and the in-band
 * watermark from upstream. A side holds the merged watermark back until it has sent a record —
 * its first records may be older than anything the other side sent — unless it ended (it can
 * send nothing more) or stayed silent for the idle timeout (processing time).
 */
import type { InputPartitions } from '../core/input-partitions.ts';
import type { RecordMeta } from '../core/message.ts';
import { WatermarkGenerator } from '../time/watermark.ts';
import type { BySide } from './options.ts';

/** One side of a join, as the watermark sees it. */
interface SideState {
  readonly gen: WatermarkGenerator;
  /** Processing time of its last record, or of the start while it sent none. */
  lastSeen: number;
  seen: boolean;
  ended: boolean;
  /** The source stages its records came from: their partitions not seen yet hold it back. */
  readonly sources: Set<string>;
}

/** What {@link JoinWatermarks.save} returns (structured-cloneable). */
export interface SavedJoinWatermarks {
  readonly mark: number;
  readonly upstream: number;
  readonly sides: BySide<{
    seen: boolean;
    generator: ReturnType<WatermarkGenerator['save']>;
    sources?: string[];
  }>;
}

/**
 * The merged watermark of a join; see the module comment. Call {@link observe} per record and
 * {@link current} once per batch; never decreases.
 *
 * @example
 * const w = new JoinWatermarks({ maxOutOfOrder: 1000 }, 0);
 * w.observe('left', 5000, undefined, 0);
 * w.current(0); // −Infinity: the right side has sent nothing yet
 * w.observe('right', 9000, undefined, 0);
 * w.current(0); // 3999
 */
export class JoinWatermarks {
  private readonly sides: BySide<SideState>;
  private readonly idleTimeout: number;
  private mark = Number.NEGATIVE_INFINITY;
  private upstream = Number.NEGATIVE_INFINITY;
  /** The processing time of the last {@link current}. */
  private evaluatedAt = Number.NEGATIVE_INFINITY;

  /** @param now processing time at the start (a side's idle timeout counts from it) */
  constructor(options: { maxOutOfOrder: number; idleTimeout?: number | undefined }, now: number) {
    this.idleTimeout = options.idleTimeout ?? Number.POSITIVE_INFINITY;
    const side = (): SideState => ({
      gen: new WatermarkGenerator({ maxOutOfOrder: options.maxOutOfOrder }),
      lastSeen: now,
      seen: false,
      ended: false,
      sources: new Set<string>(),
    });
    this.sides = { left: side(), right: side() };
  }

  /** Records the event time of one record of `side` seen at processing time `now`. */
  observe(side: 'left' | 'right', time: number, meta: RecordMeta | undefined, now: number): void {
    const s = this.sides[side];
    s.seen = true;
    s.lastSeen = now;
    if (meta === undefined) s.gen.observe(time, '', now);
    else {
      if (!s.sources.has(meta.source)) s.sources.add(meta.source);
      s.gen.observeMeta(time, meta, now);
    }
  }

  /**
   * Takes the partitions the run's sources own into account: once a side got records of a
   * partitioned source (Kafka), that source's partitions it has not seen yet hold its watermark
   * back (their first records may be older), as a window's do. Called by the operator's `open`.
   */
  attach(inputs: InputPartitions): void {
    for (const s of [this.sides.left, this.sides.right]) s.gen.attach(inputs, s.sources);
  }

  /** `side` ended: it no longer holds the watermark back. */
  end(side: 'left' | 'right'): void {
    this.sides[side].ended = true;
  }

  /** An in-band watermark from upstream (already the minimum over the inputs). */
  upstreamMark(time: number): void {
    if (time > this.upstream) this.upstream = time;
  }

  /** The watermark at processing time `now`. */
  current(now: number): number {
    this.evaluatedAt = now;
    let min = Number.POSITIVE_INFINITY;
    let holding = false;
    for (const s of [this.sides.left, this.sides.right]) {
      if (s.ended) continue;
      if (now - s.lastSeen >= this.idleTimeout) continue;
      holding = true;
      const w = s.seen ? s.gen.current(now) : Number.NEGATIVE_INFINITY;
      if (w < min) min = w;
    }
    // Both sides ended: nothing can arrive any more. Both idle: hold.
    const own = !holding
      ? this.sides.left.ended && this.sides.right.ended
        ? Number.POSITIVE_INFINITY
        : this.mark
      : min;
    const next = Math.max(own, this.upstream);
    if (next > this.mark) this.mark = next;
    return this.mark;
  }

  /**
   * When an idle timeout could next move the watermark (processing time), or undefined. Only
   * deadlines after the last {@link current} count: a side already idle then asks for nothing
   * until it sends again (a deadline in the past would be due at once, for ever).
   */
  nextIdleCheck(): number | undefined {
    const now = this.evaluatedAt;
    if (this.idleTimeout === Number.POSITIVE_INFINITY) return undefined;
    let next: number | undefined;
    for (const s of [this.sides.left, this.sides.right]) {
      if (s.ended) continue;
      const at = s.lastSeen + this.idleTimeout;
      if (at <= now) continue;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /** State for checkpoints. */
  save(): SavedJoinWatermarks {
    const side = (s: SideState) => ({ seen: s.seen, generator: s.gen.save(), sources: [...s.sources] });
    return {
      mark: this.mark,
      upstream: this.upstream,
      sides: { left: side(this.sides.left), right: side(this.sides.right) },
    };
  }

  /** Restores {@link save}'s state; both sides count as just seen at `now`. */
  load(state: SavedJoinWatermarks, now: number): void {
    this.mark = state.mark;
    this.upstream = state.upstream;
    for (const side of ['left', 'right'] as const) {
      const s = this.sides[side];
      s.seen = state.sides[side].seen;
      s.sources.clear();
      for (const source of state.sides[side].sources ?? []) s.sources.add(source);
      s.lastSeen = now;
      s.gen.load(state.sides[side].generator, now);
    }
  }
}
