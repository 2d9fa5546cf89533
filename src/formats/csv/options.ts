/**
 * Options of the CSV format (reader and writer), and their validation. Validation collects every
 * problem at once and reports them in one config error.
 */
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { DecodeStart } from '../format.ts';
import type { InternOptions } from './intern.ts';
import { type CsvType, converterFor } from './types.ts';

/** Options of the CSV reader ({@link CsvDecoder}). Field names are the YAML keys. */
export interface CsvDecodeOptions {
  /** Field separator: one ASCII character. Default `,`. */
  readonly delimiter?: string;
  /** Quote character: one ASCII character. Default `"`; a quote inside a quoted field is doubled. */
  readonly quote?: string;
  /**
   * True (default): the first row is a header. Its names key the records unless `columns` is
   * given, in which case the header row is skipped. False: every row is data.
   */
  readonly header?: boolean;
  /** Column names, overriding the header. With `header: false` and no `columns`, records are arrays. */
  readonly columns?: readonly string[];
  /** Types of columns by name; columns not named stay strings. See {@link CsvType}. */
  readonly types?: Readonly<Record<string, CsvType>>;
  /** Stop at the first bad row (throwing its error) instead of reporting it and going on. Default false. */
  readonly strict?: boolean;
  /**
   * Longest record (one row, quoted newlines included) in bytes; a longer one is a bad row, so an
   * unterminated quote or a file without newlines cannot exhaust memory. Default 16 MiB.
   */
  readonly maxRecordBytes?: number;
  /** How many bytes of a bad row its dead letter keeps. Default 4096. */
  readonly maxRawBytes?: number;
  /** Skip lines with no bytes at all (an empty line is not a row of one empty field). Default true. */
  readonly skipEmptyLines?: boolean;
  /** Intern repeated short values through a bounded cache (default true), or size the cache. */
  readonly intern?: boolean | InternOptions;
  /**
   * Where the first byte given to the decoder sits in the input: for a restart from a saved
   * `position()` (pass the saved column names in `columns` and `header: false`). Default the top.
   */
  readonly start?: DecodeStart | undefined;
}

/** Options of the CSV writer ({@link CsvEncoder}). */
export interface CsvEncodeOptions {
  /** Field separator: one ASCII character. Default `,`. */
  readonly delimiter?: string;
  /** Quote character: one ASCII character. Default `"`. */
  readonly quote?: string;
  /** Write a header row (default true). */
  readonly header?: boolean;
  /** Column order; by default the keys of the first record (for arrays: no header). */
  readonly columns?: readonly string[];
  /** Line terminator. Default `\n`. */
  readonly lineEnding?: '\n' | '\r\n';
}

/** Options after validation, with defaults applied. */
export interface ResolvedCsvDecodeOptions {
  readonly delimiter: number;
  readonly quote: number;
  readonly header: boolean;
  readonly columns: readonly string[] | undefined;
  readonly types: Readonly<Record<string, CsvType>> | undefined;
  readonly strict: boolean;
  readonly maxRecordBytes: number;
  readonly maxRawBytes: number;
  readonly skipEmptyLines: boolean;
  readonly intern: InternOptions | undefined;
  /** Number (1-based) of the line the first byte given is on, and that byte's offset. */
  readonly start: { readonly line: number; readonly offset: number };
}

function oneAscii(name: string, v: string | undefined, dflt: number, problems: string[]): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v.length !== 1 || v.charCodeAt(0) > 0x7f || v === '\n' || v === '\r') {
    problems.push(`\`${name}\` must be one ASCII character other than a newline, got ${JSON.stringify(v)}`);
    return dflt;
  }
  return v.charCodeAt(0);
}

function positiveInt(name: string, v: number | undefined, dflt: number, problems: string[]): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) {
    problems.push(`\`${name}\` must be a positive integer, got ${String(v)}`);
    return dflt;
  }
  return v;
}

/**
 * Validates decoder options and applies defaults; throws one `SLUICE_CONFIG` error listing every
 * problem.
 *
 * @example
 * resolveDecodeOptions({ delimiter: ';' }).delimiter; // 59
 */
export function resolveDecodeOptions(o: CsvDecodeOptions = {}): ResolvedCsvDecodeOptions {
  const problems: string[] = [];
  const delimiter = oneAscii('delimiter', o.delimiter, 44, problems);
  const quote = oneAscii('quote', o.quote, 34, problems);
  if (delimiter === quote) problems.push('`delimiter` and `quote` must differ');
  if (o.types !== undefined) {
    for (const [name, t] of Object.entries(o.types)) {
      try {
        converterFor(t);
      } catch (err) {
        problems.push(`types.${name}: ${(err as Error).message}`);
      }
    }
    if (o.header === false && o.columns === undefined) {
      problems.push('`types` needs column names: set `header: true` or `columns`');
    }
  }
  const res: ResolvedCsvDecodeOptions = {
    delimiter,
    quote,
    header: o.header ?? true,
    columns: o.columns,
    types: o.types,
    strict: o.strict ?? false,
    maxRecordBytes: positiveInt('maxRecordBytes', o.maxRecordBytes, 16 * 1024 * 1024, problems),
    maxRawBytes: positiveInt('maxRawBytes', o.maxRawBytes, 4096, problems),
    skipEmptyLines: o.skipEmptyLines ?? true,
    intern: o.intern === false ? undefined : o.intern === true || o.intern === undefined ? {} : o.intern,
    start:
      o.start === undefined ? { line: 1, offset: 0 } : { line: o.start.line + 1, offset: o.start.offset },
  };
  if (problems.length > 0) {
    throw new SluiceError(ErrorCode.CONFIG, `invalid CSV options: ${problems.join('; ')}`, {
      component: 'csv',
    });
  }
  return res;
}

/** Validates encoder options; throws one `SLUICE_CONFIG` error listing every problem. */
export function resolveEncodeOptions(o: CsvEncodeOptions = {}): {
  delimiter: string;
  quote: string;
  header: boolean;
  columns: readonly string[] | undefined;
  lineEnding: string;
} {
  const problems: string[] = [];
  const d = oneAscii('delimiter', o.delimiter, 44, problems);
  const q = oneAscii('quote', o.quote, 34, problems);
  if (d === q) problems.push('`delimiter` and `quote` must differ');
  const lineEnding = o.lineEnding ?? '\n';
  if (lineEnding !== '\n' && lineEnding !== '\r\n') problems.push('`lineEnding` must be "\\n" or "\\r\\n"');
  if (problems.length > 0) {
    throw new SluiceError(ErrorCode.CONFIG, `invalid CSV options: ${problems.join('; ')}`, {
      component: 'csv',
    });
  }
  return {
    delimiter: String.fromCharCode(d),
    quote: String.fromCharCode(q),
    header: o.header ?? true,
    columns: o.columns,
    lineEnding,
  };
}
