/**
 * What the CSV decoder (`decoder.ts`) and the CSV → JSON Lines transcoder (`transcode.ts`) share:
 * how chunks of input become windows of complete rows, and how a bad row is reported. Each
 * subclass parses rows its own way (`parse`); this class keeps the unfinished row between chunks
 * (in reused buffers), skips a leading BOM and the rest of an over-long line, and tracks the byte
 * offset and line where the next row starts — so both cut the input, and report bad rows,
 * identically.
 *
 * The cursor fields are protected fields of the subclass's own object (not a helper object) because
 * `parse` reads and writes them for every row.
 */
import { Buffer } from 'node:buffer';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { DecodeStart } from '../format.ts';
import type { ResolvedCsvDecodeOptions } from './options.ts';

export const LF = 10;
export const CR = 13;
/**
 * Bytes parsed at a time. Larger chunks are cut: the decoder turns a window into one latin1
 * string, and a string over ~128 KiB is a large object in V8 — allocating those cost 110 ms per
 * 200 MB against 10 ms for 64 KiB strings (measured, latin1 decoding alone); a retained value pins
 * less text, too. The transcoder's output is cut as often.
 */
export const WINDOW_BYTES = 64 * 1024;
/** Joins of the pending tail and the next chunk up to this size reuse one buffer. */
const JOIN_BYTES = 4 * WINDOW_BYTES;

// How a row ended: parsed, needs more bytes, broken quoting, longer than `maxRecordBytes`.
export const OK = 0;
export const INCOMPLETE = 1;
export const SYNTAX = 2;
export const TOO_LONG = 3;

/** Where a CSV reader reports a bad row (a `DecodeSink` or a `TranscodeSink`). */
export interface BadRowSink {
  invalid(error: SluiceError, raw: Uint8Array, line: number, offset: number): void;
}

/** A copy of `b` in its own memory (not a slice of Node's shared buffer pool, which it would pin). */
export function copyOf(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * The error of a bad CSV row: `invalid CSV at line L (byte B): <message>` (`CSV header` for the
 * header row), code `SLUICE_PARSE`, context `component`, `line`, `offset` and `extra`.
 *
 * @example
 * csvRowError('row has 3 fields, expected 2', 4, 57, false, {}).message; // 'invalid CSV at line 4 (byte 57): row has 3 fields, expected 2'
 */
export function csvRowError(
  message: string,
  line: number,
  offset: number,
  header: boolean,
  extra: Record<string, unknown>,
): SluiceError {
  return new SluiceError(
    ErrorCode.PARSE,
    `invalid ${header ? 'CSV header' : 'CSV'} at line ${line} (byte ${offset}): ${message}`,
    { component: 'csv', line, offset, ...extra },
  );
}

/** Chunks → windows of whole rows for a CSV reader whose rows `parse` turns into output for `S`. */
export abstract class CsvRowReader<S extends BadRowSink> {
  /** The chunks given to `write` may be overwritten once it returns (see `RecordDecoder.borrowsChunks`). */
  readonly borrowsChunks = true;
  protected readonly o: ResolvedCsvDecodeOptions;
  /** Unconsumed bytes (the start of an unfinished row), waiting for more input. */
  private pending: Buffer[] = [];
  /** The joined input of the last attempt, reused (see {@link join}). */
  private joined: Buffer | undefined;
  /** The kept unfinished row, reused (see {@link ownTail}). */
  private tail: Buffer | undefined;
  private pendingBytes = 0;
  /** Parse again once this many bytes are pending (a row is longer than what was there). */
  private attemptAt = 0;
  /** Byte offset of the next unconsumed byte. */
  protected base: number;
  /** Line of the next unconsumed byte. */
  protected line: number;
  /** Where the next row starts (what {@link position} reports). */
  protected posLine: number;
  protected posOffset: number;
  private bomChecked: boolean;
  /** Skipping the rest of an over-long line. */
  protected skipping = false;
  /** The next row is the header. */
  protected headerPending: boolean;

  constructor(options: ResolvedCsvDecodeOptions) {
    this.o = options;
    this.base = options.start.offset;
    this.line = options.start.line;
    this.posLine = this.line;
    this.posOffset = this.base;
    this.bomChecked = this.base !== 0;
    this.headerPending = options.header;
  }

  /**
   * Parses the complete rows of `buf` from `start`; returns where the first unfinished row starts
   * (`buf.length` when none). With `last`, the end of `buf` ends the input.
   */
  protected abstract parse(buf: Buffer, start: number, last: boolean, sink: S): number;

  /** {@inheritDoc RecordDecoder.position} */
  position(): DecodeStart {
    // `posLine` is the line the next row starts on: the lines before it are done.
    return { line: this.posLine - 1, offset: this.posOffset };
  }

  /** Parses every complete row of `chunk` (plus what earlier chunks left over). */
  protected feed(chunk: Uint8Array, sink: S): void {
    const b = asBuffer(chunk);
    if (b.length <= WINDOW_BYTES) {
      this.feedWindow(b, sink);
      return;
    }
    for (let i = 0; i < b.length; i += WINDOW_BYTES) {
      this.feedWindow(b.subarray(i, i + WINDOW_BYTES), sink);
    }
  }

  /** End of input: parses the last row without a newline, or reports a truncated one. */
  protected feedEnd(sink: S): void {
    if (this.skipping) {
      // The over-long line ran to the end of input; it was reported when it crossed the limit.
      this.skipping = false;
      return;
    }
    if (this.pendingBytes === 0) return;
    const b = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.run(b, true, sink, false);
  }

  /**
   * Reports a bad row spanning `a`–`b` of `buf` (whose byte 0 is at offset `base`): throws its
   * error for the header (no column names to go on with) or with `strict`, else hands it to
   * `sink.invalid` with its raw bytes cut to `maxRawBytes`.
   */
  protected bad(
    message: string,
    buf: Buffer,
    a: number,
    b: number,
    line: number,
    base: number,
    sink: S,
    extra: Record<string, unknown>,
  ): void {
    const offset = base + a;
    const err = csvRowError(message, line, offset, this.headerPending, extra);
    if (this.headerPending || this.o.strict) throw err;
    sink.invalid(err, buf.subarray(a, Math.min(b, a + this.o.maxRawBytes)), line, offset);
  }

  /** {@link feed} for at most about {@link WINDOW_BYTES} bytes (more only for a longer row). */
  private feedWindow(chunk: Buffer, sink: S): void {
    let b = chunk;
    if (this.skipping) {
      const i = b.indexOf(LF);
      if (i === -1) {
        this.base += b.length;
        return;
      }
      this.skipping = false;
      this.base += i + 1;
      this.line++;
      this.posLine = this.line;
      this.posOffset = this.base;
      b = b.subarray(i + 1);
    }
    if (b.length === 0) return;
    if (this.pendingBytes > 0) {
      // A chunk that does not complete the row yet is copied: the caller may reuse its memory.
      if (this.pendingBytes + b.length < this.attemptAt) b = copyOf(b);
      this.pending.push(b);
      this.pendingBytes += b.length;
      if (this.pendingBytes < this.attemptAt) return;
      b = this.join(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.run(b, false, sink, true);
  }

  private run(b: Buffer, last: boolean, sink: S, borrowed: boolean): void {
    let start = 0;
    if (!this.bomChecked) {
      if (b.length < 3 && !last) {
        this.keep(borrowed ? copyOf(b) : b, 3);
        return;
      }
      this.bomChecked = true;
      if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
        start = 3;
        this.posOffset = this.base + 3;
      }
    }
    const consumed = this.parse(b, start, last, sink);
    if (consumed < b.length && !this.skipping) {
      const rest = b.subarray(consumed);
      // Copy: the caller may reuse its chunk, and a view would pin the whole window.
      this.keep(borrowed || consumed > 0 ? this.ownTail(rest) : rest, Math.max(rest.length * 2, 64));
    }
    this.base += this.skipping ? b.length : consumed;
  }

  /**
   * `parts` joined in {@link joined} (a fresh buffer for a long row): nearly every chunk starts
   * with the tail of the row the previous one cut, so a fresh buffer per chunk would be garbage
   * that now and then outlives two young collections and holds native memory until a full one.
   * `run` copies what it keeps, so the next join may overwrite it.
   */
  private join(parts: readonly Buffer[], n: number): Buffer {
    if (n > JOIN_BYTES) return Buffer.concat(parts, n);
    this.joined ??= Buffer.allocUnsafeSlow(JOIN_BYTES);
    let at = 0;
    for (const p of parts) at += p.copy(this.joined, at);
    return this.joined.subarray(0, n);
  }

  /**
   * A copy of the unfinished row `rest` in {@link tail}, reused from chunk to chunk (the pending
   * tail is always joined with the next chunk before the next tail is kept). A fresh small buffer
   * per chunk would come from Node's shared 8 KiB pool and, as it waits for the next read, now and
   * then be promoted and pin its whole pool slab until a full collection.
   */
  private ownTail(rest: Buffer): Buffer {
    if (rest.length > WINDOW_BYTES) return copyOf(rest);
    this.tail ??= Buffer.allocUnsafeSlow(WINDOW_BYTES);
    rest.copy(this.tail);
    return this.tail.subarray(0, rest.length);
  }

  private keep(rest: Buffer, attemptAt: number): void {
    this.pending = [rest];
    this.pendingBytes = rest.length;
    this.attemptAt = attemptAt;
  }
}

/** What a CSV reader says of a bad row (the message after `invalid CSV at line L (byte B): `). */
export const rowProblem = {
  unterminatedQuote: (field: number) =>
    `unterminated quoted field ${field}; close the quote (a quote inside a quoted field is doubled: \`""\`)`,
  afterClosingQuote: (char: string, field: number) =>
    `unexpected ${JSON.stringify(char)} after the closing quote of field ${field}; a quote inside a quoted field must be doubled (\`""\`)`,
  tooLong: (max: number) =>
    `the row is longer than maxRecordBytes (${max} bytes); raise \`maxRecordBytes\` or look for an unterminated quote`,
  fieldCount: (fields: number, expected: number) =>
    `row has ${fields} fields, expected ${expected}; check the delimiter and the quoting of this row`,
  badUtf8: (column: string) => `invalid UTF-8 in column \`${column}\`; the input must be UTF-8 text`,
};

/** The error of a header row that is not UTF-8 (always fatal: no column names to go on with). */
export function headerNotUtf8(line: number, offset: number): SluiceError {
  return new SluiceError(
    ErrorCode.PARSE,
    `the CSV header (line ${line}, byte ${offset}) is not valid UTF-8; convert the file to UTF-8 (e.g. \`iconv -f latin1 -t utf-8\`)`,
    {
      component: 'csv',
      line,
      offset,
    },
  );
}
