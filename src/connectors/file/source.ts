/**
 * The `file` source: reads a file as bytes, decodes them into records with a line-based
 * format and emits batches with each record's origin (`meta.position` = file, line, byte
 * offset). Invalid records go to the dead-letter output; the run goes on.
 *
 * Reading is three small steps, so a step can be slotted in between later (a decompression
 * codec from `src/formats/compression`):
 *
 *   bytes of the file ({@link readFileChunks}) → optional {@link ByteTransform} → decoder
 *   ({@link pumpRecords}) → batches.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Batch, Position, RecordMeta } from '../../core/batch.ts';
import { cancelledError, ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import type { DecodeSink, RecordDecoder } from '../../formats/format.ts';
import { jsonlDecoder } from '../../formats/jsonl.ts';
import { DEFAULT_MAX_LINE_BYTES, linesDecoder } from '../../formats/lines.ts';

/** The formats the line-based sources read. */
export type LineFormat = 'lines' | 'jsonl';

/**
 * One step from a byte stream to another byte stream, e.g. gunzip. It must end when its
 * input ends and may keep the chunks it is given (every chunk is a fresh buffer).
 */
export type ByteTransform = (input: AsyncIterable<Uint8Array>) => AsyncIterable<Uint8Array>;

/** Default size of one read: 256 KiB. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/** Default records per emitted batch. */
export const DEFAULT_BATCH_SIZE = 1024;

/** Options of a line-format decoder. */
export interface LineFormatOptions {
  /** Longest line accepted, in bytes. Default 16 MiB. */
  maxLineBytes?: number | undefined;
  /** `lines` only: drop empty lines. Default false. */
  skipBlank?: boolean | undefined;
}

/**
 * A fresh decoder for `format`.
 *
 * @example
 * const decoder = lineFormatDecoder('jsonl', { maxLineBytes: 1 << 20 });
 */
export function lineFormatDecoder(
  format: LineFormat,
  options: LineFormatOptions = {},
): RecordDecoder<unknown> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (format === 'jsonl') return jsonlDecoder({ maxLineBytes });
  if (format === 'lines') return linesDecoder({ maxLineBytes, skipBlank: options.skipBlank ?? false });
  throw new SluiceError(ErrorCode.CONFIG, `unknown format \`${String(format)}\`; use \`lines\` or \`jsonl\``);
}

/** Options of {@link pumpRecords}. */
export interface PumpOptions {
  /** Records per batch (≥ 1). */
  batchSize: number;
  /** Builds `meta.position` of a record from its line and byte offset. */
  position: (line: number, offset: number) => Position;
}

/**
 * Decodes `bytes` with `decoder` and emits batches of at most `batchSize` records, each
 * with its meta. Invalid records go to `ctx.deadLetter` (as text, with the error and their
 * position). A partial batch is emitted after every chunk, so slow input (a terminal) is
 * not held back.
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
  const source = ctx.name;
  const ready: Batch<unknown>[] = [];
  let records: unknown[] = [];
  let meta: RecordMeta[] = [];
  const cut = (): void => {
    if (records.length === 0) return;
    ready.push({ kind: 'batch', records, meta });
    records = [];
    meta = [];
  };
  const sink: DecodeSink<unknown> = {
    record(value, line, offset) {
      records.push(value);
      meta.push({ source, position: position(line, offset) });
      if (records.length >= batchSize) cut();
    },
    invalid(error, raw, line, offset) {
      ctx.deadLetter(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'), error, {
        source,
        position: position(line, offset),
      });
    },
  };
  const flush = async (): Promise<void> => {
    cut();
    for (let i = 0; i < ready.length; i++) await out.emit(ready[i] as Batch<unknown>);
    ready.length = 0;
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
 * Reads `file` from its current position in chunks of `chunkBytes`, each a fresh buffer
 * (a later step may keep it). Calls `onRead` with each chunk's size.
 */
export async function* readFileChunks(
  file: FileHandle,
  chunkBytes: number = DEFAULT_CHUNK_BYTES,
  onRead?: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  for (;;) {
    const buf = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await file.read(buf, 0, chunkBytes, null);
    if (bytesRead === 0) return;
    onRead?.(bytesRead);
    yield bytesRead === chunkBytes ? buf : buf.subarray(0, bytesRead);
  }
}

/** Options of {@link fileSource}. */
export interface FileSourceOptions extends LineFormatOptions {
  /** The file to read (relative to the working directory; the spec resolves it against the pipeline's folder). */
  path: string;
  /** How the bytes become records. */
  format: LineFormat;
  /** Records per batch. Default 1024. */
  batchSize?: number | undefined;
  /** Bytes per read. Default 256 KiB. */
  chunkBytes?: number | undefined;
  /** A step between the file's bytes and the decoder (e.g. decompression). Default none. */
  transform?: ByteTransform | undefined;
}

/** A {@link Source} reading a file; see {@link fileSource}. */
export interface FileSource extends Source<unknown> {
  /** Where a restart would resume: the file, lines consumed and the byte offset after them. */
  position(): Position;
  /** Bytes read of the file's size at open. */
  progress(): { done: number; total?: number; unit: 'bytes' };
}

/**
 * A source reading `path` with a line-based format.
 *
 * - `open` opens the file and fails with a clear `SLUICE_STAGE` error naming the path when it
 *   does not exist, is a directory or cannot be read.
 * - `run` emits batches whose meta is `{ source: <stage>, position: { file, line, offset } }`;
 *   a line that cannot be decoded goes to the dead-letter output as text.
 * - `ctx.stopSignal` stops reading between chunks (what was read is emitted);
 *   `ctx.signal` cancels.
 * - `close` closes the file whatever happened.
 *
 * @example
 * new Pipeline('copy').from(fileSource({ path: 'in.jsonl', format: 'jsonl' })).to(sink);
 */
export function fileSource(options: FileSourceOptions): FileSource {
  const { path, format } = options;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SluiceError(ErrorCode.CONFIG, `batchSize must be a whole number ≥ 1, got ${batchSize}`, {
      file: path,
    });
  }
  const decoder = lineFormatDecoder(format, options);
  let handle: FileHandle | undefined;
  let size: number | undefined;
  let bytesRead = 0;

  return {
    async open() {
      try {
        handle = await open(path, 'r');
        const stat = await handle.stat();
        if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        size = stat.size;
      } catch (err) {
        throw openError(path, err);
      }
    },

    async run(out, ctx) {
      if (handle === undefined)
        throw new SluiceError(ErrorCode.STAGE, `file \`${path}\` is not open`, { file: path });
      let bytes: AsyncIterable<Uint8Array> = readFileChunks(handle, chunkBytes, (n) => {
        bytesRead += n;
      });
      if (options.transform) bytes = options.transform(bytes);
      try {
        await pumpRecords(bytes, decoder, out, ctx, {
          batchSize,
          position: (line, offset) => ({ file: path, line, offset }),
        });
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        throw wrapError(`reading file \`${path}\``, err, { file: path });
      }
    },

    position() {
      const p = decoder.position();
      return { file: path, line: p.line, offset: p.offset };
    },

    progress() {
      return size === undefined
        ? { done: bytesRead, unit: 'bytes' }
        : { done: bytesRead, total: size, unit: 'bytes' };
    },

    async close() {
      const h = handle;
      handle = undefined;
      await h?.close().catch(() => {});
    },
  };
}

function openError(path: string, err: unknown): SluiceError {
  const code = (err as { code?: string } | undefined)?.code;
  const why =
    code === 'ENOENT'
      ? 'does not exist; check `path` (a relative path resolves against the pipeline file’s folder)'
      : code === 'EISDIR'
        ? 'is a directory; `path` must name a file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read (permission denied)'
          : undefined;
  if (why === undefined) return wrapError(`opening file \`${path}\``, err, { file: path });
  return new SluiceError(ErrorCode.STAGE, `file \`${path}\` ${why}`, { file: path }, { cause: err });
}
