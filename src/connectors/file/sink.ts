/**
 * The `file` sink: writes records to a file atomically. Data goes to a temporary file in
 * the same directory (`.<name>.sluice-tmp-<pid>`); `finish()` fsyncs it and renames it to
 * the final name, so the final name only ever holds a complete output. A run that fails or
 * is cancelled removes the temporary file in `close()`.
 */
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Batch } from '../../core/batch.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Sink } from '../../core/stage.ts';
import type { RecordEncoder } from '../../formats/format.ts';
import { jsonlEncoder } from '../../formats/jsonl.ts';
import { linesEncoder } from '../../formats/lines.ts';
import type { LineFormat } from './source.ts';

/**
 * A fresh encoder for `format`.
 *
 * @example
 * lineFormatEncoder('jsonl').encode([{ a: 1 }]); // '{"a":1}\n'
 */
export function lineFormatEncoder(format: LineFormat): RecordEncoder<unknown> {
  if (format === 'jsonl') return jsonlEncoder();
  if (format === 'lines') return linesEncoder();
  throw new SluiceError(ErrorCode.CONFIG, `unknown format \`${String(format)}\`; use \`lines\` or \`jsonl\``);
}

/** Options of {@link fileSink}. */
export interface FileSinkOptions {
  /** The file to write (replaced when the run succeeds). */
  path: string;
  /** How records become bytes. */
  format: LineFormat;
}

/** A {@link Sink} writing a file; see {@link fileSink}. */
export interface FileSink extends Sink<unknown> {
  /** The temporary file written until `finish()` renames it. */
  readonly tempPath: string;
  /** Records written so far. */
  readonly recordsWritten: number;
}

/** Writes all of `data` (a write may be partial). */
async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
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
 * A sink writing `path` atomically.
 *
 * - `open` creates the parent directory if missing and the temporary file (fails early on
 *   a destination that cannot be written).
 * - `write` encodes a batch into one buffer and awaits one write (backpressure).
 * - `finish` fsyncs, closes and renames the temporary file to `path` (and fsyncs the
 *   directory, where the platform allows it).
 * - `close` without a successful `finish` removes the temporary file, so no half file ever
 *   appears under `path`.
 *
 * @example
 * new Pipeline('copy').from(source).to(fileSink({ path: 'out/result.jsonl', format: 'jsonl' }));
 */
export function fileSink(options: FileSinkOptions): FileSink {
  const { path, format } = options;
  const encoder = lineFormatEncoder(format);
  const dir = dirname(path);
  const tempPath = join(dir, `.${basename(path)}.sluice-tmp-${process.pid}`);
  let handle: FileHandle | undefined;
  let committed = false;
  let written = 0;

  const fail = (doing: string, err: unknown) => wrapError(`${doing} file \`${path}\``, err, { file: path });

  return {
    tempPath,
    get recordsWritten() {
      return written;
    },

    async open() {
      try {
        await mkdir(dir, { recursive: true });
        handle = await open(tempPath, 'w');
        const header = encoder.header?.();
        if (header !== undefined && header.length > 0) await writeAll(handle, toBytes(header));
      } catch (err) {
        throw fail('creating', err);
      }
    },

    async write(batch: Batch<unknown>) {
      if (handle === undefined)
        throw new SluiceError(ErrorCode.STAGE, `file \`${path}\` is not open`, { file: path });
      const data = encoder.encode(batch.records);
      if (data.length === 0) return;
      try {
        await writeAll(handle, toBytes(data));
      } catch (err) {
        throw fail('writing', err);
      }
      written += batch.records.length;
    },

    async finish() {
      if (handle === undefined)
        throw new SluiceError(ErrorCode.STAGE, `file \`${path}\` is not open`, { file: path });
      try {
        await handle.sync();
        const h = handle;
        handle = undefined;
        await h.close();
        await rename(tempPath, path);
        committed = true;
      } catch (err) {
        throw fail('committing', err);
      }
      await syncDir(dir);
    },

    async close() {
      const h = handle;
      handle = undefined;
      await h?.close().catch(() => {});
      if (committed) return;
      try {
        await rm(tempPath, { force: true });
      } catch (err) {
        // The directory itself may be missing or not a directory: then there is no temp file.
        if ((err as { code?: string }).code !== 'ENOTDIR') throw fail('removing the temporary', err);
      }
    },
  };
}

/** Makes the rename durable; not every platform lets a directory be opened, so best effort. */
async function syncDir(dir: string): Promise<void> {
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
