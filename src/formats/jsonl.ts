/**
 * The `jsonl` format (JSON Lines): one JSON value per line, on top of the byte-level
 * {@link LineDecoder}. Blank lines are skipped; a line that is not valid JSON is reported
 * through `invalid` with its line number, byte offset and the parser's reason.
 */

import type { DecodeStart, RecordEncoder } from './format.ts';
import { JsonShapes } from './json-shape.ts';
import { LineDecoder } from './lines.ts';

/** Options of the `jsonl` format. */
export interface JsonlFormatOptions {
  /** Longest line accepted, in bytes. Default 16 MiB. */
  maxLineBytes?: number;
  /** Where the first byte given sits in the whole input (a restart); default the top. */
  start?: DecodeStart | undefined;
}

const parseJson = (text: string): unknown => JSON.parse(text);

/**
 * A decoder of JSON Lines: `JSON.parse` per line, or {@link JsonShapes} for lines shaped like
 * the ones before (same value, faster). A malformed line becomes an `invalid`
 * report with a `SLUICE_PARSE` error such as
 * `line 3 (byte 57): invalid JSON: Unexpected token '}' …; fix the line or let it go to the dlq`.
 *
 * @example
 * const d = jsonlDecoder();
 * const out: unknown[] = [];
 * d.write(Buffer.from('{"a":1}\n\n{"a":2}\n'), { record: (v) => out.push(v), invalid: () => {} });
 * // out: [{ a: 1 }, { a: 2 }]
 */
export function jsonlDecoder(options: JsonlFormatOptions = {}): LineDecoder<unknown> {
  return new LineDecoder<unknown>({
    maxLineBytes: options.maxLineBytes,
    skipBlank: 'whitespace',
    parse: parseJson,
    parseError: 'invalid JSON',
    shortcut: new JsonShapes(),
    start: options.start,
  });
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * `JSON.stringify(value)` where a bigint anywhere becomes its decimal string; undefined for what
 * JSON cannot hold at top level (`undefined`, a function, a symbol). Throws for a circular value.
 */
export function stringifyJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    // Retried with a replacer only when needed: a replacer slows every record down.
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
    return JSON.stringify(value, bigintAsString);
  }
}

/**
 * Serialises one value as JSON: a bigint anywhere becomes its decimal string, `undefined`
 * becomes `null`, so no record makes the encoder throw except a circular one.
 */
export function toJsonLine(value: unknown): string {
  return stringifyJson(value) ?? 'null';
}

/**
 * An encoder of JSON Lines: one JSON value per line, `\n`-terminated (see {@link toJsonLine}
 * for bigint and `undefined`).
 *
 * @example
 * jsonlEncoder().encode([{ a: 1n }]); // '{"a":"1"}\n'
 */
export function jsonlEncoder(): RecordEncoder<unknown> {
  return {
    encode(records) {
      let s = '';
      for (let i = 0; i < records.length; i++) s += `${toJsonLine(records[i])}\n`;
      return s;
    },
  };
}
