/**
 * The CSV writer: records (objects or arrays) to RFC 4180 text that {@link CsvDecoder} reads
 * back to the same table.
 */
import { Decimal } from '../../core/decimal.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordEncoder } from '../format.ts';
import { stringifyJson } from '../json.ts';
import { type CsvEncodeOptions, resolveEncodeOptions } from './options.ts';

/**
 * Encodes records as CSV rows. A field is quoted when it holds the delimiter, the quote, CR or LF,
 * starts with a byte-order mark, or is the only field of a row and empty (an empty line would be
 * skipped by the reader). `null`/`undefined` are empty fields; numbers, bigints and booleans are
 * written as text; a `Date` as ISO-8601; other objects as JSON. A record with a field that cannot
 * be written (an invalid `Date`, an object too deep or circular for JSON) goes to `reject`.
 *
 * The header row: when `columns` is given, {@link header} returns it; otherwise the columns are
 * the first record's keys and the header is written ahead of the first encoded batch (or by
 * `header()` if a sink asks after that). Arrays are written positionally, with no header unless
 * `columns` is given.
 *
 * @example
 * const enc = new CsvEncoder({ columns: ['a', 'b'] });
 * enc.header(); // 'a,b\n'
 * enc.encode([{ a: 'x,y', b: 1 }]); // '"x,y",1\n'
 */
export class CsvEncoder implements RecordEncoder<Record<string, unknown> | readonly unknown[]> {
  private readonly d: string;
  private readonly q: string;
  private readonly qq: string;
  private readonly dc: number;
  private readonly qc: number;
  private readonly eol: string;
  private readonly wantHeader: boolean;
  private columns: readonly string[] | undefined;
  /** The header still has to be written by `header()` or the next `encode()`. */
  private headerOwed: boolean;
  /** Nothing written yet: a leading byte-order mark would be eaten by the reader. */
  private first = true;

  constructor(options: CsvEncodeOptions = {}) {
    const o = resolveEncodeOptions(options);
    this.d = o.delimiter;
    this.q = o.quote;
    this.qq = o.quote + o.quote;
    this.dc = o.delimiter.charCodeAt(0);
    this.qc = o.quote.charCodeAt(0);
    this.eol = o.lineEnding;
    this.wantHeader = o.header;
    this.columns = o.columns;
    this.headerOwed = o.header;
  }

  /** {@inheritDoc RecordEncoder.header} */
  header(): string | undefined {
    if (!this.wantHeader || this.columns === undefined) return undefined;
    this.headerOwed = false;
    return this.row(this.columns);
  }

  /** {@inheritDoc RecordEncoder.encode} */
  encode(
    records: readonly (Record<string, unknown> | readonly unknown[])[],
    reject?: (index: number, error: unknown) => void,
  ): string {
    const { columns, headerOwed, first } = this;
    try {
      let out = '';
      for (let i = 0; i < records.length; i++) out += this.record(records[i]!);
      return out;
    } catch (err) {
      if (reject === undefined) throw err;
      // The header the failed attempt wrote is owed again.
      this.columns = columns;
      this.headerOwed = headerOwed;
      this.first = first;
    }
    // Only when a record failed: again, one record at a time, so the others are written.
    let out = '';
    for (let i = 0; i < records.length; i++) {
      const owed = this.headerOwed;
      const firstRow = this.first;
      try {
        out += this.record(records[i]!);
      } catch (err) {
        this.headerOwed = owed;
        this.first = firstRow;
        reject(i, err);
      }
    }
    return out;
  }

  /** One record's row, after the header when it is owed. */
  private record(r: Record<string, unknown> | readonly unknown[]): string {
    let out = '';
    if (Array.isArray(r)) {
      if (this.headerOwed && this.columns !== undefined) {
        out += this.row(this.columns);
        this.headerOwed = false;
      }
      return out + this.row(r);
    }
    const rec = r as Record<string, unknown>;
    if (this.columns === undefined) {
      const keys = Object.keys(rec);
      // An empty line is no CSV row (readers skip it): a record with no field would vanish, and
      // as the first record it would leave every later row without columns.
      if (keys.length === 0)
        throw new SluiceError(
          ErrorCode.RECORD,
          'a CSV row needs at least one field and the record has none; set `columns` to write such records',
        );
      this.columns = keys;
    }
    const header = this.headerOwed ? this.row(this.columns) : '';
    const cols = this.columns;
    const n = cols.length;
    let line = '';
    for (let i = 0; i < n; i++) {
      if (i > 0) line += this.d;
      line += this.field(rec[cols[i]!], n === 1);
    }
    this.headerOwed = false;
    this.first = false;
    return header + line + this.eol;
  }

  private row(values: readonly unknown[]): string {
    let line = '';
    const n = values.length;
    for (let i = 0; i < n; i++) {
      if (i > 0) line += this.d;
      line += this.field(values[i], n === 1);
    }
    this.first = false;
    return line + this.eol;
  }

  private field(v: unknown, alone: boolean): string {
    let s: string;
    if (typeof v === 'string') s = v;
    else if (v === null || v === undefined) return alone ? this.qq : '';
    else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
    else if (v instanceof Date) return dateField(v);
    else if (v instanceof Decimal) return v.toString();
    else s = stringifyJson(v) ?? '';
    const n = s.length;
    if (n === 0) return alone ? this.qq : '';
    let quote = this.first && s.charCodeAt(0) === 0xfeff;
    for (let i = 0; i < n && !quote; i++) {
      const c = s.charCodeAt(i);
      quote = c === this.dc || c === this.qc || c === 10 || c === 13;
    }
    if (!quote) return s;
    return this.q + s.replaceAll(this.q, this.qq) + this.q;
  }
}

/** A `Date` field as ISO-8601; an invalid one (`new Date(NaN)`) has no text. */
function dateField(d: Date): string {
  if (!Number.isNaN(d.getTime())) return d.toISOString();
  throw new SluiceError(
    ErrorCode.RECORD,
    'writing CSV: a field holds an invalid Date; fix the value (e.g. with a `map` step) or let it go to the dlq',
  );
}
