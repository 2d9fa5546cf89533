/**
 * The streaming CSV reader (RFC 4180 plus the usual dialect options).
 *
 * How it is fast: each window of input bytes is turned into one latin1 string (a memcpy), so a
 * character index *is* a byte offset; delimiters are listed 128 KiB at a time by a WebAssembly
 * SIMD scan (`byte-index.ts`) and walked with a cursor, quotes and line ends are found with
 * `String#indexOf` (a vectorised search inside V8); values are `String#slice`s of that string (no call into C++
 * per field, unlike `Buffer#toString`). Whether the window is pure ASCII is checked once with
 * simdutf (`buffer.isAscii`); only fields in non-ASCII 512-byte blocks are re-decoded as UTF-8,
 * through a fatal `TextDecoder` that also detects invalid UTF-8. Rows become objects through a
 * constructor generated once per header, so every record has the same hidden class. Single
 * bytes (a field's first, the one before an LF, the one after a closing quote) and `epochMillis`
 * times are read from the Buffer, not with `charCodeAt` (an element load costs about half). With a
 * projection, the fields after the last column made are only counted (their count is still
 * checked); a quoted one among them is still read through, for its delimiters and line breaks.
 * Measured and not kept: a per-byte loop instead of `indexOf` for short fields (slower: ~2.5 ns
 * per `charCodeAt`, ~1.5 ns per Buffer byte against ~9 ns per `indexOf` call on ~10-byte fields).
 *
 * Trade-off: a field of 13 or more characters that is not interned is a V8 "sliced string" that
 * keeps its window's string (≈ one input chunk) alive as long as the value lives.
 *
 * The row loop (`parse`) and the few methods it calls read and write the decoder's cursor fields
 * (line, offsets, header state) for every field, so they stay in this class; what is not on that
 * path lives apart: chunks → windows of whole rows and bad-row reports (`row-reader.ts`, shared
 * with the CSV → JSON Lines transcoder), options (`options.ts`), typed values (`types.ts`),
 * interning (`intern.ts`), the writer (`encoder.ts`).
 */
import { type Buffer, isAscii } from 'node:buffer';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { FieldUse } from '../../core/projection.ts';
import type { DecodeSink, RecordDecoder } from '../format.ts';
import { SHORT_STRING_BYTES } from '../short-strings.ts';
import { ByteIndex, scanSegment } from './byte-index.ts';
import { InternCache } from './intern.ts';
import { canonicalIsoView } from './iso-bytes.ts';
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
import { type Converter, type CsvValue, conversionProblem, converterFor, FAIL } from './types.ts';

/** A decoded row: an object keyed by column name, or an array when the input has no column names. */
export type CsvRow = Record<string, CsvValue> | CsvValue[];

const BLOCK_SHIFT = 9;

/** {@link CsvDecoder.skipFrom} when no column is skipped. */
const ALL = 0x7fffffff;

// Bits of a column's kind (see `CsvDecoder.kinds`): its value is made; it is read as an
// `epochMillis` time and has no declared type.
const MADE = 1;
const EPOCH = 2;

/** A value cut for an error message. */
function cut(v: string): string {
  return v.length > 100 ? `${v.slice(0, 100)}…` : v;
}

/**
 * Builds the row constructor: an object literal with the column names as keys. Generated code
 * (`new Function`) because a literal gives every record the same hidden class with in-object
 * fields; assigning keys in a loop is ~20× slower on V8. Names are embedded with
 * `JSON.stringify`, so no column name can inject code.
 */
function rowMaker(names: readonly string[], keep?: Uint8Array): (v: CsvValue[]) => Record<string, CsvValue> {
  const props = names
    .map((n, i) => `${n === '__proto__' ? `["__proto__"]` : JSON.stringify(n)}: v[${i}]`)
    .filter((_, i) => keep === undefined || keep[i] === 1);
  return new Function('v', `return {${props.join(', ')}};`) as (v: CsvValue[]) => Record<string, CsvValue>;
}

/** Makes duplicate header names unique (`a`, `a_2`, `a_3`), so no column silently overwrites another. */
export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    let name = n;
    for (let k = 2; seen.has(name); k++) name = `${n}_${k}`;
    seen.add(name);
    out.push(name);
  }
  return out;
}

/**
 * Streaming CSV decoder: bytes in, one record per row out, through the synchronous
 * {@link DecodeSink} callbacks.
 *
 * Bad rows — an unterminated quote, a character after a closing quote, a wrong number of fields,
 * invalid UTF-8, a value that does not convert to its column type, a row longer than
 * `maxRecordBytes` — go to `sink.invalid` with the line, byte offset and (bounded) raw bytes, and
 * decoding goes on: after a row whose syntax is broken (quote errors, too long) it resumes at the
 * next physical line after the row's start; after the others, at the next row. With `strict` the
 * first bad row throws its error instead. The output does not depend on how the input is cut into
 * chunks.
 *
 * Memory: the unfinished tail of the input (at most about twice the longest record) plus a bounded
 * intern table.
 *
 * @example
 * const dec = new CsvDecoder({ types: { n: 'int' } });
 * const rows: unknown[] = [];
 * const sink = { record: (r: unknown) => rows.push(r), invalid: () => {} };
 * dec.write(new TextEncoder().encode('name,n\nada,3\n'), sink);
 * dec.end(sink);
 * rows; // [{ name: 'ada', n: 3 }]
 */
export class CsvDecoder extends CsvRowReader<DecodeSink<CsvRow>> implements RecordDecoder<CsvRow> {
  private names: string[] | undefined;
  private ncols = -1;
  private make: ((v: CsvValue[]) => CsvRow) | undefined;
  private convs: (Converter | undefined)[] | undefined;
  private readonly vals: CsvValue[] = [];
  private readonly intern: InternCache | undefined;
  /**
   * Lists the delimiters of the buffer {@link parse} reads; made by the first `parse`, sized to
   * its buffer (a decoder that re-reads one dead letter's 4 KiB needs no 128 KiB scanner).
   */
  private delims: ByteIndex | undefined;
  // `ignoreBOM`: a U+FEFF inside a field is data; only the file's leading BOM is skipped (by `CsvRowReader`).
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Per 512-byte block of the current window: 1 when it holds a byte ≥ 0x80. */
  private dirty = new Uint8Array(0);
  /** Column of the first field of the current row that is not valid UTF-8, or -1. */
  private badUtf8 = -1;
  /** Fields asked for by {@link project}, or undefined for every column. */
  private projection: readonly string[] | undefined;
  /** Per column: 1 when its value is made, 0 when a projection skips it (empty: every column). */
  private kept = new Uint8Array(0);
  /** First column after the last one {@link kept} makes (a large number when every column is made). */
  private skipFrom = ALL;
  /** How the projection's readers read fields (see `FieldUse`). */
  private uses: ReadonlyMap<string, FieldUse> | undefined;
  /**
   * Per column: 1 when it is read as an `epochMillis` time and has no declared type, so a value
   * in the common ISO-8601 layout is handed over as its epoch ms, parsed from the window's text
   * without making its string (empty: none).
   */
  private epochCols = new Uint8Array(0);
  /**
   * Per column, what the row loop does with its value, as {@link MADE} and {@link EPOCH} bits
   * (from {@link kept} and {@link epochCols}): one byte read per field instead of two arrays and
   * their bounds (empty: every column made, none a time).
   */
  private kinds = new Uint8Array(0);
  /** The kind of a field past the last column (a row with too many): made unless projected. */
  private beyond = MADE;

  constructor(options: CsvDecodeOptions = {}) {
    super(resolveDecodeOptions(options));
    if (this.o.intern !== undefined) this.intern = new InternCache(this.o.intern);
    if (this.o.columns !== undefined) this.setColumns(this.o.columns);
  }

  /**
   * {@inheritDoc RecordDecoder.project} Rows then hold only the named columns (and the typed
   * ones, whose conversion can reject a row); the others are scanned but no string is made of
   * them. Applies once the column names are known; rows without names (arrays) keep every column.
   * A column of `uses` read as `epochMillis` (and without a declared type) holds the epoch ms of
   * a value written as `Date#toISOString` writes it, and the text of any other value.
   */
  project(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>): void {
    this.projection = fields;
    this.uses = uses;
    if (this.names !== undefined) this.setColumns(this.names);
  }

  /** The column names in effect (from `columns` or the header), once known. */
  columnNames(): readonly string[] | undefined {
    return this.names;
  }

  /** Lookups and hits of the intern cache so far (zeros when interning is off). */
  internStats(): { lookups: number; hits: number } {
    return this.intern?.stats() ?? { lookups: 0, hits: 0 };
  }

  /** {@inheritDoc RecordDecoder.write} */
  write(chunk: Uint8Array, sink: DecodeSink<CsvRow>): void {
    this.feed(chunk, sink);
  }

  /** {@inheritDoc RecordDecoder.end} */
  end(sink: DecodeSink<CsvRow>): void {
    this.feedEnd(sink);
  }

  private setColumns(names: readonly string[]): void {
    const uniq = uniqueNames(names);
    this.names = uniq;
    this.ncols = uniq.length;
    const types = this.o.types;
    const proj = this.projection;
    const uses = this.uses;
    this.epochCols =
      uses === undefined || uses.size === 0
        ? new Uint8Array(0)
        : Uint8Array.from(uniq, (n) =>
            uses.get(n) === 'epochMillis' && !(types !== undefined && Object.hasOwn(types, n)) ? 1 : 0,
          );
    if (proj === undefined) {
      this.kept = new Uint8Array(0);
      this.skipFrom = ALL;
      this.make = rowMaker(uniq);
    } else {
      this.kept = Uint8Array.from(uniq, (n) =>
        proj.includes(n) || (types !== undefined && Object.hasOwn(types, n)) ? 1 : 0,
      );
      this.skipFrom = this.kept.lastIndexOf(1) + 1;
      this.make = rowMaker(uniq, this.kept);
    }
    const kept = this.kept;
    const epoch = this.epochCols;
    this.kinds = Uint8Array.from(
      uniq,
      (_, i) => (kept.length === 0 || kept[i] === 1 ? MADE : 0) | (epoch[i] === 1 ? EPOCH : 0),
    );
    this.beyond = proj === undefined ? MADE : 0;
    if (types !== undefined) {
      const unknown = Object.keys(types).filter((k) => !uniq.includes(k));
      if (unknown.length > 0) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `\`types\` names ${unknown.map((u) => `\`${u}\``).join(', ')}, not among the CSV columns (${uniq.join(', ')}); check the spelling against the header`,
          { component: 'csv' },
        );
      }
      this.convs = uniq.map((n) => (Object.hasOwn(types, n) ? converterFor(types[n]!) : undefined));
    }
  }

  private markDirty(b: Buffer): void {
    const nb = (b.length >> BLOCK_SHIFT) + 1;
    if (this.dirty.length < nb) this.dirty = new Uint8Array(nb * 2);
    for (let k = 0; k < nb; k++) {
      const a = k << BLOCK_SHIFT;
      this.dirty[k] = isAscii(b.subarray(a, Math.min(a + (1 << BLOCK_SHIFT), b.length))) ? 0 : 1;
    }
  }

  /** True when bytes `[a, b)` of the current window are ASCII (checked per 512-byte block first). */
  private clean(s: string, a: number, b: number): boolean {
    for (let k = a >> BLOCK_SHIFT, e = (b - 1) >> BLOCK_SHIFT; k <= e; k++) {
      if (this.dirty[k] === 1) {
        for (let i = a; i < b; i++) if (s.charCodeAt(i) >= 0x80) return false;
        return true;
      }
    }
    return true;
  }

  /** The text of bytes `[a, b)`: the latin1 slice when they are ASCII, else strict UTF-8. */
  private text(s: string, buf: Buffer, a: number, b: number, col: number): string {
    if (this.clean(s, a, b)) return s.slice(a, b);
    try {
      return this.utf8.decode(buf.subarray(a, b));
    } catch {
      if (this.badUtf8 === -1) this.badUtf8 = col;
      return '';
    }
  }

  /**
   * Parses complete rows of `buf` from `start`; returns where the first unfinished row starts
   * (`buf.length` when none). With `last`, the end of `buf` ends the input.
   *
   * Every decision about a row depends only on the row's own bytes, never on where the window
   * ends: a row that cannot be finished is re-parsed whole when more bytes arrive, and "too long"
   * is decided by the same threshold whether the row is finished or not.
   */
  protected parse(buf: Buffer, start: number, last: boolean, sink: DecodeSink<CsvRow>): number {
    const len = buf.length;
    const s = buf.toString('latin1', 0, len);
    const ascii = isAscii(buf);
    if (!ascii) this.markDirty(buf);
    const D = this.o.delimiter;
    const Q = this.o.quote;
    const Qs = String.fromCharCode(Q);
    let delims = this.delims;
    if (delims === undefined) delims = this.delims = new ByteIndex(this.o.delimiter, scanSegment(len));
    const dpos = delims.pos;
    // The delimiters of `[.., dEnd)` are listed in `dpos`, from entry `dk` on; scanned on demand.
    let dEnd = 0;
    let dk = 0;
    const skipEmpty = this.o.skipEmptyLines;
    const max = this.o.maxRecordBytes;
    const vals = this.vals;
    const intern = this.intern;
    const internMax = intern === undefined ? -1 : intern.maxLength;
    // Every column of the cache goes through `get`, also once it stopped interning it: the
    // plain slice is then made by `get`'s own call site, which ran from the first row on.
    const internCols = intern === undefined ? 0 : intern.enabled.length;
    // What `intern.short` and `canonicalIsoView` read a value's bytes through (as 32-bit words).
    const view = new DataView(buf.buffer, buf.byteOffset, len);
    // What to do with each column's value (see `kinds`); `beyond` for a field past the last column.
    let kinds = this.kinds;
    let nkinds = kinds.length;
    let beyond = this.beyond;
    let skipFrom = this.skipFrom;
    // Cached next positions of delimiter / quote / LF; `len` means "none up to the end". A cached
    // value ≥ the search start is still the first match, so each byte is searched about once.
    let nd = -1;
    let nq = -1;
    let nl = -1;
    let p = start;
    let line = this.line;
    const base = this.base;

    // Where the unfinished rest starts. Every exit goes through the one return after the loop,
    // which every window's end then runs: an exit that first runs after the loop was optimised
    // (a window ending exactly at a row's end) would throw the optimised code away.
    let end = len;
    rows: while (p < len) {
      const rowStart = p;
      if (nl < p) {
        nl = s.indexOf('\n', p);
        if (nl === -1) nl = len;
      }
      let status = OK;
      let f = 0;
      let extraLines = 0;
      let next = 0; // first byte after the row's terminator
      let rowEnd = 0; // first byte of the terminator
      let syntax = ''; // what is wrong when status is SYNTAX
      let errAt = 0; // where the syntax error was seen
      this.badUtf8 = -1;
      // Read and compared for every row (p < len), not only when the line is one character long:
      // an operation that first runs after the loop was optimised throws the optimised code away.
      const c0 = buf[p]!;
      if (skipEmpty && (nl === p || (c0 === CR && nl === p + 1))) {
        // An empty line (LF or CRLF only).
        if (nl === len && !last) {
          end = rowStart;
          break;
        }
        p = nl === len ? len : nl + 1;
        line++;
        this.posLine = line;
        this.posOffset = base + p;
        continue;
      }
      fields: for (;;) {
        if (p >= len) {
          if (!last) {
            status = INCOMPLETE;
            break;
          }
          vals[f++] = '';
          rowEnd = next = len;
          break;
        }
        const kind = f < nkinds ? kinds[f]! : beyond;
        if (buf[p] === Q) {
          let a = p + 1;
          let val = '';
          // A skipped column's value is not made; in a window that is not all ASCII its bytes
          // are still checked, so a row with invalid UTF-8 is rejected as without the projection.
          const make = (kind & MADE) !== 0 || !ascii;
          for (;;) {
            if (nq < a) {
              nq = s.indexOf(Qs, a);
              if (nq === -1) nq = len;
            }
            if (nq >= len - 1 && !last) {
              status = INCOMPLETE;
              break fields;
            }
            if (nq === len) {
              status = SYNTAX;
              syntax = rowProblem.unterminatedQuote(f + 1);
              errAt = len;
              break fields;
            }
            if (nq + 1 < len && buf[nq + 1] === Q) {
              if (make) val += ascii ? s.slice(a, nq + 1) : this.text(s, buf, a, nq + 1, f);
              a = nq + 2;
              continue;
            }
            if (make) val += ascii ? s.slice(a, nq) : this.text(s, buf, a, nq, f);
            break;
          }
          const close = nq;
          while (nl < close) {
            extraLines++;
            nl = s.indexOf('\n', nl + 1);
            if (nl === -1) nl = len;
          }
          vals[f++] = val;
          const after = close + 1;
          if (after === len) {
            rowEnd = next = len;
            break;
          }
          const c = buf[after]!;
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
          syntax = rowProblem.afterClosingQuote(s[after] as string, f);
          errAt = after;
          break;
        }
        if (nd < p) {
          if (p >= dEnd) {
            dEnd = delims.scan(buf, p);
            dk = 0;
          }
          nd = dpos[dk]!;
          while (nd < p) nd = dpos[++dk]!;
          while (nd === dEnd && dEnd < len) {
            dEnd = delims.scan(buf, dEnd);
            dk = 0;
            nd = dpos[0]!;
          }
        }
        if (ascii && (kind & MADE) === 0) {
          // A column not made (after the last one made, or skipped before it): only count the
          // fields, up to the next column made, the row's last field or the next quoted one
          // (those take the general path). Nothing reads `vals` of a column not made.
          while (nd < nl) {
            f++;
            p = nd + 1;
            if (p === len || buf[p] === Q) continue fields;
            // `nd` is `dpos[dk]`: the next delimiter is the next entry, unless that is the end
            // of what is listed (then the lookup above scans on, or finds none).
            nd = dpos[++dk]!;
            if (nd === dEnd) {
              nd = -1;
              continue fields;
            }
            if (f < skipFrom && (kinds[f]! & MADE) !== 0) continue fields;
          }
        }
        let e: number;
        const atDelimiter = nd < nl;
        if (atDelimiter) {
          e = nd;
        } else {
          if (nl === len) {
            if (!last) {
              status = INCOMPLETE;
              break;
            }
            rowEnd = next = len;
          } else {
            rowEnd = nl;
            next = nl + 1;
          }
          e = rowEnd > p && buf[rowEnd - 1] === CR ? rowEnd - 1 : rowEnd;
          rowEnd = e;
        }
        let v: CsvValue;
        // An `epochMillis` column's time in the common layout (all ASCII: no UTF-8 check needed).
        const t = (kind & EPOCH) !== 0 ? canonicalIsoView(view, buf, p, e - p) : Number.NaN;
        if ((kind & MADE) === 0 && ascii) {
          v = '';
        } else if (!Number.isNaN(t)) {
          v = t;
        } else if (e - p <= internMax && f < internCols && (ascii || this.clean(s, p, e))) {
          v =
            e - p <= SHORT_STRING_BYTES && p + SHORT_STRING_BYTES <= len
              ? intern!.short.get(view, p, e - p, s, p, f)
              : intern!.get(s, buf, p, e, f);
        } else {
          v = ascii ? s.slice(p, e) : this.text(s, buf, p, e, f);
        }
        vals[f++] = v;
        if (atDelimiter) {
          p = nd + 1;
          continue;
        }
        break;
      }
      const rowLine = line;
      let firstLf = -1;
      if (status === SYNTAX) {
        // Resume at the line after the row's first line: its quoting cannot be trusted.
        firstLf = s.indexOf('\n', rowStart);
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
        if (status === TOO_LONG) firstLf = s.indexOf('\n', rowStart);
        let end =
          firstLf === -1
            ? len
            : firstLf > rowStart && s.charCodeAt(firstLf - 1) === CR
              ? firstLf - 1
              : firstLf;
        // The raw bytes must not depend on how much of an over-long line has arrived.
        if (end - rowStart > max) end = rowStart + max;
        const msg = status === SYNTAX ? syntax : rowProblem.tooLong(max);
        this.bad(msg, buf, rowStart, end, rowLine, base, sink, {});
        if (firstLf === -1 && !last) {
          // The rest of this line is discarded as it arrives (see `write`).
          this.skipping = true;
          end = len;
          break;
        }
        p = firstLf === -1 ? len : firstLf + 1;
        line++;
        nd = nq = nl = -1;
        // The next row may start before where the delimiter list was walked to: list it again.
        dEnd = 0;
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
        if (this.names === undefined) {
          if (this.badUtf8 !== -1) {
            throw headerNotUtf8(rowLine, base + rowStart);
          }
          this.setColumns(vals.slice(0, f) as string[]);
          // The rows after the header in this window are read by the new columns' projection.
          kinds = this.kinds;
          nkinds = kinds.length;
          beyond = this.beyond;
          skipFrom = this.skipFrom;
        }
        continue;
      }
      if (this.ncols === -1) {
        this.ncols = f;
        this.make = (v) => v.slice(0, f);
      }
      if (f !== this.ncols) {
        this.bad(rowProblem.fieldCount(f, this.ncols), buf, rowStart, rowEnd, rowLine, base, sink, {});
        continue;
      }
      if (this.badUtf8 !== -1) {
        const col = this.names?.[this.badUtf8] ?? String(this.badUtf8);
        this.bad(rowProblem.badUtf8(col), buf, rowStart, rowEnd, rowLine, base, sink, {
          column: col,
        });
        continue;
      }
      const convs = this.convs;
      if (convs !== undefined) {
        for (let i = 0; i < f; i++) {
          const conv = convs[i];
          if (conv === undefined) continue;
          const r = conv(vals[i] as string);
          if (r === FAIL) {
            const col = this.names![i]!;
            const value = vals[i] as string;
            const problem = conversionProblem(this.o.types![col]!, value);
            this.bad(
              `column \`${col}\`: ${JSON.stringify(cut(value))} ${problem}; fix the value or the column's type in \`types\``,
              buf,
              rowStart,
              rowEnd,
              rowLine,
              base,
              sink,
              { column: col, value: cut(value) },
            );
            continue rows;
          }
          vals[i] = r;
        }
      }
      sink.record(this.make!(vals), rowLine, base + rowStart);
    }
    this.line = line;
    return end;
  }
}
