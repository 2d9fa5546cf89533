/**
 * Specs of the `redis` source and sink (Redis Streams): config schemas (field docs, defaults,
 * examples) and factories. The client (`ioredis`) connects in the stages' `open`/`run`, never in
 * `create`, so `sluice lint` needs no server.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { tlsField } from '../../clients/tls.ts';
import { checkJsonDecimals, jsonDecimalsSchema } from '../../io/spec.ts';
import { checkConnectionUrl, durationField } from '../../spec/fields.ts';
import { defineComponent } from '../../spec/registry.ts';
import { redisSink } from './sink.ts';
import { redisSource } from './source.ts';

const urlSchema = z
  .string()
  .regex(/^rediss?:\/\//, 'must be a URL such as `redis://127.0.0.1:6379` (or `rediss://` for TLS)')
  .superRefine(checkConnectionUrl)
  .describe(
    `Connection URL, \`redis://[user:password@]host:port[/db]\` (\`rediss://\` for TLS; use \`\${ENV_VAR}\` for the password).`,
  );

const formatSchema = z
  .enum(['json', 'raw'])
  .default('json')
  .describe(
    '`json`: field values are JSON documents; `raw`: field values are plain strings. Without `field` it applies to ' +
      'every field of the entry.',
  );

const fieldSchema = z
  .string()
  .min(1)
  .optional()
  .describe(
    'The entry field holding the record. Default: the whole entry is the record, one property per field ' +
      '(`XADD s * user 7 kind login` ↔ `{ user: …, kind: … }`).',
  );

/** An entry id (`1700000000000-0`, `1700000000000`) or `$` / `0`. */
const ENTRY_ID = /^(\$|0|\d+(-\d+)?)$/;

/** Config of the `redis` source. */
export const redisSourceConfig = z
  .object({
    url: urlSchema,
    tls: tlsField,
    stream: z.string().min(1).optional().describe('Stream key to read (or `streams`).'),
    streams: z.array(z.string().min(1)).min(1).optional().describe('Stream keys to read (or `stream`).'),
    group: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Consumer group; created (with the stream, `MKSTREAM`) when missing. Default: the pipeline’s `name`.',
      ),
    consumer: z
      .string()
      .min(1)
      .optional()
      .describe(
        'This consumer’s name in the group. Default `<hostname>-<pid>`. Give each replica a stable name: a restarted ' +
          'consumer of the same name re-reads what it had read and not acknowledged; under another name those entries ' +
          'come back only through `claimIdle` (or a checkpoint restore, which takes them over at once).',
      ),
    start: z
      .union([
        z.literal(0),
        z.string().regex(ENTRY_ID, 'must be `$`, `0` or an entry id such as `1700000000000-0`'),
      ])
      .default('$')
      .transform((v) => String(v))
      .describe(
        'Where a newly created group starts: `$` (entries added from now on), `0` (the whole stream) or an entry id. ' +
          'An existing group keeps its own position.',
      ),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .describe('Most entries per read and per batch.'),
    block: durationField()
      .prefault('1s')
      .describe('Longest a read waits for new entries (`XREADGROUP … BLOCK`). A stop unblocks it at once.'),
    claimIdle: z
      .union([z.literal('off'), durationField()])
      .prefault('5m')
      .describe(
        'Take over entries other consumers of the group left pending at least this long (`XAUTOCLAIM`): a dead ' +
          'consumer’s work. `off`: never. Entries this consumer holds for a checkpoint are kept fresh, so a long ' +
          'checkpoint interval does not let others take them.',
      ),
    format: formatSchema,
    decimals: jsonDecimalsSchema,
    field: fieldSchema,
    idleTimeout: durationField()
      .optional()
      .describe(
        'End the input after this long without an entry (`10s`), acknowledging what was read. Default: never.',
      ),
    commitInterval: durationField()
      .prefault('1s')
      .describe(
        'Without `checkpoint:`: least time between two acknowledgements (entries are acknowledged once every sink has them).',
      ),
  })
  .strict()
  .superRefine((config, ctx) => {
    if ((config.stream === undefined) === (config.streams === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['stream'],
        message: 'give exactly one of `stream` and `streams`',
      });
    }
    checkJsonDecimals(config, ctx);
  });

/**
 * The `redis` source spec.
 *
 * @example
 * registry.add(redisSourceSpec);
 */
export const redisSourceSpec = defineComponent({
  name: 'redis',
  kind: 'source',
  stability: 'experimental',
  summary:
    'Reads Redis Streams as a consumer group member, acknowledging entries only after the sinks (or a checkpoint) have them.',
  description:
    'Each record carries `meta.position` = `{ stream, id }` and `meta.timestamp` (the id’s milliseconds). Delivery ' +
    'is at-least-once (exactly-once into state and exactly-once sinks under `checkpoint:`): an entry is ' +
    'acknowledged (`XACK`) once the checkpoint covering it is stored, or, without ' +
    'checkpoints, once every sink acknowledged a barrier after it, or at a clean end; never before. On start the ' +
    'consumer re-reads its own pending entries, so a restart under the same `consumer` name loses nothing; with ' +
    '`claimIdle` it takes over entries a dead consumer left pending. An entry that cannot be decoded goes to the ' +
    '`dlq` output with its stream, id and fields, and is acknowledged by the same rule. Order is kept per stream ' +
    'for entries read as new; re-read and claimed entries come first. A server that is not reachable is waited ' +
    'for with backoff, one warning per attempt.',
  config: redisSourceConfig,
  examples: [
    {
      title: 'JSON payloads in field `data`, a stable consumer name',
      yaml: 'url: redis://127.0.0.1:6379\nstream: events\ngroup: etl\nconsumer: etl-1\nfield: data\nstart: "0"\n',
    },
    {
      title: 'Two streams, whole entries as string objects, ending when idle',
      yaml: 'url: redis://127.0.0.1:6379\nstreams: [orders, refunds]\ngroup: backfill\nformat: raw\nidleTimeout: 10s\n',
    },
  ],
  create: (config, ctx) =>
    redisSource({
      url: config.url,
      tls: config.tls,
      streams: config.streams ?? [config.stream as string],
      group: config.group ?? ctx.pipelineName,
      consumer: config.consumer ?? `${hostname()}-${process.pid}`,
      start: config.start,
      batchSize: config.batchSize,
      block: config.block,
      claimIdle: config.claimIdle === 'off' ? undefined : config.claimIdle,
      format: config.format,
      decimals: config.decimals,
      field: config.field,
      idleTimeout: config.idleTimeout,
      commitInterval: config.commitInterval,
    }),
});

/** Config of the `redis` sink. */
export const redisSinkConfig = z
  .object({
    url: urlSchema,
    tls: tlsField,
    stream: z.string().min(1).describe('Stream key to append to (created by the first `XADD`).'),
    maxLen: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Cap the stream at this many entries (`XADD … MAXLEN`), dropping the oldest. Default: no cap.',
      ),
    approximate: z
      .boolean()
      .default(true)
      .describe(
        'With `maxLen`: trim approximately (`MAXLEN ~`, whole nodes, much cheaper), keeping at least `maxLen`.',
      ),
    format: formatSchema,
    field: fieldSchema,
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .describe('Most `XADD` commands sent in one pipelined round trip.'),
  })
  .strict();

/**
 * The `redis` sink spec.
 *
 * @example
 * registry.add(redisSinkSpec);
 */
export const redisSinkSpec = defineComponent({
  name: 'redis',
  kind: 'sink',
  stability: 'experimental',
  summary: 'Appends each record to a Redis stream with pipelined `XADD`, optionally capped with `MAXLEN`.',
  description:
    'A write resolves when Redis replied to every `XADD` of the batch, so upstream acknowledgements never run ahead ' +
    'of the output. A record that cannot be encoded (without `field`, a record that is not an object) goes to the ' +
    '`dlq` output. A key that holds another type fails at start. Delivery is at-least-once: commands unanswered when ' +
    'a connection drops are sent again after the reconnect, which can duplicate an entry.',
  config: redisSinkConfig,
  examples: [
    {
      title: 'JSON records in field `data`, the stream capped at about a million entries',
      yaml: 'url: redis://127.0.0.1:6379\nstream: scored\nfield: data\nmaxLen: 1000000\n',
    },
  ],
  create: (config) =>
    redisSink({
      url: config.url,
      tls: config.tls,
      stream: config.stream,
      maxLen: config.maxLen,
      approximate: config.approximate,
      field: config.field,
      format: config.format,
      batchSize: config.batchSize,
    }),
});
