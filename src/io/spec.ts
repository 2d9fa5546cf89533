/**
 * Config fields of the byte connectors' formats (file, stdin, stdout): `format`, `compression`
 * and the flat format options beside them (`{ format: csv, delimiter: ';' }`). A field that
 * belongs to another format than the one chosen is a config error, so a typo like `delimiter` on
 * a `jsonl` input does not pass silently.
 */
import { z } from 'zod';
import { CODECS } from '../formats/compression/index.ts';
import { FORMAT_NAMES, type FormatName } from '../formats/formats.ts';
import { DEFAULT_BATCH_SIZE } from './read.ts';

/** The formats a file is read or written with. */
export const formatSchema = z
  .enum(FORMAT_NAMES as [FormatName, ...FormatName[]])
  .describe(
    '`jsonl`: one JSON value per line (blank lines skipped); `csv`: RFC 4180 rows, one object per row keyed by the header; `lines`: one string per line.',
  );

/** The formats a file is written with (the sinks' `format`: what is written, not what is read). */
export const sinkFormatSchema = z
  .enum(FORMAT_NAMES as [FormatName, ...FormatName[]])
  .describe(
    '`jsonl`: one JSON value per line (a decimal as its exact text, `"473.98"`); `csv`: RFC 4180 rows (a header row first unless `header: false`), columns from `columns` or the first record\'s keys; `lines`: each record as one line of text (a string as it is; map an object to a string first).',
  );

/** `maxLineBytes`: the longest line accepted (`lines`, `jsonl`). */
export const maxLineBytesSchema = z
  .number()
  .int()
  .min(1)
  .optional()
  .describe(
    '`lines`, `jsonl`: longest line accepted, in bytes (default 16777216 = 16 MiB). A longer line goes to the dlq (and is skipped without being buffered).',
  );

/** `batchSize`: records per emitted batch. */
export const batchSizeSchema = z
  .number()
  .int()
  .min(1)
  .max(1_000_000)
  .default(DEFAULT_BATCH_SIZE)
  .describe('Records per batch the source emits.');

/** `skipBlank`: `lines` format only. */
export const skipBlankSchema = z
  .boolean()
  .optional()
  .describe(
    '`lines`: drop empty lines instead of emitting empty strings (default false; `jsonl` always skips them).',
  );

/** A list of field names read as exact decimals (`decimals`). */
const decimalFieldNames = z.array(z.string().min(1)).min(1).optional();

/** `decimals`: `jsonl` fields read as exact decimals. */
export const decimalsSchema = decimalFieldNames.describe(
  '`jsonl`: fields whose numbers (or decimal strings such as `"473.98"`) are read as exact decimals, by name at any depth (`["*"]`: every number), e.g. `[amount, fee]`. Other JSON numbers are doubles, which keep about 15 significant digits. A listed field holding anything else but null goes to the dlq naming the field, value and line. See docs/decimals.md.',
);

/**
 * `decimals` of a message source (`kafka`, `redis`, `pulsar`), for `format: json` only: the
 * same reading as a `jsonl` input's (see {@link decimalsSchema}); check it with
 * {@link checkJsonDecimals}.
 */
export const jsonDecimalsSchema = decimalFieldNames.describe(
  '`json`: fields whose numbers (or decimal strings such as `"473.98"`) are read as exact decimals, by name at any depth (`["*"]`: every number), e.g. `[amount, fee]`; `12345678901234567890.12` and integers beyond 2^53 keep every digit. Other JSON numbers are doubles, which keep about 15 significant digits. A listed field holding anything else but null sends its message to the dlq naming the field and value. See docs/decimals.md.',
);

/**
 * Reports, as a config issue, `decimals` given with another format than `json` (the message
 * sources' `format: text | raw | avro …` read no JSON numbers).
 */
export function checkJsonDecimals(
  config: { format: string; decimals?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (config.decimals === undefined || config.format === 'json') return;
  ctx.addIssue({
    code: 'custom',
    path: ['decimals'],
    message: `\`decimals\` applies to \`format: json\`, not \`${config.format}\`; remove it or read JSON`,
  });
}

/** `strict`: every format. */
export const strictSchema = z
  .boolean()
  .default(false)
  .describe(
    'Fail the run at the first record that cannot be decoded, with the same message its dead letter would carry, instead of sending it to the `dlq` output.',
  );

/** `compression` names: `auto` or a codec. Each component sets its own default and doc. */
export const compressionSchema = z.enum(['auto', ...CODECS] as ['auto', ...typeof CODECS]);

/** `compression` of an input. */
export const inputCompressionSchema = compressionSchema
  .default('auto')
  .describe(
    '`auto`: a gzip, zstd, lz4 or snappy magic number, else the extension (`.gz`, `.zst`, `.br`, `.sz`/`.snappy`, `.lz4`), else none. Brotli has no magic number: use `.br` or name it.',
  );

const oneChar = (what: string) =>
  z
    .string()
    .length(1)
    .refine((c) => c.charCodeAt(0) < 0x80 && c !== '\n' && c !== '\r', {
      message: `${what} must be one ASCII character other than a newline`,
    });

const csvColumnType = z.union([
  z
    .enum(['string', 'int', 'float', 'decimal', 'bool', 'timestamp'])
    .describe(
      '`int`, `float`: numbers; `decimal`: exact, kept as validated text; `bool`: true/false, 1/0, yes/no, t/f; `timestamp`: ISO-8601 to epoch ms (UTC without offset).',
    ),
  z
    .object({
      type: z.literal('decimal'),
      scale: z
        .number()
        .int()
        .min(0)
        .max(30)
        .optional()
        .describe('A bigint of minor units (`12.5` with scale 2 → 1250); more fraction digits is an error.'),
    })
    .strict(),
]);

/** The CSV reader's fields (`format: csv` only). Each is optional; its default is in its doc. */
export const csvDecodeFields = {
  delimiter: oneChar('`delimiter`')
    .optional()
    .describe('`csv`: field separator, one ASCII character (default `,`).'),
  quote: oneChar('`quote`')
    .optional()
    .describe('`csv`: quote character (default `"`); a quote inside a quoted field is doubled.'),
  header: z
    .boolean()
    .optional()
    .describe(
      '`csv`: the first row is a header naming the columns (default true). With `columns` as well, the header row is skipped; with `header: false` and no `columns`, records are arrays.',
    ),
  columns: z.array(z.string()).min(1).optional().describe('`csv`: column names, overriding the header.'),
  types: z
    .record(z.string(), csvColumnType)
    .optional()
    .describe(
      '`csv`: types of columns by name (`int`, `float`, `decimal`, `{ type: decimal, scale: 2 }`, `bool`, `timestamp`, `string`); other columns stay strings, an empty typed field is null. `decimal` is an exact decimal (`473.98` stays 473.98 and is written back as `473.98`; with `scale: 2` every value has 2 digits and a value with more is an error, never a rounding; see docs/decimals.md); `timestamp` is ISO-8601 read as epoch milliseconds (a number; an offset-less time is UTC). A value that does not convert sends its row to the dlq naming line, column and value.',
    ),
  maxRecordBytes: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      '`csv`: longest row in bytes, quoted newlines included (default 16777216 = 16 MiB). A longer row (or an unterminated quote running on) goes to the dlq; memory stays bounded.',
    ),
  maxRawBytes: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('`csv`: how many bytes of a bad row its dead letter keeps (default 4096).'),
  skipEmptyLines: z
    .boolean()
    .optional()
    .describe('`csv`: skip empty lines (default true) rather than reading them as rows of one empty field.'),
  intern: z
    .union([
      z.boolean(),
      z
        .object({
          maxLength: z
            .number()
            .int()
            .min(1)
            .max(256)
            .optional()
            .describe('Longest value interned, in bytes (default 24).'),
          entries: z
            .number()
            .int()
            .min(16)
            .max(1 << 20)
            .optional()
            .describe('Slots in the cache (default 4096).'),
        })
        .strict(),
    ])
    .optional()
    .describe(
      '`csv`: share repeated short values (country codes, statuses) through a bounded cache, so retained records cost less heap (default true). Columns that rarely repeat switch themselves off.',
    ),
} as const;

/** The CSV writer's fields (`format: csv` only). */
export const csvEncodeFields = {
  delimiter: csvDecodeFields.delimiter,
  quote: csvDecodeFields.quote,
  header: z.boolean().optional().describe('`csv`: write a header row (default true).'),
  columns: z
    .array(z.string())
    .min(1)
    .optional()
    .describe(
      "`csv`: column order (and header). Default: the first record's keys; later records' other keys are not written.",
    ),
} as const;

/**
 * The fields of a decoding source after `format` and `compression` (the `file` and `stdin`
 * sources): batch size, strictness, the line formats' and the CSV reader's options.
 */
export const decodeFields = {
  batchSize: batchSizeSchema,
  strict: strictSchema,
  maxLineBytes: maxLineBytesSchema,
  skipBlank: skipBlankSchema,
  decimals: decimalsSchema,
  ...csvDecodeFields,
} as const;

/** Fields that only one format reads, and that format. */
const FORMAT_OF_FIELD: Readonly<Record<string, FormatName | 'lines, jsonl'>> = {
  maxLineBytes: 'lines, jsonl',
  skipBlank: 'lines',
  decimals: 'jsonl',
  delimiter: 'csv',
  quote: 'csv',
  header: 'csv',
  columns: 'csv',
  types: 'csv',
  maxRecordBytes: 'csv',
  maxRawBytes: 'csv',
  skipEmptyLines: 'csv',
  intern: 'csv',
};

/**
 * Reports, as config issues, fields given for another format than `config.format`
 * (`delimiter` on a `jsonl` input…).
 */
export function checkFormatFields(config: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const format = config.format as FormatName;
  for (const [field, owner] of Object.entries(FORMAT_OF_FIELD)) {
    if (config[field] === undefined) continue;
    const applies =
      owner === format || (owner === 'lines, jsonl' && (format === 'lines' || format === 'jsonl'));
    if (applies) continue;
    ctx.addIssue({
      code: 'custom',
      path: [field],
      message: `\`${field}\` applies to format ${owner
        .split(', ')
        .map((f) => `\`${f}\``)
        .join(
          ' and ',
        )}, not \`${format}\`; remove it${field === 'maxLineBytes' && format === 'csv' ? ' (for CSV use `maxRecordBytes`)' : ''}`,
    });
  }
}
