/** Specs of the `stdin` source and the `stdout` sink. */
import { z } from 'zod';
import {
  checkFormatFields,
  compressionSchema,
  csvEncodeFields,
  decodeFields,
  formatSchema,
  sinkFormatSchema,
} from '../../io/spec.ts';
import { defineComponent } from '../../spec/registry.ts';
import { stdoutSink } from './sink.ts';
import { stdinSource } from './source.ts';

/** Config of the `stdin` source. */
export const stdinSourceConfig = z
  .object({
    format: formatSchema,
    compression: compressionSchema
      .default('none')
      .describe(
        'Compression of the input (default `none`). `auto` detects gzip, zstd, lz4 and snappy by their magic number, which holds back the first record until ten bytes arrived.',
      ),
    ...decodeFields,
  })
  .strict()
  .superRefine(checkFormatFields);

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
  summary: 'Reads records from standard input (JSON Lines, CSV or plain lines).',
  description:
    'Like the `file` source without a known size: `meta.position` is `{ stream: "stdin", line, offset }`; records that ' +
    'cannot be decoded go to the `dlq` output. With `checkpoint:` it needs `wal: true`: standard input cannot be ' +
    'read again, so a restart replays from the write-ahead log what the last run read after its checkpoint, then ' +
    'reads the new standard input.',
  config: stdinSourceConfig,
  capabilities: { readOnce: true },
  examples: [
    { title: 'JSON Lines from a pipe', yaml: 'format: jsonl\n' },
    { title: 'Gzipped CSV from a pipe', yaml: 'format: csv\ncompression: gzip\ntypes: { qty: int }\n' },
  ],
  create: (config) => stdinSource(config),
});

/** Config of the `stdout` sink. */
export const stdoutSinkConfig = z
  .object({
    format: sinkFormatSchema.default('jsonl'),
    ...csvEncodeFields,
  })
  .strict()
  .superRefine(checkFormatFields);

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
  summary: 'Writes records to standard output (JSON Lines, CSV or plain lines).',
  description:
    'When the reader closes the pipe (e.g. `| head`), the run stops with a `SLUICE_CANCELLED` error whose context has ' +
    '`reason: "reader-gone"` instead of writing on. CSV gets a header row: `columns`, or else the first record\'s keys.',
  config: stdoutSinkConfig,
  examples: [
    { title: 'JSON Lines to the terminal', yaml: 'format: jsonl\n' },
    { title: 'CSV with chosen columns', yaml: 'format: csv\ncolumns: [id, amount]\n' },
  ],
  create: (config) => stdoutSink(config),
});
