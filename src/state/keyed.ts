/**
 * Keyed state: values an operator keeps per key — {@link ValueState}, {@link MapState},
 * {@link ListState}, {@link AggregatingState} — scoped to the *current key*, with optional
 * time-to-live. An operator owns one {@link KeyedStateStore}; before touching state for a
 * record it calls `setCurrentKey(key)`, and every state handle then reads and writes that
 * key's slot (Flink's keyed state model).
 *
 * Entries are kept per key group (`keyGroupOf(key)`), so a snapshot can be split by key group
 * and a shard restores only the groups it owns (`restore(snapshot, range)`) — rescaling moves
 * whole groups and never rehashes keys.
 *
 * State lives on the heap between checkpoints: every call is synchronous and allocation-free
 * on a hit, as the per-record loop needs. `snapshot()` returns a structured-cloneable value
 * (Maps, bigints) that the runtime serialises at the barrier.
 */
import type { Clock } from '../core/clock.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { DEFAULT_MAX_KEY_GROUPS, type Key, keyGroupOf } from '../core/keygroups.ts';

/** Time-to-live of a state's entries. */
export interface StateTtl {
  /** Milliseconds (on the store's clock) an entry lives after its last write. */
  readonly ttlMs: number;
  /** Also renew the entry when it is read. Default false (only writes renew it). */
  readonly renewOnRead?: boolean;
}

/** Options of a state handle. */
export interface StateOptions {
  /** Entries expire this long after their last write (or read); default: never. */
  readonly ttl?: StateTtl;
}

/** One value per key. */
export interface ValueState<T> {
  /** The current key's value, or undefined (never set, cleared or expired). */
  get(): T | undefined;
  /** Sets the current key's value. */
  set(value: T): void;
  /** Removes the current key's value. */
  clear(): void;
}

/** A map per key. */
export interface MapState<K, V> {
  get(field: K): V | undefined;
  set(field: K, value: V): void;
  has(field: K): boolean;
  delete(field: K): void;
  /** The current key's entries (a live view: do not change the state while iterating). */
  entries(): IterableIterator<[K, V]>;
  /** Number of fields of the current key. */
  size(): number;
  /** Removes every field of the current key. */
  clear(): void;
}

/** A list per key. */
export interface ListState<T> {
  /** Appends to the current key's list. */
  add(value: T): void;
  /** The current key's list (empty when none); do not change the returned array. */
  get(): readonly T[];
  /** Replaces the current key's list. */
  update(values: readonly T[]): void;
  clear(): void;
}

/**
 * How an {@link AggregatingState} folds values: a mergeable accumulator (count, sum, a sketch…).
 * The accumulator must be structured-cloneable so it can be snapshotted.
 */
export interface Aggregator<In, Acc, Out> {
  /** A fresh accumulator for a key seen for the first time. */
  create(): Acc;
  /** Folds `value` into `acc` and returns the accumulator (it may be `acc` itself, changed). */
  add(acc: Acc, value: In): Acc;
  /** The result for `acc` (called on `get`; must not change `acc`). */
  result(acc: Acc): Out;
}

/** A value folded per key with an {@link Aggregator}. */
export interface AggregatingState<In, Out> {
  /** Folds `value` into the current key's accumulator. */
  add(value: In): void;
  /** The current key's result, or undefined when nothing was added. */
  get(): Out | undefined;
  clear(): void;
}

/** A stored entry: the value plus its expiry time (`Infinity` without TTL). */
interface Entry {
  v: unknown;
  e: number;
}

/** What {@link KeyedStateStore.snapshot} returns (structured-cloneable). */
export interface KeyedStateSnapshot {
  readonly version: 1;
  readonly maxKeyGroups: number;
  /** state name → key group → key → entry. */
  readonly states: Map<string, Map<number, Map<unknown, Entry>>>;
}

/** Options of {@link KeyedStateStore}. */
export interface KeyedStateStoreOptions {
  /** Clock for TTL; default `Date.now`. Inject a `ManualClock` in tests. */
  readonly clock?: Pick<Clock, 'now'>;
  /** Number of key groups (fixed for the life of the state). Default 256. */
  readonly maxKeyGroups?: number;
}

/**
 * Uint8Array keys are compared by content: they are stored as a tagged latin1 string (Map keys
 * compare byte arrays by identity). Strings, numbers and bigints are stored as they are.
 */
function mapKey(key: Key): unknown {
  if (key instanceof Uint8Array)
    return `\u0000b${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
  return key;
}

/**
 * The keyed state of one operator: creates state handles and scopes them to the current key.
 *
 * Contract: call `setCurrentKey` before using any handle for a record (a handle used with no
 * current key throws a `SLUICE_STAGE` error). Handles are created once (in `open`), by name;
 * two handles with one name share entries. Expired entries read as absent and are dropped when
 * touched, and by `snapshot()`, so they are never restored.
 *
 * @example
 * const store = new KeyedStateStore();
 * const count = store.valueState<number>('count');
 * store.setCurrentKey('user-1');
 * count.set((count.get() ?? 0) + 1);
 * const saved = store.snapshot();
 * const again = new KeyedStateStore();
 * again.restore(saved);
 */
export class KeyedStateStore {
  private readonly clock: Pick<Clock, 'now'>;
  readonly maxKeyGroups: number;
  private states = new Map<string, Map<number, Map<unknown, Entry>>>();
  private currentKey: unknown = undefined;
  private currentGroup = -1;

  constructor(options: KeyedStateStoreOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.maxKeyGroups = options.maxKeyGroups ?? DEFAULT_MAX_KEY_GROUPS;
  }

  /** Scopes every handle to `key` (and its key group) until the next call. */
  setCurrentKey(key: Key): void {
    this.currentKey = mapKey(key);
    this.currentGroup = keyGroupOf(key, this.maxKeyGroups);
  }

  /** The key group of the current key (-1 before the first `setCurrentKey`). */
  get currentKeyGroup(): number {
    return this.currentGroup;
  }

  /** A value per key. */
  valueState<T>(name: string, options: StateOptions = {}): ValueState<T> {
    const slot = this.slot(name, options);
    return {
      get: () => slot.get() as T | undefined,
      set: (v) => slot.set(v),
      clear: () => slot.clear(),
    };
  }

  /** A map per key (stored as a `Map`, which snapshots as it is). */
  mapState<K, V>(name: string, options: StateOptions = {}): MapState<K, V> {
    const slot = this.slot(name, options);
    const map = (create: boolean): Map<K, V> | undefined => {
      let m = slot.get() as Map<K, V> | undefined;
      if (m === undefined && create) {
        m = new Map();
        slot.set(m);
      } else if (m !== undefined && create) slot.touch();
      return m;
    };
    return {
      get: (f) => map(false)?.get(f),
      set: (f, v) => {
        (map(true) as Map<K, V>).set(f, v);
      },
      has: (f) => map(false)?.has(f) ?? false,
      delete: (f) => {
        const m = map(false);
        if (m === undefined) return;
        m.delete(f);
        if (m.size === 0) slot.clear();
      },
      entries: () => (map(false) ?? new Map<K, V>()).entries(),
      size: () => map(false)?.size ?? 0,
      clear: () => slot.clear(),
    };
  }

  /** A list per key. */
  listState<T>(name: string, options: StateOptions = {}): ListState<T> {
    const slot = this.slot(name, options);
    return {
      add: (v) => {
        const l = slot.get() as T[] | undefined;
        if (l === undefined) slot.set([v]);
        else {
          l.push(v);
          slot.touch();
        }
      },
      get: () => (slot.get() as T[] | undefined) ?? [],
      update: (vs) => (vs.length === 0 ? slot.clear() : slot.set([...vs])),
      clear: () => slot.clear(),
    };
  }

  /** A value folded per key with `aggregator`; the accumulator is what is stored and snapshotted. */
  aggregatingState<In, Acc, Out>(
    name: string,
    aggregator: Aggregator<In, Acc, Out>,
    options: StateOptions = {},
  ): AggregatingState<In, Out> {
    const slot = this.slot(name, options);
    return {
      add: (v) => {
        const acc = slot.get() as Acc | undefined;
        slot.set(aggregator.add(acc === undefined ? aggregator.create() : acc, v));
      },
      get: () => {
        const acc = slot.get() as Acc | undefined;
        return acc === undefined ? undefined : aggregator.result(acc);
      },
      clear: () => slot.clear(),
    };
  }

  /**
   * Every live entry of state `name` as `[key, value]`, over every key, by key group (for an
   * operator that emits everything at the end). Uint8Array keys come back as their tagged string.
   */
  *entries(name: string): IterableIterator<[unknown, unknown]> {
    const now = this.clock.now();
    for (const group of this.states.get(name)?.values() ?? []) {
      for (const [k, e] of group) if (e.e > now) yield [k, e.v];
    }
  }

  /** Number of live (unexpired) entries of state `name`, over every key. */
  count(name: string): number {
    const now = this.clock.now();
    let n = 0;
    for (const group of this.states.get(name)?.values() ?? [])
      for (const e of group.values()) if (e.e > now) n++;
    return n;
  }

  /**
   * Every live entry as a structured-cloneable value, expired entries dropped. The value shares
   * structure with the live state: serialise it before the next change (the runtime does, at
   * the barrier).
   */
  snapshot(): KeyedStateSnapshot {
    const now = this.clock.now();
    for (const groups of this.states.values()) {
      for (const [kg, group] of groups) {
        for (const [k, e] of group) if (e.e <= now) group.delete(k);
        if (group.size === 0) groups.delete(kg);
      }
    }
    return { version: 1, maxKeyGroups: this.maxKeyGroups, states: this.states };
  }

  /**
   * Replaces the state with `snapshot`'s, keeping only key groups in `[range.start, range.end)`
   * when a range is given (a shard restores the groups it owns). Throws a `SLUICE_STAGE` error
   * when the snapshot is not one of ours or was taken with another number of key groups.
   */
  restore(snapshot: unknown, range?: { start: number; end: number }): void {
    const s = snapshot as Partial<KeyedStateSnapshot> | undefined;
    if (s === undefined || s === null || s.version !== 1 || !(s.states instanceof Map)) {
      throw new SluiceError(
        ErrorCode.STAGE,
        'cannot restore keyed state: the snapshot is not a keyed-state snapshot (version 1)',
      );
    }
    if (s.maxKeyGroups !== this.maxKeyGroups) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `cannot restore keyed state: it was taken with ${s.maxKeyGroups} key groups, this store has ${this.maxKeyGroups}; keep \`maxKeyGroups\` fixed for the life of a pipeline's state`,
      );
    }
    const states = new Map<string, Map<number, Map<unknown, Entry>>>();
    for (const [name, groups] of s.states) {
      const kept = new Map<number, Map<unknown, Entry>>();
      for (const [kg, group] of groups)
        if (range === undefined || (kg >= range.start && kg < range.end)) kept.set(kg, group);
      states.set(name, kept);
    }
    this.states = states;
  }

  private slot(name: string, options: StateOptions) {
    const ttl = options.ttl?.ttlMs;
    const renew = options.ttl?.renewOnRead ?? false;
    if (ttl !== undefined && !(ttl > 0)) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `state \`${name}\`: ttl must be a positive number of milliseconds, got ${ttl}`,
      );
    }
    const group = (create: boolean): Map<unknown, Entry> | undefined => {
      if (this.currentGroup < 0) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `state \`${name}\` used with no current key; call \`setCurrentKey(key)\` first`,
        );
      }
      let groups = this.states.get(name);
      if (groups === undefined) {
        groups = new Map();
        this.states.set(name, groups);
      }
      let g = groups.get(this.currentGroup);
      if (g === undefined && create) {
        g = new Map();
        groups.set(this.currentGroup, g);
      }
      return g;
    };
    const expiry = () => (ttl === undefined ? Number.POSITIVE_INFINITY : this.clock.now() + ttl);
    const live = (): Entry | undefined => {
      const g = group(false);
      const e = g?.get(this.currentKey);
      if (e === undefined) return undefined;
      if (ttl !== undefined && e.e <= this.clock.now()) {
        g?.delete(this.currentKey);
        return undefined;
      }
      return e;
    };
    return {
      get: (): unknown => {
        const e = live();
        if (e !== undefined && renew) e.e = expiry();
        return e?.v;
      },
      set: (v: unknown): void => {
        const g = group(true) as Map<unknown, Entry>;
        const e = g.get(this.currentKey);
        if (e !== undefined) {
          e.v = v;
          e.e = expiry();
        } else g.set(this.currentKey, { v, e: expiry() });
      },
      /** Renews the TTL after an in-place change. */
      touch: (): void => {
        if (ttl === undefined) return;
        const e = live();
        if (e !== undefined) e.e = expiry();
      },
      clear: (): void => {
        group(false)?.delete(this.currentKey);
      },
    };
  }
}
