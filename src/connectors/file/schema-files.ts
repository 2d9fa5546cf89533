/**
 * The `file` connector's binary formats (`avro`, `protobuf`): the `format` field that adds them
 * to the text formats, their schema fields (`readerSchema`, `schema`, `codec`, `descriptor`,
 * `messageType`), the check that a schema field is given only with its format, and the loading
 * of the schema files, read and checked when the component is created — so `sluice lint` reports
 * a bad `.avsc` or descriptor file without running anything.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { lazyModule } from '../../core/lazy-module.ts';
import { AVRO_CODECS } from '../../formats/avro-file/codecs.ts';
import { FILE_FORMAT_NAMES, type FormatName } from '../../formats/formats.ts';

// Loaded only for a schema file of the format (see `lazyModule`): `avsc` and `protobufjs` are not
// part of a text-format run's start-up.
const avroSchemas = lazyModule<typeof import('../../formats/schema/avro.ts')>(
  import.meta.url,
  '../../formats/schema/avro.ts',
);
const protobufTypes = lazyModule<typeof import('../../formats/schema/protobuf.ts')>(
  import.meta.url,
  '../../formats/schema/protobuf.ts',
);

/** `format` of a file: the text formats plus `avro` and `protobuf`. */
export const fileFormatSchema = z
  .enum(FILE_FORMAT_NAMES as [FormatName, ...FormatName[]])
  .describe(
    '`jsonl`: one JSON value per line (blank lines skipped); `csv`: RFC 4180 rows, one object per row keyed by the header; `lines`: one string per line; `avro`: an Avro object container file (`.avro`); `protobuf`: length-delimited Protobuf messages (a varint length before each).',
  );

/** `format` of a file sink: what is written (the text formats plus `avro` and `protobuf`). */
export const fileSinkFormatSchema = z
  .enum(FILE_FORMAT_NAMES as [FormatName, ...FormatName[]])
  .describe(
    '`jsonl`: one JSON value per line (a decimal as its exact text, `"473.98"`); `csv`: RFC 4180 rows (a header row first unless `header: false`), columns from `columns` or the first record\'s keys; `lines`: each record as one line of text (a string as it is; map an object to a string first); `avro`: an Avro object container file (`.avro`); `protobuf`: length-delimited Protobuf messages (a varint length before each).',
  );

const descriptor = z
  .string()
  .optional()
  .describe(
    '`protobuf`: the FileDescriptorSet file of the message type (`protoc --include_imports -o set.pb x.proto`). Required with `format: protobuf`.',
  );
const messageType = z
  .string()
  .optional()
  .describe(
    "`protobuf`: full name of the message type, e.g. `shop.Order` (default: the first message of the set's last file).",
  );

/** Fields the file source adds for the binary formats. */
export const schemaFileDecodeFields = {
  readerSchema: z
    .string()
    .optional()
    .describe(
      "`avro`: file of a reader schema (`.avsc`) the records are resolved against — added fields with defaults, removed fields, promoted types, aliases — so files written with older schema versions read in one shape. Default: the writer schema in the file's header.",
    ),
  descriptor,
  messageType,
};

/** Fields the file sink adds for the binary formats. */
export const schemaFileEncodeFields = {
  schema: z
    .string()
    .optional()
    .describe('`avro`: file of the writer schema (`.avsc`). Required with `format: avro`.'),
  codec: z
    .enum(AVRO_CODECS)
    .optional()
    .describe('`avro`: block codec, `null` (default), `deflate`, `snappy` or `zstandard`.'),
  descriptor,
  messageType,
};

const FORMAT_OF: Readonly<Record<string, FormatName>> = {
  readerSchema: 'avro',
  schema: 'avro',
  codec: 'avro',
  descriptor: 'protobuf',
  messageType: 'protobuf',
};

/** Reports, as config issues, schema fields given for another format, and a missing required one. */
export function checkSchemaFileFields(
  config: Record<string, unknown>,
  ctx: z.RefinementCtx,
  sink: boolean,
): void {
  const format = config.format as FormatName;
  for (const [field, owner] of Object.entries(FORMAT_OF)) {
    if (config[field] !== undefined && owner !== format)
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: `\`${field}\` applies to format \`${owner}\`, not \`${format}\`; remove it`,
      });
  }
  if (format === 'protobuf' && config.descriptor === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['descriptor'],
      message: '`format: protobuf` needs `descriptor`, a FileDescriptorSet file',
    });
  if (sink && format === 'avro' && config.schema === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['schema'],
      message: '`format: avro` needs `schema`, the writer schema file (`.avsc`)',
    });
}

function read(baseDir: string, path: string, what: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, path));
  } catch (err) {
    throw new SluiceError(ErrorCode.CONFIG, `reading ${what} \`${path}\`: ${(err as Error).message}`, {
      file: path,
    });
  }
}

function avroSchemaFile(baseDir: string, path: string, what: string): string {
  const text = read(baseDir, path, what).toString('utf8');
  try {
    avroSchemas().avroType(text);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `${what} \`${path}\` is not a valid Avro schema: ${(err as Error).message}`,
      {
        file: path,
      },
    );
  }
  return text;
}

function descriptorFile(baseDir: string, path: string, type: string | undefined): Uint8Array {
  const bytes = read(baseDir, path, 'the descriptor');
  try {
    const s = protobufTypes().protobufSchemas({ descriptorSet: bytes });
    if (type !== undefined) s.indexesOf(type);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `the descriptor \`${path}\` is not a usable FileDescriptorSet: ${(err as Error).message}`,
      { file: path },
    );
  }
  return bytes;
}

/** The file source's decode options of the schema fields (files read and checked). */
export function schemaFileDecodeOptions(
  config: {
    readerSchema?: string | undefined;
    descriptor?: string | undefined;
    messageType?: string | undefined;
  },
  baseDir: string,
): { readerSchema?: string; descriptorSet?: Uint8Array; messageType?: string } {
  const out: { readerSchema?: string; descriptorSet?: Uint8Array; messageType?: string } = {};
  if (config.readerSchema !== undefined)
    out.readerSchema = avroSchemaFile(baseDir, config.readerSchema, 'the reader schema');
  if (config.descriptor !== undefined)
    out.descriptorSet = descriptorFile(baseDir, config.descriptor, config.messageType);
  if (config.messageType !== undefined) out.messageType = config.messageType;
  return out;
}

/** The file sink's encode options of the schema fields (files read and checked). */
export function schemaFileEncodeOptions(
  config: { schema?: string | undefined; descriptor?: string | undefined; messageType?: string | undefined },
  baseDir: string,
): { schema?: string; descriptorSet?: Uint8Array; messageType?: string } {
  const out: { schema?: string; descriptorSet?: Uint8Array; messageType?: string } = {};
  if (config.schema !== undefined) out.schema = avroSchemaFile(baseDir, config.schema, 'the schema');
  if (config.descriptor !== undefined)
    out.descriptorSet = descriptorFile(baseDir, config.descriptor, config.messageType);
  if (config.messageType !== undefined) out.messageType = config.messageType;
  return out;
}
