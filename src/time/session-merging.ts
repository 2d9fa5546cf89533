/**
 * Session merging (after Flink's `MergingWindowSet`). A {@link MergingSessions} holds the live
 * sessions of every key — half-open ranges `[start, end)`, no two of one key overlapping — and
 * nothing else: no time, no aggregates, no firing. For an event whose session would be
 * `[ts, ts + gap)`, the caller asks {@link MergingSessions.overlapping} for the sessions of its key
 * that range overlaps. None: it judges the event late or {@link MergingSessions.insert}s a new
 * session. Some: {@link MergingSessions.merge} folds them into the oldest, the *target*, whose
 * object (and so its state) survives — an event that extends one session moves no state. Before
 * anything changes, `merge` calls the caller's {@link MergeFunction} once, so it can fold the
 * others' state into the target's and retract results already shown; then it removes the others
 * (marked not `alive`) and gives the target the union of all the ranges. Once the watermark has
 * passed a session, the caller {@link MergingSessions.retire}s it. Sessions never move between
 * keys; every method is O(sessions of that key).
 */

/** A session as {@link MergingSessions} sees it; the caller's objects extend it with their state. */
export interface Session {
  /** Its key (never changes). */
  ck: string;
  start: number;
  end: number;
  /** False once merged away or retired. */
  alive: boolean;
}

/**
 * Called by {@link MergingSessions.merge} before it changes anything: `hits[0]` (the target)
 * absorbs `hits[1…]` (oldest first) and then spans `[start, end)`.
 */
export type MergeFunction<S> = (hits: readonly S[], start: number, end: number) => void;

/** The live sessions of every key; see the module comment for the contract. */
export class MergingSessions<S extends Session> {
  private readonly byKey = new Map<string, S[]>();

  /** The sessions of key `ck` that `[start, end)` overlaps, oldest first; undefined when none. */
  overlapping(ck: string, start: number, end: number): S[] | undefined {
    const list = this.byKey.get(ck);
    if (list === undefined) return undefined;
    let hits: S[] | undefined;
    for (const s of list) {
      if (s.start < end && start < s.end) {
        if (hits === undefined) hits = [];
        hits.push(s);
      }
    }
    if (hits !== undefined && hits.length > 1) hits.sort((x, y) => x.start - y.start);
    return hits;
  }

  /** Adds `s`, a new session that overlaps none of its key's (see {@link overlapping}). */
  insert(s: S): void {
    const list = this.byKey.get(s.ck);
    if (list === undefined) this.byKey.set(s.ck, [s]);
    else list.push(s);
  }

  /**
   * Merges `hits` (from {@link overlapping}, non-empty) and `[start, end)` into `hits[0]`, calling
   * `fn` first. Returns true when the target's end moved or it absorbed another session (its fire
   * and purge times changed).
   */
  merge(hits: readonly S[], start: number, end: number, fn: MergeFunction<S>): boolean {
    for (const s of hits) {
      if (s.start < start) start = s.start;
      if (s.end > end) end = s.end;
    }
    fn(hits, start, end);
    const target = hits[0] as S;
    if (hits.length > 1) {
      const list = this.byKey.get(target.ck) as S[];
      for (let k = 1; k < hits.length; k++) {
        const s = hits[k] as S;
        s.alive = false;
        list.splice(list.indexOf(s), 1);
      }
    }
    const grew = end !== target.end || hits.length > 1;
    target.start = start;
    target.end = end;
    return grew;
  }

  /** Removes `s` (the watermark passed it); marks it not alive. */
  retire(s: S): void {
    s.alive = false;
    const list = this.byKey.get(s.ck) as S[];
    list.splice(list.indexOf(s), 1);
    if (list.length === 0) this.byKey.delete(s.ck);
  }

  /** Every key's sessions (in insertion order); read them, do not change them. */
  lists(): IterableIterator<readonly S[]> {
    return this.byKey.values();
  }

  /** Removes every session. */
  clear(): void {
    this.byKey.clear();
  }
}
