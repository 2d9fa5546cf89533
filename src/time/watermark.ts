/**
 * Watermark strategies: from the event times a stage sees to "no event at or before t is
 * expected any more". Bounded out-of-orderness (monotonous timestamps are its zero case),
 * tracked per source partition and merged by minimum, with an idle timeout so one silent
 * partition does not hold the whole stream back. Partitions a source owns but has not delivered
 * yet hold it back too (`core/input-partitions.ts`).
 */
import type { InputPartitions } from '../core/input-partitions.ts';
import { inputPartitionKey } from '../core/input-partitions.ts';
import type { RecordMeta } from '../core/message.ts';

/** Options of {@link WatermarkGenerator}. */
export interface WatermarkOptions {
  /** How far behind the newest event time an event may still arrive, in ms. 0: monotonous. */
  maxOutOfOrder?: number;
  /**
   * A partition that sent nothing for this long (processing time, ms) stops holding the
   * watermark back until it sends again. Default: never idle.
   */
  idleTimeout?: number;
}

interface PartitionState {
  maxTime: number;
  lastSeen: number;
}

/**
 * The partition a record came from: its source, plus `partition` from its position when the
 * source has one (Kafka). Records without meta form one partition.
 */
export function partitionOf(meta: RecordMeta | undefined): string {
  if (meta === undefined) return '';
  const p = meta.position?.partition;
  return inputPartitionKey(meta.source, p === undefined ? undefined : Number(p));
}

/**
 * Bounded out-of-orderness watermarks per partition, merged by minimum. For each partition the
 * watermark is `max event time − maxOutOfOrder − 1` (an event exactly `maxOutOfOrder` behind the
 * newest is still on time); the stream's watermark is the minimum over partitions that are not
 * idle, and never goes back. When every partition is idle it holds. {@link attach}ed to the run's
 * {@link InputPartitions}, it also holds while a partition a source owns has not been seen yet
 * (until it is, is read to its end, or stays silent `idleTimeout` from its assignment), and
 * leaves out partitions their source gave up.
 *
 * Call `observe` for each record (cheap: a compare, and a Map lookup only when the partition
 * changes) and `current(now)` once per batch.
 *
 * @example
 * const g = new WatermarkGenerator({ maxOutOfOrder: 5000 });
 * g.observe(10_000, '', 0);
 * g.current(0); // 4999
 */
export class WatermarkGenerator {
  readonly maxOutOfOrder: number;
  readonly idleTimeout: number;
  private readonly partitions = new Map<string, PartitionState>();
  private lastKey: string | undefined;
  private last: PartitionState | undefined;
  /** The source and partition `observeMeta` last saw `last` for (null: none, or `observe` moved on). */
  private metaSource: string | null | undefined = null;
  private metaPartition: unknown;
  private mark = Number.NEGATIVE_INFINITY;
  private inputs: InputPartitions | undefined;
  /** The source stages whose partitions count (a join side's); undefined: every source. */
  private sources: { has(source: string): boolean } | undefined;

  constructor(options: WatermarkOptions = {}) {
    this.maxOutOfOrder = options.maxOutOfOrder ?? 0;
    this.idleTimeout = options.idleTimeout ?? Number.POSITIVE_INFINITY;
    if (!(this.maxOutOfOrder >= 0)) throw new RangeError('maxOutOfOrder must be ≥ 0 ms');
    if (!(this.idleTimeout > 0)) throw new RangeError('idleTimeout must be > 0 ms');
  }

  /**
   * Takes the partitions the run's sources own into account (see the class comment). Called by
   * the operator's `open` with the run's one {@link InputPartitions}; not for an operator that
   * sees only one partition's records (partition-scoped state). `sources` limits that to some
   * source stages (a live set: a join's side adds each source it gets records from).
   */
  attach(inputs: InputPartitions, sources?: { has(source: string): boolean }): void {
    this.inputs = inputs;
    this.sources = sources;
  }

  /** Records one event time from `partition`, seen at processing time `now`. */
  observe(time: number, partition: string, now: number): void {
    let st = this.last;
    if (partition !== this.lastKey || st === undefined) {
      st = this.partitions.get(partition);
      if (st === undefined) {
        st = { maxTime: Number.NEGATIVE_INFINITY, lastSeen: now };
        this.partitions.set(partition, st);
      }
      this.lastKey = partition;
      this.last = st;
      this.metaSource = null;
    }
    st.lastSeen = now;
    if (time > st.maxTime) st.maxTime = time;
  }

  /**
   * {@link WatermarkGenerator.observe} with the partition of `meta` (see {@link partitionOf}). Its
   * key is built only when the source or partition differs from the previous record's, not per
   * record (a Kafka record's key is a new string).
   */
  observeMeta(time: number, meta: RecordMeta | undefined, now: number): void {
    const source = meta?.source;
    const part = meta?.position?.partition;
    const st = this.last;
    if (st === undefined || source !== this.metaSource || part !== this.metaPartition) {
      this.observe(time, partitionOf(meta), now);
      this.metaSource = source;
      this.metaPartition = part;
      return;
    }
    st.lastSeen = now;
    if (time > st.maxTime) st.maxTime = time;
  }

  /** The watermark at processing time `now` (−Infinity until one is known). Never decreases. */
  current(now: number): number {
    const inputs = this.inputs;
    // A partition owned but not seen yet: its first records may be older than any seen so far.
    if (inputs?.pending(this.partitions, now, this.idleTimeout, this.sources) !== undefined) return this.mark;
    let min = Number.POSITIVE_INFINITY;
    for (const [key, st] of this.partitions) {
      if (now - st.lastSeen >= this.idleTimeout) continue;
      if (inputs?.revoked(key) === true) continue;
      const w = st.maxTime - this.maxOutOfOrder - 1;
      if (w < min) min = w;
    }
    if (min !== Number.POSITIVE_INFINITY && min > this.mark) this.mark = min;
    return this.mark;
  }

  /**
   * The earliest processing time at which an idle timeout could move the watermark (a
   * partition turning idle, or an owned partition not seen yet stopping to hold it `idleTimeout`
   * after its assignment, as of processing time `now`), or undefined; lets an operator ask for a timer.
   */
  nextIdleCheck(now: number = Number.NEGATIVE_INFINITY): number | undefined {
    if (this.idleTimeout === Number.POSITIVE_INFINITY) return undefined;
    const pendingSince = this.inputs?.pending(this.partitions, now, this.idleTimeout, this.sources);
    if (pendingSince === undefined && this.partitions.size < 2) return undefined;
    let next = pendingSince === undefined ? Number.POSITIVE_INFINITY : pendingSince + this.idleTimeout;
    if (this.partitions.size >= 2) {
      for (const st of this.partitions.values()) {
        const at = st.lastSeen + this.idleTimeout;
        if (at < next) next = at;
      }
    }
    return next;
  }

  /** Structured-cloneable state for checkpoints. */
  save(): { mark: number; partitions: [string, number][] } {
    return { mark: this.mark, partitions: [...this.partitions].map(([k, s]) => [k, s.maxTime]) };
  }

  /** Restores {@link WatermarkGenerator.save}'s state; partitions count as just seen at `now`. */
  load(state: { mark: number; partitions: [string, number][] }, now: number): void {
    this.mark = state.mark;
    this.partitions.clear();
    this.last = undefined;
    this.lastKey = undefined;
    this.metaSource = null;
    for (const [k, maxTime] of state.partitions) this.partitions.set(k, { maxTime, lastSeen: now });
  }
}
