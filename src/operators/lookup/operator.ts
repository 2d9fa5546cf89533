/**
 * The `lookup` step: enriches each record with the row a store holds for its key (a stream–table
 * join against an external table). Per input batch it takes what the cache has, asks the store
 * for the distinct other keys in chunks of `batchSize` (one query per chunk: `= ANY($1)`, `MGET`,
 * a batched HTTP call), at most `concurrency` chunks at once, each retried through the one retry
 * policy (`core/retry.ts`) and, after `retryTimeout`, dead-lettered record by record with its
 * key. Results leave in input order, or (`ordered: false`) as their chunk completes.
 *
 * As in `mapAsync`, in-flight work never spans a batch boundary: `process` returns once every
 * record of its batch is emitted, dropped or dead-lettered, so watermarks and barriers follow
 * every record before them and a checkpoint never holds a lookup in flight. Feed batches a few
 * times `batchSize × concurrency` for full use of the store.
 */
import { cancelledError, ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import { isRetryable, retrying } from '../../core/retry.ts';
import type { Emitter, Operator, StageContext } from '../../core/stage.ts';
import { ResultBuffer, Wakeup } from '../batch-results.ts';
import { type KeySelector, keyFunction } from '../shard.ts';
import { RowCache } from './cache.ts';
import type { LookupProvider, LookupRows } from './provider.ts';

/** What a record whose key the store does not have becomes. */
export type LookupMiss = 'null' | 'drop' | 'dlq';

/** Options of {@link lookup}. */
export interface LookupOptions {
  /** The store. */
  readonly provider: LookupProvider;
  /** The record's key: a field, or several fields (joined as `shard` joins them). */
  readonly key: KeySelector<Record<string, unknown>>;
  /**
   * The field that receives the row (`null` on a miss with `onMiss: null`). Omitted: the row's
   * fields are merged into the record (the row wins on a clash), and a miss leaves it as it is.
   */
  readonly into?: string | undefined;
  /** A miss (or a record without the key): `null` (default) keeps the record, `drop`, or `dlq`. */
  readonly onMiss?: LookupMiss | undefined;
  /** Most keys per request to the store. Default 500. */
  readonly batchSize?: number | undefined;
  /** Most requests in flight at once. Default 4. */
  readonly concurrency?: number | undefined;
  /** `true` (default): input order. `false`: a chunk's records leave as soon as it completes. */
  readonly ordered?: boolean | undefined;
  /** The cache; `false` for none. Default 100,000 entries, no time limit. */
  readonly cache?: LookupCacheOptions | false | undefined;
  /** How long a failing request is retried before its records are dead-lettered, ms. Default 30 s. */
  readonly retryTimeoutMs?: number | undefined;
  /** First wait after a failure, ms (doubling up to 5 s). Default 100. */
  readonly minRetryDelayMs?: number | undefined;
}

/** Bounds of the lookup cache. */
export interface LookupCacheOptions {
  /** Most entries kept. */
  readonly maxEntries?: number | undefined;
  /** Most bytes kept (estimated from each key and row). */
  readonly maxBytes?: number | undefined;
  /** Longest an entry is served, ms. Default: until evicted. */
  readonly ttlMs?: number | undefined;
  /** Cache misses too, so an absent key is not asked again until evicted. Default true. */
  readonly misses?: boolean | undefined;
}

/** The names of the step's metrics (`StageSnapshot.custom`), defined once. */
export const LOOKUP_METRICS = {
  cacheHits: 'cacheHits',
  cacheMisses: 'cacheMisses',
  cacheEntries: 'cacheEntries',
  lookupRequests: 'lookupRequests',
  lookupKeys: 'lookupKeys',
  lookupNotFound: 'lookupNotFound',
  lookupFailures: 'lookupFailures',
  lookupRetries: 'lookupRetries',
  lookupLatencyMsTotal: 'lookupLatencyMsTotal',
  lookupLatencyMsMax: 'lookupLatencyMsMax',
} as const;

const PENDING = 0;
const FOUND = 1;
const MISSING = 2;
const FAILED = 3;

/**
 * The lookup operator; see the module comment.
 *
 * @example
 * const users = lookup({
 *   provider: { describe: 'users', fetch: async (keys) => new Map(keys.map((k) => [k, { tier: 'gold' }])) },
 *   key: 'user', into: 'profile',
 * });
 * stream.via(users); // { user: 'u1' } → { user: 'u1', profile: { tier: 'gold' } }
 */
export function lookup(options: LookupOptions): Operator<Record<string, unknown>, Record<string, unknown>> {
  const provider = options.provider;
  const keyOf = keyFunction(options.key);
  const into = options.into;
  const onMiss = options.onMiss ?? 'null';
  const batchSize = Math.min(options.batchSize ?? 500, provider.maxBatch ?? Number.POSITIVE_INFINITY);
  const concurrency = options.concurrency ?? 4;
  const ordered = options.ordered ?? true;
  const retryTimeoutMs = options.retryTimeoutMs ?? 30_000;
  for (const [name, v] of [
    ['batchSize', batchSize],
    ['concurrency', concurrency],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new SluiceError(ErrorCode.CONFIG, `\`${name}\` must be a whole number ≥ 1, got ${v}`);
  }
  const cacheOptions = options.cache === undefined ? { maxEntries: 100_000 } : options.cache;
  const cacheMisses = cacheOptions !== false && cacheOptions.misses !== false;
  let cache: RowCache | undefined;
  let ctx: StageContext;
  const m = {
    hits: 0,
    misses: 0,
    requests: 0,
    keys: 0,
    notFound: 0,
    failures: 0,
    retries: 0,
    latency: 0,
    max: 0,
  };

  const keyText = (r: Record<string, unknown>): string | undefined => {
    const k = keyOf(r);
    const s =
      typeof k === 'string' ? k : k instanceof Uint8Array ? Buffer.from(k).toString('utf8') : String(k);
    // A missing field gives '' (and a composite of missing fields only separators): no key.
    return s.replaceAll('\u001f', '') === '' ? undefined : s;
  };

  /** One request to the store, through the retry policy; resolves with the rows or the final error. */
  const request = async (keys: readonly string[]): Promise<LookupRows | { failed: unknown }> => {
    const started = ctx.clock.now();
    try {
      const rows = await retrying(() => provider.fetch(keys, ctx.signal), {
        what: `looking up ${keys.length} ${keys.length === 1 ? 'key' : 'keys'} in ${provider.describe}`,
        clock: ctx.clock,
        signal: ctx.signal,
        log: ctx.log,
        logEvery: 'first',
        logFields: { stage: ctx.name },
        retryable: (err) => (provider.retryable ?? isRetryable)(err),
        timeoutMs: retryTimeoutMs,
        minDelayMs: options.minRetryDelayMs,
        setting: 'retryTimeout',
        onFailure: () => {
          m.retries++;
        },
      });
      const took = ctx.clock.now() - started;
      m.requests++;
      m.keys += keys.length;
      m.latency += took;
      if (took > m.max) m.max = took;
      return rows;
    } catch (err) {
      if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
      m.failures++;
      return { failed: err };
    }
  };

  const run = async (
    records: readonly Record<string, unknown>[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    out: Emitter<Record<string, unknown>>,
  ): Promise<void> => {
    const n = records.length;
    const state = new Uint8Array(n);
    const rows: unknown[] = new Array(n);
    const keys: (string | undefined)[] = new Array(n);
    const errors = new Map<number, unknown>();
    // Records waiting for each key not in the cache, in first-seen order.
    const waiting = new Map<string, number[]>();
    const done: number[] = []; // unordered: indices in completion order
    for (let i = 0; i < n; i++) {
      let k: string | undefined;
      try {
        k = keyText(records[i] as Record<string, unknown>);
      } catch (err) {
        state[i] = FAILED;
        errors.set(i, err);
        done.push(i);
        continue;
      }
      keys[i] = k;
      if (k === undefined) {
        state[i] = MISSING;
        done.push(i);
        continue;
      }
      const hit = cache?.get(k);
      if (hit !== undefined) {
        m.hits++;
        state[i] = hit.row === undefined ? MISSING : FOUND;
        rows[i] = hit.row;
        done.push(i);
        continue;
      }
      const w = waiting.get(k);
      if (w === undefined) {
        m.misses++;
        waiting.set(k, [i]);
      } else {
        // A second record of a key already asked for in this batch: served by the same request.
        m.hits++;
        w.push(i);
      }
    }

    const distinct = [...waiting.keys()];
    const chunks: string[][] = [];
    for (let s = 0; s < distinct.length; s += batchSize) chunks.push(distinct.slice(s, s + batchSize));
    let next = 0;
    let inFlight = 0;
    const wakeup = new Wakeup();
    let head = 0;
    const settle = (chunk: readonly string[], result: LookupRows | { failed: unknown }) => {
      inFlight--;
      for (const k of chunk) {
        const idx = waiting.get(k) as number[];
        if (result instanceof Map || !('failed' in result)) {
          const row = (result as LookupRows).get(k);
          if (row === undefined) m.notFound++;
          if (row !== undefined || cacheMisses) cache?.set(k, row);
          for (const i of idx) {
            state[i] = row === undefined ? MISSING : FOUND;
            rows[i] = row;
            done.push(i);
          }
        } else {
          for (const i of idx) {
            state[i] = FAILED;
            errors.set(i, result.failed);
            done.push(i);
          }
        }
      }
      wakeup.notify();
    };
    let failure: unknown;
    const start = (chunk: string[]) => {
      inFlight++;
      request(chunk).then(
        (r) => settle(chunk, r),
        (err) => {
          failure ??= err;
          inFlight--;
          wakeup.notify();
        },
      );
    };

    const res = new ResultBuffer<Record<string, unknown>>(meta !== undefined);
    const take = (i: number) => {
      const record = records[i] as Record<string, unknown>;
      const s = state[i];
      if (s === FAILED) {
        const err = errors.get(i);
        const key = keys[i];
        ctx.deadLetter(
          record,
          new SluiceError(
            ErrorCode.STAGE,
            key === undefined
              ? `computing the lookup key of a record: ${errorMessage(err)}`
              : `looking up key \`${key}\` in ${provider.describe}: ${errorMessage(err)}`,
            { stage: ctx.name, ...(key === undefined ? {} : { key }) },
            { cause: err },
          ),
          meta?.[i],
        );
        return;
      }
      let merged: Record<string, unknown>;
      if (s === MISSING) {
        if (onMiss === 'drop') return;
        if (onMiss === 'dlq') {
          const key = keys[i];
          ctx.deadLetter(
            record,
            new SluiceError(
              ErrorCode.RECORD,
              key === undefined
                ? `the record has no lookup key (\`onMiss: dlq\`)`
                : `no row for key \`${key}\` in ${provider.describe} (\`onMiss: dlq\`)`,
              { stage: ctx.name, ...(key === undefined ? {} : { key }) },
            ),
            meta?.[i],
          );
          return;
        }
        merged = into === undefined ? record : { ...record, [into]: null };
      } else {
        const row = rows[i];
        if (into !== undefined) merged = { ...record, [into]: row };
        else if (row !== null && typeof row === 'object' && !Array.isArray(row))
          merged = { ...record, ...(row as Record<string, unknown>) };
        else {
          ctx.deadLetter(
            record,
            new SluiceError(
              ErrorCode.RECORD,
              `the row for key \`${keys[i]}\` is not an object, so it cannot be merged into the record; set \`into: FIELD\` to keep it in a field`,
              { stage: ctx.name, key: keys[i] },
            ),
            meta?.[i],
          );
          return;
        }
      }
      res.push(merged, meta?.[i]);
    };
    const collect = () => {
      if (ordered) while (head < n && state[head] !== PENDING) take(head++);
      else while (head < done.length) take(done[head++] as number);
    };

    while (next < chunks.length || inFlight > 0) {
      while (next < chunks.length && inFlight < concurrency) start(chunks[next++] as string[]);
      collect();
      if (!ordered) await res.flush(out);
      if (inFlight > 0) await wakeup.wait(ctx.signal);
      if (failure !== undefined) throw failure;
    }
    collect();
    await res.flush(out);
  };

  return {
    async open(c) {
      ctx = c;
      if (cacheOptions !== false)
        cache = new RowCache({
          maxEntries: cacheOptions.maxEntries,
          maxBytes: cacheOptions.maxBytes,
          ttlMs: cacheOptions.ttlMs,
          clock: c.clock,
        });
      await provider.open?.(c);
    },
    process(batch, out) {
      return run(batch.records, batch.meta, out);
    },
    metrics: () => ({
      [LOOKUP_METRICS.cacheHits]: m.hits,
      [LOOKUP_METRICS.cacheMisses]: m.misses,
      [LOOKUP_METRICS.cacheEntries]: cache?.size ?? 0,
      [LOOKUP_METRICS.lookupRequests]: m.requests,
      [LOOKUP_METRICS.lookupKeys]: m.keys,
      [LOOKUP_METRICS.lookupNotFound]: m.notFound,
      [LOOKUP_METRICS.lookupFailures]: m.failures,
      [LOOKUP_METRICS.lookupRetries]: m.retries,
      [LOOKUP_METRICS.lookupLatencyMsTotal]: m.latency,
      [LOOKUP_METRICS.lookupLatencyMsMax]: m.max,
    }),
    async close() {
      await provider.close?.();
    },
  };
}
