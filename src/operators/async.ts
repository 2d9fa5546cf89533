/**
 * Per-record asynchronous work with bounded concurrency: {@link mapAsync}, {@link flatMapAsync}.
 *
 * Within a batch, at most `concurrency` calls are in flight; a new one starts as soon as one
 * settles. `process` returns only when every call of its batch has settled and its results
 * are emitted, so in-flight work never spans a batch boundary: a result never waits for a
 * later input (an idle source cannot strand it), watermarks and barriers are forwarded after
 * every record before them, and `finish` has nothing left to wait for. Feed batches several
 * times larger than `concurrency` (e.g. with `batch`) so the tail of a batch costs little.
 *
 * Ordering: `ordered: true` emits in input order; `false` in completion order; `'key'` runs the
 * calls of one key one after another (a record starts only when the previous record of its key
 * has settled) and emits in completion order, so each key keeps its input order — of the calls
 * and of the results — while different keys overlap.
 */

import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Key } from '../core/keygroups.ts';
import type { RecordMeta } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';
import { ResultBuffer, Wakeup } from './batch-results.ts';
import { type KeySelector, keyFunction } from './shard.ts';

/** Options of {@link mapAsync} and {@link flatMapAsync}. */
export interface AsyncOptions {
  /** Most calls in flight at once (≥ 1). Default 8. */
  concurrency?: number;
  /**
   * `true` (default): results leave in input order. `false`: in completion order, so one slow
   * record does not hold back the ones after it. `'key'`: one call at a time per `key`, results
   * in completion order, so every key keeps its input order (calls and results).
   */
  ordered?: boolean | 'key';
  /** With `ordered: 'key'` (and only then): the record's key, a field, fields or a function. */
  key?: KeySelector<never>;
}

/** A user function called once per record; `signal` aborts when the run is cancelled. */
export type AsyncFn<I, R> = (record: I, signal: AbortSignal) => Promise<R> | R;

const PENDING = 0;
const OK = 1;
const FAILED = 2;

/**
 * Applies the asynchronous `fn` to every record, with at most `concurrency` calls in flight.
 * A rejected (or throwing) call dead-letters its record with its meta; the rest go on.
 * Cancelling the run aborts `signal` and stops waiting at once.
 *
 * @example
 * stream.via(mapAsync(async (r: { id: string }, signal) => ({ ...r, user: await lookup(r.id, signal) }), { concurrency: 16 }));
 */
export function mapAsync<I, O>(fn: AsyncFn<I, O>, options: AsyncOptions = {}): Operator<I, O> {
  return asyncOperator<I, O>(fn, false, options);
}

/**
 * Like {@link mapAsync}, but `fn` resolves to any number of records (an iterable); each carries
 * the meta of the record it came from. A failure while iterating dead-letters the whole record.
 *
 * @example
 * stream.via(flatMapAsync(async (order: { id: string }) => fetchLines(order.id), { concurrency: 4, ordered: false }));
 */
export function flatMapAsync<I, O>(fn: AsyncFn<I, Iterable<O>>, options: AsyncOptions = {}): Operator<I, O> {
  return asyncOperator<I, O>(fn, true, options);
}

/** A key as a map key: bytes as latin1 text (one char per byte), numbers as their digits. */
function keyString(k: Key): string {
  return typeof k === 'string' ? k : k instanceof Uint8Array ? Buffer.from(k).toString('latin1') : String(k);
}

function asyncOperator<I, O>(fn: AsyncFn<I, unknown>, flat: boolean, options: AsyncOptions): Operator<I, O> {
  const concurrency = options.concurrency ?? 8;
  const ordered = (options.ordered ?? true) === true;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `concurrency must be a whole number ≥ 1, got ${concurrency}`);
  }
  const byKey = options.ordered === 'key';
  if (byKey !== (options.key !== undefined)) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      byKey
        ? '`ordered: key` needs `key`: the field (or fields) whose records must stay in order'
        : '`key` is used only with `ordered: key`; remove it, or set `ordered: key`',
    );
  }
  const keyOf = byKey ? keyFunction(options.key as KeySelector<I>) : undefined;
  let ctx: StageContext;

  const run = async (
    records: readonly I[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    out: Emitter<O>,
  ) => {
    const n = records.length;
    const signal = ctx.signal;
    const state = new Uint8Array(n);
    const values: unknown[] = new Array(n);
    // Indices in completion order (unordered mode) — at most n, bounded by the batch.
    const completed: number[] = [];
    let head = 0; // ordered: next index to emit; unordered: next entry of `completed`
    let next = 0;
    let inFlight = 0;
    const wakeup = new Wakeup();
    // `ordered: key`: per key with a call in flight, the records waiting behind it (input order).
    const waiting = new Map<string, number[]>();
    const keys: (string | undefined)[] | undefined = keyOf ? new Array(n) : undefined;
    const res = new ResultBuffer<O>(meta !== undefined);

    const settled = (i: number, s: number, v: unknown) => {
      state[i] = s;
      values[i] = v;
      inFlight--;
      if (!ordered) completed.push(i);
      const k = keys?.[i];
      if (k !== undefined) {
        // The slot passes to the next record of the same key, if one waits.
        const following = waiting.get(k)?.shift();
        if (following === undefined) waiting.delete(k);
        else start(following);
      }
      wakeup.notify();
    };
    const start = (i: number) => {
      inFlight++;
      let p: unknown;
      try {
        p = fn(records[i] as I, signal);
      } catch (err) {
        // A synchronous throw counts as a rejection of that record, not of the stage.
        queueMicrotask(() => settled(i, FAILED, err));
        return;
      }
      Promise.resolve(p).then(
        (v) => settled(i, OK, v),
        (err) => settled(i, FAILED, err),
      );
    };
    // Runs in `process`'s own synchronous code, so a throwing `deadLetter` (no dlq) fails the stage.
    const take = (i: number) => {
      const v = values[i];
      values[i] = undefined;
      if (state[i] === FAILED) {
        ctx.deadLetter(records[i], v, meta?.[i]);
        return;
      }
      if (!flat) {
        res.push(v as O, meta?.[i]);
        return;
      }
      try {
        res.pushAll(v as Iterable<O>, meta?.[i]);
      } catch (err) {
        ctx.deadLetter(records[i], err, meta?.[i]);
      }
    };
    const collect = () => {
      if (ordered) while (head < n && state[head] !== PENDING) take(head++);
      else while (head < completed.length) take(completed[head++] as number);
    };

    // `ordered: key`: a record whose key is busy waits behind it and takes no slot.
    const admit = (i: number) => {
      if (keyOf === undefined || keys === undefined) return start(i);
      let k: string;
      try {
        k = keyString(keyOf(records[i] as I));
      } catch (err) {
        // A key function that throws dead-letters its record, which never waited for a key.
        inFlight++;
        queueMicrotask(() => settled(i, FAILED, err));
        return;
      }
      keys[i] = k;
      const behind = waiting.get(k);
      if (behind !== undefined) behind.push(i);
      else {
        waiting.set(k, []);
        start(i);
      }
    };

    while (next < n || inFlight > 0) {
      while (next < n && inFlight < concurrency) admit(next++);
      collect();
      // Emit in chunks of about `concurrency` records: results leave as they complete
      // without one output batch (and one await) per record.
      if (res.size >= concurrency) {
        await res.flush(out);
        continue; // slots may have freed up meanwhile: refill before waiting
      }
      if (inFlight > 0) await wakeup.wait(signal);
    }
    collect();
    await res.flush(out);
  };

  return {
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      return run(batch.records, batch.meta, out);
    },
  };
}
