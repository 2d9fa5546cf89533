/**
 * Specs of the `file` source and sink: config schemas (field docs, defaults, examples) and
 * factories. Relative paths resolve against the pipeline file's folder (`ctx.baseDir`).
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { defineComponent } from '../../config/registry.ts';
import { fileSink } from './sink.ts';
import { DEFAULT_BATCH_SIZE, fileSource } from './source.ts';

/** The line-based formats a file is read or written with. */
export const lineFormatSchema = z
  .enum(['lines', 'jsonl'])
  .describe('`jsonl`: one JSON value per line (blank lines skipped); `lines`: one string per line.');

/** `maxLineBytes`: the longest line accepted. */
export const maxLineBytesSchema = z
  .number()
  .int()
  .min(1)
  .default(16 * 1024 * 1024)
  .describe(
    'Longest line accepted, in bytes. A longer line goes to the dlq (and is skipped without being buffered).',
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
  .default(false)
  .describe(
    '`lines` format: drop empty lines instead of emitting empty strings (`jsonl` always skips them).',
  );

/** Config of the `file` source. */
export const fileSourceConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .describe('File to read. A relative path resolves against the pipeline file’s folder.'),
    format: lineFormatSchema,
    maxLineBytes: maxLineBytesSchema,
    batchSize: batchSizeSchema,
    skipBlank: skipBlankSchema,
  })
  .strict();

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
  summary: 'Reads records from a file, line by line (JSON Lines or plain lines).',
  description:
    'Each record carries its origin: `meta.position` = `{ file, line, offset }` (1-based line, 0-based byte offset). ' +
    'A line that cannot be decoded (bad JSON, invalid UTF-8, longer than `maxLineBytes`) goes to the `dlq` output with ' +
    'its line number and offset; the other lines flow on.',
  config: fileSourceConfig,
  examples: [
    { title: 'JSON Lines', yaml: 'path: data/events.jsonl\nformat: jsonl\n' },
    {
      title: 'Plain lines, skipping empty ones',
      yaml: 'path: /var/log/app.log\nformat: lines\nskipBlank: true\n',
    },
  ],
  create: (config, ctx) =>
    fileSource({
      path: resolve(ctx.baseDir, config.path),
      format: config.format,
      maxLineBytes: config.maxLineBytes,
      batchSize: config.batchSize,
      skipBlank: config.skipBlank,
    }),
});

/** Config of the `file` sink. */
export const fileSinkConfig = z
  .object({
    path: z
      .string()
      .min(1)
      .describe(
        'File to write. A relative path resolves against the pipeline file’s folder; missing folders are created. ' +
          'The file appears only when the run succeeds (written to a temporary name, then renamed).',
      ),
    format: lineFormatSchema,
  })
  .strict();

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
  summary: 'Writes records to a file atomically (JSON Lines or plain lines).',
  description:
    'Data goes to `.<name>.sluice-tmp-<pid>` in the same folder; when the run succeeds the file is fsynced and ' +
    'renamed to `path`. A failed or cancelled run removes the temporary file, so `path` never holds a partial output.',
  config: fileSinkConfig,
  examples: [{ title: 'JSON Lines', yaml: 'path: out/result.jsonl\nformat: jsonl\n' }],
  create: (config, ctx) => fileSink({ path: resolve(ctx.baseDir, config.path), format: config.format }),
});
