/**
 * Resuming a file source from a checkpoint position: read the bytes from the saved offset on
 * (seeking in a plain file, decompressing and skipping in a compressed one), and build a
 * decoder that numbers lines and offsets as if it had read the file from the start. A CSV file's
 * header is read again from the top of the file, so rows keep their column names.
 */

import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';
import { CsvDecoder } from '../../formats/csv/decoder.ts';
import type { RecordDecoder } from '../../formats/format.ts';
import {
  csvDecodeOptions,
  type FormatDecodeOptions,
  type FormatName,
  formatDecoder,
} from '../../formats/formats.ts';

/**
 * Where a file source resumes: `line` lines and `offset` bytes of the (decompressed) input are
 * done. The same shape as `FileSource.position()`.
 */
export interface FileResumePoint {
  readonly line: number;
  readonly offset: number;
}

/**
 * The resume point in a checkpointed position, or a `SLUICE_STAGE` error saying why it cannot
 * be one (a checkpoint of another file, a damaged position).
 */
export function resumePointOf(position: Position, path: string): FileResumePoint {
  const { line, offset, file } = position as { line?: unknown; offset?: unknown; file?: unknown };
  if (typeof line !== 'number' || typeof offset !== 'number' || !(line >= 0) || !(offset >= 0)) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `checkpoint position ${JSON.stringify(position)} is not a file position`,
      {
        file: path,
      },
    );
  }
  if (typeof file === 'string' && file !== path) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `the checkpoint was taken reading \`${file}\`, not \`${path}\`; delete the checkpoint folder to start over with the new input`,
      { file: path },
    );
  }
  return { line, offset };
}

/** Drops the first `n` bytes of `input` (a decompressed stream cannot be seeked). */
export async function* skipBytes(input: AsyncIterable<Uint8Array>, n: number): AsyncGenerator<Uint8Array> {
  let left = n;
  for await (const chunk of input) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left === 0 ? chunk : chunk.subarray(left);
    left = 0;
  }
  if (left > 0) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `the input is ${n - left} bytes long, shorter than the checkpoint's offset ${n}; was the file replaced? Delete the checkpoint folder to start over`,
    );
  }
}

/** The column names of a CSV input's header row, read from the start of `bytes`. */
export async function readCsvHeader(
  bytes: AsyncIterable<Uint8Array>,
  options: FormatDecodeOptions,
): Promise<readonly string[]> {
  const d = new CsvDecoder({ ...csvDecodeOptions(options), header: true, strict: false });
  const ignore = { record: () => {}, invalid: () => {} };
  for await (const chunk of bytes) {
    d.write(chunk, ignore);
    const names = d.columnNames();
    if (names !== undefined) return names;
  }
  d.end(ignore);
  const names = d.columnNames();
  if (names === undefined)
    throw new SluiceError(ErrorCode.STAGE, 'the CSV input has no header row to resume with');
  return names;
}

/**
 * A decoder for `format` starting at `at`, with lines and offsets counted from the start of the
 * input. CSV takes the start itself (and `columns`, the header read again); `lines` and `jsonl`
 * decoders count from zero, so their positions are shifted by `shift` (returned).
 */
export function resumedDecoder(
  format: FormatName,
  options: FormatDecodeOptions,
  at: FileResumePoint,
  columns: readonly string[] | undefined,
): { decoder: RecordDecoder<unknown>; shift: FileResumePoint } {
  if (format === 'csv') {
    const o = { ...csvDecodeOptions(options), start: { line: at.line + 1, offset: at.offset } };
    const decoder =
      columns === undefined
        ? new CsvDecoder({ ...o, header: false })
        : new CsvDecoder({ ...o, header: false, columns });
    return { decoder: decoder as RecordDecoder<unknown>, shift: { line: 0, offset: 0 } };
  }
  return { decoder: formatDecoder(format, options), shift: at };
}

/**
 * Lines done and byte offset after the last complete record, from a decoder's `position()`:
 * the CSV decoder reports the number of the next line, the line decoders the lines done.
 */
export function linesDone(
  format: FormatName,
  p: { line: number; offset: number },
  shift: FileResumePoint,
): FileResumePoint {
  return format === 'csv'
    ? { line: p.line - 1, offset: p.offset }
    : { line: p.line + shift.line, offset: p.offset + shift.offset };
}
