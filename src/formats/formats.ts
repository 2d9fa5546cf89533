/**
 * The record formats a byte-oriented connector (file, stdin, stdout) reads and writes, by name:
 * one place that turns `format: csv` plus its options into a {@link RecordDecoder} or a
 * {@link RecordEncoder}, so every connector accepts the same formats with the same options.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { CsvDecoder } from './csv/decoder.ts';
import { CsvEncoder } from './csv/encoder.ts';
import type { CsvDecodeOptions, CsvEncodeOptions } from './csv/options.ts';
import type { RecordDecoder, RecordEncoder } from './format.ts';
import { jsonlDecoder, jsonlEncoder } from './jsonl.ts';
import { linesDecoder, linesEncoder } from './lines.ts';

/** The formats connectors read and write: plain lines, JSON Lines, CSV. */
export type FormatName = 'lines' | 'jsonl' | 'csv';

/** Every {@link FormatName}, in the order docs list them. */
export const FORMAT_NAMES: readonly FormatName[] = ['jsonl', 'csv', 'lines'];

/**
 * Options of every decoder, flat (as in YAML): `maxLineBytes` and `skipBlank` apply to `lines` and
 * `jsonl`, the CSV options (see {@link CsvDecodeOptions}) to `csv`. A restart position (`start`) is
 * not an option here: a connector passes it itself.
 */
export interface FormatDecodeOptions extends Omit<CsvDecodeOptions, 'start'> {
  /** `lines`, `jsonl`: longest line accepted, in bytes. Default 16 MiB. */
  readonly maxLineBytes?: number | undefined;
  /** `lines`: drop empty lines. Default false. */
  readonly skipBlank?: boolean | undefined;
}

/** Options of every encoder, flat: the CSV writer's options (see {@link CsvEncodeOptions}). */
export type FormatEncodeOptions = CsvEncodeOptions;

function unknownFormat(format: unknown): SluiceError {
  return new SluiceError(
    ErrorCode.CONFIG,
    `unknown format \`${String(format)}\`; use ${FORMAT_NAMES.map((f) => `\`${f}\``).join(', ')}`,
  );
}

/**
 * A fresh decoder for `format` (decoders are stateful: one per input stream). Throws a
 * `SLUICE_CONFIG` error for an unknown format or bad CSV options.
 *
 * @example
 * const decoder = formatDecoder('csv', { delimiter: ';', types: { n: 'int' } });
 */
export function formatDecoder(format: FormatName, options: FormatDecodeOptions = {}): RecordDecoder<unknown> {
  switch (format) {
    case 'jsonl':
      return jsonlDecoder({ maxLineBytes: options.maxLineBytes });
    case 'lines':
      return linesDecoder({ maxLineBytes: options.maxLineBytes, skipBlank: options.skipBlank });
    case 'csv':
      return new CsvDecoder(csvDecodeOptions(options));
    default:
      throw unknownFormat(format);
  }
}

/** The CSV options among `options`, without the keys that are not set. */
export function csvDecodeOptions(options: FormatDecodeOptions): CsvDecodeOptions {
  const o: Record<string, unknown> = {};
  for (const k of [
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
  ] as const) {
    if (options[k] !== undefined) o[k] = options[k];
  }
  return o as CsvDecodeOptions;
}

/**
 * A fresh encoder for `format` (one per output stream: a CSV encoder remembers whether it wrote
 * its header). Throws a `SLUICE_CONFIG` error for an unknown format or bad CSV options.
 *
 * @example
 * formatEncoder('csv', { columns: ['id', 'name'] }).header?.(); // 'id,name\n'
 */
export function formatEncoder(format: FormatName, options: FormatEncodeOptions = {}): RecordEncoder<unknown> {
  switch (format) {
    case 'jsonl':
      return jsonlEncoder();
    case 'lines':
      return linesEncoder();
    case 'csv':
      return new CsvEncoder(options) as RecordEncoder<unknown>;
    default:
      throw unknownFormat(format);
  }
}
