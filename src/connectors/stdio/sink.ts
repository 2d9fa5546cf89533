/**
 * The `stdout` sink: writes records to standard output (or any writable stream) as JSON
 * Lines, CSV or plain lines, one write per batch, awaiting each write (backpressure).
 */
import type { Writable } from 'node:stream';
import { type EncodedSink, encodedBytes } from '../../core/encoded.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch } from '../../core/message.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { type FormatEncodeOptions, formatEncoder } from '../../formats/formats.ts';
import type { FileFormat } from '../../io/read.ts';
import { encodeRecords, TextScratch } from '../../io/write.ts';

/** Options of {@link stdoutSink}: the format and the CSV writer's options (flat, as in YAML). */
export interface StdoutSinkOptions extends FormatEncodeOptions {
  /** How records become bytes. */
  format: FileFormat;
  /** The stream to write. Default `process.stdout` (tests pass their own). */
  stream?: Writable | undefined;
}

/** Error context `reason` of the error thrown when the reader of stdout went away. */
export const READER_GONE = 'reader-gone';

/** A {@link Sink} writing standard output; see {@link stdoutSink}. */
export interface StdoutSink extends Sink<unknown>, EncodedSink {
  /** True once the reader closed the pipe (EPIPE); nothing more is written. */
  readonly readerGone: boolean;
}

/**
 * A sink writing standard output.
 *
 * When the reader closes the pipe (`sluice run … | head`), the write fails with EPIPE: the
 * sink then stops writing and fails the stage with a `SLUICE_CANCELLED` error whose context
 * has `reason: 'reader-gone'` — the run ends at once instead of producing output nobody
 * reads, and a CLI can exit quietly on it. The stream's `error` event is handled while the
 * sink is open, so an EPIPE never crashes the process.
 *
 * @example
 * new Pipeline('cat').from(source).to(stdoutSink({ format: 'jsonl' }));
 */
export function stdoutSink(options: StdoutSinkOptions): StdoutSink {
  const encoder = formatEncoder(options.format, options);
  const scratch = new TextScratch();
  let stream: Writable | undefined;
  let ctx: StageContext | undefined;
  let gone = false;
  let failure: Error | undefined;
  const onError = (err: Error) => {
    if ((err as { code?: string }).code === 'EPIPE') gone = true;
    else failure ??= err;
  };
  const readerGone = (err?: unknown) =>
    new SluiceError(
      ErrorCode.CANCELLED,
      'standard output was closed by its reader (EPIPE, e.g. `| head`); stopping the run',
      { reason: READER_GONE },
      err === undefined ? undefined : { cause: err },
    );
  const check = () => {
    if (gone) throw readerGone();
    if (failure) throw wrapError('writing standard output', failure);
  };

  const writesEncoded = options.format === 'jsonl' ? 'jsonl' : undefined;
  return {
    durableOnBarrier: true,
    // A source fused with this sink hands over its JSON Lines as bytes (see `core/encoded.ts`).
    writesEncoded,
    get readerGone() {
      return gone;
    },

    open(context) {
      ctx = context;
      stream = options.stream ?? process.stdout;
      stream.on('error', onError);
      const header = encoder.header?.();
      if (header !== undefined && header.length > 0) stream.write(header);
    },

    async write(batch: Batch<unknown>) {
      check();
      const s = stream;
      if (s === undefined) throw new SluiceError(ErrorCode.STAGE, 'standard output is not open');
      const pre = encodedBytes(batch, writesEncoded);
      const encoded = pre ?? encodeRecords(encoder, options.format, batch.records, ctx, batch.meta);
      if (encoded.length === 0) return;
      // Only for the process's own stdout, whose write callback means it holds no reference any
      // more: another stream (a PassThrough, a test's) may keep chunks.
      const data =
        typeof encoded === 'string' && options.stream === undefined ? scratch.encode(encoded) : encoded;
      try {
        await new Promise<void>((resolve, reject) => {
          s.write(data, (err) => (err ? reject(err) : resolve()));
        });
        // As for the scratch buffer: only the process's own stdout is done with the bytes now.
        if (pre !== undefined && options.stream === undefined) batch.encoded?.release?.();
      } catch (err) {
        if ((err as { code?: string }).code === 'EPIPE' || gone) {
          gone = true;
          throw readerGone(err);
        }
        throw wrapError('writing standard output', err);
      }
    },

    async finish() {
      check();
    },

    close() {
      stream?.off('error', onError);
      // Late EPIPEs (after the last write) must not become uncaught errors either.
      if (gone) stream?.on('error', () => {});
      stream = undefined;
    },
  };
}
