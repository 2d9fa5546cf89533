/** Specs of the `stdin` source and the `stdout` sink. */
import { z } from 'zod';
import { defineComponent } from '../../config/registry.ts';
import { batchSizeSchema, lineFormatSchema, maxLineBytesSchema, skipBlankSchema } from '../file/spec.ts';
import { stdoutSink } from './sink.ts';
import { stdinSource } from './source.ts';

/** Config of the `stdin` source. */
export const stdinSourceConfig = z
  .object({
    format: lineFormatSchema,
    maxLineBytes: maxLineBytesSchema,
    batchSize: batchSizeSchema,
    skipBlank: skipBlankSchema,
  })
  .strict();

/**
 * The `stdin` source spec.
 *
 * @example
 * registry.add(stdinSourceSpec);
 */
export const stdinSourceSpec = defineComponent({
  name: 'stdin',
  kind: 'source',
  stability: 'beta',
  summary: 'Reads records from standard input, line by line (JSON Lines or plain lines).',
  description:
    'Like the `file` source without a known size: `meta.position` is `{ stream: "stdin", line, offset }`; lines that ' +
    'cannot be decoded go to the `dlq` output.',
  config: stdinSourceConfig,
  examples: [{ title: 'JSON Lines from a pipe', yaml: 'format: jsonl\n' }],
  create: (config) =>
    stdinSource({
      format: config.format,
      maxLineBytes: config.maxLineBytes,
      batchSize: config.batchSize,
      skipBlank: config.skipBlank,
    }),
});

/** Config of the `stdout` sink. */
export const stdoutSinkConfig = z
  .object({
    format: lineFormatSchema.default('jsonl'),
  })
  .strict();

/**
 * The `stdout` sink spec.
 *
 * @example
 * registry.add(stdoutSinkSpec);
 */
export const stdoutSinkSpec = defineComponent({
  name: 'stdout',
  kind: 'sink',
  stability: 'beta',
  summary: 'Writes records to standard output (JSON Lines or plain lines).',
  description:
    'When the reader closes the pipe (e.g. `| head`), the run stops with a `SLUICE_CANCELLED` error whose context has ' +
    '`reason: "reader-gone"` instead of writing on.',
  config: stdoutSinkConfig,
  examples: [{ title: 'JSON Lines to the terminal', yaml: 'format: jsonl\n' }],
  create: (config) => stdoutSink({ format: config.format }),
});
