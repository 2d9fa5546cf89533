/**
 * The runtime's side of the dead-letter guarantee: a dead letter that the `dlq` sink cannot
 * write (a record nesting too deep for its encoder, one its destination refuses) is reduced to
 * a {@link minimalDeadLetter} — position, error and the first 4 KiB of the record as text — and
 * written once more; only when even that fails does the run fail, with an error saying which
 * letter and why. The guarantee holds for every sink used as the dlq, because it lies in how
 * the runtime drives the sink (see `Sink` and `DeadLetter` in `stage.ts`), not in the sinks.
 */
import { ErrorCode, errorMessage, isCancellation, SluiceError } from './errors.ts';
import type { Batch, Position, RecordMeta } from './message.ts';
import { cutText, PREVIEW_CHARS, previewRecord } from './nesting.ts';
import type { DeadLetter, Logger, Sink } from './stage.ts';

/** Longest error message kept in a minimal dead letter, in characters. */
const MESSAGE_CHARS = 1024;

/**
 * The smallest dead letter that still says what failed and where: the letter's stage, source,
 * position and time, its error's code and message (cut to 1 KiB) plus `dlqError`, why the dlq
 * could not write it as it was, and `record` as a preview text of at most 4 KiB (see
 * `previewRecord`), with `reduced: true`. `letter` is what the dlq sink was given; anything
 * else (a sink rejecting something that is no dead letter) is treated as the record of stage
 * `stage`. Never throws.
 *
 * @example
 * minimalDeadLetter(letter, err, 'dead', Date.now()).record; // '{"a":{"a":{"a":…' (≤ 4 KiB)
 */
export function minimalDeadLetter(
  letter: unknown,
  dlqError: unknown,
  stage: string,
  now: number,
): DeadLetter {
  const l = isDeadLetter(letter) ? letter : undefined;
  const error = l?.error;
  const position = l?.position === undefined ? undefined : flatPosition(l.position);
  return {
    error: {
      code: typeof error?.code === 'string' ? cutText(error.code, 64) : ErrorCode.RECORD,
      message: cutText(
        typeof error?.message === 'string' ? error.message : errorMessage(dlqError),
        MESSAGE_CHARS,
      ),
      dlqError: cutText(errorMessage(dlqError), MESSAGE_CHARS),
    },
    stage: typeof l?.stage === 'string' ? cutText(l.stage, 256) : stage,
    ...(typeof l?.source === 'string' ? { source: cutText(l.source, 256) } : {}),
    ...(position !== undefined ? { position } : {}),
    record: previewRecord(l === undefined ? letter : l.record, PREVIEW_CHARS),
    reduced: true,
    time: typeof l?.time === 'string' ? cutText(l.time, 64) : new Date(now).toISOString(),
  };
}

function isDeadLetter(v: unknown): v is DeadLetter {
  try {
    return (
      typeof v === 'object' &&
      v !== null &&
      typeof (v as DeadLetter).error === 'object' &&
      (v as DeadLetter).error !== null &&
      'record' in v
    );
  } catch {
    return false;
  }
}

/** A copy of `p` with only scalar values, strings cut to 1 KiB, or undefined when it has none. */
function flatPosition(p: unknown): Position | undefined {
  if (typeof p !== 'object' || p === null) return undefined;
  const out: Record<string, string | number | bigint | boolean> = {};
  let n = 0;
  try {
    for (const [k, v] of Object.entries(p)) {
      if (n++ >= 64) break;
      if (typeof v === 'string') out[cutText(k, 256)] = cutText(v, MESSAGE_CHARS);
      else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean')
        out[cutText(k, 256)] = v;
    }
  } catch {
    return undefined;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * True when `err`, thrown by a sink's `write`, is about the records rather than the
 * destination: a `SLUICE_RECORD` or `SLUICE_PARSE` error, or what encoding a hostile value
 * throws (`RangeError`: too deep or too long; `TypeError`: circular, a bigint). Writing smaller
 * letters may then succeed; after an I/O error it would not.
 */
export function isRecordError(err: unknown): boolean {
  if (err instanceof SluiceError) return err.code === ErrorCode.RECORD || err.code === ErrorCode.PARSE;
  return err instanceof RangeError || err instanceof TypeError;
}

/**
 * Drives the `dlq` sink so that a letter it cannot write is written reduced instead. The runtime
 * routes the dlq sink's writes through {@link write}, its `StageContext.deadLetter` through
 * {@link reject} and, after each call into it, calls {@link retry}.
 */
export class DlqSinkGuard {
  private readonly sink: Sink;
  private readonly stage: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private pending: DeadLetter[] = [];
  private pendingMeta: (RecordMeta | undefined)[] = [];
  /** Set while writing reduced letters: a rejection then is final. */
  private retrying = false;

  /**
   * @param sink the dlq sink
   * @param stage its stage name, in errors and logs
   * @param log where a reduction is reported (one warning per batch of reduced letters)
   * @param now the run's clock, for letters that have no time
   */
  constructor(sink: Sink, stage: string, log: Logger, now: () => number) {
    this.sink = sink;
    this.stage = stage;
    this.log = log;
    this.now = now;
  }

  /**
   * The dlq sink's `ctx.deadLetter`: keeps `letter` reduced, for {@link retry} to write after
   * the sink's current call. Throws (failing the run) when the letter was already reduced.
   */
  reject(letter: unknown, error: unknown, meta: RecordMeta | undefined): void {
    if (this.retrying) throw this.finalError(letter, error);
    this.pending.push(minimalDeadLetter(letter, error, this.stage, this.now()));
    this.pendingMeta.push(meta);
  }

  /**
   * Writes `batch` to the dlq sink. When the sink throws an error about the records (see
   * {@link isRecordError}), writes the batch again once with every letter reduced; a sink that
   * throws such an error must not have written any of the batch, else some letters are written
   * twice (the dlq is at-least-once). Any other error, or a second failure, is thrown.
   */
  async write(batch: Batch<unknown>): Promise<void> {
    try {
      await this.sink.write(batch);
    } catch (err) {
      if (isCancellation(err) || !isRecordError(err)) throw err;
      this.pending = [];
      this.pendingMeta = [];
      for (let i = 0; i < batch.records.length; i++) this.reject(batch.records[i], err, batch.meta?.[i]);
    }
  }

  /** Writes the letters {@link reject} reduced since the last call, once; see the module comment. */
  async retry(): Promise<void> {
    if (this.pending.length === 0) return;
    const records = this.pending;
    const meta = this.pendingMeta;
    this.pending = [];
    this.pendingMeta = [];
    const first = records[0] as DeadLetter;
    this.log.warn(
      `The dlq \`${this.stage}\` could not write ${records.length} dead letter${records.length === 1 ? '' : 's'} as ${records.length === 1 ? 'it was' : 'they were'}; wrote ${records.length === 1 ? 'it' : 'them'} reduced to position, error and the first 4 KiB of the record`,
      { stage: this.stage, reason: first.error.dlqError },
    );
    this.retrying = true;
    try {
      await this.sink.write({ kind: 'batch', records, meta });
    } catch (err) {
      if (isCancellation(err)) throw err;
      throw this.finalError(first, err);
    } finally {
      this.retrying = false;
    }
  }

  private finalError(letter: unknown, err: unknown): SluiceError {
    const l = isDeadLetter(letter) ? letter : undefined;
    const where =
      l === undefined
        ? ''
        : ` (from stage \`${l.stage}\`${l.position !== undefined ? ` at ${previewRecord(l.position, 256)}` : ''})`;
    return new SluiceError(
      ErrorCode.STAGE,
      `the dlq \`${this.stage}\` could not write a dead letter${where} even reduced to its position, error and the first 4 KiB of the record: ${cutText(errorMessage(err), MESSAGE_CHARS)}; fix the dlq output so it takes every record`,
      { stage: this.stage },
      { cause: err },
    );
  }
}
