/**
 * Ring-buffer rolling windows: the last `buckets` buckets of `width` ms of event time, each
 * bucket an accumulator of any {@link Aggregate} — "the mean over the last 60 one-second
 * buckets". Memory is fixed (one accumulator per slot) however long the stream runs.
 *
 * The range always ends at the newest bucket seen. A value older than the range when it
 * arrives is dropped, and a bucket that falls out of the range is reset lazily when its slot
 * is reused. Both leave exactly the values inside the final range, whatever the arrival
 * order, so rolling accumulators merge like any other aggregate.
 */
import { type Aggregate, SKIP } from './aggregate.ts';
import { mean } from './basic.ts';

/** The state of a rolling window: a ring of accumulators, with each slot's bucket number. */
export interface Rolling<A> {
  /** Newest bucket number seen (`floor(time / width)`), -Infinity when empty. */
  newest: number;
  /** `slots[i]` holds the accumulator of bucket `ids[i]`; a stale id means the slot is empty. */
  readonly slots: A[];
  readonly ids: number[];
}

/**
 * A rolling window over `inner`: `buckets` buckets of `width` ms each.
 *
 * @example
 * const r = new RollingWindow(mean('latency'), 1000, 60); // last minute, per second
 * r.add(Date.now(), 42);
 * r.result(); // 42
 */
export class RollingWindow<A, R> {
  readonly inner: Aggregate<A, R>;
  readonly width: number;
  readonly buckets: number;
  state: Rolling<A>;

  constructor(inner: Aggregate<A, R>, width: number, buckets: number) {
    if (!(width > 0) || !Number.isInteger(buckets) || buckets < 1)
      throw new RangeError(`a rolling window needs a bucket width > 0 and a whole number of buckets ≥ 1`);
    this.inner = inner;
    this.width = width;
    this.buckets = buckets;
    this.state = rollingCreate(buckets);
  }

  /** Adds a raw value at event `time`; throws as the inner aggregate's `prepare` does. */
  add(time: number, value: unknown): void {
    const p = this.inner.prepare(value);
    if (p !== SKIP) rollingAdd(this.inner, this.width, this.buckets, this.state, p, time);
  }

  /** The inner aggregate's result over the buckets in range. */
  result(): R {
    return this.inner.result(rollingFold(this.inner, this.buckets, this.state));
  }
}

/** An empty ring of `n` slots. */
export function rollingCreate<A>(n: number): Rolling<A> {
  return {
    newest: Number.NEGATIVE_INFINITY,
    slots: new Array<A>(n),
    ids: new Array<number>(n).fill(Number.NaN),
  };
}

/** Adds a prepared value at `time` into its bucket (dropped when older than the range). */
export function rollingAdd<A>(
  inner: Aggregate<A, unknown>,
  width: number,
  n: number,
  r: Rolling<A>,
  value: unknown,
  time: number,
): void {
  const slot = slotOf(inner, n, r, Math.floor(time / width));
  if (slot >= 0) r.slots[slot] = inner.add(r.slots[slot] as A, value, time);
}

/**
 * The slot of bucket `b`, made its bucket's (with a fresh accumulator) when it held an older
 * one; -1 when `b` is older than the range. Moves the range forward to `b` when it is newer.
 */
function slotOf<A>(inner: Aggregate<A, unknown>, n: number, r: Rolling<A>, b: number): number {
  if (b > r.newest) r.newest = b;
  else if (b <= r.newest - n) return -1;
  const slot = ((b % n) + n) % n;
  if (r.ids[slot] !== b) {
    r.ids[slot] = b;
    r.slots[slot] = inner.create();
  }
  return slot;
}

/** Merges the buckets of the accumulator over the range into one inner accumulator. */
export function rollingFold<A>(inner: Aggregate<A, unknown>, n: number, r: Rolling<A>): A {
  let acc = inner.create();
  for (let i = 0; i < n; i++) {
    const id = r.ids[i] as number;
    if (id > r.newest - n) acc = inner.merge(acc, r.slots[i] as A);
  }
  return acc;
}

/**
 * `rollingMean(field, width, buckets)`: the mean over the last `buckets` buckets of `width` ms
 * ending at the newest event (e.g. `rollingMean(latency, 1s, 60)`: the last minute's mean).
 */
export function rollingMean(
  field: string,
  width: number,
  buckets: number,
): Aggregate<Rolling<unknown>, number | null> {
  const inner = mean(field) as unknown as Aggregate<unknown, number | null>;
  if (!(width > 0) || !Number.isInteger(buckets) || buckets < 1)
    throw new RangeError(`rollingMean needs a bucket width > 0 and a whole number of buckets ≥ 1`);
  return {
    fn: 'rollingMean',
    field,
    bytes: 64 + 56 * buckets,
    create: () => rollingCreate(buckets),
    prepare: inner.prepare,
    add(acc, v, time) {
      rollingAdd(inner, width, buckets, acc, v, time);
      return acc;
    },
    merge(a, b) {
      for (let i = 0; i < buckets; i++) {
        const id = b.ids[i] as number;
        if (id <= b.newest - buckets) continue;
        const slot = slotOf(inner, buckets, a, id);
        if (slot >= 0) a.slots[slot] = inner.merge(a.slots[slot], b.slots[i]);
      }
      // `a` may still hold buckets that b's newer range pushed out; they are skipped by id.
      if (b.newest > a.newest) a.newest = b.newest;
      return a;
    },
    result: (acc) => inner.result(rollingFold(inner, buckets, acc)),
    save: (acc) => ({
      newest: acc.newest,
      ids: acc.ids.slice(),
      slots: acc.slots.map((s) => (s === undefined ? null : inner.save(s))),
    }),
    load(state) {
      const s = state as { newest: number; ids: number[]; slots: unknown[] };
      return {
        newest: s.newest,
        ids: s.ids.slice(),
        slots: s.slots.map((x) => (x === null ? undefined : inner.load(x))),
      };
    },
  };
}
