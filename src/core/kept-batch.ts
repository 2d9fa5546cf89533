/**
 * The batch a per-record step (filter, map, flatMap, their fusion) emits: its output records,
 * each carrying the meta of the input record it came from, without reading the input's meta.
 *
 * A byte source's batch builds its per-record meta only when a stage reads it (two objects per
 * record, `io/positioned-batch.ts`). A filter that read `meta` just to carry it along made every
 * record's meta in front of a window that never reads it (the window uses `origin`), and dropped
 * `origin`: on the 200 MB vs-go CSV run, 143 MB of meta objects more per run, and the window then
 * read the meta array. Here the step hands over which input record each output record came from,
 * and a batch whose meta is still unbuilt gives a batch whose meta is built, from its own start
 * positions, only when read ({@link LAZY_SUBSET}).
 */
import { type Batch, type BatchOrigin, batchOf, type RecordMeta } from './message.ts';

/**
 * The method a batch whose meta is built on first read has, under this symbol:
 * `(records, kept)` → the batch of `records` whose meta is that of its input records `kept`,
 * also built only when read; undefined when its meta is already built (the plain way is as cheap).
 * A symbol on the prototype, so a spread or a structured clone of a batch does not copy it.
 */
export const LAZY_SUBSET: unique symbol = Symbol('sluice.lazySubset');

/** A batch that can give a subset of itself with its meta still unbuilt (see {@link LAZY_SUBSET}). */
export interface LazySubsetBatch<T = unknown> extends Batch<T> {
  [LAZY_SUBSET](records: readonly unknown[], kept: readonly number[]): Batch | undefined;
}

/**
 * The batch of `records`, where `records[j]` came from `from.records[kept[j]]` and carries its
 * meta (an index may repeat: a flatMap's outputs of one record). `from.origin` is kept: the
 * records' source and partition do not change. `from.meta` is not read when `from` builds it
 * lazily: the result then builds its own on first read. `kept` is not kept.
 *
 * @example
 * keptBatch(batch, [batch.records[2]], [2]).meta?.[0] === batch.meta?.[2]; // true
 */
export function keptBatch<T>(from: Batch, records: readonly T[], kept: readonly number[]): Batch<T> {
  const lazy = (from as Partial<LazySubsetBatch>)[LAZY_SUBSET];
  if (lazy !== undefined) {
    const b = lazy.call(from, records, kept);
    if (b !== undefined) return b as Batch<T>;
  }
  const meta = from.meta;
  let picked: (RecordMeta | undefined)[] | undefined;
  if (meta !== undefined) {
    picked = new Array(kept.length);
    for (let j = 0; j < kept.length; j++) picked[j] = meta[kept[j] as number];
  }
  return withOrigin(records, picked, from.origin);
}

/**
 * A batch of `records` with `meta` (undefined: none) and `origin` (undefined: none); for a step
 * that builds its output's meta itself (a rule-version stamp) from a batch with an `origin`.
 */
export function withOrigin<T>(
  records: readonly T[],
  meta: readonly (RecordMeta | undefined)[] | undefined,
  origin: BatchOrigin | undefined,
): Batch<T> {
  return origin === undefined ? batchOf(records, meta) : { kind: 'batch', records, meta, origin };
}
