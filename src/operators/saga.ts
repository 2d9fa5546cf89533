/**
 * Sagas: {@link saga} runs, for each record, a named sequence of steps — each an action with its
 * compensation — and emits one record per saga with its final status: `completed` (every action
 * succeeded), `compensated` (a step failed after its retries; the steps done before it were undone
 * in reverse order) or `failed` (a compensation failed too: the saga needs a person).
 *
 * Each action and compensation gets an idempotency key, `<sagaId>:<step>` (`…:<step>:compensate`),
 * to pass on (an `Idempotency-Key` header, a unique key in SQL), because a step may run again:
 * after a timeout, and after a crash between the effect and its log entry. With `log`, every
 * transition (step done, compensation started, step undone, end) is appended and fsynced to a file
 * before the saga goes on; a restarted run that meets the saga's record again (replayed from the
 * last checkpoint) resumes it where the log says — never re-running a logged action, continuing a
 * compensation it had started — and re-emits the outcome of a saga that had ended. Without `log`,
 * the log lives in the checkpointed state only, and a saga interrupted between checkpoints starts
 * again from its first step (safe with idempotent actions, but a compensation under way is not
 * remembered). As in `serial`, in-flight sagas never span a batch boundary.
 */
import { type FileHandle, mkdir, open as openFile, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import { type RetryPolicy, retrying } from '../core/retry.ts';
import type { Operator } from '../core/stage.ts';
import { serial } from './serial.ts';
import { type KeySelector, keyFunction } from './shard.ts';

/** What an action or compensation gets. */
export interface SagaStepContext<I> {
  readonly record: I;
  readonly sagaId: string;
  readonly step: string;
  /** `<sagaId>:<step>` for the action, `<sagaId>:<step>:compensate` for the compensation. */
  readonly idempotencyKey: string;
  /** 1 for the first try. */
  readonly attempt: number;
  /** Aborts at the step's `timeout` or when the run is cancelled. */
  readonly signal: AbortSignal;
}

/**
 * An action or compensation: resolves when its effect is done, rejects when it failed (an error
 * with `retryable: false` is not retried). Called again with the same idempotency key after a
 * timeout or a crash, so it must apply its effect at most once per key.
 */
export type SagaCall<I> = (ctx: SagaStepContext<I>) => Promise<unknown>;

/** One step of a saga. */
export interface SagaStep<I> {
  readonly name: string;
  /** Does the step; a rejection is retried (unless the error says `retryable: false`), then the saga compensates. */
  readonly action: SagaCall<I>;
  /** Undoes it; retried until `retry.timeoutMs` too. Optional: a step with nothing to undo. */
  readonly compensate?: SagaCall<I>;
  /** Longest one attempt may take (ms). Default 10 s. */
  readonly timeoutMs?: number;
  /** Backoff between attempts and how long to keep trying (`timeoutMs`, default 30 s). */
  readonly retry?: RetryPolicy;
}

/** Options of {@link saga}. */
export interface SagaOptions<I> {
  /** The saga's id (a field, fields or a function): keys the log and the idempotency keys. */
  readonly id: KeySelector<I>;
  readonly steps: readonly SagaStep<I>[];
  /** Sagas run at once (different ids; one id's records run one after another). Default 8. */
  readonly concurrency?: number;
  /** A file for the durable saga log (see the module comment). Default none: checkpointed state only. */
  readonly log?: string;
  /** Ended sagas remembered, to re-emit their outcome when their record is replayed. Default 100000. */
  readonly remember?: number;
  /** Called once when the operator closes: releases what the calls hold (connection pools, producers). */
  readonly release?: () => Promise<void>;
}

/** The record a saga emits when it ends. */
export interface SagaOutcome<I> {
  readonly sagaId: string;
  readonly status: 'completed' | 'compensated' | 'failed';
  /** The step that failed (`compensated`, `failed`). */
  readonly step?: string;
  readonly error?: string;
  /** `failed`: the compensation that failed. */
  readonly compensation?: string;
  readonly record: I;
}

/** A saga's progress as logged. */
interface Progress {
  /** Steps whose action is done, from the first. */
  done: number;
  /** Set once compensating: the failed step and its error. */
  failed?: { step: string; error: string };
  /** Steps undone, counted from the last done one back. */
  undone: number;
  end?: Omit<SagaOutcome<unknown>, 'record' | 'sagaId'>;
}

type LogEntry =
  | { s: string; e: 'done'; n: number }
  | { s: string; e: 'fail'; step: string; error: string }
  | { s: string; e: 'undone'; n: number }
  | { s: string; e: 'end'; o: NonNullable<Progress['end']> };

const DEFAULT_TIMEOUT = 10_000;
const DEFAULT_GIVE_UP = 30_000;

/**
 * Runs a saga per record; see the module comment.
 *
 * @example
 * stream.via(saga<Order>({
 *   id: 'orderId', log: '.sluice/orders/saga.log',
 *   steps: [
 *     { name: 'reserve', action: (s) => reserve(s.record, s.idempotencyKey), compensate: (s) => release(s.record, s.idempotencyKey) },
 *     { name: 'charge', action: (s) => charge(s.record, s.idempotencyKey), compensate: (s) => refund(s.record, s.idempotencyKey) },
 *   ],
 * }));
 */
export function saga<I>(options: SagaOptions<I>): Operator<I, SagaOutcome<I>> {
  const { steps } = options;
  if (steps.length === 0) throw new SluiceError(ErrorCode.CONFIG, 'saga: give at least one step');
  const names = new Set(steps.map((s) => s.name));
  if (names.size !== steps.length) throw new SluiceError(ErrorCode.CONFIG, 'saga: step names must differ');
  const remember = options.remember ?? 100_000;
  const idOf = keyFunction(options.id);
  const sagaIdOf = (r: I) => String(idOf(r));
  let progress = new Map<string, Progress>();
  let ended: string[] = [];
  /** Log lines waiting for the next write, with their writers' callbacks. */
  let pending: { line: string; done: () => void; fail: (err: unknown) => void }[] = [];
  let writing = false;
  let handle: FileHandle | undefined;

  const apply = (e: LogEntry) => {
    let p = progress.get(e.s);
    if (p === undefined) {
      p = { done: 0, undone: 0 };
      progress.set(e.s, p);
    }
    if (e.e === 'done') p.done = e.n;
    else if (e.e === 'fail') p.failed = { step: e.step, error: e.error };
    else if (e.e === 'undone') p.undone = e.n;
    else {
      p.end = e.o;
      ended.push(e.s);
      while (ended.length > remember) progress.delete(ended.shift() as string);
    }
  };
  /**
   * Writes the pending lines, in order, one append and one fsync for all the lines that came
   * while the previous write was under way (group commit: concurrent sagas share an fsync).
   */
  const writeLog = async (file: string) => {
    writing = true;
    while (pending.length > 0) {
      const group = pending;
      pending = [];
      try {
        handle ??= await openFile(file, 'a');
        await handle.appendFile(group.map((g) => g.line).join(''));
        await handle.datasync();
        for (const g of group) g.done();
      } catch (err) {
        for (const g of group) g.fail(err);
      }
    }
    writing = false;
  };
  /** Applies `e` and, with a log file, resolves once it is appended and fsynced. */
  const record = async (e: LogEntry) => {
    apply(e);
    const file = options.log;
    if (file === undefined) return;
    await new Promise<void>((done, fail) => {
      pending.push({ line: `${JSON.stringify(e)}\n`, done, fail });
      if (!writing) void writeLog(file);
    });
  };

  const attempt = async (
    fn: (ctx: SagaStepContext<I>) => Promise<unknown>,
    step: SagaStep<I>,
    base: { record: I; sagaId: string; idempotencyKey: string },
    signal: AbortSignal,
    what: string,
  ) =>
    retrying(
      async (n) => {
        const timeout = AbortSignal.timeout(step.timeoutMs ?? DEFAULT_TIMEOUT);
        const both = AbortSignal.any([signal, timeout]);
        try {
          return await fn({ ...base, step: step.name, attempt: n, signal: both });
        } catch (err) {
          if (timeout.aborted && !signal.aborted)
            throw new SluiceError(
              ErrorCode.STAGE,
              `timed out after ${step.timeoutMs ?? DEFAULT_TIMEOUT} ms`,
              {},
              { cause: err, retryable: true },
            );
          throw err;
        }
      },
      {
        what,
        signal,
        minDelayMs: step.retry?.minDelayMs ?? 100,
        maxDelayMs: step.retry?.maxDelayMs ?? 2000,
        timeoutMs: step.retry?.timeoutMs ?? DEFAULT_GIVE_UP,
        retryable: (err) => (err as { retryable?: unknown } | null)?.retryable !== false,
      },
    );

  const run = async (r: I, sagaId: string, signal: AbortSignal): Promise<SagaOutcome<I>> => {
    const p = progress.get(sagaId) ?? { done: 0, undone: 0 };
    if (p.end !== undefined) return { sagaId, ...p.end, record: r } as SagaOutcome<I>;
    const base = (step: SagaStep<I>, compensate: boolean) => ({
      record: r,
      sagaId,
      idempotencyKey: `${sagaId}:${step.name}${compensate ? ':compensate' : ''}`,
    });
    let done = p.done;
    let failed = p.failed;
    while (failed === undefined && done < steps.length) {
      const step = steps[done] as SagaStep<I>;
      try {
        await attempt(
          step.action,
          step,
          base(step, false),
          signal,
          `saga \`${sagaId}\` step \`${step.name}\``,
        );
      } catch (err) {
        if (signal.aborted) throw err;
        failed = { step: step.name, error: errorMessage(err) };
        await record({ s: sagaId, e: 'fail', ...failed });
        break;
      }
      done++;
      await record({ s: sagaId, e: 'done', n: done });
    }
    let end: NonNullable<Progress['end']>;
    if (failed === undefined) end = { status: 'completed' };
    else {
      end = { status: 'compensated', step: failed.step, error: failed.error };
      // Undo the steps done, last first; `undone` of them were undone before a restart.
      for (let i = done - 1 - (progress.get(sagaId)?.undone ?? 0); i >= 0; i--) {
        const step = steps[i] as SagaStep<I>;
        if (step.compensate !== undefined) {
          try {
            await attempt(
              step.compensate,
              step,
              base(step, true),
              signal,
              `saga \`${sagaId}\` compensating \`${step.name}\``,
            );
          } catch (err) {
            if (signal.aborted) throw err;
            end = {
              status: 'failed',
              step: failed.step,
              error: failed.error,
              compensation: `${step.name}: ${errorMessage(err)}`,
            };
            break;
          }
        }
        await record({ s: sagaId, e: 'undone', n: done - i });
      }
    }
    await record({ s: sagaId, e: 'end', o: end });
    return { sagaId, ...end, record: r } as SagaOutcome<I>;
  };

  // One saga id at a time, in order; different ids concurrently: `serial` keyed by the id.
  const inner = serial<I, never>({
    key: (r) => sagaIdOf(r),
    concurrency: options.concurrency ?? 8,
    fn: (r, s) => run(r, s.key, s.signal),
  });

  return {
    async open(ctx) {
      await inner.open?.(ctx);
      const file = options.log;
      if (file === undefined) return;
      await mkdir(dirname(file), { recursive: true });
      const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return '';
        throw err;
      });
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          apply(JSON.parse(line) as LogEntry);
        } catch {
          // A line cut short by a crash mid-append: its transition was not acknowledged.
        }
      }
      // Compact: the entries that rebuild the current progress, written atomically.
      const lines: string[] = [];
      for (const [s, p] of progress) {
        if (p.end !== undefined) lines.push(JSON.stringify({ s, e: 'end', o: p.end }));
        else {
          if (p.done > 0) lines.push(JSON.stringify({ s, e: 'done', n: p.done }));
          if (p.failed !== undefined) lines.push(JSON.stringify({ s, e: 'fail', ...p.failed }));
          if (p.undone > 0) lines.push(JSON.stringify({ s, e: 'undone', n: p.undone }));
        }
      }
      await writeFile(`${file}.tmp`, lines.map((l) => `${l}\n`).join(''));
      await rename(`${file}.tmp`, file);
    },
    process: (batch, out) => inner.process(batch, out as never),
    async close() {
      try {
        await inner.close?.();
        await handle?.close();
        handle = undefined;
      } finally {
        await options.release?.();
      }
    },
    snapshot: () => ({ version: 1, progress, ended }),
    restore(state) {
      const s = state as { version?: number; progress?: unknown; ended?: unknown } | undefined;
      if (s?.version !== 1 || !(s.progress instanceof Map) || !Array.isArray(s.ended))
        throw new SluiceError(
          ErrorCode.STAGE,
          'cannot restore saga: the snapshot is not a saga snapshot (version 1)',
        );
      if (options.log !== undefined) return; // the log file is newer than any checkpoint
      progress = s.progress as Map<string, Progress>;
      ended = s.ended as string[];
    },
  };
}

/**
 * An action or compensation that calls `url` over HTTP with the record as its JSON body and the
 * idempotency key in an `Idempotency-Key` header. A 2xx succeeds; a 408, 429, 5xx, a network error
 * or a timeout is retried; any other status fails at once.
 *
 * @example
 * { name: 'charge', action: httpCall({ url: 'http://payments/charges' }), compensate: httpCall({ url: 'http://payments/refunds' }) }
 */
export function httpCall<I>(options: {
  url: string;
  method?: string;
  headers?: Readonly<Record<string, string>>;
}): SagaCall<I> {
  return async (s: SagaStepContext<I>): Promise<unknown> => {
    let res: Response;
    try {
      res = await fetch(options.url, {
        method: options.method ?? 'POST',
        headers: {
          'content-type': 'application/json',
          ...options.headers,
          'idempotency-key': s.idempotencyKey,
        },
        body: JSON.stringify(s.record, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
        signal: s.signal,
      });
    } catch (err) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `${options.method ?? 'POST'} ${options.url}: ${errorMessage(err)}`,
        {},
        { cause: err, retryable: true },
      );
    }
    const text = await res.text();
    if (res.ok) return text;
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    throw new SluiceError(
      ErrorCode.STAGE,
      `${options.method ?? 'POST'} ${options.url}: HTTP ${res.status} ${text.slice(0, 200)}`,
      {},
      { retryable },
    );
  };
}
