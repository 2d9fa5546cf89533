/**
 * The record formats a byte-oriented connector (file, stdin, stdout) reads and writes, by name:
 * one place that turns `format: csv` plus its options into a {@link RecordDecoder} or a
 * {@link RecordEncoder}, so every connector accepts the same formats with the same options.
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { lazyModule } from '../core/lazy-module.ts';
import type { AvroCodec } from './avro-file/codecs.ts';
import type { AvroFileHeader } from './avro-file/header.ts';
import { CsvDecoder } from './csv/decoder.ts';
import { CsvEncoder } from './csv/encoder.ts';
import type { CsvDecodeOptions, CsvEncodeOptions } from './csv/options.ts';
import type { DecodeStart, RecordDecoder, RecordEncoder } from './format.ts';
import { jsonlDecoder, jsonlEncoder } from './jsonl.ts';
import { linesDecoder, linesEncoder } from './lines.ts';

// The binary formats load their libraries (`avsc`, `protobufjs`: ~60 modules, ~10 % of a small
// CSV run's start-up CPU) only when a pipeline uses them.
const avroDecoding = lazyModule<typeof import('./avro-file/decoder.ts')>(
  import.meta.url,
  './avro-file/decoder.ts',
);
const avroEncoding = lazyModule<typeof import('./avro-file/encoder.ts')>(
  import.meta.url,
  './avro-file/encoder.ts',
);
const protobufFiles = lazyModule<typeof import('./protobuf-file.ts')>(import.meta.url, './protobuf-file.ts');

/**
 * The formats connectors read and write: plain lines, JSON Lines, CSV, Avro object container
 * files and length-delimited Protobuf messages.
 */
export type FormatName = 'lines' | 'jsonl' | 'csv' | 'avro' | 'protobuf';

/** The text formats, which every byte connector (file, stdin, stdout) takes, in the order docs list them. */
export const FORMAT_NAMES: readonly FormatName[] = ['jsonl', 'csv', 'lines'];

/** Every {@link FormatName}: the text formats and the binary ones files hold (`avro`, `protobuf`). */
export const FILE_FORMAT_NAMES: readonly FormatName[] = [...FORMAT_NAMES, 'avro', 'protobuf'];

/**
 * Options of every decoder, flat (as in YAML): `maxLineBytes` and `skipBlank` apply to `lines` and
 * `jsonl`, the CSV options (see {@link CsvDecodeOptions}) to `csv`, and `start` (a restart from a
 * saved position, see {@link DecodeStart}) to every format.
 */
export interface FormatDecodeOptions extends CsvDecodeOptions {
  /** `lines`, `jsonl`: longest line accepted, in bytes. Default 16 MiB. */
  readonly maxLineBytes?: number | undefined;
  /** `lines`: drop empty lines. Default false. */
  readonly skipBlank?: boolean | undefined;
  /** `jsonl`: fields read as exact decimals (`*`: every number); see {@link jsonlDecoder}. */
  readonly decimals?: readonly string[] | undefined;
  /** `avro`: the reader schema (Avro JSON text) every record is resolved against; default the file's. */
  readonly readerSchema?: string | undefined;
  /** `avro`, on a restart: the file's header, read again from the top (see {@link resumeOptions}). */
  readonly avroHeader?: AvroFileHeader | undefined;
  /** `protobuf`: the FileDescriptorSet the messages are decoded with. */
  readonly descriptorSet?: Uint8Array | undefined;
  /** `protobuf`: full name of the message type (default: the set's first message). */
  readonly messageType?: string | undefined;
}

/**
 * Options of every encoder, flat: the CSV writer's options (see {@link CsvEncodeOptions}), and the
 * schema of the `avro` and `protobuf` formats.
 */
export interface FormatEncodeOptions extends CsvEncodeOptions {
  /** `avro`: the writer schema, Avro JSON text (required). */
  readonly schema?: string | undefined;
  /** `avro`: the block codec. Default `null`. */
  readonly codec?: AvroCodec | undefined;
  /** `protobuf`: the FileDescriptorSet of the message type (required). */
  readonly descriptorSet?: Uint8Array | undefined;
  /** `protobuf`: full name of the message type (default: the set's first message). */
  readonly messageType?: string | undefined;
  /** `avro`: what the sync marker derives from besides the schema (the file sink's path). */
  readonly path?: string | undefined;
}

function needs(format: string, what: string): SluiceError {
  return new SluiceError(ErrorCode.CONFIG, `\`format: ${format}\` needs ${what}`);
}

function unknownFormat(format: unknown): SluiceError {
  return new SluiceError(
    ErrorCode.CONFIG,
    `unknown format \`${String(format)}\`; use ${FILE_FORMAT_NAMES.map((f) => `\`${f}\``).join(', ')}`,
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
      return jsonlDecoder({
        maxLineBytes: options.maxLineBytes,
        start: options.start,
        decimals: options.decimals,
      });
    case 'lines':
      return linesDecoder({
        maxLineBytes: options.maxLineBytes,
        skipBlank: options.skipBlank,
        start: options.start,
      });
    case 'csv':
      return new CsvDecoder(csvDecodeOptions(options));
    case 'avro':
      return avroDecoding().avroFileDecoder({
        readerSchema: options.readerSchema,
        start: options.start,
        avroHeader: options.avroHeader,
      });
    case 'protobuf':
      if (options.descriptorSet === undefined) throw needs(format, '`descriptor` (a FileDescriptorSet file)');
      return protobufFiles().protobufFileDecoder({
        descriptorSet: options.descriptorSet,
        messageType: options.messageType,
        start: options.start,
      });
    default:
      throw unknownFormat(format);
  }
}

/** The options of the line formats, which are not the CSV reader's. */
const LINE_FORMAT_KEYS = new Set<string>([
  'maxLineBytes',
  'skipBlank',
  'decimals',
  'readerSchema',
  'avroHeader',
  'descriptorSet',
  'messageType',
] satisfies (keyof FormatDecodeOptions)[]);

/** The CSV options among `options` (every key but the line formats'), without the keys that are not set. */
export function csvDecodeOptions(options: FormatDecodeOptions): CsvDecodeOptions {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined && !LINE_FORMAT_KEYS.has(k)) o[k] = v;
  return o as CsvDecodeOptions;
}

/**
 * The options of a decoder that resumes at `start` (a saved {@link RecordDecoder.position}):
 * `options` plus `start`, and what the format must learn again from the top of the input — a CSV
 * input's header, read from `head()` (the input's bytes from the top), so resumed rows keep their
 * column names; an Avro file's header, so resumed blocks decode with the file's schema and codec.
 *
 * @example
 * const decoder = formatDecoder('csv', await resumeOptions('csv', {}, saved, () => readFromTop()));
 */
export async function resumeOptions(
  format: FormatName,
  options: FormatDecodeOptions,
  start: DecodeStart,
  head: () => AsyncIterable<Uint8Array>,
): Promise<FormatDecodeOptions> {
  if (format === 'avro')
    return { ...options, start, avroHeader: await avroDecoding().readAvroHeader(head()) };
  if (format !== 'csv' || options.header === false || options.columns !== undefined)
    return { ...options, start };
  return { ...options, start, header: false, columns: await readCsvHeader(head(), options) };
}

/** The column names of a CSV input's header row, read from the start of `bytes`. */
async function readCsvHeader(
  bytes: AsyncIterable<Uint8Array>,
  options: FormatDecodeOptions,
): Promise<readonly string[]> {
  const d = new CsvDecoder({ ...csvDecodeOptions(options), header: true, strict: false, start: undefined });
  const ignore = { record: () => {}, invalid: () => {} };
  for await (const chunk of bytes) {
    d.write(chunk, ignore);
    const names = d.columnNames();
    if (names !== undefined) return names;
  }
  d.end(ignore);
  const names = d.columnNames();
  if (names === undefined)
    throw new SluiceError(ErrorCode.STAGE, 'the CSV input has no header row to resume with');
  return names;
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
    case 'avro':
      if (options.schema === undefined) throw needs(format, '`schema` (an `.avsc` file)');
      return avroEncoding().avroFileEncoder({
        schema: options.schema,
        codec: options.codec,
        header: options.header,
        syncSeed: options.path,
      });
    case 'protobuf':
      if (options.descriptorSet === undefined) throw needs(format, '`descriptor` (a FileDescriptorSet file)');
      return protobufFiles().protobufFileEncoder({
        descriptorSet: options.descriptorSet,
        messageType: options.messageType,
      });
    default:
      throw unknownFormat(format);
  }
}
