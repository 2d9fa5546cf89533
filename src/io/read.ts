/**
 * The input half of the byte connectors (file, stdin): a stream of byte chunks through a
 * format's decoder into batches of records with their positions; invalid records go to the
 * dead-letter output.
 */
import { cancelledError, ErrorCode, isCancellation, SluiceError, wrapError } from '../core/errors.ts';
import type { Batch, RecordMeta } from '../core/message.ts';
import type { Emitter, SourceContext } from '../core/stage.ts';
import type { Codec } from '../formats/compression/index.ts';
import type { DecodeSink, RecordDecoder } from '../formats/format.ts';
import type { FormatName } from '../formats/formats.ts';
import { type PositionOf, positionedBatch } from './positioned-batch.ts';

/** The formats the byte connectors (file, stdio) read and write. */
export type FileFormat = FormatName;

/**
 * One step from a byte stream to another byte stream, e.g. gunzip. It must end when its
 * input ends and may keep the chunks it is given (every chunk is a fresh buffer).
 */
export type ByteTransform = (input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

/** How a source learns a file's compression: `auto` (magic bytes, then extension), or named. */
export type CompressionChoice = Codec | 'auto';

/**
 * Default size of one read: 64 KiB. Measured (bench/README.md, csv-memory): 256 KiB reads made the
 * CSV decoder's per-window strings large objects, which V8 frees only in full collections, and
 * peak RSS rose by ~100 MB at no gain in speed.
 */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Default records per emitted batch. */
export const DEFAULT_BATCH_SIZE = 1024;

/** Offsets a batch's position list is made for before it grows (a config may set `batchSize` high). */
const FIRST_POSITIONS = 1024;

/** Options of {@link pumpRecords}. */
export interface PumpOptions {
  /** Records per batch (≥ 1). */
  batchSize: number;
  /** Builds `meta.position` of a record from its line and byte offset. */
  position: PositionOf;
  /** Fail the run with the first invalid record's error instead of dead-lettering it. Default false. */
  strict?: boolean | undefined;
  /**
   * Called just before each batch is emitted with where the input stands after its last record:
   * the `line`/`offset` where the next record starts, or undefined for "the decoder's
   * `position()` now" (the batch ends the decoded chunk). Checkpoints need this position.
   */
  emitted?: ((next: { line: number; offset: number } | undefined) => void) | undefined;
}

/** A dead letter decoded but not handed on yet, and the byte offset where its row starts. */
interface PendingLetter {
  readonly offset: number;
  readonly raw: string;
  readonly error: unknown;
  readonly meta: RecordMeta;
}

/**
 * Decodes `bytes` with `decoder` and emits batches of at most `batchSize` records, each
 * with its meta (`{ source: ctx.name, position }`, built when a stage first reads it; see
 * `positioned-batch.ts`) and the `origin` `{ source: ctx.name }`. Invalid records go to `ctx.deadLetter` (their bounded raw bytes as text, with
 * the error and their position), or, with `strict`, fail the run with that error. A partial
 * batch is emitted after every chunk, so slow input (a terminal) is not held back.
 *
 * Returns when the input ends (after decoding a last line without newline) or, without
 * decoding a partial last line, when `ctx.stopSignal` aborts between chunks. Throws a
 * cancellation error when `ctx.signal` aborts.
 */
export async function pumpRecords(
  bytes: AsyncIterable<Uint8Array>,
  decoder: RecordDecoder<unknown>,
  out: Emitter<unknown>,
  ctx: SourceContext,
  options: PumpOptions,
): Promise<void> {
  const { batchSize, position } = options;
  const strict = options.strict ?? false;
  const source = ctx.name;
  const ready: Batch<unknown>[] = [];
  // Where each ready batch's first record starts (line, offset), for `emitted`.
  const starts: number[] = [];
  let records: unknown[] = [];
  // The byte offset of each record of `records`, and its line: `firstLine + i` for the i-th
  // unless `lines` lists them (a record spanning lines, a skipped blank line). Plain arrays made
  // at their size: a typed array per batch cost twice as much (its backing store is zeroed and
  // counted as external memory).
  let offsets: number[] = new Array(Math.min(batchSize, FIRST_POSITIONS));
  let lines: number[] | undefined;
  let firstLine = 0;
  const cut = (): void => {
    const n = records.length;
    if (n === 0) return;
    starts.push(firstLine, offsets[0] as number);
    offsets.length = n;
    ready.push(positionedBatch(records, source, { firstLine, lines, offsets }, position));
    records = [];
    offsets = new Array(Math.min(batchSize, FIRST_POSITIONS));
    lines = undefined;
  };
  const sink: DecodeSink<unknown> = {
    record(value, line, offset) {
      const n = records.length;
      if (n === 0) firstLine = line;
      else if (lines === undefined && line !== firstLine + n)
        lines = Array.from({ length: n }, (_, i) => firstLine + i);
      if (lines !== undefined) lines[n] = line;
      offsets[n] = offset;
      records.push(value);
      if (n + 1 >= batchSize) cut();
    },
    invalid(error, raw, line, offset) {
      if (strict) throw error;
      letters.push({
        offset,
        raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'),
        error,
        meta: { source, position: position(line, offset) },
      });
    },
  };
  const emitted = options.emitted;
  // Each batch goes out with the dead letters before the next batch's first record, because the
  // position `emitted` gives for it is that record's start, past those letters' lines: a
  // checkpoint barrier after the batch then covers exactly the letters sent (the dlq must be
  // exactly-once). A letter sent earlier would be sent again by a run resuming before its line;
  // one sent later (with the next batch, as this did before) would be lost by a run resuming
  // after it. Letters after the chunk's last record go with its last batch, whose position
  // (the decoder's, at the chunk's end) covers them.
  const letters: PendingLetter[] = [];
  let sent = 0;
  const sendLetters = (before: number): void => {
    while (sent < letters.length && (letters[sent] as PendingLetter).offset < before) {
      const l = letters[sent++] as PendingLetter;
      ctx.deadLetter(l.raw, l.error, l.meta);
    }
  };
  const flush = async (): Promise<void> => {
    cut();
    for (let i = 0; i < ready.length; i++) {
      const last = i === ready.length - 1;
      sendLetters(last ? Number.POSITIVE_INFINITY : (starts[2 * i + 3] as number));
      if (emitted !== undefined)
        emitted(
          last ? undefined : { line: starts[2 * i + 2] as number, offset: starts[2 * i + 3] as number },
        );
      await out.emit(ready[i] as Batch<unknown>);
    }
    if (ready.length === 0 && sent < letters.length) {
      // Only dead letters: they are handed on now, so the position moves past their lines.
      sendLetters(Number.POSITIVE_INFINITY);
      emitted?.(undefined);
    }
    ready.length = 0;
    starts.length = 0;
    letters.length = 0;
    sent = 0;
  };
  for await (const chunk of bytes) {
    if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    decoder.write(chunk, sink);
    await flush();
    if (ctx.stopSignal.aborted) return;
  }
  if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
  decoder.end(sink);
  await flush();
}

/**
 * The error a reading source fails with: what it was reading, then the cause. Cancellation and
 * the runtime's own verdicts (no dlq, error rate) pass through unchanged.
 */
export function readError(doing: string, err: unknown, context: Record<string, unknown>): unknown {
  if (isCancellation(err)) return err;
  if (err instanceof SluiceError && (err.code === ErrorCode.NO_DLQ || err.code === ErrorCode.ERROR_RATE))
    return err;
  return wrapError(doing, err, context);
}
