/**
 * Specs of the `kafka` source and sink: config schemas (field docs, defaults, examples) and
 * factories. The client (`@platformatic/kafka`) connects in the stages' `open`/`run`, never in
 * `create`, so `sluice lint` needs no broker.
 */
import { z } from 'zod';
import {
  readerOptions,
  schemaReaderFields,
  schemaWriterFields,
  writerOptions,
} from '../../formats/schema/config.ts';
import { checkJsonDecimals, jsonDecimalsSchema } from '../../io/spec.ts';
import { durationField } from '../../spec/fields.ts';
import { defineComponent } from '../../spec/registry.ts';
import { brokerList } from './connection.ts';
import { kafkaSecurityFields } from './security.ts';
import { kafkaSink } from './sink.ts';
import { type KafkaStart, kafkaSource } from './source.ts';
import { topicSettingsSchema } from './topics.ts';

const brokersSchema = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .transform((b) => brokerList(b))
  .describe(
    'Bootstrap brokers: `host:port`, a list of them, or a comma-separated string (port 9092 if omitted).',
  );

const formatSchema = z
  .enum(['json', 'text', 'raw', 'avro', 'protobuf', 'json-schema'])
  .default('json')
  .describe(
    '`json`: the value is one JSON document; `text`: a UTF-8 string; `raw`: the bytes as a Buffer. ' +
      '`avro`, `protobuf`, `json-schema`: the Confluent wire format (magic byte 0, 4-byte schema id, Protobuf message ' +
      'indexes) with schemas from `schemaRegistry`. A message without a value (a tombstone) is the record `null`.',
  );

const startSchema = z
  .string()
  .default('earliest')
  .transform((value, ctx): KafkaStart => {
    if (value === 'earliest' || value === 'latest' || value === 'committed') return value;
    const time = Date.parse(value);
    if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(time)) return time;
    ctx.issues.push({
      code: 'custom',
      input: value,
      message: `\`start\` must be \`earliest\`, \`latest\`, \`committed\` or an ISO-8601 time such as \`2026-01-31T12:00:00Z\`, not \`${value}\``,
    });
    return z.NEVER;
  })
  .describe(
    '`earliest` / `latest`: resume at the group’s committed offsets; a partition the group never committed starts at its ' +
      'first / next new message. `committed`: committed offsets only (a partition without one fails the run). An ISO-8601 ' +
      'time: replay from the first message at or after it, ignoring committed offsets.',
  );

/** Config of the `kafka` source. */
export const kafkaSourceConfig = z
  .object({
    brokers: brokersSchema,
    ...kafkaSecurityFields,
    topic: z.string().min(1).optional().describe('Topic to read (or `topics`).'),
    topics: z.array(z.string().min(1)).min(1).optional().describe('Topics to read (or `topic`).'),
    group: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Consumer group id. Default: the pipeline’s `name`. Processes with the same group share the partitions.',
      ),
    start: startSchema,
    format: formatSchema,
    decimals: jsonDecimalsSchema,
    ...schemaReaderFields,
    batchSize: z.number().int().min(1).max(100_000).default(1024).describe('Most records per emitted batch.'),
    maxWait: durationField()
      .prefault('50ms')
      .describe('Longest a partial batch waits for more messages before it is emitted (`50ms`).'),
    commitInterval: durationField()
      .prefault('1s')
      .describe(
        'Least time between two commits: offsets are committed once the records they cover reached every sink.',
      ),
    idleTimeout: durationField()
      .optional()
      .describe(
        'End the input after this long without a message (`10s`), committing what was read. Default: run until stopped. ' +
          'A member without partitions is not idle, and while other members of the group hold partitions with messages ' +
          'the group has not committed (a killed member keeps them until its session times out) it waits for them, at ' +
          'most `sessionTimeout` + 10 s, then ends with a warning naming what is unread.',
      ),
    groupProtocol: z
      .enum(['consumer', 'classic'])
      .default('classic')
      .describe(
        '`classic`: the join/sync protocol (default). `consumer`: the incremental KIP-848 protocol (Kafka ≥ 4.0, joins in ' +
          'milliseconds) — experimental: it commits (or checkpoints) before giving partitions up through a hook on the ' +
          'client’s internals, tested with members joining and leaving; one test run in 13 ended with records unread, ' +
          'and a restart after a killed member is not tested since that hook.',
      ),
    clientId: z.string().min(1).optional().describe('Client id shown in broker logs (default `sluice`).'),
    isolation: z
      .enum(['read_committed', 'read_uncommitted'])
      .default('read_committed')
      .describe(
        '`read_committed`: only messages of committed transactions (what an `exactlyOnce` kafka sink wrote, once). ' +
          '`read_uncommitted`: also messages of open and aborted transactions.',
      ),
    connectTimeout: durationField()
      .optional()
      .describe(
        'Fail the run when the brokers stay unreachable this long (`2m`), at start or mid-run. Default: wait for them, retrying with backoff, until stopped.',
      ),
    sessionTimeout: durationField()
      .optional()
      .describe(
        'Classic protocol: how long the group waits for a silent member (a killed process) before its partitions move to the others (`10s`, the default; the broker accepts 6s–5m by default).',
      ),
    parallel: z
      .object({
        mode: z
          .enum(['key', 'partition', 'unordered'])
          .default('key')
          .describe(
            '`key`: records of one message key never overlap and finish in offset order (records without a key are ' +
              'unconstrained). `partition`: records of one partition one at a time, partitions in parallel. `unordered`: any overlap.',
          ),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(16)
          .describe('Most records in the step at once.'),
      })
      .strict()
      .optional()
      .describe(
        'In-partition parallel processing of the step that follows: the pipeline’s first step (a `module:` step ' +
          'exporting a per-record function, e.g. an async lookup) runs inside the source on up to `concurrency` records ' +
          'at once, as `mode` allows, and results leave as they complete, so one slow record does not hold back the rest. ' +
          'Only the contiguous low watermark of finished records is committed: a stuck record holds its partition’s ' +
          'commit at its offset, and the records finished past it travel with the commit (or the checkpoint), so a ' +
          'restart redoes only unfinished ones. A failed record goes to the `dlq` output.',
      ),
  })
  .strict()
  .superRefine((config, ctx) => {
    if ((config.topic === undefined) === (config.topics === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['topic'], message: 'give exactly one of `topic` and `topics`' });
    }
    checkJsonDecimals(config, ctx);
  });

/**
 * The `kafka` source spec.
 *
 * @example
 * registry.add(kafkaSourceSpec);
 */
export const kafkaSourceSpec = defineComponent({
  name: 'kafka',
  kind: 'source',
  stability: 'experimental',
  summary:
    'Reads topics as a member of a Kafka consumer group, committing offsets only after the sinks have the records.',
  description:
    'Each record carries `meta.position` = `{ topic, partition, offset }`, `meta.key`, `meta.timestamp` (the Kafka ' +
    'timestamp, epoch ms) and `meta.headers`. Order is kept per partition. Delivery is at-least-once: offsets are ' +
    'committed after the records they cover reached every sink (barrier acknowledged) or at a clean end of input, ' +
    'never before; a crash re-reads from the last commit. With `checkpoint:` the offsets are committed once the ' +
    'checkpoint covering them is stored, and a restart resumes at the checkpoint’s offsets, so keyed state and an ' +
    'exactly-once sink see each record once. Records the group re-delivers after a rejoin are skipped by offset. ' +
    'Partitions revoked by a rebalance are dropped at once (with `checkpoint: { scope: partition }`, after a checkpoint ' +
    'stored their state, which the next owner loads) ' +
    '(their uncommitted records are re-read by the new owner). A value that is not valid JSON goes to the `dlq` ' +
    'output with its bytes (`value` as text, or `valueBase64`) and its position; the partition keeps flowing. A ' +
    'broker that is not reachable is waited for with backoff, one warning per attempt, until `connectTimeout`.',
  config: kafkaSourceConfig,
  // Positions `{ 'topic:0': offset, 'topic:0#done': … }`, records with `meta.position.partition`.
  capabilities: { partitionedPositions: true },
  runsFirstStep: (config) => config.parallel !== undefined,
  examples: [
    { title: 'JSON events from one topic', yaml: 'brokers: 127.0.0.1:9092\ntopic: events\ngroup: etl\n' },
    {
      title: 'Over SASL_SSL with SCRAM (the password from the environment)',
      yaml: `brokers: 127.0.0.1:9094\ntls: { ca: .services/kafka/tls/ca.pem }\nsasl: { mechanism: scram-sha-512, username: sluice, password: "\${KAFKA_PASSWORD}" }\ntopic: events\n`,
    },
    {
      title: 'Mutual TLS (client certificate)',
      yaml: 'brokers: 127.0.0.1:9095\ntls: { ca: .services/kafka/tls/ca.pem, cert: .services/kafka/tls/client.pem, key: .services/kafka/tls/client.key }\ntopic: events\n',
    },
    {
      title: 'OAUTHBEARER with a token from a command',
      yaml: 'brokers: kafka.example.com:9094\ntls: true\nsasl: { mechanism: oauthbearer, tokenCommand: ./get-token.sh }\ntopic: events\n',
    },
    {
      title:
        'Enrich with an async lookup, 32 records at once, keys in order (the first step runs in the source)',
      yaml: 'brokers: 127.0.0.1:9092\ntopic: events\ngroup: enrich\nparallel: { mode: key, concurrency: 32 }\n',
    },
    {
      title: 'Avro from a schema registry, every writer version read as reader schema v3',
      yaml: 'brokers: 127.0.0.1:9092\ntopic: payments\nformat: avro\nschemaRegistry: { url: http://127.0.0.1:8081/apis/ccompat/v7 }\nreaderSchema: schemas/payment-v3.avsc\n',
    },
    {
      title: 'Replay two topics from a point in time, ending when idle',
      yaml: 'brokers: [kafka-1:9092, kafka-2:9092]\ntopics: [orders, refunds]\ngroup: replay-2026-01\nstart: 2026-01-01T00:00:00Z\nidleTimeout: 30s\n',
    },
  ],
  create: (config, ctx) =>
    kafkaSource({
      brokers: config.brokers,
      tls: config.tls,
      sasl: config.sasl,
      topics: config.topics ?? [config.topic as string],
      group: config.group ?? ctx.pipelineName,
      start: config.start,
      format: config.format,
      schema: readerOptions(config.format, config, ctx.baseDir),
      decimals: config.decimals,
      batchSize: config.batchSize,
      maxWait: config.maxWait,
      commitInterval: config.commitInterval,
      idleTimeout: config.idleTimeout,
      groupProtocol: config.groupProtocol,
      clientId: config.clientId,
      isolation: config.isolation,
      connectTimeout: config.connectTimeout,
      sessionTimeout: config.sessionTimeout,
      // The builder hands over the first step when `parallel` is set (`runsFirstStep`).
      parallel:
        config.parallel !== undefined && ctx.firstStep !== undefined
          ? { ...config.parallel, step: ctx.firstStep }
          : undefined,
    }),
});

/** Config of the `kafka` sink. */
export const kafkaSinkConfig = z
  .object({
    brokers: brokersSchema,
    ...kafkaSecurityFields,
    topic: z.string().min(1).describe('Topic to write; it must exist, unless `createTopic` is set.'),
    createTopic: topicSettingsSchema
      .optional()
      .describe(
        'Create the topic at start when it does not exist: `{ partitions, replicationFactor, config }` (defaults 1, 1, none). An existing topic is left as it is.',
      ),
    key: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Record field whose value is the message key. Default: the key the record came with (`meta.key`), so Kafka → Kafka keeps keys. A record without the field goes to the `dlq` output.',
      ),
    format: formatSchema,
    ...schemaWriterFields,
    compression: z
      .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
      .default('none')
      .describe('Compression of produced record batches.'),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe('Most messages per produce request.'),
    linger: durationField()
      .prefault('0ms')
      .describe(
        'How long small batches may wait to be sent together (`5ms`); `0ms` sends each batch at once. Barriers and the end of input flush.',
      ),
    idempotent: z
      .boolean()
      .default(true)
      .describe('Idempotent producer: the client’s retries never duplicate a message (implies `acks: all`).'),
    acks: z
      .enum(['all', 'leader', 'none'])
      .default('all')
      .describe('Acknowledgement awaited per request when `idempotent` is false.'),
    keepHeaders: z
      .boolean()
      .default(true)
      .describe('Pass the record’s `meta.headers` on as message headers.'),
    deadLetters: z
      .enum(['original', 'envelope'])
      .optional()
      .describe(
        'As the `dlq:` output: `original` (the default there) writes each failed message as it came in — value bytes, ' +
          'key and headers — with `sluice.error.code`, `sluice.error.message`, `sluice.stage`, `sluice.source`, ' +
          '`sluice.position` and `sluice.time` headers added; `envelope` writes the dead letter as one JSON value.',
      ),
    clientId: z.string().min(1).optional().describe('Client id shown in broker logs (default `sluice`).'),
    exactlyOnce: z
      .boolean()
      .default(false)
      .describe(
        'One Kafka transaction per checkpoint holding the records and the `kafka` source’s consumed offsets: consumers ' +
          'with `read_committed` see each input record’s output once, across crashes. Needs `checkpoint:` and a `kafka` input.',
      ),
    transactionalId: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Transactional id with `exactlyOnce` (default `sluice.<pipeline>.<stage>`; with `checkpoint: { scope: partition }` ' +
          '`sluice.<pipeline>.<stage>.<random>`, one per process, so members of a scaled-out pipeline do not fence each ' +
          'other). Keep it across restarts (a restart fences the previous process by it); give each process its own.',
      ),
    connectTimeout: durationField()
      .optional()
      .describe(
        'Fail the run when a produce request has failed this long (`2m`) because the broker is not reachable. Default: retry with backoff, one warning per attempt, until it is back.',
      ),
    transactionTimeout: durationField()
      .prefault('1m')
      .describe(
        'With `exactlyOnce`: how long a transaction may stay open before the broker aborts it; longer than the checkpoint ' +
          'interval, at most the broker’s `transaction.max.timeout.ms` (15 min by default).',
      ),
  })
  .strict();

/**
 * The `kafka` sink spec.
 *
 * @example
 * registry.add(kafkaSinkSpec);
 */
export const kafkaSinkSpec = defineComponent({
  name: 'kafka',
  kind: 'sink',
  stability: 'experimental',
  summary: 'Produces each record as one message to a Kafka topic (batched, compressed, idempotent).',
  description:
    'Up to 4 produce requests are in flight; a checkpoint barrier and the end of input wait until the broker ' +
    'acknowledged every message before them, so upstream commits never run ahead of the output. A broker that is not reachable at start is waited for with backoff; a topic that does not exist fails ' +
    'at start. With `exactlyOnce` the records of each checkpoint and the consumed offsets of the `kafka` source go ' +
    'into one transaction, prepared at the checkpoint barrier and committed once the checkpoint is stored; a restart ' +
    'commits the transaction of the checkpoint it resumes from if the crash came first, and aborts any later one, so ' +
    '`read_committed` consumers see every record once.',
  config: kafkaSinkConfig,
  // With `exactlyOnce`, the `kafka` sources' group offsets go into its transactions (`txn.ts`).
  capabilities: { commitsSourceOffsets: 'kafka' },
  examples: [
    {
      title: 'JSON, keyed by a field, zstd-compressed',
      yaml: 'brokers: 127.0.0.1:9092\ntopic: scored\nkey: userId\ncompression: zstd\n',
    },
    {
      title: 'Create the topic when missing: 6 partitions, compacted',
      yaml: 'brokers: 127.0.0.1:9092\ntopic: scores\ncreateTopic: { partitions: 6, config: { cleanup.policy: compact } }\n',
    },
    {
      title: 'Avro with the schema registered on demand under `<topic>-value`',
      yaml: `brokers: 127.0.0.1:9092\ntopic: payments\nformat: avro\nschema: schemas/payment-v3.avsc\nautoRegister: true\nschemaRegistry:\n  url: https://registry.example.com\n  username: sluice\n  password: \${REGISTRY_PASSWORD}\n`,
    },
    {
      title: 'Exactly-once Kafka to Kafka (with `checkpoint:` in the pipeline)',
      yaml: 'brokers: 127.0.0.1:9092\ntopic: scored\nexactlyOnce: true\n',
    },
  ],
  create: (config, ctx) =>
    kafkaSink({
      brokers: config.brokers,
      tls: config.tls,
      sasl: config.sasl,
      createTopic: config.createTopic,
      topic: config.topic,
      key: config.key,
      format: config.format,
      schema: writerOptions(config.format, config, ctx.baseDir),
      compression: config.compression,
      batchSize: config.batchSize,
      linger: config.linger,
      idempotent: config.idempotent,
      acks: config.acks,
      keepHeaders: config.keepHeaders,
      clientId: config.clientId,
      deadLetters: config.deadLetters ?? (ctx.dlq === true ? 'original' : 'envelope'),
      exactlyOnce: config.exactlyOnce,
      transactionalId: config.transactionalId,
      transactionTimeout: config.transactionTimeout,
      connectTimeout: config.connectTimeout,
      pipeline: ctx.pipelineName,
    }),
});
