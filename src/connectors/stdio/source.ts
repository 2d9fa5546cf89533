/**
 * The `stdin` source: reads standard input (or any readable byte stream) with a format
 * (`lines`, `jsonl`, `csv`), exactly like the `file` source but without a total size.
 */
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import type { EncodingSource } from '../../core/encoded.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';
import type { Source } from '../../core/stage.ts';
import { decompress } from '../../formats/compression/index.ts';
import { CsvJsonlTranscoder } from '../../formats/csv/transcode.ts';
import { csvDecodeOptions, type FormatDecodeOptions, formatDecoder } from '../../formats/formats.ts';
import {
  type ByteTransform,
  type CompressionChoice,
  DEFAULT_BATCH_SIZE,
  type FileFormat,
  pumpRecords,
  readError,
} from '../../io/read.ts';
import { pumpEncoded } from '../../io/read-encoded.ts';

/** Options of {@link stdinSource}: the format and its options (flat, as in YAML). */
export interface StdinSourceOptions extends FormatDecodeOptions {
  /** How the bytes become records. */
  format: FileFormat;
  /**
   * Compression of the input. Default `none`: `auto` would hold back the first line until ten bytes
   * arrived (to read a magic number), which an interactive terminal may never send.
   */
  compression?: CompressionChoice | undefined;
  /** Records per batch. Default 1024. */
  batchSize?: number | undefined;
  /** The byte stream to read. Default `process.stdin` (tests pass their own). */
  stream?: Readable | undefined;
  /** A step between the bytes and the decoder (e.g. decompression). Default none. */
  transform?: ByteTransform | undefined;
}

/** A {@link Source} reading standard input; see {@link stdinSource}. */
export interface StdinSource extends Source<unknown>, EncodingSource {
  /** Lines consumed and the byte offset after them (`{ stream: 'stdin', line, offset }`). */
  position(): Position;
  /** Bytes read so far (no total: a pipe has no known size). */
  progress(): { done: number; unit: 'bytes' };
}

/**
 * A source reading standard input. Each record's meta is
 * `{ source: <stage>, position: { stream: 'stdin', line, offset } }`; undecodable lines go to
 * the dead-letter output. A graceful stop or a cancel while waiting for input ends the wait
 * at once (the stream is destroyed: standard input is not read again in this process).
 * Under checkpoints it needs the write-ahead log (`readOnce`): a restart replays what the last
 * run read after its checkpoint from the log, then reads this process's standard input.
 *
 * @example
 * // cat events.jsonl | node app.ts
 * new Pipeline('cat').from(stdinSource({ format: 'jsonl' })).to(sink);
 */
export function stdinSource(options: StdinSourceOptions): StdinSource {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `batchSize must be a whole number ≥ 1, got ${batchSize}`);
  }
  const decoder = formatDecoder(options.format, options);
  const compression = options.compression ?? 'none';
  let bytesRead = 0;
  // Fused with a JSON Lines sink (see `encodeFor`): CSV rows go out as JSON Lines bytes.
  let transcoder: CsvJsonlTranscoder | undefined;

  return {
    encodeFor(target) {
      if (target !== 'jsonl' || options.format !== 'csv') return false;
      // The decoder's options: every one but the stream's own.
      const { format: _f, compression: _c, batchSize: _b, stream: _s, transform: _t, ...decode } = options;
      const csv = csvDecodeOptions(decode);
      if (CsvJsonlTranscoder.unsupported(csv) !== undefined) return false;
      transcoder = new CsvJsonlTranscoder(csv, batchSize);
      return true;
    },

    async run(out, ctx) {
      const stream = options.stream ?? process.stdin;
      // Waiting for input must end on stop or cancel: destroying the stream ends the wait.
      addAbortSignal(AbortSignal.any([ctx.signal, ctx.stopSignal]), stream);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for await (const chunk of stream) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          bytesRead += buf.length;
          yield buf;
        }
      }
      let bytes: AsyncIterable<Uint8Array> = chunks();
      if (compression !== 'none') bytes = decompress(bytes, { codec: compression, signal: ctx.signal });
      if (options.transform) bytes = options.transform(bytes);
      try {
        if (transcoder !== undefined) {
          await pumpEncoded(bytes, transcoder, out, ctx, {
            format: 'jsonl',
            strict: options.strict,
            position: (line, offset) => ({ stream: 'stdin', line, offset }),
          });
          return;
        }
        await pumpRecords(bytes, decoder, out, ctx, {
          batchSize,
          strict: options.strict,
          position: (line, offset) => ({ stream: 'stdin', line, offset }),
        });
      } catch (err) {
        if (ctx.stopSignal.aborted && !ctx.signal.aborted && isAbort(err)) return;
        throw readError('reading standard input', err, { stream: 'stdin' });
      }
    },
    readOnce: true,
    idleBarriers: true,
    restore() {
      // Standard input cannot be read again: what the last run read after its checkpoint comes
      // back from the write-ahead log (the runtime replays it before `run`; it refuses a
      // `readOnce` source under checkpoints without one), then this process's input goes on.
    },
    position() {
      const p = (transcoder ?? decoder).position();
      return { stream: 'stdin', line: p.line, offset: p.offset };
    },
    progress() {
      return { done: bytesRead, unit: 'bytes' };
    },
  };
}

function isAbort(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR')
  );
}
