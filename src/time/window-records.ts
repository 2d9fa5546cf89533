/**
 * The window operator's records: the key of each input record ({@link WindowKeys}) and the result
 * records it emits ({@link resultMaker}, {@link retraction}). Results hold the key fields by name,
 * `windowStart` and `windowEnd` (ISO-8601 UTC), the aggregate values by name, `revision` and
 * `update`; a retraction holds the key fields, the bounds, `revision`, `update: true` and
 * `retracted: true`.
 */
import { errorMessage } from '../core/errors.ts';
import { stringifyJson } from '../formats/json.ts';
import { KeyTable } from './key-table.ts';
import type { KeyValue } from './window-options.ts';

/** Records per chunk of a batch: keys are read a chunk ahead (see {@link WindowKeys.lookAhead}). */
export const CHUNK = 256;

/** Most keys the pair-key cache (see {@link WindowKeys}) holds before it starts over. */
const PAIR_KEYS = 65_536;

/** Epoch ms as ISO-8601 UTC. */
export const iso = (t: number): string => new Date(t).toISOString();

/** Builds a result record: key fields, window bounds, aggregate values, revision, update flag. */
export type ResultMaker = (
  key: Readonly<Record<string, unknown>>,
  windowStart: string,
  windowEnd: string,
  values: readonly unknown[],
  revision: number,
) => Record<string, unknown>;

/**
 * The result maker for key fields `keyFields` (undefined: keys from a key function, or none) and
 * aggregate names `names`. With key fields it is generated code (`new Function`), one object
 * literal: every result then has the same hidden class with in-object fields, built in one step
 * instead of by a spread and six added properties (one result per window, so this is a hot path
 * when windows hold few events). Names are embedded with `JSON.stringify`, so none can inject code.
 */
export function resultMaker(keyFields: readonly string[] | undefined, names: readonly string[]): ResultMaker {
  if (keyFields === undefined) {
    return (key, windowStart, windowEnd, values, revision) => {
      const rec: Record<string, unknown> = { ...key, windowStart, windowEnd };
      for (let j = 0; j < names.length; j++) rec[names[j] as string] = values[j];
      rec.revision = revision;
      rec.update = revision > 1;
      return rec;
    };
  }
  const prop = (name: string, value: string) =>
    `${name === '__proto__' ? '["__proto__"]' : JSON.stringify(name)}: ${value}`;
  const props = [
    ...keyFields.map((f) => prop(f, `k[${JSON.stringify(f)}]`)),
    'windowStart: s',
    'windowEnd: e',
    ...names.map((n, j) => prop(n, `v[${j}]`)),
    'revision: r',
    'update: r > 1',
  ];
  return new Function('k', 's', 'e', 'v', 'r', `return { ${props.join(', ')} };`) as ResultMaker;
}

/** The record that deletes the result of window `[start, end)` of key `key`: its revision `revision`. */
export function retraction(
  key: Readonly<Record<string, unknown>>,
  start: number,
  end: number,
  revision: number,
): Record<string, unknown> {
  return { ...key, windowStart: iso(start), windowEnd: iso(end), revision, update: true, retracted: true };
}

const isAbsent = (v: unknown) => v === undefined || v === null;

/** Reads a record's key (see {@link keyReader}). */
type KeyReader = (r: Record<string, unknown>) => string | undefined;

/**
 * The key reader of key fields `kf`: a string value as it is, another value as `type:value` (so
 * `"1"` and `1` differ), several joined with U+0000; undefined when a field is missing. Generated
 * per field list (names embedded with `JSON.stringify`, so none can inject code), so each field is
 * a monomorphic named load rather than a keyed load shared by every field and operator.
 */
export function keyReader(kf: readonly string[]): KeyReader {
  const loads = kf.map(
    (f, k) =>
      `const v${k} = r[${JSON.stringify(f)}];\nif (v${k} === undefined || v${k} === null) return undefined;`,
  );
  const parts = kf.map((_, k) => `(typeof v${k} === 'string' ? v${k} : typeof v${k} + ':' + String(v${k}))`);
  return new Function('r', `${loads.join('\n')}\nreturn ${parts.join(" + '\\u0000' + ")};`) as KeyReader;
}

/** A generated reader of one top-level field (see {@link keyReader}). */
function fieldReader(f: string): (r: Record<string, unknown>) => unknown {
  return new Function('r', `return r[${JSON.stringify(f)}];`) as (r: Record<string, unknown>) => unknown;
}

/**
 * The keys of input records: by key fields (read a chunk ahead by {@link lookAhead}), by a key
 * function, or `''` for one global window. A key is a string (`ck`) that windows are found by; the
 * key *record* (the key fields a result shows) is {@link keyRec} for a key function, else
 * {@link record} of the input record. One per operator; not reentrant.
 */
export class WindowKeys {
  /** Keys of the records of the current chunk, by index in the chunk (key fields only). */
  readonly cks: (string | undefined)[] = new Array(CHUNK);
  /** After {@link read} with a key function: the key record of that record; else undefined. */
  keyRec: Readonly<Record<string, unknown>> | undefined;
  /** After {@link read} returned undefined: why, for the dead-letter output. */
  problem = '';
  /** Keys of two key fields by their values (see `pairEntry`), and how many it holds. */
  private readonly pairKeys = new KeyTable<KeyTable<PairEntry>>();
  private pairCount = 0;

  /** Key fields; undefined for a key function or one global window. */
  readonly keyFields: readonly string[] | undefined;
  private readonly keyFn: ((r: unknown) => KeyValue) | undefined;
  /** The key of a record by its key fields (key fields only). */
  private readonly readKey: KeyReader | undefined;
  /** With two key fields: readers of each (for the pair cache). */
  private readonly first: ((r: Record<string, unknown>) => unknown) | undefined;
  private readonly second: ((r: Record<string, unknown>) => unknown) | undefined;

  constructor(keyFields: readonly string[] | undefined, keyFn: ((r: unknown) => KeyValue) | undefined) {
    this.keyFields = keyFields;
    this.keyFn = keyFn;
    if (keyFields !== undefined) {
      this.readKey = keyReader(keyFields);
      if (keyFields.length === 2) {
        this.first = fieldReader(keyFields[0] as string);
        this.second = fieldReader(keyFields[1] as string);
      }
    }
  }

  /**
   * First pass over records `c0…c1` (key fields only): puts each one's key in `cks` (undefined
   * when a key field is missing) and, given `heads`, the key's entry in `latest` there. Reads
   * records and `latest` only; called once per chunk before {@link read} of its records, so the
   * CPU overlaps the cache misses of these independent lookups instead of taking them one by one.
   *
   * With two key fields, the entry found last for a pair of values is kept with the pair's key as
   * a hint, and taken without a lookup in `latest` while `isLatest(hint)` says it is still the
   * key's entry there (the caller defines that; {@link forgetHints} drops every hint).
   */
  lookAhead<H>(
    records: readonly unknown[],
    c0: number,
    c1: number,
    latest?: KeyTable<H>,
    heads?: (H | undefined)[],
    isLatest?: (h: H) => boolean,
  ): void {
    const cks = this.cks;
    const readKey = this.readKey as KeyReader;
    const pairs = this.first !== undefined ? this.pairKeys : undefined;
    for (let i = c0; i < c1; i++) {
      const r = records[i] as Record<string, unknown>;
      const e = pairs === undefined ? undefined : this.pairEntry(r, pairs);
      const ck = e === undefined ? readKey(r) : e.ck;
      cks[i - c0] = ck;
      if (heads === undefined || ck === undefined) continue;
      if (e === undefined || isLatest === undefined) {
        heads[i - c0] = (latest as KeyTable<H>).get(ck);
        continue;
      }
      let h = e.hint as H | undefined;
      if (h === undefined || !isLatest(h)) {
        h = (latest as KeyTable<H>).get(ck);
        e.hint = h;
      }
      heads[i - c0] = h;
    }
  }

  /** Drops the hints {@link lookAhead} keeps (when every entry of `latest` is replaced). */
  forgetHints(): void {
    this.pairKeys.clear();
    this.pairCount = 0;
  }

  /**
   * The key of `r`, the `j`-th record of the chunk {@link lookAhead} saw; undefined when it has
   * none (then {@link problem} says why). Sets {@link keyRec}.
   */
  read(r: unknown, j: number): string | undefined {
    const kf = this.keyFields;
    if (kf !== undefined) {
      const ck = this.cks[j];
      if (ck === undefined) {
        const field = kf.find((f) => isAbsent((r as Record<string, unknown>)[f])) as string;
        this.problem = `the record has no key field \`${field}\``;
      }
      this.keyRec = undefined;
      return ck;
    }
    if (this.keyFn === undefined) {
      this.keyRec = undefined;
      return '';
    }
    let kv: KeyValue;
    try {
      kv = this.keyFn(r);
    } catch (err) {
      this.problem = `the key function threw: ${errorMessage(err)}`;
      return undefined;
    }
    if (kv !== null && typeof kv === 'object') {
      this.keyRec = kv as Record<string, unknown>;
      try {
        return stringifyJson(Object.values(kv));
      } catch (err) {
        // A key nested too deep or circular: the record is a dead letter, the run goes on.
        this.problem = `the key function returned a key that cannot be written: ${errorMessage(err)}`;
        return undefined;
      }
    }
    if (kv === undefined || kv === null) {
      this.problem = 'the key function returned no key';
      return undefined;
    }
    this.keyRec = { key: typeof kv === 'bigint' ? kv.toString() : kv };
    return `${typeof kv}:${String(kv)}`;
  }

  /** The key record of `r` by key fields (bigints as strings); `{}` without key fields. */
  record(r: unknown): Readonly<Record<string, unknown>> {
    const kf = this.keyFields;
    if (kf === undefined) return {};
    const o: Record<string, unknown> = {};
    for (const k of kf) {
      const v = (r as Record<string, unknown>)[k];
      o[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    return o;
  }

  /**
   * The entry of two key fields' values in the cache of keys by value pair (both strings; else
   * undefined): no string is built and hashed per record — the values (interned by the CSV
   * decoder, say) and the cached key have their hashes already. The cache is cleared when it
   * holds more than `PAIR_KEYS` keys.
   */
  private pairEntry(r: Record<string, unknown>, pairs: KeyTable<KeyTable<PairEntry>>): PairEntry | undefined {
    const a = (this.first as (r: Record<string, unknown>) => unknown)(r);
    const b = (this.second as (r: Record<string, unknown>) => unknown)(r);
    if (typeof a !== 'string' || typeof b !== 'string') return undefined;
    let inner = pairs.get(a);
    let e = inner?.get(b);
    if (e === undefined) {
      if (this.pairCount >= PAIR_KEYS) {
        pairs.clear();
        this.pairCount = 0;
        inner = undefined;
      }
      if (inner === undefined) {
        inner = new KeyTable();
        pairs.set(a, inner);
      }
      e = { ck: `${a}\u0000${b}`, hint: undefined };
      inner.set(b, e);
      this.pairCount++;
    }
    return e;
  }
}

/** A key of two key fields in the pair cache, with the caller's hint (see `WindowKeys.lookAhead`). */
interface PairEntry {
  readonly ck: string;
  hint: unknown;
}
