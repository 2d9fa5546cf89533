/**
 * From record fields to PostgreSQL values, exactly: the COPY text format for `insert` and text
 * parameters for `upsert`. Nothing goes through a float that did not arrive as one — a decimal
 * string is handed to a `numeric` column as is, a bigint as its digits — and the server parses
 * every value with the column's own input function, so a bad value is the database's error
 * (then a dead letter), never a silent coercion here.
 */
import { Decimal } from '../../core/decimal.ts';
import type { Position } from '../../core/message.ts';
import { toJsonLine } from '../../formats/jsonl.ts';

/** What the sink needs to know about one column of the target table. */
export interface ColumnInfo {
  /** Column name (also the record field it is read from). */
  readonly name: string;
  /** `pg_type.typname`, e.g. `numeric`, `timestamptz`, `jsonb`, `_int4`. */
  readonly type: string;
  /** A date/time column: a number is taken as epoch milliseconds. */
  readonly time: boolean;
  /** A `json`/`jsonb` column: any value is written as JSON text. */
  readonly json: boolean;
  /** A `bytea` column: a Uint8Array is written as hex. */
  readonly bytes: boolean;
}

/** A column description from its `pg_type.typname`. */
export function columnInfo(name: string, type: string): ColumnInfo {
  return {
    name,
    type,
    time: type === 'timestamptz' || type === 'timestamp' || type === 'date',
    json: type === 'json' || type === 'jsonb',
    bytes: type === 'bytea',
  };
}

const HEX = '0123456789abcdef';

function hexOf(bytes: Uint8Array): string {
  let s = '\\x';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    s += HEX[b >> 4] + (HEX[b & 15] as string);
  }
  return s;
}

/**
 * The text PostgreSQL parses for `value` in `column`, or null for SQL NULL (`undefined` too).
 * Strings pass unchanged; bigints as digits; a {@link Decimal} as its exact text; booleans `t`/`f`; Dates, and numbers in date/time
 * columns, as ISO-8601 UTC; Uint8Arrays in `bytea` as hex; objects and arrays as JSON.
 */
function valueText(value: unknown, column: ColumnInfo): string | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return column.json && !looksLikeJson(value) ? JSON.stringify(value) : value;
    case 'number':
      if (column.time && Number.isFinite(value)) return new Date(value).toISOString();
      return String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return column.json ? String(value) : value ? 't' : 'f';
    default:
      if (value instanceof Date) return value.toISOString();
      // A decimal's exact text: `473.98` into numeric/text, the JSON string `"473.98"` into json.
      if (value instanceof Decimal) return column.json ? JSON.stringify(value.toString()) : value.toString();
      if (value instanceof Uint8Array && !column.json) return hexOf(value);
      return toJsonLine(value);
  }
}

/** A string already holding a JSON document is passed to a json column unchanged. */
function looksLikeJson(s: string): boolean {
  const c = s.charCodeAt(0);
  // `{`, `[`, `"`: an object, an array or a JSON string; numbers, true/false/null are JSON too.
  if (c === 123 || c === 91 || c === 34) return true;
  return s === 'true' || s === 'false' || s === 'null' || (s.length > 0 && !Number.isNaN(Number(s)));
}

/** Escapes a value for COPY's text format: backslash, newline, carriage return and tab. */
function copyEscape(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 || c === 10 || c === 13 || c === 9) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92) out += '\\\\';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else out += s[i];
  }
  return out;
}

/** One record as a COPY text line (tab-separated, `\N` for NULL, newline-terminated). */
export function copyLine(record: Readonly<Record<string, unknown>>, columns: readonly ColumnInfo[]): string {
  let line = '';
  for (let i = 0; i < columns.length; i++) {
    const col = columns[i] as ColumnInfo;
    const text = valueText(record[col.name], col);
    if (i > 0) line += '\t';
    line += text === null ? '\\N' : copyEscape(text);
  }
  return `${line}\n`;
}

/**
 * The inverse of {@link copyLine}: a COPY text line (with or without its newline) as an object of
 * column name → text (`null` for `\N`). What a dead letter holds for a row the database rejected:
 * the row as it was sent.
 */
export function copyRecord(line: string, columns: readonly ColumnInfo[]): Record<string, string | null> {
  const fields = (line.endsWith('\n') ? line.slice(0, -1) : line).split('\t');
  const out: Record<string, string | null> = {};
  for (let i = 0; i < columns.length; i++) {
    const f = fields[i];
    const name = (columns[i] as ColumnInfo).name;
    if (f === undefined || f === '\\N') out[name] = null;
    else out[name] = f.includes('\\') ? f.replace(/\\(.)/g, (_, c: string) => COPY_UNESCAPE[c] ?? c) : f;
  }
  return out;
}

const COPY_UNESCAPE: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', '\\': '\\' };

/** One record as the text parameters of an INSERT, in column order. */
export function paramValues(
  record: Readonly<Record<string, unknown>>,
  columns: readonly ColumnInfo[],
): (string | null)[] {
  const out: (string | null)[] = new Array(columns.length);
  for (let i = 0; i < columns.length; i++) {
    const col = columns[i] as ColumnInfo;
    out[i] = valueText(record[col.name], col);
  }
  return out;
}

/** A position as JSON for `sluice_sink_offsets.position`; bigints become `{"$bigint": "…"}`. */
export function positionJson(position: Position | undefined): unknown {
  if (position === undefined) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(position))
    out[k] = typeof v === 'bigint' ? { $bigint: v.toString() } : v;
  return out;
}

/** The inverse of {@link positionJson}. */
export function positionFromJson(json: unknown): Position | undefined {
  if (json === null || typeof json !== 'object') return undefined;
  const out: Record<string, string | number | bigint | boolean> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (v !== null && typeof v === 'object' && typeof (v as { $bigint?: unknown }).$bigint === 'string') {
      out[k] = BigInt((v as { $bigint: string }).$bigint);
    } else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}
