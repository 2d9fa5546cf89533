/**
 * The whole records of a projected file source, read again for dead letters (see
 * `ProjectableSource.wholeRecords` in `core/projection.ts`). A record a later stage rejected is
 * found by its position (byte offset and line in the file) and decoded once more, without the
 * projection, by a decoder that resumes there, so its letter holds what it would hold had the
 * source made every field. Only for plain (uncompressed) regular files, which can be read at any
 * offset; the file source does not project otherwise when the pipeline has a dlq.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Position } from '../../core/message.ts';
import type { FieldUse, RejectedRecord } from '../../core/projection.ts';
import type { RecordDecoder } from '../../formats/format.ts';
import {
  type FormatDecodeOptions,
  type FormatName,
  formatDecoder,
  resumeOptions,
} from '../../formats/formats.ts';

/** Bytes per read when decoding one record again: rows are short, and only the first one is kept. */
const READ_BYTES = 4096;

/** Reads whole records of one plain file again; see the module comment. */
export class WholeRecordReader {
  private readonly path: string;
  private readonly format: FormatName;
  private readonly options: FormatDecodeOptions;
  private readonly uses: ReadonlyMap<string, FieldUse> | undefined;
  /** The decoder options with what the top of the file says (a CSV header), made once. */
  private resumed: Promise<FormatDecodeOptions> | undefined;

  /**
   * @param path the file
   * @param format its format
   * @param options its decoder options (without a projection)
   * @param uses how the projection's readers read fields: a field so read may differ in form
   *   between the projected and the whole record, and is not compared
   */
  constructor(
    path: string,
    format: FormatName,
    options: FormatDecodeOptions,
    uses: ReadonlyMap<string, FieldUse> | undefined,
  ) {
    this.path = path;
    this.format = format;
    this.options = options;
    this.uses = uses;
  }

  /**
   * The whole record at each position of `rejected`, in order; undefined for one that is not an
   * object emitted from this file, or whose fields read again differ from the projected record's
   * (the file changed since). Fails when the file cannot be read.
   */
  async read(rejected: readonly RejectedRecord[]): Promise<unknown[]> {
    const out: unknown[] = new Array(rejected.length).fill(undefined);
    if (!rejected.some((r) => this.isOurs(r))) return out;
    const h = await open(this.path, 'r');
    try {
      this.resumed ??= resumeOptions(this.format, this.options, { line: 0, offset: 0 }, () =>
        chunksFrom(h, 0),
      );
      const options = await this.resumed;
      for (let i = 0; i < rejected.length; i++) {
        const r = rejected[i] as RejectedRecord;
        if (!this.isOurs(r)) continue;
        const whole = await this.readAt(h, options, r.position);
        if (whole !== undefined && this.agrees(r.record as Record<string, unknown>, whole)) out[i] = whole;
      }
    } finally {
      await h.close();
    }
    return out;
  }

  private isOurs(r: RejectedRecord): boolean {
    const p = r.position;
    return (
      p.file === this.path &&
      typeof p.line === 'number' &&
      typeof p.offset === 'number' &&
      typeof r.record === 'object' &&
      r.record !== null
    );
  }

  /** The first record decoded from `at`, or undefined when none starts there. */
  private async readAt(
    h: FileHandle,
    options: FormatDecodeOptions,
    at: Position,
  ): Promise<Record<string, unknown> | undefined> {
    const start = { line: (at.line as number) - 1, offset: at.offset as number };
    const decoder: RecordDecoder = formatDecoder(this.format, { ...options, start });
    let found: unknown;
    let done = false;
    const sink = {
      record: (value: unknown, line: number, offset: number) => {
        if (done) return;
        done = true;
        if (line === at.line && offset === at.offset) found = value;
      },
      invalid: () => {
        done = true;
      },
    };
    for await (const chunk of chunksFrom(h, start.offset)) {
      decoder.write(chunk, sink);
      if (done) break;
    }
    if (!done) decoder.end(sink);
    return typeof found === 'object' && found !== null ? (found as Record<string, unknown>) : undefined;
  }

  /** True when every field of `projected` has the same value in `whole` (fields with a use aside). */
  private agrees(projected: Record<string, unknown>, whole: Record<string, unknown>): boolean {
    for (const k of Object.keys(projected)) {
      if (this.uses?.has(k) === true) continue;
      const a = projected[k];
      const b = whole[k];
      if (typeof a === 'object' && a !== null) {
        if (typeof b !== 'object' || b === null) return false;
        continue;
      }
      if (!Object.is(a, b)) return false;
    }
    return true;
  }
}

/** The bytes of `h` from `offset` to its end, in fresh chunks of {@link READ_BYTES}. */
async function* chunksFrom(h: FileHandle, offset: number): AsyncGenerator<Uint8Array> {
  let at = offset;
  for (;;) {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    const { bytesRead } = await h.read(buf, 0, READ_BYTES, at);
    if (bytesRead === 0) return;
    at += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}
