/**
 * The top-level keys of a pipeline file that are not components (`name`, `checkpoint`,
 * `maxErrorRate`, `channelCapacity`), the `buffer:` and `module:` entries beside components, and
 * the names the file may use: the schemas `check.ts` validates against and the JSON Schema and docs
 * describe.
 */
import { z } from 'zod';
import { checkpointSchema } from '../checkpoint/spec.ts';
import { bufferField } from '../spec/fields.ts';

export const TOP_LEVEL = [
  'name',
  'input',
  'inputs',
  'pipeline',
  'output',
  'outputs',
  'dlq',
  'checkpoint',
  'maxErrorRate',
  'channelCapacity',
  'maxStateBytes',
  'connections',
  'http',
] as const;

/**
 * The `maxErrorRate` of `sluice run` when the file sets none: a run where more than half of the
 * records read went to the DLQ fails (exit 1) instead of reporting success.
 */
export const DEFAULT_MAX_ERROR_RATE = 0.5;

export const STAGE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:#/-]*$/;

/** Schemas of the top-level keys that are not components. */
export const scalarKeys = {
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
      'Use letters, digits, `_`, `.` and `-`, starting with a letter or digit',
    )
    .describe(
      'Names the run in metrics and logs (later: checkpoints and consumer groups). Default: the file name.',
    ),
  checkpoint: checkpointSchema,
  maxErrorRate: z
    .number()
    .min(0)
    .max(1)
    .describe(
      'Largest fraction (0–1) of the records the input held (read, or undecodable) that may become dead letters. Checked while running (once 100 records were read: the run stops) and at the end (the run fails with exit code 1 and says so). Default 0.5 for `sluice run`; `0` fails a run on its first dead letter, `1` never.',
    ),
  channelCapacity: z
    .number()
    .int()
    .min(1)
    .describe('Messages each channel between two stages queues (default 2).'),
  http: z
    .strictObject({
      address: z
        .string()
        .regex(
          /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
          'Use `host:port`, e.g. `127.0.0.1:9464` (port 0 picks a free one)',
        )
        .describe('Where to listen, `host:port`, e.g. `127.0.0.1:9464`.'),
    })
    .describe(
      'Serve `/metrics` (Prometheus), `/health`, `/ready` and a live dashboard while the run lasts (`sluice run --http` wins). Default: off.',
    ),
  maxStateBytes: z
    .number()
    .int()
    .min(1)
    .describe(
      'Bytes of keyed state (window accumulators) the steps may hold together, as they estimate it; past it the run stops with a clear error naming the step instead of running out of memory. Default: half of the heap’s old space.',
    ),
} as const;

/**
 * Schema of `connections:`: named connection settings per connector family, declared once and
 * referred to by `connection: <name>` inside a component of that family, e.g.
 * `connections: { prod: { kafka: { brokers, tls, sasl } } }` and `kafka: { connection: prod, topic: t }`.
 * The component's own fields win over the connection's; the merged config is validated by the
 * component's spec.
 */
export const connectionsSchema = z
  .record(
    z.string().regex(STAGE_NAME, 'Use letters, digits and `_.:#/-`'),
    z.record(z.string(), z.record(z.string(), z.unknown())),
  )
  .describe(
    'Named connection settings, per connector (`prod: { kafka: { brokers, tls, sasl }, postgres: { url, tls } }`); a component takes them with `connection: prod`.',
  );

/** Schema of `buffer:` beside a sink or step. */
export const bufferSchema = bufferField().describe('Buffer of the edge into this stage.');

/** The top-level schemas of the non-component keys, for the JSON Schema and the docs. */
export const pipelineKeySchemas = { ...scalarKeys, buffer: bufferSchema, connections: connectionsSchema };

export const moduleSchema = z.union([
  z.string().min(1),
  z.strictObject({
    path: z.string().min(1).describe('Path of the module, relative to the pipeline file.'),
    export: z.string().min(1).default('default').describe('Name of the export to use.'),
  }),
]);

/** `parallelism` beside `module`: worker threads for a per-record function (see `parallelStep`). */
export const moduleParallelismSchema = z
  .union([z.literal('auto'), z.number().int().min(1).max(256)])
  .describe('Worker threads running the function: 1 to 256, or `auto` (available cores).');

/** `key` beside `module`: the field (or fields) whose records go to one worker thread, in order. */
export const moduleKeySchema = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .describe('Field, or fields, of the key: the records of one key run on one worker, in order.');

/** Which extra keys may sit beside the component key, per position. */
export type Siblings = readonly ('name' | 'buffer')[];
