/**
 * CSV bytes straight to JSON Lines bytes: what {@link CsvDecoder} followed by the `jsonl`
 * encoder writes, byte for byte, without making a string or an object per row.
 *
 * Why: turning a CSV file into JSON Lines with nothing in between spent most of its time making
 * record objects and `JSON.stringify`-ing them again (~640 ns per 12-field row, bench/README.md
 * "csv-stdout"). Here each row's fields are found in the input bytes (their spans) and checked;
 * `transcode-writer.ts` copies them into the output between prepared key prefixes (`{"id":"`,
 * `","name":"`…), escaping what JSON needs escaped.
 *
 * Same output, same reports: rows are cut exactly as the decoder cuts them (quotes, doubled
 * quotes, LF and CRLF, a leading BOM, empty lines, the last line without a newline, rows longer
 * than `maxRecordBytes`); values are escaped as `JSON.stringify` escapes strings (`\"`, `\\`,
 * `\b \t \n \f \r`, other control characters as `\u00xx`; other bytes copied, the decoder having
 * accepted them as UTF-8); keys come in the order `JSON.stringify` gives the decoder's record's
 * keys (integer-like names first, see {@link keyOrder}); duplicate header names are made unique as
 * the decoder does. Bad rows — broken quoting, a wrong number of fields, invalid UTF-8, too long —
 * are reported through `invalid` with the decoder's error text, line, byte offset and raw bytes,
 * and the rows after them go on. The differential test (`transcode.test.ts`) holds it to that.
 *
 * Not supported (see {@link CsvJsonlTranscoder.unsupported}): `types` (typed values are not the
 * row's text), and any reader option added after this class (it could change the records). A
 * caller checks that first, once, and takes the general path instead.
 */
import { type Buffer, isUtf8 } from 'node:buffer';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { uniqueNames } from './decoder.ts';
import { type CsvDecodeOptions, resolveDecodeOptions } from './options.ts';
import {
  CR,
  CsvRowReader,
  headerNotUtf8,
  INCOMPLETE,
  LF,
  OK,
  rowProblem,
  SYNTAX,
  TOO_LONG,
} from './row-reader.ts';
import { F_DOUBLED, F_ESC, F_HIGH, JsonLinesRowWriter, jsonEscapes } from './transcode-writer.ts';

export { keyOrder } from './transcode-writer.ts';

/** Receives what a {@link CsvJsonlTranscoder} makes, synchronously, in input order. */
export interface TranscodeSink {
  /**
   * `count` rows as JSON Lines (each line ends with `\n`). `bytes` stay as they are until
   * `release` is called, which the receiver may do once it has finished with them (the transcoder
   * then writes later rows into that memory) or never. Called when `batchSize` rows are ready and
   * at the end of every `write` that made some; the transcoder's `position()` is then the position
   * right after the last of these rows, or, at the end of a `write`, after everything that
   * `write` consumed.
   */
  rows(bytes: Uint8Array, count: number, release: () => void): void;
  /**
   * One row that the decoder would have rejected, with the decoder's error (its context has `line`
   * and `offset`) and its raw bytes (bounded by `maxRawBytes`; a view valid only during this call).
   */
  invalid(error: SluiceError, raw: Uint8Array, line: number, offset: number): void;
}

/** The CSV reader's options the transcoder writes exactly as the reader + `jsonl` encoder do. */
const TRANSCODED_OPTIONS = new Set<string>([
  'delimiter',
  'quote',
  'header',
  'columns',
  'types',
  'strict',
  'maxRecordBytes',
  'maxRawBytes',
  'skipEmptyLines',
  'intern',
  'start',
] satisfies (keyof CsvDecodeOptions)[]);
// Byte classes of an unquoted field (`unq`) and of a quoted one (`inq`).
const PLAIN = 0;
/** Unquoted: the delimiter or LF (the field ends). Quoted: the quote character. */
const STOP = 1;
/** Needs a JSON escape (control character, `"`, `\`). */
const ESC = 2;
/** A byte ≥ 0x80: copied, but its field must be valid UTF-8. */
const HIGH = 3;
/** Unquoted: CR (dropped before LF or the end, else escaped). Quoted: LF (escaped; counts a line). */
const NEWLINE = 4;

function classOf(c: number): number {
  if (c >= 0x80) return HIGH;
  return jsonEscapes(c) ? ESC : PLAIN;
}

/**
 * Streaming CSV → JSON Lines transcoder with the reports of {@link CsvDecoder}; see the module
 * comment. Stateful: one per input stream. `write` and `end` as a {@link CsvDecoder}'s (a row may
 * span chunks; it keeps no view of a chunk once `write` returns), output through the
 * {@link TranscodeSink}.
 *
 * @example
 * const t = new CsvJsonlTranscoder({}, 1024);
 * const out: string[] = [];
 * const sink = { rows: (b: Uint8Array) => out.push(Buffer.from(b).toString()), invalid: () => {} };
 * t.write(Buffer.from('id,name\n1,"a ""b"""\n'), sink);
 * t.end(sink);
 * out.join(''); // '{"id":"1","name":"a \\"b\\""}\n'
 */
export class CsvJsonlTranscoder extends CsvRowReader<TranscodeSink> {
  /**
   * Why `options` cannot be transcoded (a sentence), or undefined when they can. Decided from the
   * options alone, before any input is read.
   */
  static unsupported(options: CsvDecodeOptions): string | undefined {
    if (options.types !== undefined && Object.keys(options.types).length > 0)
      return 'the CSV input has `types` (typed values are not the text of the row)';
    // An option added to the reader later changes its records in ways this class does not know:
    // only the ones it was written (and tested) against pass.
    const other = Object.keys(options).filter(
      (k) => !TRANSCODED_OPTIONS.has(k) && (options as Record<string, unknown>)[k] !== undefined,
    );
    if (other.length > 0) return `the CSV option \`${other[0]}\` is not one the transcoder knows`;
    return undefined;
  }

  private readonly batchSize: number;
  /** Byte classes outside and inside quotes. */
  private readonly unq = new Uint8Array(256);
  private readonly inq = new Uint8Array(256);
  /** Column names (unique), or undefined before the header or for rows written as arrays. */
  private names: string[] | undefined;
  private ncols = -1;
  // The current row's field spans: start, end (exclusive) and flags.
  private starts = new Int32Array(64);
  private ends = new Int32Array(64);
  private flags = new Uint8Array(64);
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Writes the good rows' JSON. */
  private readonly writer: JsonLinesRowWriter;

  /**
   * `options`: the CSV reader's (they must pass {@link unsupported}); `batchSize`: rows per
   * {@link TranscodeSink.rows} call at most.
   */
  constructor(options: CsvDecodeOptions, batchSize: number) {
    const why = CsvJsonlTranscoder.unsupported(options);
    if (why !== undefined)
      throw new SluiceError(ErrorCode.CONFIG, `cannot transcode CSV to JSON Lines: ${why}`);
    super(resolveDecodeOptions(options));
    this.writer = new JsonLinesRowWriter(this.o.quote);
    this.batchSize = batchSize;
    for (let c = 0; c < 256; c++) {
      this.unq[c] = classOf(c);
      this.inq[c] = classOf(c);
    }
    this.unq[this.o.delimiter] = STOP;
    this.unq[LF] = STOP;
    this.unq[CR] = NEWLINE;
    this.inq[LF] = NEWLINE;
    this.inq[this.o.quote] = STOP;
    if (this.o.columns !== undefined) this.setColumns(this.o.columns);
  }

  /** Transcodes every complete row of `chunk` (plus what earlier chunks left over). */
  write(chunk: Uint8Array, sink: TranscodeSink): void {
    this.feed(chunk, sink);
    this.flush(sink);
  }

  /** End of input: the last row without a newline, or the report of a truncated one. */
  end(sink: TranscodeSink): void {
    this.feedEnd(sink);
    this.flush(sink);
  }

  /** Column names known (from `columns` or the header): the prefixes of every key. */
  private setColumns(given: readonly string[]): void {
    const names = uniqueNames(given);
    this.names = names;
    this.ncols = names.length;
    this.writer.objects(names);
  }

  /** Rows without names: arrays of strings. */
  private setArrays(n: number): void {
    this.ncols = n;
    this.writer.arrays(n);
  }

  /** Hands the rows written so far to `sink` (see {@link TranscodeSink.rows}). */
  private flush(sink: TranscodeSink): void {
    this.writer.flush((bytes, count, release) => sink.rows(bytes, count, release));
  }

  private growSpans(): void {
    const n = this.starts.length * 2;
    const s = new Int32Array(n);
    s.set(this.starts);
    this.starts = s;
    const e = new Int32Array(n);
    e.set(this.ends);
    this.ends = e;
    const f = new Uint8Array(n);
    f.set(this.flags);
    this.flags = f;
  }

  /**
   * Parses the complete rows of `buf` from `start` and writes the good ones; returns where the
   * first unfinished row starts (`buf.length` when none). With `last`, the end of `buf` ends the
   * input. Every decision mirrors `CsvDecoder#parse`, whose comments say why.
   */
  protected parse(buf: Buffer, start: number, last: boolean, sink: TranscodeSink): number {
    const len = buf.length;
    const D = this.o.delimiter;
    const Q = this.o.quote;
    const unq = this.unq;
    const inq = this.inq;
    const skipEmpty = this.o.skipEmptyLines;
    const max = this.o.maxRecordBytes;
    const base = this.base;
    const input = new DataView(buf.buffer, buf.byteOffset, len);
    // The current row's field spans (see `growSpans`).
    let starts = this.starts;
    let ends = this.ends;
    let flags = this.flags;
    let p = start;
    let line = this.line;
    let end = len;
    rows: while (p < len) {
      const rowStart = p;
      const c0 = buf[p] as number;
      if (skipEmpty && (c0 === LF || (c0 === CR && (p + 1 === len || buf[p + 1] === LF)))) {
        if (c0 === LF) p++;
        else if (p + 1 < len) p += 2;
        else if (!last) {
          end = rowStart;
          break;
        } else p = len;
        line++;
        this.posLine = line;
        this.posOffset = base + p;
        continue;
      }
      let status = OK;
      let f = 0;
      let extraLines = 0;
      let next = 0;
      let rowEnd = 0;
      let syntax = '';
      let errAt = 0;
      let fieldBytes = 0;
      fields: for (;;) {
        if (f === starts.length) {
          this.growSpans();
          starts = this.starts;
          ends = this.ends;
          flags = this.flags;
        }
        if (p >= len) {
          if (!last) {
            status = INCOMPLETE;
            break;
          }
          starts[f] = len;
          ends[f] = len;
          flags[f++] = 0;
          rowEnd = next = len;
          break;
        }
        if (buf[p] === Q) {
          const a = p + 1;
          let i = a;
          let fl = 0;
          let lfs = 0;
          for (;;) {
            let k = 0;
            while (i < len) {
              k = inq[buf[i] as number] as number;
              if (k === PLAIN) i++;
              else if (k === STOP) break;
              else {
                if (k === HIGH) fl |= F_HIGH;
                else {
                  fl |= F_ESC;
                  if (k === NEWLINE) lfs++;
                }
                i++;
              }
            }
            if (i >= len - 1 && !last) {
              status = INCOMPLETE;
              break fields;
            }
            if (i === len) {
              status = SYNTAX;
              syntax = rowProblem.unterminatedQuote(f + 1);
              errAt = len;
              break fields;
            }
            if (i + 1 < len && buf[i + 1] === Q) {
              fl |= F_DOUBLED;
              i += 2;
              continue;
            }
            break;
          }
          extraLines += lfs;
          starts[f] = a;
          ends[f] = i;
          flags[f++] = fl;
          fieldBytes += fl === 0 ? i - a : 6 * (i - a);
          const after = i + 1;
          if (after === len) {
            rowEnd = next = len;
            break;
          }
          const c = buf[after] as number;
          if (c === D) {
            p = after + 1;
            continue;
          }
          if (c === LF) {
            rowEnd = after;
            next = after + 1;
            break;
          }
          if (c === CR) {
            if (after + 1 === len) {
              if (!last) {
                status = INCOMPLETE;
                break;
              }
              rowEnd = after;
              next = len;
              break;
            }
            if (buf[after + 1] === LF) {
              rowEnd = after;
              next = after + 2;
              break;
            }
          }
          status = SYNTAX;
          syntax = rowProblem.afterClosingQuote(String.fromCharCode(c), f);
          errAt = after;
          break;
        }
        let i = p;
        let fl = 0;
        while (i < len) {
          const k = unq[buf[i] as number] as number;
          if (k === PLAIN) i++;
          else if (k === STOP) break;
          else {
            // A CR before LF (or the end) ends the row; anywhere else it is data.
            if (k === HIGH) fl |= F_HIGH;
            else if (k === ESC || (i + 1 < len && buf[i + 1] !== LF)) fl |= F_ESC;
            i++;
          }
        }
        if (i < len && buf[i] === D) {
          starts[f] = p;
          ends[f] = i;
          flags[f++] = fl;
          fieldBytes += fl === 0 ? i - p : 6 * (i - p);
          p = i + 1;
          continue;
        }
        if (i === len) {
          if (!last) {
            status = INCOMPLETE;
            break;
          }
          rowEnd = next = len;
        } else {
          rowEnd = i;
          next = i + 1;
        }
        const e = rowEnd > p && buf[rowEnd - 1] === CR ? rowEnd - 1 : rowEnd;
        rowEnd = e;
        starts[f] = p;
        ends[f] = e;
        flags[f++] = fl;
        fieldBytes += fl === 0 ? e - p : 6 * (e - p);
        break;
      }
      const rowLine = line;
      let firstLf = -1;
      if (status === SYNTAX) {
        firstLf = buf.indexOf(LF, rowStart);
        if (errAt - rowStart > max || (firstLf !== -1 && firstLf - rowStart > max)) status = TOO_LONG;
        else if (firstLf === -1 && !last) status = INCOMPLETE;
      } else if (status === OK && next - rowStart > max) {
        status = TOO_LONG;
      }
      if (status === INCOMPLETE) {
        if (len - rowStart <= max) {
          end = rowStart;
          break;
        }
        status = TOO_LONG;
      }
      if (status === TOO_LONG || status === SYNTAX) {
        if (status === TOO_LONG) firstLf = buf.indexOf(LF, rowStart);
        let stop =
          firstLf === -1 ? len : firstLf > rowStart && buf[firstLf - 1] === CR ? firstLf - 1 : firstLf;
        if (stop - rowStart > max) stop = rowStart + max;
        const msg = status === SYNTAX ? syntax : rowProblem.tooLong(max);
        this.bad(msg, buf, rowStart, stop, rowLine, base, sink, {});
        if (firstLf === -1 && !last) {
          this.skipping = true;
          end = len;
          break;
        }
        p = firstLf === -1 ? len : firstLf + 1;
        line++;
        this.posLine = line;
        this.posOffset = base + p;
        continue;
      }
      p = next;
      line += 1 + extraLines;
      this.posLine = line;
      this.posOffset = base + p;
      if (this.headerPending) {
        this.headerPending = false;
        if (this.names === undefined) this.setColumns(this.headerNames(buf, f, rowLine, base + rowStart));
        continue;
      }
      if (this.ncols === -1) this.setArrays(f);
      if (f !== this.ncols) {
        this.bad(rowProblem.fieldCount(f, this.ncols), buf, rowStart, rowEnd, rowLine, base, sink, {});
        continue;
      }
      for (let j = 0; j < f; j++) {
        if ((flags[j] as number) & F_HIGH && !isUtf8(buf.subarray(starts[j], ends[j]))) {
          const col = this.names?.[j] ?? String(j);
          this.bad(rowProblem.badUtf8(col), buf, rowStart, rowEnd, rowLine, base, sink, { column: col });
          continue rows;
        }
      }
      this.writer.write(buf, input, starts, ends, flags, f, fieldBytes);
      if (this.writer.count >= this.batchSize) this.flush(sink);
    }
    this.line = line;
    return end;
  }

  /** The header row's `f` values as names (strict UTF-8), or the decoder's error for a header that is not UTF-8. */
  private headerNames(buf: Buffer, f: number, line: number, offset: number): string[] {
    const names: string[] = [];
    const q = String.fromCharCode(this.o.quote);
    for (let j = 0; j < f; j++) {
      const span = buf.subarray(this.starts[j], this.ends[j]);
      const fl = this.flags[j] as number;
      let text: string;
      if (fl & F_HIGH) {
        try {
          text = this.utf8.decode(span);
        } catch {
          throw headerNotUtf8(line, offset);
        }
      } else {
        text = span.toString('latin1');
      }
      names.push(fl & F_DOUBLED ? text.replaceAll(q + q, q) : text);
    }
    return names;
  }
}
