/**
 * Per-key serial processing with keyed state: {@link serial}. Each record belongs to one key (or
 * to several: a transfer to its `from` and its `to` account) and runs only after every earlier
 * record of any of its keys has finished — one at a time per key, in input order — while records
 * of other keys run concurrently, up to `concurrency` calls at once. The function reads and writes
 * a value per key (a balance), kept in a {@link KeyedStateStore} and checkpointed.
 *
 * The outcome equals running the records one by one in input order: two records that share a key
 * run in input order, and records that share none touch disjoint state. As in `mapAsync`, in-flight
 * work never spans a batch boundary: `process` returns when every call of its batch has settled
 * and its results are emitted, so a barrier finds nothing in flight and the snapshot is the state
 * after every record before it. Feed batches several times larger than `concurrency` (`batch`).
 */
import { offAbort, onAbort } from '../core/abort-waiters.ts';
import { cancelledError, ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Key } from '../core/keygroups.ts';
import type { RecordMeta } from '../core/message.ts';
import type { Operator, StageContext } from '../core/stage.ts';
import { KeyedStateStore, type ValueState } from '../state/keyed.ts';
import { PortBatches } from './route.ts';
import { type KeySelector, keyFunction } from './shard.ts';

/**
 * What the function of {@link serial} gets with its record. Valid only until the function's
 * promise settles; do not store it.
 */
export interface SerialContext<S> {
  /** The record's first (or only) key. */
  readonly key: string;
  /** Every key of the record, without repeats, in the order the selector gave them. */
  readonly keys: readonly string[];
  /** The value of `key` (default the first key) — as this call set it, else as stored; undefined when none. */
  get(key?: string): S | undefined;
  /**
   * Sets the value of `key` (default the first key), one of the record's keys. Stored only when
   * the function succeeds: a record that throws leaves every key's value as it was.
   */
  set(value: S, key?: string): void;
  /** Sends `record` to side output `port` (or `out`), after the record's turn, in input order. */
  emit(record: unknown, port?: string): void;
  /** Aborts when the run is cancelled. */
  readonly signal: AbortSignal;
}

/**
 * The per-record function of {@link serial}: resolves to a record to emit on `out`, an array of
 * records, or `undefined`/`null` for none. A throw (or rejection) dead-letters the record and
 * drops what it set and emitted.
 */
export type SerialFn<I, S> = (record: I, ctx: SerialContext<S>) => unknown;

/** Options of {@link serial}. */
export interface SerialOptions<I, S> {
  /** The record's one key: a field, several fields (one composite key) or a function. */
  readonly key?: KeySelector<I>;
  /**
   * Instead of `key`: fields each holding one key of the record (`['from', 'to']`), or a function
   * returning the keys. The record waits for every earlier record of any of them.
   */
  readonly keys?: readonly string[] | ((record: I) => readonly Key[]);
  /** Most calls in flight at once (≥ 1). Default 8. */
  readonly concurrency?: number;
  /** Side outputs `emit` may name besides `out`; default any (a pipeline file then connects every unclaimed output). */
  readonly ports?: readonly string[];
  /** Called once per record, in its key's turn. */
  readonly fn: SerialFn<I, S>;
}

/** Name of the one value state {@link serial} keeps per key. */
const VALUE = 'value';

function keyText(k: Key): string {
  if (typeof k === 'string') return k;
  if (k instanceof Uint8Array) return Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');
  return String(k);
}

/** The function giving a record's keys, from `key` or `keys`. */
function keysFunction<I>(options: SerialOptions<I, unknown>): (record: I) => string[] {
  if ((options.key === undefined) === (options.keys === undefined))
    throw new SluiceError(ErrorCode.CONFIG, 'serial: give exactly one of `key` and `keys`');
  if (options.key !== undefined) {
    const one = keyFunction(options.key);
    return (r) => [keyText(one(r))];
  }
  const keys = options.keys as readonly string[] | ((record: I) => readonly Key[]);
  const many =
    typeof keys === 'function'
      ? keys
      : (() => {
          if (keys.length === 0)
            throw new SluiceError(ErrorCode.CONFIG, 'serial: `keys` needs at least one field');
          const fields = keys.map((f) => keyFunction<I>(f));
          return (r: I) => fields.map((f) => f(r));
        })();
  return (r) => {
    const out: string[] = [];
    for (const k of many(r)) {
      const s = keyText(k);
      if (!out.includes(s)) out.push(s);
    }
    if (out.length === 0) throw new SluiceError(ErrorCode.RECORD, 'serial: the record has no key');
    return out;
  };
}

/** A key's records in the current batch, in input order, and the index of the one whose turn it is. */
interface KeyQueue {
  readonly items: number[];
  head: number;
}

/** What one finished call left: its emits (port, record), or its error. */
type Outcome = { ok: true; emits: [string, unknown][] } | { ok: false; error: unknown };

/**
 * Processes each key's records strictly in order and one at a time, different keys concurrently,
 * with a value per key that is checkpointed (`snapshot`/`restore`). See the module comment.
 *
 * @example
 * // Balances per account; a transfer waits for earlier transfers of either account.
 * stream.via(serial<Transfer, bigint>({
 *   keys: ['from', 'to'], concurrency: 32, ports: ['rejected'],
 *   fn: (t, s) => {
 *     const from = s.get(t.from) ?? 0n;
 *     if (from < t.amount) return s.emit({ ...t, reason: 'insufficient funds' }, 'rejected');
 *     s.set(from - t.amount, t.from);
 *     s.set((s.get(t.to) ?? 0n) + t.amount, t.to);
 *     return t;
 *   },
 * }));
 */
export function serial<I, S = unknown>(options: SerialOptions<I, S>): Operator<I, unknown> {
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new SluiceError(
      ErrorCode.CONFIG,
      `serial: concurrency must be a whole number ≥ 1, got ${concurrency}`,
    );
  const keysOf = keysFunction(options as SerialOptions<I, unknown>);
  const declared = options.ports;
  const fn = options.fn;
  const store = new KeyedStateStore();
  const value: ValueState<S> = store.valueState<S>(VALUE);
  const read = (key: string): S | undefined => {
    store.setCurrentKey(key);
    return value.get();
  };
  let ctx: StageContext;

  /** Runs record `i`'s call; settles with its outcome (never rejects). */
  const call = async (record: I, keys: string[]): Promise<Outcome> => {
    const writes = new Map<string, S>();
    const emits: [string, unknown][] = [];
    let live = true;
    const own = (key: string | undefined, doing: string): string => {
      const k = key ?? (keys[0] as string);
      if (!live) throw new SluiceError(ErrorCode.STAGE, `serial: ${doing} after the record's call ended`);
      if (!keys.includes(k))
        throw new SluiceError(
          ErrorCode.RECORD,
          `serial: ${doing} key \`${k}\`, which is not a key of the record (${keys.map((x) => `\`${x}\``).join(', ')})`,
        );
      return k;
    };
    const sctx: SerialContext<S> = {
      key: keys[0] as string,
      keys,
      get: (key) => {
        const k = own(key, 'reading');
        return writes.has(k) ? writes.get(k) : read(k);
      },
      set: (v, key) => {
        writes.set(own(key, 'setting'), v);
      },
      emit: (r, port = 'out') => {
        if (!live) throw new SluiceError(ErrorCode.STAGE, 'serial: `emit` after the record’s call ended');
        emits.push([port, r]);
      },
      signal: ctx.signal,
    };
    try {
      const result = await fn(record, sctx);
      if (Array.isArray(result)) for (const r of result) emits.push(['out', r]);
      else if (result !== undefined && result !== null) emits.push(['out', result]);
    } catch (error) {
      return { ok: false, error };
    } finally {
      live = false;
    }
    for (const [k, v] of writes) {
      store.setCurrentKey(k);
      value.set(v);
    }
    return { ok: true, emits };
  };

  const run = async (
    records: readonly I[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    out: Parameters<Operator<I, unknown>['process']>[1],
  ) => {
    const n = records.length;
    const signal = ctx.signal;
    const keyLists: (string[] | undefined)[] = new Array(n);
    const blocked = new Int32Array(n);
    const queues = new Map<string, KeyQueue>();
    const ready: number[] = [];
    for (let i = 0; i < n; i++) {
      let keys: string[];
      try {
        keys = keysOf(records[i] as I);
      } catch (err) {
        ctx.deadLetter(records[i], err, meta?.[i]);
        continue;
      }
      keyLists[i] = keys;
      for (const k of keys) {
        let q = queues.get(k);
        if (q === undefined) {
          q = { items: [], head: 0 };
          queues.set(k, q);
        }
        if (q.items.length > 0) blocked[i] = (blocked[i] as number) + 1;
        q.items.push(i);
      }
      if (blocked[i] === 0) ready.push(i);
    }

    const outcomes: (Outcome | undefined)[] = new Array(n);
    let readyHead = 0;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const finished = (i: number, o: Outcome) => {
      outcomes[i] = o;
      inFlight--;
      for (const k of keyLists[i] as string[]) {
        const q = queues.get(k) as KeyQueue;
        q.head++;
        const next = q.items[q.head];
        if (next === undefined) continue;
        const left = (blocked[next] as number) - 1;
        blocked[next] = left;
        if (left === 0) ready.push(next);
      }
      const w = wake;
      wake = undefined;
      w?.();
    };
    const completion = () =>
      new Promise<void>((resolve, reject) => {
        if (signal.aborted) {
          reject(cancelledError(signal.reason));
          return;
        }
        // Not an `abort` listener per wait: see `core/abort-waiters.ts`.
        const wait = onAbort(signal, () => reject(cancelledError(signal.reason)));
        wake = () => {
          offAbort(wait);
          resolve();
        };
      });

    while (readyHead < ready.length || inFlight > 0) {
      while (readyHead < ready.length && inFlight < concurrency) {
        const i = ready[readyHead++] as number;
        inFlight++;
        void call(records[i] as I, keyLists[i] as string[]).then((o) => finished(i, o));
      }
      if (inFlight > 0) await completion();
    }

    // Results in input order, one batch per port.
    const ports = declared === undefined ? ['out'] : ['out', ...declared.filter((p) => p !== 'out')];
    const portIndex = new Map(ports.map((p, i) => [p, i]));
    const routed: { port: number; record: unknown; meta: RecordMeta | undefined }[] = [];
    for (let i = 0; i < n; i++) {
      const o = outcomes[i];
      if (o === undefined) continue; // its key failed: already dead-lettered
      const m = meta?.[i];
      if (!o.ok) {
        ctx.deadLetter(
          records[i],
          o.error instanceof SluiceError
            ? o.error
            : new SluiceError(
                ErrorCode.RECORD,
                `serial step threw: ${errorMessage(o.error)}`,
                { stage: ctx.name },
                { cause: o.error },
              ),
          m,
        );
        continue;
      }
      for (const [port, record] of o.emits) {
        let p = portIndex.get(port);
        if (p === undefined) {
          if (declared !== undefined) {
            ctx.deadLetter(
              record,
              new SluiceError(
                ErrorCode.RECORD,
                `serial: emitted on port \`${port}\`, which \`ports\` does not list (${ports.map((x) => `\`${x}\``).join(', ')})`,
              ),
              m,
            );
            continue;
          }
          p = ports.length;
          ports.push(port);
          portIndex.set(port, p);
        }
        routed.push({ port: p, record, meta: m });
      }
    }
    const split = new PortBatches<unknown>(ports, meta !== undefined);
    for (const r of routed) split.add(r.port, r.record, r.meta);
    await split.emit(out);
  };

  return {
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      return run(batch.records, batch.meta, out);
    },
    snapshot() {
      return store.snapshot();
    },
    restore(state) {
      store.restore(state);
    },
  };
}
