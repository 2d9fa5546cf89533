/**
 * Idempotency by id: {@link dedupe} lets the first record of each id through and drops the later
 * ones, remembering ids within a horizon — a count (`maxIds`), event time (`time` + `horizon`) or
 * processing time (`ttl`) — in state that is checkpointed, so a record retried upstream, or read
 * again after a restart, passes once.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Key } from '../core/keygroups.ts';
import { batchOf, type RecordMeta } from '../core/message.ts';
import type { Operator, StageContext } from '../core/stage.ts';
import { type KeySelector, keyFunction } from './shard.ts';

/** Options of {@link dedupe}. Give at least one horizon: `maxIds`, `horizon` (with `time`) or `ttl`. */
export interface DedupeOptions<T> {
  /** The record's id: a field, several fields (one composite id) or a function. */
  readonly key: KeySelector<T>;
  /** Remember at most this many ids (the most recent ones). */
  readonly maxIds?: number;
  /**
   * The event time of a record, for `horizon`: a field holding epoch milliseconds or an ISO-8601
   * string, or a function returning epoch milliseconds.
   */
  readonly time?: string | ((record: T) => number);
  /**
   * With `time` (ms): forget an id once a record `horizon` newer has been seen. A record older
   * than the newest seen minus `horizon` cannot be told from a forgotten id: it is dead-lettered.
   */
  readonly horizon?: number;
  /** Without `time` (ms, on the run's clock): forget an id this long after it was first seen. */
  readonly ttl?: number;
}

/** What {@link dedupe}'s `snapshot` returns. */
interface DedupeSnapshot {
  readonly version: 1;
  /** id → event time (with `time`) or clock time first seen; in insertion order. */
  readonly seen: Map<string, number>;
  /** The newest event time seen (with `time`). */
  readonly newest: number;
}

function idText(k: Key): string {
  if (typeof k === 'string') return k;
  if (k instanceof Uint8Array) return Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');
  return String(k);
}

function timeFunction<T>(time: string | ((record: T) => number)): (record: T) => number {
  if (typeof time === 'function') return time;
  return (r) => {
    const v = (r as Record<string, unknown>)[time];
    const t =
      typeof v === 'number'
        ? v
        : typeof v === 'string'
          ? Date.parse(v)
          : v instanceof Date
            ? v.getTime()
            : NaN;
    if (!Number.isFinite(t))
      throw new SluiceError(
        ErrorCode.RECORD,
        `dedupe: field \`${time}\` is not a time (epoch ms or ISO-8601): ${JSON.stringify(v) ?? String(v)}`,
        { field: time },
      );
    return t;
  };
}

/**
 * Drops every record whose id was seen within the horizon; the first one passes unchanged, with
 * its meta. A record whose id or time cannot be read is dead-lettered.
 *
 * @example
 * stream.via(dedupe({ key: 'id', time: 'ts', horizon: 3_600_000 })); // a retry within an hour passes once
 */
export function dedupe<T>(options: DedupeOptions<T>): Operator<T, T> {
  const { maxIds, horizon, ttl } = options;
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0))
      throw new SluiceError(ErrorCode.CONFIG, `dedupe: \`${name}\` must be a positive number, got ${v}`);
  };
  positive('maxIds', maxIds);
  positive('horizon', horizon);
  positive('ttl', ttl);
  if ((options.time === undefined) !== (horizon === undefined))
    throw new SluiceError(ErrorCode.CONFIG, 'dedupe: `time` and `horizon` go together (event-time horizon)');
  if (options.time !== undefined && ttl !== undefined)
    throw new SluiceError(ErrorCode.CONFIG, 'dedupe: `ttl` is processing time; with `time` use `horizon`');
  if (maxIds === undefined && horizon === undefined && ttl === undefined)
    throw new SluiceError(
      ErrorCode.CONFIG,
      'dedupe: give a horizon — `maxIds`, `time` + `horizon` or `ttl` — so the ids kept stay bounded',
    );
  const idOf = keyFunction(options.key);
  const timeOf = options.time === undefined ? undefined : timeFunction(options.time);
  let seen = new Map<string, number>();
  let newest = Number.NEGATIVE_INFINITY;
  let dropped = 0;
  let ctx: StageContext;

  /** Forgets the oldest ids past the horizons (the map is in insertion order). */
  const evict = (now: number) => {
    if (maxIds !== undefined) {
      for (const k of seen.keys()) {
        if (seen.size <= maxIds) break;
        seen.delete(k);
      }
    }
    const before = horizon !== undefined ? newest - horizon : ttl !== undefined ? now - ttl : undefined;
    if (before === undefined) return;
    // An out-of-order entry behind a newer one stays until that one goes: kept longer, never shorter.
    for (const [k, t] of seen) {
      if (t > before) break;
      seen.delete(k);
    }
  };

  return {
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      const { records, meta } = batch;
      const keep: T[] = [];
      const keepMeta: (RecordMeta | undefined)[] | undefined = meta === undefined ? undefined : [];
      const now = ctx.clock.now();
      for (let i = 0; i < records.length; i++) {
        const r = records[i] as T;
        let id: string;
        let t: number;
        try {
          id = idText(idOf(r));
          t = timeOf === undefined ? now : timeOf(r);
        } catch (err) {
          ctx.deadLetter(r, err, meta?.[i]);
          continue;
        }
        if (horizon !== undefined && t <= newest - horizon) {
          ctx.deadLetter(
            r,
            new SluiceError(
              ErrorCode.RECORD,
              `dedupe: the record (id \`${id}\`) is older than \`horizon\` behind the newest seen (${new Date(newest).toISOString()}), so it cannot be told from a forgotten id; raise \`horizon\``,
            ),
            meta?.[i],
          );
          continue;
        }
        if (timeOf !== undefined && t > newest) newest = t;
        evict(now);
        const prior = seen.get(id);
        if (prior !== undefined && (ttl === undefined || prior > now - ttl)) {
          dropped++;
          continue;
        }
        if (prior !== undefined) seen.delete(id); // expired: seen again now, at the end of the order
        seen.set(id, t);
        if (maxIds !== undefined && seen.size > maxIds) evict(now);
        keep.push(r);
        keepMeta?.push(meta?.[i]);
      }
      return out.emit(batchOf(keep, keepMeta));
    },
    snapshot(): DedupeSnapshot {
      return { version: 1, seen, newest };
    },
    restore(state) {
      const s = state as Partial<DedupeSnapshot> | undefined;
      if (s?.version !== 1 || !(s.seen instanceof Map) || typeof s.newest !== 'number')
        throw new SluiceError(
          ErrorCode.STAGE,
          'cannot restore dedupe: the snapshot is not a dedupe snapshot (version 1)',
        );
      seen = s.seen;
      newest = s.newest;
    },
    metrics: () => ({ duplicates: dropped, ids: seen.size }),
  };
}
