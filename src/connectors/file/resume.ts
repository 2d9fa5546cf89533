/**
 * Resuming a file source from a checkpoint position: check that the position is this file's,
 * and skip to its offset in a compressed input (a plain file is seeked). The decoder itself
 * resumes through the formats' common `start` option (`resumeOptions` in `formats/formats.ts`).
 */

import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';

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
