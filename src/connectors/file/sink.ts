/**
 * The `file` sink: writes records to a file atomically. Data goes to a temporary file in
 * the same directory (`.<name>.sluice-tmp-<pid>`); `finish()` fsyncs it and renames it to
 * the final name, so the final name only ever holds a complete output. A run that fails or
 * is cancelled removes the temporary file in `close()`.
 *
 * Under checkpoints the sink is exactly-once: at each barrier it ends the compressed frame (if
 * any) and fsyncs, and its checkpoint state is the temporary file's name and length. A restart
 * cuts that file back to the length and continues it (a temporary file a checkpoint refers to
 * is kept when a run fails), so the output neither loses nor repeats lines.
 */
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type EncodedSink, encodedBytes } from '../../core/encoded.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch } from '../../core/message.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { type FormatEncodeOptions, formatEncoder } from '../../formats/formats.ts';
import type { CompressionChoice, FileFormat } from '../../io/read.ts';
import {
  type ByteWriter,
  byteWriter,
  encodeRecords,
  outputCompression,
  TextScratch,
} from '../../io/write.ts';

/** Options of {@link fileSink}: the file, how to write it, and the CSV writer's options (flat, as in YAML). */
export interface FileSinkOptions extends FormatEncodeOptions {
  /** The file to write (replaced when the run succeeds). */
  path: string;
  /** How records become bytes. */
  format: FileFormat;
  /**
   * Compression of the output. `auto` (default): by the extension of `path` (`.gz`, `.zst`, `.br`,
   * `.sz`/`.snappy`, `.lz4`), none for any other.
   */
  compression?: CompressionChoice | undefined;
  /**
   * Compression level: gzip 1–9 (default 6), zstd 1–22 (default 3), brotli 0–11 (default 4; 11 runs
   * at about 1 MB/s). snappy and lz4 take none.
   */
  level?: number | undefined;
}

/** A {@link Sink} writing a file; see {@link fileSink}. */
export interface FileSink extends Sink<unknown>, EncodedSink {
  /** The temporary file written until `finish()` renames it. */
  readonly tempPath: string;
  /** Records written so far. */
  readonly recordsWritten: number;
}

/** File sinks made in this process, so each has its own temporary name. */
let sinkCount = 0;

/** Writes all of `data` (a write may be partial). */
export async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await handle.write(data, off, data.length - off, null);
    off += bytesWritten;
  }
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * A sink writing `path` atomically, in a format (`jsonl`, `csv`, `lines`), compressed when
 * `compression` says so or the path's extension names a codec (`out.csv.gz`).
 *
 * - The config is checked at construction: an unknown format, bad CSV options or a `level`
 *   the codec does not take throw a `SLUICE_CONFIG` error.
 * - `open` creates the parent directory if missing and the temporary file (fails early on
 *   a destination that cannot be written), and writes a CSV header when `columns` is given.
 * - `write` encodes a batch into one buffer and awaits its write (backpressure; through the
 *   compressor, one batch is in flight). A CSV output writes its header before the first row:
 *   `columns`, or else the first record's keys; a record that is not an object or an array
 *   goes to the dead-letter output.
 * - `finish` flushes the compressor, fsyncs, closes and renames the temporary file to `path`
 *   (and fsyncs the directory, where the platform allows it).
 * - `close` without a successful `finish` removes the temporary file, so no half file ever
 *   appears under `path`.
 *
 * @example
 * new Pipeline('copy').from(source).to(fileSink({ path: 'out/result.jsonl', format: 'jsonl' }));
 * new Pipeline('csv').from(source).to(fileSink({ path: 'out/rows.csv.zst', format: 'csv', level: 9 }));
 */
export function fileSink(options: FileSinkOptions): FileSink {
  const { path, format } = options;
  let encoder = formatEncoder(format, options);
  const compression = outputCompression(path, options.compression, options.level);
  const scratch = new TextScratch();
  if (compression.problems.length > 0) {
    throw new SluiceError(ErrorCode.CONFIG, `file \`${path}\`: ${compression.problems.join('; ')}`, {
      file: path,
    });
  }
  const dir = dirname(path);
  // Unique per sink, not only per process: a run restarted in the same process must not reopen
  // (and truncate) the temporary file its checkpoint refers to.
  let tempPath = join(dir, `.${basename(path)}.sluice-tmp-${process.pid}-${++sinkCount}`);
  let handle: FileHandle | undefined;
  // Checkpoints: bytes in the temporary file, and whether a checkpoint may refer to it (then a
  // failed run keeps it, for the restart to continue from).
  let fileBytes = 0;
  let checkpointed = false;
  const into =
    (h: FileHandle) =>
    async (bytes: Uint8Array): Promise<void> => {
      await writeAll(h, bytes);
      fileBytes += bytes.length;
    };
  let writer: ByteWriter | undefined;
  let ctx: StageContext | undefined;
  let committed = false;
  let written = 0;

  const fail = (doing: string, err: unknown) => wrapError(`${doing} file \`${path}\``, err, { file: path });
  const notOpen = () => new SluiceError(ErrorCode.STAGE, `file \`${path}\` is not open`, { file: path });

  /** Ends the compressor, fsyncs and closes the temporary file: the first phase of the end. */
  const prepare = async (): Promise<void> => {
    if (handle === undefined || writer === undefined) throw notOpen();
    try {
      await writer.end();
      writer = undefined;
      await handle.sync();
      const h = handle;
      handle = undefined;
      await h.close();
      // What would make the rename fail, found before any output of the run is published.
      const st = await stat(path).catch(() => undefined);
      if (st?.isDirectory() === true) {
        throw new SluiceError(ErrorCode.STAGE, `\`${path}\` is a folder; a file cannot replace it`, {
          file: path,
        });
      }
    } catch (err) {
      throw fail('committing', err);
    }
  };

  const writesEncoded = format === 'jsonl' ? 'jsonl' : undefined;
  return {
    // A source fused with this sink hands over its JSON Lines as bytes (see `core/encoded.ts`).
    writesEncoded,
    get tempPath() {
      return tempPath;
    },
    get recordsWritten() {
      return written;
    },

    async open(context) {
      ctx = context;
      if (context.checkpointing && compression.codec === 'brotli') {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `file \`${path}\`: brotli output cannot be checkpointed (a brotli stream cannot be cut at a checkpoint and continued after a restart); write \`.zst\` or \`.gz\` instead, or turn checkpoints off`,
          { file: path },
        );
      }
      try {
        await mkdir(dir, { recursive: true });
        const h = await open(tempPath, 'w');
        handle = h;
        writer = byteWriter(into(h), compression);
        const header = encoder.header?.();
        if (header !== undefined && header.length > 0) await writer.write(toBytes(header));
      } catch (err) {
        throw fail('creating', err);
      }
    },

    async write(batch: Batch<unknown>) {
      if (writer === undefined) throw notOpen();
      const pre = encodedBytes(batch, writesEncoded);
      const data = pre ?? encodeRecords(encoder, format, batch.records, ctx, batch.meta);
      if (data.length === 0) return;
      try {
        // Uncompressed, the write is done with the bytes when it resolves, so one buffer serves
        // every batch; a compressor may still hold them after taking them.
        await writer.write(
          compression.codec === 'none' && typeof data === 'string' ? scratch.encode(data) : toBytes(data),
        );
        // Written to the file: its memory may take a later batch (a compressor may still hold it).
        if (pre !== undefined && compression.codec === 'none') batch.encoded?.release?.();
      } catch (err) {
        throw fail('writing', err);
      }
      written += batch.records.length;
    },

    prepare,

    async finish() {
      if (handle !== undefined) await prepare();
      const stopped = ctx?.stopSignal.aborted === true;
      try {
        if (stopped && checkpointed) {
          // A stop is not the end of the input: the output stays under its temporary name, which
          // the checkpoint refers to, and the next run continues it.
          ctx?.log.warn(
            `Stopped before the end of the input: \`${path}\` is not written yet; the output so far stays in \`${tempPath}\` and the next run continues it from the last checkpoint`,
            { file: path },
          );
          return;
        }
        const target = stopped ? partialPath(path) : path;
        await rename(tempPath, target);
        committed = true;
        if (stopped) {
          ctx?.log.warn(
            `Stopped before the end of the input: the output so far is in \`${target}\`, not \`${path}\``,
            { file: target },
          );
        } else if (checkpointed) await removeStaleTemps(dir, basename(path), undefined);
      } catch (err) {
        throw fail('committing', err);
      }
      await syncDir(dir);
    },

    async onSignal(signal) {
      // Without checkpoints the output appears only at a clean end, so a barrier needs nothing.
      if (signal.kind !== 'barrier' || ctx?.checkpointing !== true) return;
      if (handle === undefined || writer === undefined) throw notOpen();
      try {
        // A compressed output ends its frame here, so the file can be cut back to this length
        // and continued with a new frame (gzip members and zstd frames concatenate).
        if (compression.codec !== 'none') {
          await writer.end();
          writer = byteWriter(into(handle), compression);
        }
        await handle.sync();
      } catch (err) {
        throw fail('flushing', err);
      }
    },

    snapshot() {
      checkpointed = true;
      return { temp: tempPath, length: fileBytes } satisfies FileSinkState;
    },

    async restore(state) {
      if (state === undefined) return;
      const st = state as Partial<FileSinkState>;
      if (typeof st.temp !== 'string' || typeof st.length !== 'number') {
        throw new SluiceError(ErrorCode.STAGE, `the checkpoint's state of file \`${path}\` is damaged`, {
          file: path,
        });
      }
      const target = st.temp;
      const length = st.length;
      try {
        // Drop the fresh temporary file `open` made; continue the checkpoint's one.
        await writer?.abort();
        await handle?.close();
        handle = undefined;
        writer = undefined;
        if (target !== tempPath) await rm(tempPath, { force: true });
        if (!(await exists(target))) {
          // The previous run finished and renamed it (then stopped before forgetting its
          // checkpoints): the final file still starts with the committed output.
          if ((await sizeOf(path)) >= length) await rename(path, target);
          else {
            throw new SluiceError(
              ErrorCode.STAGE,
              `the output written up to the checkpoint (\`${target}\`, ${length} bytes) is gone; delete the checkpoint folder to start over`,
              { file: path },
            );
          }
        }
        await removeStaleTemps(dir, basename(path), target);
        await truncate(target, length);
        const h = await open(target, 'a');
        handle = h;
        await h.sync();
        tempPath = target;
        fileBytes = length;
        checkpointed = true;
        writer = byteWriter(into(h), compression);
        // The header is already in the file when anything is.
        encoder = formatEncoder(format, length > 0 ? { ...options, header: false } : options);
        const header = length > 0 ? undefined : encoder.header?.();
        if (header !== undefined && header.length > 0) await writer.write(toBytes(header));
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        throw fail('restoring', err);
      }
    },

    async close() {
      const w = writer;
      writer = undefined;
      await w?.abort();
      const h = handle;
      handle = undefined;
      await h?.close().catch(() => {});
      if (committed || checkpointed) return;
      try {
        await rm(tempPath, { force: true });
      } catch (err) {
        // The directory itself may be missing or not a directory: then there is no temp file.
        if ((err as { code?: string }).code !== 'ENOTDIR') throw fail('removing the temporary', err);
      }
    },
  };
}

/**
 * Where an output cut off by a stop goes when no checkpoint can continue it: `out.jsonl` →
 * `out.jsonl.partial`, which no reader of `*.jsonl` takes for a complete output.
 */
export function partialPath(path: string): string {
  return `${path}.partial`;
}

/** What the file sink keeps in a checkpoint: its temporary file and the length committed. */
export interface FileSinkState {
  readonly temp: string;
  readonly length: number;
}

/**
 * Removes temporary files of earlier runs killed before a checkpoint referred to them. Only
 * under checkpoints: the checkpoint folder makes this run the one writer of `path`.
 */
async function removeStaleTemps(dir: string, name: string, keep: string | undefined): Promise<void> {
  const prefix = `.${name}.sluice-tmp-`;
  for (const f of await readdir(dir)) {
    const p = join(dir, f);
    if (f.startsWith(prefix) && p !== keep) await rm(p, { force: true });
  }
}

/** Whether `p` exists (anything `stat` can see). */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function sizeOf(p: string): Promise<number> {
  try {
    return (await stat(p)).size;
  } catch {
    return -1;
  }
}

/** Makes the rename durable; not every platform lets a directory be opened, so best effort. */
export async function syncDir(dir: string): Promise<void> {
  let d: FileHandle | undefined;
  try {
    d = await open(dir, 'r');
    await d.sync();
  } catch {
    // Windows cannot fsync a directory; the rename is still atomic.
  } finally {
    await d?.close().catch(() => {});
  }
}
