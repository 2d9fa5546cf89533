/**
 * Specs of the `file` source and sink: config schemas (field docs, defaults, examples) and
 * factories. Relative paths resolve against the pipeline file's folder (`ctx.baseDir`).
 *
 * Format options are flat fields beside `format` (`{ format: csv, delimiter: ';' }`); a field that
 * belongs to another format than the one chosen is a config error, so a typo like `delimiter` on a
 * `jsonl` input does not pass silently. The format fields are shared with the stdio specs
 * (`src/io/spec.ts`).
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import {
  checkFormatFields,
  compressionSchema,
  csvEncodeFields,
  decodeFields,
  inputCompressionSchema,
} from '../../io/spec.ts';
import { outputCompression } from '../../io/write.ts';
import { durationField, sizeField } from '../../spec/fields.ts';
import { defineComponent } from '../../spec/registry.ts';
import { partTemplateProblem } from './part-names.ts';
import { rollingFileSink } from './rolling-sink.ts';
import {
  checkSchemaFileFields,
  fileFormatSchema,
  fileSinkFormatSchema,
  schemaFileDecodeFields,
  schemaFileDecodeOptions,
  schemaFileEncodeFields,
  schemaFileEncodeOptions,
} from './schema-files.ts';
import { fileSink } from './sink.ts';
import { fileSource } from './source.ts';

/** Config of the `file` source. */
export const fileSourceConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .describe('File to read. A relative path resolves against the pipeline file’s folder.'),
    format: fileFormatSchema,
    compression: inputCompressionSchema,
    ...decodeFields,
    ...schemaFileDecodeFields,
  })
  .strict()
  .superRefine((config, ctx) => {
    checkFormatFields(config, ctx);
    checkSchemaFileFields(config, ctx, false);
  });

/**
 * The `file` source spec.
 *
 * @example
 * registry.add(fileSourceSpec);
 */
export const fileSourceSpec = defineComponent({
  name: 'file',
  kind: 'source',
  stability: 'beta',
  summary: 'Reads records from a file (JSON Lines, CSV or plain lines), decompressing it when compressed.',
  description:
    'Each record carries its origin: `meta.position` = `{ file, line, offset }` (1-based line, 0-based byte offset in the ' +
    'decompressed bytes). A record that cannot be decoded (bad JSON, a CSV row with an unterminated quote or the wrong ' +
    'number of fields, a value that does not convert to its column type, invalid UTF-8, longer than the limit) goes to ' +
    'the `dlq` output with its line, offset and raw bytes; the other records flow on. Compressed files (gzip, zstd, ' +
    'brotli, snappy framed, lz4 frame) are streamed; corrupt or truncated input fails the run naming the compressed ' +
    'byte offset. Progress (`sluice run` on a terminal) is bytes read of the file size — compressed bytes for a ' +
    'compressed file.',
  config: fileSourceConfig,
  examples: [
    { title: 'JSON Lines', yaml: 'path: data/events.jsonl\nformat: jsonl\n' },
    {
      title: 'Avro container file, read in the shape of a newer schema version',
      yaml: 'path: data/payments.avro\nformat: avro\nreaderSchema: schemas/payment-v3.avsc\n',
    },
    {
      title: 'Gzipped CSV with typed columns',
      yaml:
        'path: data/orders.csv.gz\nformat: csv\ntypes:\n  id: int\n  amount: { type: decimal, scale: 2 }\n' +
        '  ts: timestamp\n  paid: bool\n',
    },
    {
      title: 'Semicolon-separated CSV without a header',
      yaml: 'path: data/export.csv\nformat: csv\ndelimiter: ";"\nheader: false\ncolumns: [id, name, city]\n',
    },
    {
      title: 'Plain lines, skipping empty ones',
      yaml: 'path: /var/log/app.log\nformat: lines\nskipBlank: true\n',
    },
  ],
  create: (config, ctx) =>
    fileSource({
      ...config,
      ...schemaFileDecodeOptions(config, ctx.baseDir),
      path: resolve(ctx.baseDir, config.path),
    }),
});

/** The `rolling` block of the `file` sink. */
const rollingSchema = z
  .strictObject({
    maxSize: sizeField()
      .optional()
      .describe(
        'End a part once it holds this much (on disk, compressed; checked after each batch): `64MB`, `1GiB`.',
      ),
    maxAge: durationField()
      .optional()
      .describe('End a part this long after it was opened (checked when records arrive): `15m`.'),
  })
  .optional()
  .describe(
    'Write a series of part files that appear while the run goes on (for unbounded inputs): `path` is a template with ' +
      '`{part}` in the file name and optional UTC time fields (`out/%Y-%m-%d/events-{part}.jsonl.zst`). A part also ends at ' +
      'every checkpoint and at the end of the input. Under `checkpoint:` a part gets its final name once the checkpoint ' +
      'that covers it is stored (exactly-once; readers see complete parts only); without, as soon as it ends (at-least-once).',
  );

/** Config of the `file` sink. */
export const fileSinkConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .describe(
        'File to write. A relative path resolves against the pipeline file’s folder; missing folders are created. ' +
          'The file appears only when the run succeeds (written to a temporary name, then renamed). With `rolling`: the ' +
          'template of the part names.',
      ),
    format: fileSinkFormatSchema,
    rolling: rollingSchema,
    compression: compressionSchema
      .default('auto')
      .describe(
        '`auto`: by the extension of `path` (`.gz` gzip, `.zst` zstd, `.br` brotli, `.sz`/`.snappy` snappy framed, `.lz4` lz4 frame), none for any other.',
      ),
    level: z
      .number()
      .int()
      .optional()
      .describe(
        'Compression level: gzip 1–9 (default 6), zstd 1–22 (default 3), brotli 0–11 (default 4; 11 runs at about 1 MB/s). snappy and lz4 take none.',
      ),
    ...csvEncodeFields,
    ...schemaFileEncodeFields,
  })
  .strict()
  .superRefine((config, ctx) => {
    checkFormatFields(config, ctx);
    checkSchemaFileFields(config, ctx, true);
    const template = config.rolling !== undefined ? partTemplateProblem(config.path) : undefined;
    if (template !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: template });
    if (config.rolling === undefined && config.path.includes('{part}')) {
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message:
          '`{part}` names part files, which only `rolling` writes; add `rolling: { maxSize: 64MB }` or remove `{part}`',
      });
    }
    for (const message of outputCompression(config.path, config.compression, config.level).problems) {
      ctx.addIssue({ code: 'custom', path: ['level'], message });
    }
  });

/**
 * The `file` sink spec.
 *
 * @example
 * registry.add(fileSinkSpec);
 */
export const fileSinkSpec = defineComponent({
  name: 'file',
  kind: 'sink',
  stability: 'beta',
  summary:
    'Writes records to a file atomically (JSON Lines, CSV or plain lines), compressed by extension or on request.',
  description:
    'Data goes to `.<name>.sluice-tmp-<pid>` in the same folder; when the run succeeds the file is fsynced and ' +
    'renamed to `path`. A failed or cancelled run removes the temporary file, so `path` never holds a partial output. ' +
    "A CSV file gets a header row: `columns`, or else the first record's keys; a record that is not an object or an " +
    'array goes to the `dlq` output. ' +
    'With `rolling` (for unbounded inputs such as `kafka` or `redis`) it writes a series of part files instead, as ' +
    "Flink's FileSink does: a part is written under a hidden staging folder (`.sluice-parts-<hash>/<id>.inprogress`) and " +
    'ends when it reaches `maxSize`, is `maxAge` old, its time bucket changes, at every checkpoint barrier and at the ' +
    'end of the input; under `checkpoint:` it is renamed to its final name (`path` with the UTC time fields of its ' +
    'opening and `{part}` = `<run>-<n>`) once the checkpoint covering it is stored, so readers only ever see complete ' +
    'parts and a restart neither loses nor repeats records; without checkpoints it is renamed as soon as it ends.',
  config: fileSinkConfig,
  examples: [
    { title: 'JSON Lines', yaml: 'path: out/result.jsonl\nformat: jsonl\n' },
    { title: 'zstd-compressed CSV (by extension)', yaml: 'path: out/result.csv.zst\nformat: csv\n' },
    {
      title: 'Avro container file with deflate blocks',
      yaml: 'path: out/payments.avro\nformat: avro\nschema: schemas/payment.avsc\ncodec: deflate\n',
    },
    {
      title: 'gzip at maximum level, chosen columns',
      yaml: 'path: out/export.csv\nformat: csv\ncompression: gzip\nlevel: 9\ncolumns: [id, amount]\n',
    },
    {
      title:
        'Rolling zstd parts per day from a stream (64 MB, 15 minutes or a checkpoint, whichever comes first)',
      yaml: 'path: out/%Y-%m-%d/part-{part}.jsonl.zst\nformat: jsonl\nrolling: { maxSize: 64MB, maxAge: 15m }\n',
    },
  ],
  create: (config, ctx) => {
    const path = resolve(ctx.baseDir, config.path);
    const { rolling, ...rest } = config;
    const options = { ...rest, ...schemaFileEncodeOptions(config, ctx.baseDir), path };
    return rolling !== undefined ? rollingFileSink({ ...options, rolling }) : fileSink(options);
  },
});
