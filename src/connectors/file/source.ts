/**
 * The `file` source: reads a file as bytes, decompresses them when the file is compressed,
 * decodes them into records (`lines`, `jsonl` or `csv`) and emits batches with each record's
 * origin (`meta.position` = file, line, byte offset). Invalid records go to the dead-letter
 * output; the run goes on.
 *
 * Reading is a chain of small steps over async iterables of byte chunks:
 *
 *   bytes of the file ({@link readFileChunks}) → decompression (`compression`, detected by magic
 *   bytes or extension) → optional {@link ByteTransform} → decoder ({@link pumpRecords}) → batches.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { EncodingSource } from '../../core/encoded.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';
import type { FieldUse, ProjectableSource } from '../../core/projection.ts';
import type { SplittableSource } from '../../core/split.ts';
import type { Source } from '../../core/stage.ts';
import { codecFromPath, detectCodec, MAGIC_BYTES } from '../../formats/compression/codecs.ts';
import { decompress } from '../../formats/compression/index.ts';
import { CsvJsonlTranscoder } from '../../formats/csv/transcode.ts';
import type { RecordDecoder } from '../../formats/format.ts';
import {
  csvDecodeOptions,
  type FormatDecodeOptions,
  formatDecoder,
  resumeOptions,
} from '../../formats/formats.ts';
import {
  type ByteTransform,
  type CompressionChoice,
  DEFAULT_BATCH_SIZE,
  DEFAULT_CHUNK_BYTES,
  type FileFormat,
  pumpRecords,
  readError,
} from '../../io/read.ts';
import { pumpEncoded } from '../../io/read-encoded.ts';
import { type FileResumePoint, resumePointOf, skipBytes } from './resume.ts';
import { WholeRecordReader } from './whole-records.ts';

/** Bytes per read of a regular file into reused buffers (see {@link ReadChunksOptions.readBytes}). */
const REUSED_READ_BYTES = 512 * 1024;

/** Options of {@link readFileChunks}. */
export interface ReadChunksOptions {
  /** Byte to start at; default: the file's current position (a pipe or terminal has no other). */
  from?: number | undefined;
  /** Bytes per read. Default 64 KiB. */
  chunkBytes?: number | undefined;
  /** Called with each chunk's size. */
  onRead?: ((bytes: number) => void) | undefined;
  /** Start the next read before a chunk is handed on (regular files only, see below). Default false. */
  readAhead?: boolean | undefined;
  /**
   * Read into the same two buffers over and over: a chunk is valid only until the consumer asks
   * for the next one. For consumers that copy what they keep ({@link RecordDecoder.borrowsChunks}).
   * Default false: every chunk is a fresh buffer.
   */
  reuseBuffers?: boolean | undefined;
  /**
   * With `reuseBuffers`: bytes per read (at least `chunkBytes`), handed on in chunks of at most
   * `chunkBytes` (fewer reads, each a round trip through libuv's thread pool; the consumer still
   * sees chunks of the usual size, so it emits batches as often; a multiple of `chunkBytes` cuts
   * no chunk short). Ignored without `reuseBuffers`. Default `chunkBytes`.
   */
  readBytes?: number | undefined;
}

/**
 * Reads `file` in chunks of `chunkBytes`, each a fresh buffer (a later step may keep it) unless
 * `reuseBuffers`, from byte `from` or from its current position.
 *
 * Why reuse: a fresh read buffer lives while the read waits and the rest of the pipeline runs, so
 * now and then one outlives two young-generation collections and is promoted; its native memory
 * then stays until a full collection, which a streaming job with a small, steady heap seldom
 * runs (measured on a CSV → stdout run: promoted Buffers grew 1 → 10 MiB over 7 GB, and RSS with them).
 *
 * With `readAhead`, the next read is started before a chunk is handed on, so the disk works
 * while the pipeline decodes (measured: a CSV → window job spent 16 % of its wall time idle,
 * waiting for reads). Only for regular files: a read of a pipe or terminal can block for ever,
 * and a read left pending would then hold the file open after the consumer stopped.
 */
export async function* readFileChunks(
  file: FileHandle,
  options: ReadChunksOptions = {},
): AsyncGenerator<Uint8Array> {
  const { onRead, readAhead = false, reuseBuffers = false } = options;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const readBytes = reuseBuffers ? Math.max(options.readBytes ?? chunkBytes, chunkBytes) : chunkBytes;
  // Reads run one at a time (the next starts once the previous one resolved), so `at` is exact.
  let at: number | null = options.from ?? null;
  // With `reuseBuffers`, reads alternate between two buffers: the one the consumer holds and the
  // one a read ahead fills.
  const buffers = reuseBuffers ? [Buffer.allocUnsafe(readBytes), Buffer.allocUnsafe(readBytes)] : [];
  let turn = 0;
  const readOne = async (): Promise<Buffer> => {
    const buf = reuseBuffers ? (buffers[turn++ & 1] as Buffer) : Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await file.read(buf, 0, readBytes, at);
    if (at !== null) at += bytesRead;
    return bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
  };
  let next: Promise<Buffer> | undefined;
  try {
    for (;;) {
      const chunk = await (next ?? readOne());
      next = undefined;
      if (chunk.length === 0) return;
      if (readAhead) {
        next = readOne();
        // Observed at once: a failure surfaces at the next `await`, not as an unhandled rejection.
        next.catch(() => {});
      }
      onRead?.(chunk.length);
      if (chunk.length <= chunkBytes) yield chunk;
      else for (let i = 0; i < chunk.length; i += chunkBytes) yield chunk.subarray(i, i + chunkBytes);
    }
  } finally {
    // A consumer that stops early: the read in flight finishes (a regular file's read does)
    // before the caller may close the file.
    if (next !== undefined) await next.catch(() => {});
  }
}

/** Options of {@link fileSource}: the file, how to read it, and its format's options (flat, as in YAML). */
export interface FileSourceOptions extends FormatDecodeOptions {
  /** The file to read (relative to the working directory; the spec resolves it against the pipeline's folder). */
  path: string;
  /** How the bytes become records. */
  format: FileFormat;
  /**
   * The file's compression. `auto` (default): a gzip, zstd, lz4 or snappy magic number, else the
   * extension (`.gz`, `.zst`, `.br`, `.sz`/`.snappy`, `.lz4`), else none. Brotli has no magic
   * number: name it or use the `.br` extension.
   */
  compression?: CompressionChoice | undefined;
  /** Records per batch. Default 1024. */
  batchSize?: number | undefined;
  /** Bytes per read. Default 64 KiB. */
  chunkBytes?: number | undefined;
  /** A step between the (decompressed) bytes and the decoder. Default none. */
  transform?: ByteTransform | undefined;
}

/** A {@link Source} reading a file; see {@link fileSource}. */
export interface FileSource extends Source<unknown>, ProjectableSource, SplittableSource, EncodingSource {
  /** Where a restart would resume: the file, lines consumed and the byte offset after them. */
  position(): Position;
  /** Bytes read of the file's size at open (compressed bytes for a compressed file). */
  progress(): { done: number; total?: number; unit: 'bytes' };
}

/**
 * A source reading `path` with a format (`lines`, `jsonl`, `csv`), decompressing it first when
 * it is compressed.
 *
 * - `open` opens the file and fails with a clear `SLUICE_STAGE` error naming the path when it
 *   does not exist, is a directory or cannot be read.
 * - `run` emits batches whose meta is `{ source: <stage>, position: { file, line, offset } }`
 *   (line and offset in the decompressed bytes); a record that cannot be decoded goes to the
 *   dead-letter output as text, or fails the run with `strict`. Corrupt or truncated compressed
 *   input fails the run with an error naming the compressed byte offset.
 * - `ctx.stopSignal` stops reading between chunks (what was read is emitted);
 *   `ctx.signal` cancels.
 * - `close` closes the file whatever happened.
 *
 * @example
 * new Pipeline('copy').from(fileSource({ path: 'in.jsonl', format: 'jsonl' })).to(sink);
 * new Pipeline('csv').from(fileSource({ path: 'in.csv.gz', format: 'csv', types: { n: 'int' } })).to(sink);
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
  const compression = options.compression ?? 'auto';
  let decoder = formatDecoder(format, options);
  // The fields the pipeline reads (see `projectSources`), given to every decoder made.
  let projection: readonly string[] | undefined;
  let fieldUses: ReadonlyMap<string, FieldUse> | undefined;
  // With a dlq: dead letters need whole records (see `project`), read again by `whole` once open.
  let needWhole = false;
  let whole: WholeRecordReader | undefined;
  // Checkpoints: where `restore` said to resume, and the position after the last emitted record
  // (lines done, byte offset).
  let resumeAt: FileResumePoint | undefined;
  let emitted: FileResumePoint | undefined;
  let handle: FileHandle | undefined;
  let size: number | undefined;
  let regularFile = false;
  let bytesRead = 0;
  // Fused with a JSON Lines sink (see `encodeFor`): CSV rows go out as JSON Lines bytes.
  let encodeJsonl = false;

  return {
    splitInput() {
      if (options.transform !== undefined) return 'its file source has a byte `transform`';
      if (format !== 'csv' && format !== 'jsonl')
        return `its file format \`${format}\` is not split (\`csv\` and \`jsonl\` are)`;
      const codec = compression === 'auto' ? codecFromPath(path) : compression;
      if (codec !== undefined && codec !== 'none')
        return `its file is compressed (\`${codec}\`): a compressed stream cannot be cut into byte ranges`;
      const decode = decodeOptions(options);
      const uses = fieldUses === undefined ? undefined : [...fieldUses];
      return { path, format, options: decode, compression, fields: projection, uses };
    },

    encodeFor(target) {
      // Only whole records of a CSV input the transcoder writes exactly as the decoder + the
      // jsonl encoder would (`CsvJsonlTranscoder.unsupported`: not with `types`).
      if (target !== 'jsonl' || format !== 'csv' || projection !== undefined) return false;
      if (CsvJsonlTranscoder.unsupported(csvDecodeOptions(decodeOptions(options))) !== undefined)
        return false;
      encodeJsonl = true;
      return true;
    },

    project(fields, uses, wholeLetters) {
      projection = fields;
      fieldUses = uses;
      needWhole = wholeLetters === true;
      decoder.project?.(fields, uses);
    },

    async wholeRecords(rejected) {
      return whole === undefined ? rejected.map(() => undefined) : whole.read(rejected);
    },

    async open() {
      try {
        handle = await open(path, 'r');
        const stat = await handle.stat();
        if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        // A FIFO or device has no size to measure progress against.
        regularFile = stat.isFile();
        size = regularFile ? stat.size : undefined;
      } catch (err) {
        throw openError(path, err);
      }
      if (needWhole && projection !== undefined && decoder.project !== undefined) {
        // A dead letter's record is read again at its offset: only a plain file allows that.
        if (regularFile && (await plainBytes(handle, path, compression, options.transform))) {
          whole = new WholeRecordReader(path, format, options, fieldUses);
        } else {
          projection = undefined;
          fieldUses = undefined;
          decoder = formatDecoder(format, options);
        }
      }
    },

    async run(out, ctx) {
      if (handle === undefined)
        throw new SluiceError(ErrorCode.STAGE, `file \`${path}\` is not open`, { file: path });
      const h = handle;
      const at = resumeAt;
      const plain = compression === 'none' && options.transform === undefined;
      const countRead = (n: number): void => {
        bytesRead += n;
      };
      // Read buffers are reused when the decoder copies what it keeps and nothing else between
      // (a transform) might keep them; decompression copies what it decompresses.
      // (The transcoder borrows its chunks too.)
      const reuseBuffers = options.transform === undefined && decoder.borrowsChunks === true;
      // Raw bytes → decompressed → transformed: what the decoder reads.
      const decoded = (raw: AsyncIterable<Uint8Array>, borrowed: boolean): AsyncIterable<Uint8Array> => {
        const bytes =
          compression === 'none'
            ? raw
            : decompress(raw, { codec: compression, path, signal: ctx.signal, borrowed });
        return options.transform ? options.transform(bytes) : bytes;
      };
      const input = (from: number): AsyncIterable<Uint8Array> => {
        // A plain file is read from `from` on; other input is decoded from the top and skipped.
        const seek = from > 0 && plain;
        const bytes = decoded(
          readFileChunks(h, {
            from: seek ? from : undefined,
            chunkBytes,
            onRead: countRead,
            readAhead: regularFile,
            reuseBuffers,
            // Measured (200 MB from the page cache, reads alone): 64 KiB reads 136 ms of CPU, 1 MiB
            // reads 77 ms; 512 KiB keeps the two buffers at 1 MiB. A `chunkBytes` the caller chose
            // stays the size of every read.
            readBytes: regularFile && options.chunkBytes === undefined ? REUSED_READ_BYTES : undefined,
          }),
          reuseBuffers,
        );
        return from > 0 && !plain ? skipBytes(bytes, from) : bytes;
      };
      // The header of a resumed CSV is read again from the top, through the same decompression.
      const headerBytes = (): AsyncIterable<Uint8Array> =>
        decoded(readFileChunks(h, { from: 0, chunkBytes }), false);
      try {
        if (encodeJsonl) {
          const decode = decodeOptions(options);
          const resumed = at === undefined ? decode : await resumeOptions(format, decode, at, headerBytes);
          if (at !== undefined && plain) bytesRead = at.offset;
          const transcoder = new CsvJsonlTranscoder(csvDecodeOptions(resumed), batchSize);
          await pumpEncoded(input(at?.offset ?? 0), transcoder, out, ctx, {
            format: 'jsonl',
            strict: options.strict,
            position: (line, offset) => ({ file: path, line, offset }),
            emitted: (next) => {
              emitted = next;
            },
          });
          emitted = transcoder.position();
          return;
        }
        if (at !== undefined) {
          decoder = formatDecoder(format, await resumeOptions(format, options, at, headerBytes));
          if (projection !== undefined) decoder.project?.(projection, fieldUses);
          if (plain) bytesRead = at.offset;
        }
        await pumpRecords(input(at?.offset ?? 0), decoder, out, ctx, {
          batchSize,
          strict: options.strict,
          position: (line, offset) => ({ file: path, line, offset }),
          emitted: (next) => {
            emitted = next === undefined ? decoder.position() : { line: next.line - 1, offset: next.offset };
          },
        });
        emitted = decoder.position();
      } catch (err) {
        throw readError(`reading file \`${path}\``, err, { file: path });
      }
    },

    idleBarriers: true,
    position() {
      const p = emitted ?? resumeAt ?? decoder.position();
      return { file: path, line: p.line, offset: p.offset };
    },

    restore(position) {
      const at = resumePointOf(position, path);
      // Nothing was emitted before that checkpoint: start from the top (and read a CSV header).
      resumeAt = at.offset > 0 ? at : undefined;
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

/** The decoder's options among a file source's: every one but the file's own (plain data from YAML). */
function decodeOptions(
  options: FileSourceOptions,
): Omit<FileSourceOptions, 'path' | 'format' | 'compression' | 'batchSize' | 'chunkBytes' | 'transform'> {
  const {
    path: _p,
    format: _f,
    compression: _c,
    batchSize: _b,
    chunkBytes: _k,
    transform: _t,
    ...decode
  } = options;
  return decode;
}

/**
 * True when the bytes of the regular file `h` are its decoder's input as they are: no transform,
 * and no compression (named, or found by magic number or extension under `auto`).
 */
async function plainBytes(
  h: FileHandle,
  path: string,
  compression: CompressionChoice,
  transform: ByteTransform | undefined,
): Promise<boolean> {
  if (transform !== undefined) return false;
  if (compression !== 'auto') return compression === 'none';
  const head = Buffer.alloc(MAGIC_BYTES);
  const { bytesRead } = await h.read(head, 0, MAGIC_BYTES, 0);
  return detectCodec(path, head.subarray(0, bytesRead)) === 'none';
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
