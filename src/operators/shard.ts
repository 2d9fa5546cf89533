/**
 * Keyed routing: {@link shard} sends each record to port `shard-<i>` of the shard that owns
 * its key's key group, and {@link keyBy} stamps each record's key into its meta.
 */

import { ErrorCode, SluiceError } from '../core/errors.ts';
import { DEFAULT_MAX_KEY_GROUPS, hashKey, type Key, keyGroupRange } from '../core/keygroups.ts';
import { batchOf, type RecordMeta } from '../core/message.ts';
import type { Operator, StageContext } from '../core/stage.ts';
import { PortBatches } from './route.ts';

/**
 * How to find a record's key: a field name, several field names (a composite key), or a
 * function. A missing field counts as the empty string, so records lacking it share one key.
 */
export type KeySelector<T> = string | readonly string[] | ((record: T) => Key);

// Separates the parts of a composite key; a unit separator never appears in normal text,
// so `['a b', 'c']` and `['a', 'b c']` do not collide.
const SEP = '\u001f';

function part(v: unknown): string {
  return v === undefined || v === null ? '' : typeof v === 'string' ? v : String(v);
}

/**
 * Compiles a {@link KeySelector} into a function returning the record's key. Field access is
 * by own property of a plain object record.
 *
 * @example
 * keyFunction<{ a: string; b: number }>(['a', 'b'])({ a: 'x', b: 1 }); // 'x\u001f1'
 */
export function keyFunction<T>(key: KeySelector<T>): (record: T) => Key {
  if (typeof key === 'function') return key;
  if (typeof key === 'string') {
    return (r) => {
      const v = (r as Record<string, unknown>)[key];
      return v instanceof Uint8Array ? v : part(v);
    };
  }
  const fields = [...(key as readonly string[])];
  if (fields.length === 0) throw new SluiceError(ErrorCode.CONFIG, 'a key needs at least one field');
  if (fields.length === 1) return keyFunction<T>(fields[0] as string);
  return (r) => {
    const rec = r as Record<string, unknown>;
    let s = part(rec[fields[0] as string]);
    for (let k = 1; k < fields.length; k++) s += SEP + part(rec[fields[k] as string]);
    return s;
  };
}

/** Options of {@link shard}. */
export interface ShardOptions<T> {
  /** The record's key: a field, several fields, or a function. */
  readonly key: KeySelector<T>;
  /** Number of shards, from 1 to `maxKeyGroups`. */
  readonly shards: number;
  /**
   * Key groups the key space is cut into (default 256): the most shards the pipeline's state
   * can ever be split into. Keep it fixed for the life of the state.
   */
  readonly maxKeyGroups?: number;
}

/** The port name of shard `i`: `shard-<i>`. */
export function shardPort(i: number): string {
  return `shard-${i}`;
}

/**
 * Routes each record to port `shard-<i>`, where shard `i` owns the key group of the record's
 * key (contiguous key-group ranges, as in Flink). Records with the same key always reach the
 * same shard, in order; changing `shards` moves whole key groups. A key function that throws
 * dead-letters its record. Signals go to every shard. Use {@link Stream.shard} to build the
 * per-shard segments and merge them back.
 *
 * @example
 * const op = shard({ key: 'userId', shards: 4 }); // emits on shard-0 … shard-3
 */
export function shard<T>(options: ShardOptions<T>): Operator<T, T> {
  const max = options.maxKeyGroups ?? DEFAULT_MAX_KEY_GROUPS;
  const shards = options.shards;
  keyGroupRange(0, shards, max); // validates shards and maxKeyGroups with clear errors
  const keyOf = keyFunction(options.key);
  const ports = Array.from({ length: shards }, (_, i) => shardPort(i));
  let ctx: StageContext;

  return {
    open(c) {
      ctx = c;
    },
    async process(input, out) {
      const { records, meta } = input;
      const n = records.length;
      const split = new PortBatches<T>(ports, meta !== undefined);
      for (let i = 0; i < n; i++) {
        const r = records[i] as T;
        let kg: number;
        try {
          kg = hashKey(keyOf(r)) % max;
        } catch (err) {
          ctx.deadLetter(r, err, meta?.[i]);
          continue;
        }
        // shardOfKeyGroup inlined: the arguments were validated once above.
        split.add(Math.floor((kg * shards) / max), r, meta?.[i]);
      }
      await split.emit(out);
    },
  };
}

/**
 * Stamps each record's key (as a string, or bytes) into `meta.key`, so keyed sinks (a Kafka
 * topic) and keyed stages downstream use it without recomputing. The records are unchanged;
 * a key function that throws dead-letters its record.
 *
 * @example
 * stream.via(keyBy({ key: ['country', 'event_type'] }));
 */
export function keyBy<T>(options: { readonly key: KeySelector<T> }): Operator<T, T> {
  const keyOf = keyFunction(options.key);
  let ctx: StageContext;
  return {
    open(c) {
      ctx = c;
    },
    process(input, out) {
      const { records, meta } = input;
      const n = records.length;
      const res: T[] = [];
      const resMeta: RecordMeta[] = [];
      for (let i = 0; i < n; i++) {
        const r = records[i] as T;
        let k: Key;
        try {
          k = keyOf(r);
        } catch (err) {
          ctx.deadLetter(r, err, meta?.[i]);
          continue;
        }
        const key = k instanceof Uint8Array ? k : typeof k === 'string' ? k : String(k);
        const m = meta?.[i];
        res.push(r);
        resMeta.push(m === undefined ? { source: ctx.name, key } : { ...m, key });
      }
      return out.emit(batchOf(res, resMeta));
    },
  };
}
