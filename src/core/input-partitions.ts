/**
 * Which partitions each partitioned source of a run owns now, for the watermark generators
 * downstream: a partition that is assigned but whose records a generator has not seen yet must
 * hold that generator's watermark back (Flink registers a split's watermark output when the
 * split is added, not when its first record comes). Without this, the first fetch of one
 * partition (minutes of event time in a backlog) moved the watermark past the other partitions'
 * first records, which all arrived late.
 *
 * Shared through `StageContext.runScoped(INPUT_PARTITIONS, () => new InputPartitions())`. Contract:
 * - A source that emits records of several partitions calls {@link InputPartitions.assign} with
 *   every partition it owns after each assignment and rebalance (keys as {@link inputPartitionKey},
 *   the key a watermark generator files a record's meta under), and {@link InputPartitions.caughtUp}
 *   for an assigned partition it has read to its end without a record (nothing to wait for).
 * - A generator holds its watermark while a partition is {@link InputPartitions.pending} for it:
 *   assigned, not caught up, not seen by that generator, and assigned less than its idle timeout
 *   ago. A partition the source gave up (revoked) stops counting at once
 *   ({@link InputPartitions.revoked}), even though the generator saw it: its new owner reads it.
 * - Only the ownership is shared out of band; a partition stops holding when *its records* reach
 *   the generator (in band), so no race lets the watermark pass records still in the channels.
 */

/** The run-scoped key of the one {@link InputPartitions} of a run. */
export const INPUT_PARTITIONS: unique symbol = Symbol('sluice.inputPartitions');

/**
 * The key a watermark generator files records of partition `partition` of source stage `source`
 * under: `source#partition` (records without a partition: `source`).
 *
 * @example
 * inputPartitionKey('input', 3); // 'input#3'
 */
export function inputPartitionKey(source: string, partition: number | undefined): string {
  return partition === undefined ? source : `${source}#${String(partition)}`;
}

interface Owned {
  /** Processing time of its assignment (the idle timeout counts from it). */
  readonly since: number;
  /** Read to its end without a record: nothing to wait for. */
  caughtUp: boolean;
}

/** Partitions owned by the partitioned sources of one run; see the module comment. */
export class InputPartitions {
  /** Every key ever assigned: true while assigned now. */
  private readonly known = new Map<string, boolean>();
  /** Owned partitions by source. */
  private readonly bySource = new Map<string, Map<string, Owned>>();

  /** Source `source` owns `partitions` (keys as {@link inputPartitionKey}) from processing time `now` on. */
  assign(source: string, partitions: Iterable<string>, now: number): void {
    const before = this.bySource.get(source) ?? new Map<string, Owned>();
    const after = new Map<string, Owned>();
    for (const key of partitions) {
      after.set(key, before.get(key) ?? { since: now, caughtUp: false });
      this.known.set(key, true);
    }
    for (const key of before.keys()) if (!after.has(key)) this.known.set(key, false);
    this.bySource.set(source, after);
  }

  /** Partition `key`, assigned, was read to its end without a record: it does not hold watermarks. */
  caughtUp(source: string, key: string): void {
    const o = this.bySource.get(source)?.get(key);
    if (o !== undefined) o.caughtUp = true;
  }

  /** True when `key` was assigned to a source of the run and is not any more. */
  revoked(key: string): boolean {
    return this.known.get(key) === false;
  }

  /**
   * The earliest assignment time of a partition that holds back a generator which has seen the
   * partitions `seen` and whose idle timeout is `idleTimeout` (see the module comment), or
   * undefined when none does at processing time `now`. With `sources`, only partitions of those
   * source stages count (a join's side is fed by some of the run's sources, not all).
   */
  pending(
    seen: { has(key: string): boolean },
    now: number,
    idleTimeout: number,
    sources?: { has(source: string): boolean },
  ): number | undefined {
    let first: number | undefined;
    for (const [source, owned] of this.bySource) {
      if (sources !== undefined && !sources.has(source)) continue;
      for (const [key, o] of owned) {
        if (o.caughtUp || seen.has(key) || now - o.since >= idleTimeout) continue;
        if (first === undefined || o.since < first) first = o.since;
      }
    }
    return first;
  }
}
