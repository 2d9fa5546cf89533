/**
 * The `jsonl` format (JSON Lines): one JSON value per line, on top of the byte-level
 * {@link LineDecoder}. Blank lines are skipped; a line that is not valid JSON is reported
 * through `invalid` with its line number, byte offset and the parser's reason; so is a line
 * nesting deeper than `MAX_RECORD_DEPTH` (512) levels, which no later step could walk.
 */

import type { Decimal } from '../core/decimal.ts';
import type { FieldUse } from '../core/projection.ts';
import type { DecodeStart, RecordEncoder } from './format.ts';
import { decimalReviver, parseJson, parseJsonRevived, toJsonLine } from './json.ts';
import { JsonProjection } from './json-project.ts';
import { JsonShapes } from './json-shape.ts';
import { LineDecoder, type LineDecoderOptions, lineEncoder } from './lines.ts';

/** Options of the `jsonl` format. */
export interface JsonlFormatOptions {
  /** Longest line accepted, in bytes. Default 16 MiB. */
  maxLineBytes?: number;
  /** Where the first byte given sits in the whole input (a restart); default the top. */
  start?: DecodeStart | undefined;
  /**
   * Fields whose numbers (or decimal strings) are read as exact {@link Decimal}s, by name at any
   * depth; `*` for every number. Default none: JSON numbers are doubles. See {@link decimalReviver}.
   */
  decimals?: readonly string[] | undefined;
}

export { stringifyJson, toJsonLine } from './json.ts';

/**
 * A decoder of JSON Lines: `JSON.parse` per line (through `parseJson`: at most 512 levels
 * deep), or {@link JsonShapes} for lines shaped like the ones before (same value, faster). A
 * malformed line becomes an `invalid` report with a `SLUICE_PARSE` error such as
 * `line 3 (byte 57): invalid JSON: Unexpected token '}' …; fix the line or let it go to the dlq`.
 * Told which fields the pipeline reads (`project`, see `JsonlDecoder`), it makes only those.
 *
 * @example
 * const d = jsonlDecoder();
 * const out: unknown[] = [];
 * d.write(Buffer.from('{"a":1}\n\n{"a":2}\n'), { record: (v) => out.push(v), invalid: () => {} });
 * // out: [{ a: 1 }, { a: 2 }]
 */
export function jsonlDecoder(options: JsonlFormatOptions = {}): LineDecoder<unknown> {
  if (options.decimals !== undefined && options.decimals.length > 0) {
    // Lossless numbers need each number's source text: JSON.parse with a reviver, not the
    // shape shortcut, which reads numbers as doubles. Inputs without `decimals` keep it.
    const reviver = decimalReviver(options.decimals);
    return new JsonlDecoder(
      {
        maxLineBytes: options.maxLineBytes,
        skipBlank: 'whitespace',
        parse: (text) => parseJsonRevived(text, reviver),
        parseError: 'invalid JSON record',
        start: options.start,
      },
      false,
    );
  }
  return new JsonlDecoder(
    {
      maxLineBytes: options.maxLineBytes,
      skipBlank: 'whitespace',
      parse: parseJson,
      parseError: 'invalid JSON',
      shortcut: new JsonShapes(),
      start: options.start,
    },
    true,
  );
}

/**
 * The JSON Lines decoder {@link jsonlDecoder} makes: a {@link LineDecoder} that can be projected.
 */
export class JsonlDecoder extends LineDecoder<unknown> {
  private readonly projectable: boolean;

  /** `projectable`: whether {@link project} may scan lines for the wanted fields (not with `decimals`). */
  constructor(options: LineDecoderOptions<unknown>, projectable: boolean) {
    super(options);
    this.projectable = projectable;
  }

  /**
   * {@inheritDoc RecordDecoder.project} Each line is then scanned by {@link JsonProjection}:
   * records hold only the wanted fields (an `epochMillis` one written as `Date#toISOString`
   * writes it as its epoch ms), the other values are checked but not made. Lines it is not sure
   * of go to `JSON.parse`, so dead letters and their errors are those of the whole-line parser.
   * With `decimals` (or fields it cannot project, such as `__proto__`) records stay whole.
   */
  project(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>): void {
    if (!this.projectable) return;
    const projection = JsonProjection.create(fields, uses);
    if (projection === undefined) return;
    this.setParser((text) => projection.pick(parseJson(text)), projection);
  }
}

/**
 * An encoder of JSON Lines: one JSON value per line, `\n`-terminated (see `toJsonLine` for
 * bigint and `undefined`). A record JSON cannot hold (too deep, circular) is passed to `reject`
 * and left out, or, without `reject`, fails the batch with its `SLUICE_RECORD` error.
 *
 * @example
 * jsonlEncoder().encode([{ a: 1n }]); // '{"a":"1"}\n'
 */
export function jsonlEncoder(): RecordEncoder<unknown> {
  return lineEncoder(toJsonLine);
}
