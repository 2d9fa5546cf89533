/**
 * The `lines` format: a byte-level line splitter that the line-based formats (`lines`,
 * `jsonl`) are built on.
 *
 * It works on Buffers: it finds newlines with `indexOf(0x0A)` (no regex), keeps the
 * fragment of a line that spans chunks as a list of byte slices (no string concatenation
 * per chunk) and decodes each complete line to a string once. Memory is bounded by
 * `maxLineBytes`: a longer line is reported as invalid as soon as it is known to be too
 * long, and the rest of it is skipped up to the next newline without being buffered.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { DecodeSink, DecodeStart, RecordDecoder, RecordEncoder } from './format.ts';

/** Default longest line accepted: 16 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/** How many bytes of a bad line are kept in the `raw` of an `invalid` report. */
export const RAW_PREVIEW_BYTES = 4096;

const LF = 0x0a;
const CR = 0x0d;
/** Largest carry buffer kept for the next line that spans chunks. */
const MAX_KEPT_CARRY_BYTES = 1 << 20;
/** Bytes decoded to one string at a time by the fast path (see `writeFast`). */
const FAST_PIECE_BYTES = 64 * 1024;

/**
 * Turns the text of one line into a record. Throwing rejects the line: the decoder reports
 * it through `invalid` with the thrown message, prefixed by the line and byte offset.
 */
export type LineParser<T> = (text: string, line: number, offset: number) => T;

/**
 * A faster parser for some lines, tried before the {@link LineParser} (see `JsonShapes`):
 * `parse` returns `undefined` when it does not take the line, which then goes to the
 * {@link LineParser}; `learn` sees every value that parser returned.
 */
export interface LineShortcut<T> {
  /** Parses `text[start..end)`, whose UTF-8 bytes are in `bytes` from `bytesAt + start` on. */
  parse(text: string, start: number, end: number, bytes: Buffer, bytesAt: number): T | undefined;
  /** Sees a value the {@link LineParser} returned for a line `parse` did not take. */
  learn(value: T): void;
}

/** Options of a {@link LineDecoder}. */
export interface LineDecoderOptions<T> {
  /** Longest line accepted, in bytes without the line ending. Default 16 MiB. */
  maxLineBytes?: number;
  /**
   * Skip lines that are empty (`lines`) — or, when `blank: 'whitespace'`, lines made only of
   * spaces and tabs too (`jsonl`). Default: keep every line.
   */
  skipBlank?: boolean | 'whitespace';
  /** Turns a line's text into a record; default: the text itself. */
  parse?: LineParser<T>;
  /** What the parser checks, for error messages, e.g. `invalid JSON`. Default `invalid line`. */
  parseError?: string;
  /** Tried before `parse`; must return what `parse` would, or `undefined`. */
  shortcut?: LineShortcut<T>;
  /** Where the first byte given sits in the whole input (a restart); default the top. */
  start?: DecodeStart | undefined;
}

/**
 * A {@link RecordDecoder} that splits bytes into lines (LF or CRLF), skips a UTF-8 byte
 * order mark at the very start, decodes a last line without a newline at `end()`, and
 * reports too long lines and invalid UTF-8 through `invalid`.
 *
 * Each record gets its 1-based line number and the 0-based byte offset of its first byte.
 *
 * @example
 * const records: string[] = [];
 * const d = new LineDecoder();
 * const sink = { record: (s: string) => records.push(s), invalid: () => {} };
 * d.write(Buffer.from('a\r\nb'), sink);
 * d.end(sink); // records: ['a', 'b']
 */
export class LineDecoder<T = string> implements RecordDecoder<T> {
  /** {@inheritDoc RecordDecoder.borrowsChunks} */
  readonly borrowsChunks = true;
  private readonly maxLineBytes: number;
  private readonly skipBlank: boolean | 'whitespace';
  private parse: LineParser<T> | undefined;
  private readonly parseError: string;
  private shortcut: LineShortcut<T> | undefined;
  /** Bytes of a too long line kept for its `invalid` report (never more than the limit). */
  private readonly previewBytes: number;
  /**
   * The start of the line that spans chunks, copied (callers may reuse their buffers) into one
   * buffer kept from line to line: a fresh copy per chunk would live across the pipeline's
   * await, now and then be promoted, and hold native memory until a rare full GC (measured on a
   * CSV run: RSS grew over gigabytes until its decoder did the same).
   */
  private carry: Buffer = Buffer.alloc(0);
  private pendingBytes = 0;
  /** Number of the line being read (1-based). */
  private line = 1;
  /** Byte offset where the line being read starts. */
  private lineStart = 0;
  /** Bytes seen so far. */
  private seen = 0;
  /** True while skipping the rest of a line already reported as too long. */
  private skipping = false;
  private bomChecked = false;

  constructor(options: LineDecoderOptions<T> = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max < 1) {
      throw new SluiceError(ErrorCode.CONFIG, `maxLineBytes must be a whole number ≥ 1, got ${max}`);
    }
    this.maxLineBytes = max;
    this.skipBlank = options.skipBlank ?? false;
    this.parse = options.parse;
    this.parseError = options.parseError ?? 'invalid line';
    this.shortcut = options.shortcut;
    this.previewBytes = Math.min(RAW_PREVIEW_BYTES, max);
    if (options.start !== undefined) {
      this.line = options.start.line + 1;
      this.lineStart = this.seen = options.start.offset;
      // A byte order mark can only be the input's first bytes.
      this.bomChecked = options.start.offset > 0;
    }
  }

  /**
   * Replaces the {@link LineParser} and the {@link LineShortcut}, before the first `write`: for a
   * format whose `project` changes what a line becomes (`jsonl`).
   */
  protected setParser(parse: LineParser<T>, shortcut: LineShortcut<T> | undefined): void {
    this.parse = parse;
    this.shortcut = shortcut;
  }

  write(chunk: Uint8Array, sink: DecodeSink<T>): void {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const chunkStart = this.seen;
    this.seen += buf.length;
    let start = 0;
    // Tried once per chunk, as soon as no partial line is pending (usually after the first line).
    let tryFast = this.parse !== undefined;
    for (;;) {
      if (tryFast && this.pendingBytes === 0 && !this.skipping && this.bomChecked) {
        tryFast = false;
        start = this.writeFast(buf, start, chunkStart, sink);
      }
      const nl = buf.indexOf(LF, start);
      if (nl === -1) {
        this.keep(buf, start, sink);
        return;
      }
      if (this.skipping) {
        this.skipping = false;
      } else if (this.pendingBytes === 0) {
        this.completeLine(buf, start, nl, sink);
      } else {
        this.carryOn(buf, start, nl);
        this.completeCarried(sink);
      }
      this.line++;
      this.lineStart = chunkStart + nl + 1;
      start = nl + 1;
    }
  }

  end(sink: DecodeSink<T>): void {
    if (this.skipping) {
      this.skipping = false;
    } else if (this.pendingBytes > 0) {
      this.completeCarried(sink);
    } else if (this.seen === this.lineStart) {
      return;
    }
    this.line++;
    this.lineStart = this.seen;
  }

  /** {@inheritDoc RecordDecoder.position} */
  position(): DecodeStart {
    return { line: this.line - 1, offset: this.lineStart };
  }

  /**
   * Fast path for parsed formats (JSON Lines): the chunk's complete lines are decoded as one
   * string and each line is cut out of it in JavaScript, instead of one native `toString` per
   * line. ASCII text is decoded as latin1 (byte offsets equal character offsets); other text as
   * UTF-8, where a line's bytes are found again with `indexOf` only when it is not ASCII. A chunk with invalid UTF-8
   * is left to the per-line path, which reports the bad line exactly. The parsed value never
   * references the text, so slicing it keeps no chunk alive. The chunk is decoded in pieces of
   * about 64 KiB: a string over ~128 KiB is a large object in V8, and allocating those cost
   * 110 ms per 200 MB against 10 ms for 64 KiB pieces (measured, latin1 decoding alone).
   * Returns where the caller goes on (the byte after the last newline handled).
   */
  private writeFast(buf: Buffer, from: number, chunkStart: number, sink: DecodeSink<T>): number {
    const last = buf.lastIndexOf(LF);
    while (from < last) {
      // A piece ends at the last newline within FAST_PIECE_BYTES (or at the first one after,
      // for a longer line), so its string stays out of V8's large-object space.
      let end = from + FAST_PIECE_BYTES >= last ? last : buf.lastIndexOf(LF, from + FAST_PIECE_BYTES);
      if (end < from) end = buf.indexOf(LF, from + FAST_PIECE_BYTES);
      const next = this.writeFastPiece(buf, from, end, chunkStart, sink);
      if (next === from) return from;
      from = next;
    }
    return from;
  }

  /** {@link writeFast} for the lines of `buf[from..last]` (`buf[last]` is a newline). */
  private writeFastPiece(
    buf: Buffer,
    from: number,
    last: number,
    chunkStart: number,
    sink: DecodeSink<T>,
  ): number {
    const ascii = isAscii(buf.subarray(from, last));
    const text = buf.toString(ascii ? 'latin1' : 'utf8', from, last + 1);
    if (!ascii && text.includes('\uFFFD') && !isUtf8(buf.subarray(from, last + 1))) return from;
    const shortcut = this.shortcut;
    let b = from; // byte index of the line's start in `buf`
    let c = 0; // its character index in `text`
    while (b <= last) {
      const nlChar = text.indexOf('\n', c);
      // In UTF-8 text, a line as long in bytes as in characters is ASCII: its end is known.
      const nl = ascii || buf[b + nlChar - c] === LF ? b + nlChar - c : buf.indexOf(LF, b);
      let end = nl;
      let endChar = nlChar;
      if (end > b && buf[end - 1] === CR) {
        end--;
        endChar--;
      }
      const offset = chunkStart + b;
      this.lineStart = offset;
      if (end - b > this.maxLineBytes) {
        this.reportTooLong(buf.subarray(b, b + this.previewBytes), sink, offset);
      } else if (end > b && !(this.skipBlank === 'whitespace' && isBlank(buf, b, end))) {
        const value = shortcut?.parse(text, c, endChar, buf, b - c);
        if (value !== undefined) sink.record(value, this.line, offset);
        else this.parseLine(text.slice(c, endChar), buf, b, end, sink, offset);
      } else if (end === b && !this.skipBlank) {
        this.completeLine(buf, b, end, sink);
      }
      this.line++;
      b = nl + 1;
      c = nlChar + 1;
      this.lineStart = chunkStart + b;
    }
    return b;
  }

  /** Keeps `buf[start..]` as the start of a line whose end is in a later chunk. */
  private keep(buf: Buffer, start: number, sink: DecodeSink<T>): void {
    const n = buf.length - start;
    if (n === 0 || this.skipping) return;
    // One extra byte is allowed: it may be the CR of a CRLF whose LF is in the next chunk;
    // three more on the first line, which may start with a byte order mark.
    const slack = this.bomChecked ? 1 : 4;
    if (this.pendingBytes + n > this.maxLineBytes + slack) {
      let line = Buffer.concat([
        this.carry.subarray(0, this.pendingBytes),
        buf.subarray(start, start + this.previewBytes + 3),
      ]);
      let offset = this.lineStart;
      if (!this.bomChecked) {
        this.bomChecked = true;
        if (offset === 0 && hasBom(line, 0)) {
          line = line.subarray(3);
          offset = 3;
        }
      }
      this.pendingBytes = 0;
      this.skipping = true;
      this.reportTooLong(line.subarray(0, this.previewBytes), sink, offset);
      return;
    }
    this.carryOn(buf, start, buf.length);
  }

  /** Appends `buf[start..end)` to the carried line start, growing the carry buffer as needed. */
  private carryOn(buf: Buffer, start: number, end: number): void {
    const need = this.pendingBytes + end - start;
    if (need > this.carry.length) {
      // Outside Node's shared pool (allocUnsafeSlow): a long-lived pool slice would pin its slab.
      const grown = Buffer.allocUnsafeSlow(Math.max(need, this.carry.length * 2, 4096));
      this.carry.copy(grown, 0, 0, this.pendingBytes);
      this.carry = grown;
    }
    buf.copy(this.carry, this.pendingBytes, start, end);
    this.pendingBytes = need;
  }

  /** The carried bytes are a whole line: decodes it and empties the carry. */
  private completeCarried(sink: DecodeSink<T>): void {
    const n = this.pendingBytes;
    this.pendingBytes = 0;
    this.completeLine(this.carry, 0, n, sink);
    // One very long line does not keep its buffer for the rest of the input.
    if (this.carry.length > MAX_KEPT_CARRY_BYTES) this.carry = Buffer.alloc(0);
  }

  /** `buf[start..end)` is one whole line without its LF. */
  private completeLine(buf: Buffer, start: number, end: number, sink: DecodeSink<T>): void {
    let offset = this.lineStart;
    if (!this.bomChecked) {
      this.bomChecked = true;
      if (offset === 0 && end - start >= 3 && hasBom(buf, start)) {
        start += 3;
        offset = 3;
      }
    }
    if (end > start && buf[end - 1] === CR) end--;
    const length = end - start;
    if (length > this.maxLineBytes) {
      this.reportTooLong(buf.subarray(start, start + this.previewBytes), sink, offset);
      return;
    }
    if (length === 0) {
      if (this.skipBlank) return;
    } else if (this.skipBlank === 'whitespace' && isBlank(buf, start, end)) {
      return;
    }
    const text = buf.toString('utf8', start, end);
    // toString replaces bad sequences with U+FFFD; only then check the bytes (a real U+FFFD is fine).
    if (text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) {
      sink.invalid(
        this.error(`invalid UTF-8`, offset, 'the input must be UTF-8 text'),
        buf.subarray(start, Math.min(end, start + RAW_PREVIEW_BYTES)),
        this.line,
        offset,
      );
      return;
    }
    if (this.parse === undefined) {
      sink.record(text as T, this.line, offset);
      return;
    }
    this.parseLine(text, buf, start, end, sink, offset);
  }

  /**
   * Parses `text`, the line `buf[start..end)`, with the {@link LineParser}: a record, or an
   * `invalid` report with the parser's reason.
   */
  private parseLine(
    text: string,
    buf: Buffer,
    start: number,
    end: number,
    sink: DecodeSink<T>,
    offset: number,
  ): void {
    let value: T;
    try {
      value = (this.parse as LineParser<T>)(text, this.line, offset);
    } catch (err) {
      sink.invalid(
        this.error(
          `${this.parseError}: ${errorMessage(err)}`,
          offset,
          'fix the line or let it go to the dlq',
          err,
        ),
        buf.subarray(start, Math.min(end, start + RAW_PREVIEW_BYTES)),
        this.line,
        offset,
      );
      return;
    }
    this.shortcut?.learn(value);
    sink.record(value, this.line, offset);
  }

  private reportTooLong(raw: Buffer, sink: DecodeSink<T>, offset: number): void {
    const reason = `line longer than maxLineBytes (${this.maxLineBytes} bytes)`;
    sink.invalid(
      this.error(reason, offset, 'split the record or raise `maxLineBytes`'),
      raw,
      this.line,
      offset,
    );
  }

  private error(reason: string, offset: number, fix: string, cause?: unknown): SluiceError {
    return new SluiceError(
      ErrorCode.PARSE,
      `line ${this.line} (byte ${offset}): ${reason}; ${fix}`,
      { line: this.line, offset },
      cause === undefined ? undefined : { cause },
    );
  }
}

function hasBom(buf: Buffer, at: number): boolean {
  return buf[at] === 0xef && buf[at + 1] === 0xbb && buf[at + 2] === 0xbf;
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09) return false;
  }
  return true;
}

/** Options of the `lines` format. */
export interface LinesFormatOptions {
  /** Longest line accepted, in bytes. Default 16 MiB. */
  maxLineBytes?: number;
  /** Drop empty lines instead of emitting empty strings. Default false. */
  skipBlank?: boolean;
  /** Where the first byte given sits in the whole input (a restart); default the top. */
  start?: DecodeStart | undefined;
}

/**
 * A decoder of the `lines` format: one string record per line, without its line ending.
 *
 * @example
 * const d = linesDecoder({ skipBlank: true });
 */
export function linesDecoder(options: LinesFormatOptions = {}): LineDecoder<string> {
  return new LineDecoder<string>({
    maxLineBytes: options.maxLineBytes,
    skipBlank: options.skipBlank ?? false,
    start: options.start,
  });
}

/**
 * An encoder of the `lines` format: each record is written as `String(record)` followed by
 * `\n`. A string holding a newline is written as is (and so becomes several lines). A record
 * with no text (`Object.create(null)`, a throwing `toString`) goes to `reject`.
 *
 * @example
 * linesEncoder().encode(['a', 'b']); // 'a\nb\n'
 */
export function linesEncoder(): RecordEncoder<unknown> {
  return lineEncoder(String, (err) => {
    return new SluiceError(
      ErrorCode.RECORD,
      `writing a line: the record has no text (${errorMessage(err)}); map it to a string first or let it go to the dlq`,
      {},
      { cause: err },
    );
  });
}

/**
 * An encoder writing `toLine(record)` and `\n` per record. When a record throws, the batch fails
 * with that error, or, given `reject`, that record goes to `reject` (its error passed through
 * `describe`) and the others are written.
 */
export function lineEncoder(
  toLine: (record: unknown) => string,
  describe: (err: unknown) => unknown = (err) => err,
): RecordEncoder<unknown> {
  return {
    encode(records, reject) {
      let s = '';
      try {
        for (let i = 0; i < records.length; i++) s += `${toLine(records[i])}\n`;
        return s;
      } catch (err) {
        if (reject === undefined) throw describe(err);
      }
      // Only when a record failed: again, one record at a time, so the others are written.
      s = '';
      for (let i = 0; i < records.length; i++) {
        let line: string;
        try {
          line = toLine(records[i]);
        } catch (err) {
          reject(i, describe(err));
          continue;
        }
        s += `${line}\n`;
      }
      return s;
    },
  };
}
