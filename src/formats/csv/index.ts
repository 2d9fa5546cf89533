/**
 * The `csv` format: a streaming RFC 4180 reader ({@link CsvDecoder}) and writer
 * ({@link CsvEncoder}), typed columns and their options.
 *
 * @example
 * import { createCsvDecoder } from './index.ts';
 * const dec = createCsvDecoder({ delimiter: ';', types: { amount: { type: 'decimal', scale: 2 } } });
 */
import { CsvDecoder } from './decoder.ts';
import { CsvEncoder } from './encoder.ts';
import type { CsvDecodeOptions, CsvEncodeOptions } from './options.ts';

export { CsvDecoder, type CsvRow } from './decoder.ts';
export { CsvEncoder } from './encoder.ts';
export type { InternOptions } from './intern.ts';
export type { CsvDecodeOptions, CsvEncodeOptions } from './options.ts';
export { type CsvType, type CsvTypeName, type CsvValue, parseIsoTimestamp } from './types.ts';

/** A new CSV decoder (one per input stream; it is stateful). Throws a config error for bad options. */
export function createCsvDecoder(options?: CsvDecodeOptions): CsvDecoder {
  return new CsvDecoder(options);
}

/** A new CSV encoder (one per output stream; it tracks whether the header was written). */
export function createCsvEncoder(options?: CsvEncodeOptions): CsvEncoder {
  return new CsvEncoder(options);
}
