/**
 * {@link parallelStep}: a `module:` step's per-record function on N worker threads, as
 * key-group shards, with results, order and dead letters exactly as on one thread.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { DEFAULT_MAX_KEY_GROUPS, hashKey, keyGroupRange } from '../core/keygroups.ts';
import { type Batch, batchOf, type RecordMeta, type Signal } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';
import { type AppliedBatch, applyRecordFunction, type RecordFunction } from './record-function.ts';
import { type KeySelector, keyFunction } from './shard.ts';
import { StepWorkers } from './step-workers.ts';

/** Options of {@link parallelStep}. */
export interface ParallelStepOptions {
  /**
   * The module whose export is the per-record function: an absolute path or a `file:` URL
   * (`new URL('./score.ts', import.meta.url)`). A function (a closure) cannot move to another
   * thread and is refused.
   */
  readonly module: string | URL;
  /** The export to use; default `default`. */
  readonly export?: string;
  /**
   * Worker threads: a whole number from 1 to 256, or `auto` (available cores; 1 on one core,
   * where a worker cannot pay). 1 runs the function on the calling thread.
   */
  readonly parallelism: number | 'auto';
  /**
   * Sends all records of one key to one worker, in order (key groups as in {@link shard}); the
   * module may then keep per-key caches. Without a key, each batch is cut into N contiguous
   * slices. Either way the output is in input order.
   */
  readonly key?: KeySelector<unknown>;
  /** Key groups the key space is cut into (default 256). */
  readonly maxKeyGroups?: number;
  /** The module as the user wrote it, for messages; default the path. */
  readonly label?: string;
  /**
   * Batches in flight on the workers at once (default 4): the next batches are cut and queued
   * on the workers while they run one, so a worker does not wait while this thread emits,
   * reads and decodes (with 2, each worker of a 60k-record run sat idle 110–240 ms of ~850).
   */
  readonly inFlight?: number;
}

/** Resolves `parallelism` (`auto` → available cores) and checks it; throws a `SLUICE_CONFIG` error. */
export function resolveParallelism(parallelism: number | 'auto'): number {
  if (parallelism === 'auto') return availableParallelism();
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > 256)
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`parallelism\` must be \`auto\` or a whole number from 1 to 256, got ${String(parallelism)}`,
    );
  return parallelism;
}

/** A batch handed to the workers, waiting for its results. */
interface InFlight {
  readonly batch: Batch<unknown>;
  /** Per worker: the indexes (in `batch`) of the records it got. */
  readonly slots: readonly (readonly number[])[];
  readonly replies: Promise<AppliedBatch[]>;
}

/**
 * Runs a module's per-record function (a record out, an array → several, `undefined`/`null` →
 * none; async allowed) on `parallelism` worker threads. Each batch is cut by key group (with a
 * `key`) or into contiguous slices, the slices run at once, and the results are put back in
 * input order — so the output, and the dead letters (same error message, the record's own
 * meta), equal those of one thread. Up to `inFlight` batches are on the workers at a time; a
 * signal (watermark, checkpoint barrier) and the end of input wait until every batch before
 * them was emitted, so a barrier passes with nothing in flight and checkpoints stay exact.
 * Without a `key`, the batches that arrive while the workers start (tens of milliseconds) run
 * on the calling thread instead of waiting for them; with a `key` every record of a key runs
 * on its worker from the first one on. The module's own state (if any) lives per thread and
 * is not checkpointed.
 *
 * @example
 * stream.via(parallelStep({ module: new URL('./score.ts', import.meta.url), parallelism: 2, key: 'userId' }));
 */
export function parallelStep(options: ParallelStepOptions): Operator {
  if (typeof (options.module as unknown) === 'function')
    throw new SluiceError(
      ErrorCode.CONFIG,
      'a closure cannot move to a worker thread: put the function in a module and pass its path (`module: new URL("./step.ts", import.meta.url)`), or use `map(fn)` on one thread',
    );
  const url =
    options.module instanceof URL
      ? options.module.href
      : isAbsolute(options.module)
        ? pathToFileURL(options.module).href
        : options.module.startsWith('file:')
          ? options.module
          : undefined;
  if (url === undefined)
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`module\` must be an absolute path or a \`file:\` URL, got \`${String(options.module)}\`; write \`new URL('${String(options.module)}', import.meta.url)\``,
    );
  const threads = resolveParallelism(options.parallelism);
  const exportName = options.export ?? 'default';
  const label = options.label ?? String(options.module);
  const max = options.maxKeyGroups ?? DEFAULT_MAX_KEY_GROUPS;
  if (options.key !== undefined) keyGroupRange(0, threads, max); // validates with clear errors
  const keyOf = options.key === undefined ? undefined : keyFunction(options.key);
  const depth = Math.max(1, options.inFlight ?? 4);

  let ctx: StageContext;
  let fn: RecordFunction | undefined;
  let workers: StepWorkers | undefined;
  /** Settles when the workers are up (`booted`) or could not start (`bootFailure`). */
  let starting: Promise<void> | undefined;
  let booted = false;
  let bootFailure: unknown;
  const waitForWorkers = async () => {
    await starting;
    if (bootFailure !== undefined) throw bootFailure;
  };
  const queue: InFlight[] = [];
  let records = 0;
  /** Records this thread ran while the workers started. */
  let callerRecords = 0;

  /** Cuts a batch into per-worker slots: by key group, or contiguous slices. */
  const cut = (batch: Batch<unknown>): number[][] => {
    const n = batch.records.length;
    const slots: number[][] = Array.from({ length: threads }, () => []);
    if (keyOf === undefined) {
      for (let w = 0; w < threads; w++) {
        const from = Math.floor((w * n) / threads);
        const to = Math.floor(((w + 1) * n) / threads);
        const s = slots[w] as number[];
        for (let i = from; i < to; i++) s.push(i);
      }
      return slots;
    }
    for (let i = 0; i < n; i++) {
      let kg: number;
      try {
        kg = hashKey(keyOf(batch.records[i])) % max;
      } catch {
        kg = 0; // the function still runs on it (and fails or not) as on one thread
      }
      (slots[Math.floor((kg * threads) / max)] as number[]).push(i);
    }
    return slots;
  };

  /** Emits a batch's results in input order; failed records become dead letters. */
  const emit = async (
    batch: Batch<unknown>,
    slots: readonly (readonly number[])[],
    replies: readonly AppliedBatch[],
    out: Emitter<unknown>,
  ) => {
    const n = batch.records.length;
    const results: unknown[] = new Array(n);
    const failed: (AppliedBatch['failures'][number] | undefined)[] = new Array(n);
    for (let w = 0; w < slots.length; w++) {
      const slot = slots[w] as readonly number[];
      const reply = replies[w] as AppliedBatch;
      for (let k = 0; k < slot.length; k++) results[slot[k] as number] = reply.results[k];
      for (const f of reply.failures) failed[slot[f.index] as number] = f;
    }
    const outRecords: unknown[] = [];
    const outMeta: (RecordMeta | undefined)[] | undefined = batch.meta ? [] : undefined;
    for (let i = 0; i < n; i++) {
      const meta = batch.meta?.[i];
      const f = failed[i];
      if (f !== undefined) {
        const cause = new Error(f.message);
        if (f.stack !== undefined) cause.stack = f.stack;
        ctx.deadLetter(
          batch.records[i],
          new SluiceError(
            ErrorCode.RECORD,
            `module \`${label}\` threw: ${f.message}`,
            { stage: ctx.name },
            { cause },
          ),
          meta,
        );
        continue;
      }
      const r = results[i];
      if (r === undefined || r === null) continue;
      if (Array.isArray(r)) {
        for (const x of r) {
          outRecords.push(x);
          outMeta?.push(meta);
        }
      } else {
        outRecords.push(r);
        outMeta?.push(meta);
      }
    }
    records += n;
    await out.emit(batchOf(outRecords, outMeta));
  };

  const drain = async (out: Emitter<unknown>, keep: number) => {
    while (queue.length > keep) {
      const f = queue.shift() as InFlight;
      await emit(f.batch, f.slots, await f.replies, out);
    }
  };

  return {
    metrics: () => ({
      parallelThreads: threads,
      parallelRecords: records,
      parallelCallerRecords: callerRecords,
    }),
    async open(c) {
      ctx = c;
      // This thread loads the module too: a bad export fails here, before any worker starts,
      // and the function runs here while the workers start (below).
      const mod = (await import(url)) as Record<string, unknown>;
      const exported = mod[exportName];
      if (typeof exported !== 'function')
        throw new SluiceError(
          ErrorCode.CONFIG,
          `module \`${label}\`: export \`${exportName}\` is not a function; export \`(record) => record | record[] | undefined\``,
        );
      fn = exported as RecordFunction;
      if (threads === 1) return;
      workers = new StepWorkers(threads, { moduleUrl: url, exportName }, label);
      starting = workers.start().then(
        () => {
          booted = true;
        },
        (err: unknown) => {
          bootFailure = err;
        },
      );
      // With a key, every record of a key goes to its worker from the first one on (the
      // module may keep per-key state), so nothing runs here.
      if (keyOf !== undefined) await waitForWorkers();
    },
    async process(batch, out) {
      if (workers === undefined || (!booted && bootFailure === undefined)) {
        // One thread, or (unkeyed) the workers are still starting: that takes 90–140 ms in a
        // CLI run, during which this thread would only wait (bench/README.md, parallel).
        const all = [batch.records.map((_, i) => i)];
        await emit(batch, all, [await applyRecordFunction(fn as RecordFunction, batch.records)], out);
        if (workers !== undefined) {
          callerRecords += batch.records.length;
          // Let the workers' `ready` messages in even when batches arrive without I/O between.
          await new Promise(setImmediate);
        }
        return;
      }
      if (bootFailure !== undefined) throw bootFailure;
      const w = workers as StepWorkers;
      const slots = cut(batch);
      const replies = Promise.all(
        slots.map((s, k) =>
          w.run(
            k,
            s.map((i) => batch.records[i]),
          ),
        ),
      );
      replies.catch(() => {}); // awaited in order by drain; this only stops an unhandled rejection
      queue.push({ batch, slots, replies });
      await drain(out, depth - 1);
    },
    async onSignal(signal: Signal, out) {
      await drain(out, 0);
      await out.signal(signal);
    },
    async finish(out) {
      await drain(out, 0);
      // A short input may end before the workers are up; a module that cannot load on a
      // worker still fails the run, as on a long input.
      await waitForWorkers();
    },
    async close() {
      await workers?.close();
    },
  };
}
