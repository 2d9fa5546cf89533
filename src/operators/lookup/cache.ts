/**
 * The `lookup` step's cache of rows by key: least recently used entries go first once the cache
 * holds `maxEntries` entries or `maxBytes` bytes (estimated), and an entry older than `ttl` is
 * never served. Built on `lru-cache` (isaacs/node-lru-cache, the one most Node projects use),
 * with time read from the run's clock so that tests move it by hand.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../core/clock.ts';

/** Bounds of a {@link RowCache}: at least one of `maxEntries` and `maxBytes`. */
export interface RowCacheOptions {
  /** Most entries kept. */
  readonly maxEntries?: number | undefined;
  /** Most bytes kept, as estimated by {@link approximateBytes} of key and row. */
  readonly maxBytes?: number | undefined;
  /** Longest an entry is served after it was fetched, ms. Default: no limit. */
  readonly ttlMs?: number | undefined;
  /** Time for `ttlMs`. */
  readonly clock: Clock;
}

/** A cached answer: the row, or `undefined` for a key the store does not have. */
interface Entry {
  readonly row: unknown;
}

/** Rows by key, bounded; see the module comment. */
export class RowCache {
  readonly #lru: LRUCache<string, Entry>;

  constructor(options: RowCacheOptions) {
    const { maxEntries, maxBytes, ttlMs, clock } = options;
    if (maxEntries === undefined && maxBytes === undefined)
      throw new RangeError('a row cache needs `maxEntries` or `maxBytes`');
    // The bounds are checked above; the library's option types want them as literal unions.
    this.#lru = new LRUCache<string, Entry>({
      ttlAutopurge: false,
      ...(maxEntries === undefined ? {} : { max: maxEntries }),
      ...(maxBytes === undefined
        ? {}
        : {
            maxSize: maxBytes,
            sizeCalculation: (e: Entry, k: string) => approximateBytes(k) + approximateBytes(e.row),
          }),
      // lru-cache takes a start time of 0 for "no TTL"; a test clock starts at 0, hence the + 1.
      ...(ttlMs === undefined ? {} : { ttl: ttlMs, ttlResolution: 0, perf: { now: () => clock.now() + 1 } }),
    } as LRUCache.Options<string, Entry, unknown>);
  }

  /** The cached answer for `key` (`{ row: undefined }`: a known miss), or undefined when not cached. */
  get(key: string): Entry | undefined {
    return this.#lru.get(key);
  }

  /** Caches `row` (undefined: the store has no row) for `key`. An entry larger than `maxBytes` is not kept. */
  set(key: string, row: unknown): void {
    this.#lru.set(key, { row });
  }

  /** Entries held now. */
  get size(): number {
    return this.#lru.size;
  }

  /** Estimated bytes held now (0 without `maxBytes`). */
  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}

/**
 * A rough size of a value in memory, bytes: strings at two bytes a character, numbers 8, objects
 * and arrays their parts plus a small overhead each. Cheap and stable, not exact: it bounds a
 * cache by what its rows hold, not by V8's layout.
 *
 * @example
 * approximateBytes({ id: 'u1', tier: 'gold' }); // 76: 16, plus 4 + 20 for `id`, plus 8 + 24 for `tier`
 */
export function approximateBytes(value: unknown, depth = 0): number {
  if (typeof value === 'string') return 16 + 2 * value.length;
  if (value === null || typeof value !== 'object') return 8;
  if (depth > 8) return 16;
  let n = 16;
  if (Array.isArray(value)) {
    for (const v of value) n += approximateBytes(v, depth + 1);
    return n;
  }
  if (value instanceof Uint8Array) return n + value.byteLength;
  for (const [k, v] of Object.entries(value)) n += 2 * k.length + approximateBytes(v, depth + 1);
  return n;
}
