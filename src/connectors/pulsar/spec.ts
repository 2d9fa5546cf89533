/**
 * Specs of the `pulsar` source and sink (Apache Pulsar through the broker's WebSocket API): config
 * schemas (field docs, defaults, examples) and factories. Sockets open in the stages' `open`/`run`,
 * never in `create`, so `sluice lint` needs no broker.
 */
import { z } from 'zod';
import { checkJsonDecimals, jsonDecimalsSchema } from '../../io/spec.ts';
import { checkConnectionUrl, durationField } from '../../spec/fields.ts';
import { defineComponent } from '../../spec/registry.ts';
import { pulsarSink } from './sink.ts';
import { pulsarSource } from './source.ts';

const urlSchema = z
  .string()
  .regex(
    /^https?:\/\//,
    'must be the broker’s web service URL, such as `http://127.0.0.1:8080` (`https://` for TLS)',
  )
  .superRefine(checkConnectionUrl)
  .describe(
    'The broker’s (or proxy’s) web service, `http://host:8080` (`https://` for TLS); its WebSocket API must be on (`webSocketServiceEnabled=true`).',
  );

const tokenSchema = z
  .string()
  .min(1)
  .optional()
  .describe(
    `Authentication token, sent as \`Authorization: Bearer …\` (use \`\${ENV_VAR}\`; never shown in messages).`,
  );

const topicDoc =
  '`name` (namespace `public/default`), `tenant/namespace/name` or `persistent://tenant/namespace/name`';

const formatSchema = z
  .enum(['json', 'text', 'raw'])
  .default('json')
  .describe(
    '`json`: the payload is one JSON document; `text`: a UTF-8 string; `raw`: the bytes as a Buffer.',
  );

/** Config of the `pulsar` source. */
export const pulsarSourceConfig = z
  .object({
    url: urlSchema,
    token: tokenSchema,
    topic: z
      .string()
      .min(1)
      .optional()
      .describe(`Topic to read: ${topicDoc}. Or \`topics\`, or \`topicsPattern\`.`),
    topics: z.array(z.string().min(1)).min(1).optional().describe('Topics to read.'),
    topicsPattern: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A regular expression over full topic names of one namespace (`persistent://public/default/orders-.*`); topics created later are picked up by the broker.',
      ),
    subscription: z
      .string()
      .min(1)
      .optional()
      .describe('Subscription name; created when missing. Default: the pipeline’s `name`.'),
    subscriptionType: z
      .enum(['exclusive', 'failover', 'shared', 'key_shared'])
      .default('exclusive')
      .describe(
        '`exclusive`: one consumer. `failover`: one active consumer, the others take over. `shared`: a work queue, ' +
          'messages round robin over the consumers (no order). `key_shared`: many consumers, all messages of a key go to one ' +
          'of them at a time, in order — key order holds while consumers scale like a queue.',
      ),
    keySharedMode: z
      .enum(['autoSplit', 'sticky'])
      .default('autoSplit')
      .describe(
        '`key_shared` only: `autoSplit` — the broker spreads the key hash range over the consumers and moves ranges when ' +
          'they join or leave. `sticky` ranges are not offered through the WebSocket API and are refused.',
      ),
    start: z
      .enum(['earliest', 'latest'])
      .default('latest')
      .describe('Where a new subscription starts. An existing subscription keeps its own position.'),
    consumerName: z.string().min(1).optional().describe('This consumer’s name in the broker’s stats.'),
    format: formatSchema,
    decimals: jsonDecimalsSchema,
    batchSize: z.number().int().min(1).max(100_000).default(500).describe('Most messages per emitted batch.'),
    maxWait: durationField()
      .prefault('20ms')
      .describe('Longest a partial batch waits for more messages before it is emitted.'),
    receiverQueueSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe(
        'Most messages delivered to this process and not yet emitted: the backpressure bound (pull-mode permits). ' +
          'Messages emitted and waiting for their acknowledgement are bounded by the broker’s `maxUnackedMessagesPerConsumer`.',
      ),
    badMessages: z
      .enum(['dlq', 'nack'])
      .default('dlq')
      .describe(
        'A message that cannot be decoded: `dlq` sends it to the `dlq` output (then acknowledges it); `nack` negatively ' +
          'acknowledges it, so the broker delivers it again after `redeliveryDelay` (to any consumer) and, after ' +
          '`maxRedeliveries`, moves it to the dead-letter topic.',
      ),
    failedRecords: z
      .enum(['dlq', 'nack'])
      .default('dlq')
      .describe(
        'A record a later step or the sink sent to the `dlq` output: `dlq` acknowledges its message like any other; ' +
          '`nack` negatively acknowledges the message at once instead, so the broker delivers it again after ' +
          '`redeliveryDelay` (to any consumer) and, after `maxRedeliveries` (`shared` and `key_shared`), moves it to ' +
          'the dead-letter topic. Every failed try is also a dead letter in the `dlq` output, whose ' +
          '`position.redeliveryCount` tells the tries apart; a `dlq` output is still required.',
      ),
    redeliveryDelay: durationField()
      .prefault('1s')
      .describe('How long after a negative ack the broker delivers the message again.'),
    maxRedeliveries: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'After this many redeliveries the broker moves a message to the dead-letter topic (`shared` and `key_shared`). Default: redeliver forever.',
      ),
    deadLetterTopic: z
      .string()
      .min(1)
      .optional()
      .describe('The dead-letter topic for `maxRedeliveries`. Default `<topic>-<subscription>-DLQ`.'),
    idleTimeout: durationField()
      .optional()
      .describe(
        'End the input after this long without a message (`10s`), acknowledging what was read. Default: never.',
      ),
    commitInterval: durationField()
      .prefault('1s')
      .describe(
        'Without `checkpoint:`: least time between two acknowledgement rounds (messages are acknowledged once every sink has them).',
      ),
    connectTimeout: durationField()
      .optional()
      .describe(
        'Fail the run when the broker stays unreachable this long (`2m`). Default: wait, retrying with backoff.',
      ),
  })
  .strict()
  .superRefine((config, ctx) => {
    const given = [config.topic, config.topics, config.topicsPattern].filter((x) => x !== undefined).length;
    if (given !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['topic'],
        message: 'give exactly one of `topic`, `topics` and `topicsPattern`',
      });
    }
    checkJsonDecimals(config, ctx);
    if (config.keySharedMode === 'sticky') {
      ctx.addIssue({
        code: 'custom',
        path: ['keySharedMode'],
        message:
          'sticky key ranges cannot be set through Pulsar’s WebSocket API (it takes no key-shared policy); use `autoSplit`, or pin keys by running one subscription per range',
      });
    }
    if (config.keySharedMode !== 'autoSplit' && config.subscriptionType !== 'key_shared') {
      ctx.addIssue({
        code: 'custom',
        path: ['keySharedMode'],
        message: '`keySharedMode` applies to `subscriptionType: key_shared` only',
      });
    }
    if (
      config.maxRedeliveries !== undefined &&
      config.subscriptionType !== 'shared' &&
      config.subscriptionType !== 'key_shared'
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxRedeliveries'],
        message:
          'the broker counts redeliveries for `shared` and `key_shared` subscriptions only; remove `maxRedeliveries` or change `subscriptionType`',
      });
    }
    if (config.deadLetterTopic !== undefined && config.maxRedeliveries === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['deadLetterTopic'],
        message: '`deadLetterTopic` takes effect with `maxRedeliveries` only; set both',
      });
    }
  });

/**
 * The `pulsar` source spec.
 *
 * @example
 * registry.add(pulsarSourceSpec);
 */
export const pulsarSourceSpec = defineComponent({
  name: 'pulsar',
  kind: 'source',
  stability: 'experimental',
  summary:
    'Consumes a Pulsar subscription (exclusive, failover, shared or key_shared) through the broker’s WebSocket API, acknowledging each message only after the sinks (or a checkpoint) have it.',
  description:
    'Each record carries `meta.position` = `{ topic, messageId, redeliveryCount }`, `meta.key`, `meta.headers` (the ' +
    'properties), `meta.timestamp` (the event time, else the publish time) and `meta.attributes.publishTime`. Delivery ' +
    'is at-least-once: individual acks are sent once the checkpoint covering a message is stored, or, without ' +
    'checkpoints, once every sink acknowledged a barrier after it, or at a clean end; never before. What a killed ' +
    'process had not acknowledged is delivered again to the other consumers of the subscription. On `key_shared` ' +
    'every key is served by one process at a time, in order; when consumers join or leave the broker moves hash ranges ' +
    'and holds a moved key back until its previous consumer acknowledged what it had, so a keyed window result of a ' +
    'moved key is emitted in parts, one per process that held the key (see the connector README). A message that ' +
    'cannot be decoded goes to the `dlq` output, or with `badMessages: nack` back to the broker; a record a later ' +
    'step fails goes to the `dlq` output and, with `failedRecords: nack`, back to the broker too.',
  config: pulsarSourceConfig,
  examples: [
    {
      title:
        'A work queue: a shared subscription, undecodable messages retried then dead-lettered by the broker',
      yaml:
        'url: http://127.0.0.1:8080\ntopic: jobs\nsubscription: workers\nsubscriptionType: shared\nstart: earliest\n' +
        'badMessages: nack\nredeliveryDelay: 1s\nmaxRedeliveries: 3\n',
    },
    {
      title:
        'Retry what a step fails: 4 tries 10 s apart, then the dead-letter topic (each try also in the `dlq` output)',
      yaml:
        'url: http://127.0.0.1:8080\ntopic: jobs\nsubscription: workers\nsubscriptionType: shared\nstart: earliest\n' +
        'failedRecords: nack\nredeliveryDelay: 10s\nmaxRedeliveries: 3\ndeadLetterTopic: jobs-failed\n',
    },
    {
      title: 'Key_Shared: run several processes with this input; each key is served by one of them at a time',
      yaml: 'url: http://127.0.0.1:8080\ntopic: events\nsubscription: sessions\nsubscriptionType: key_shared\nstart: earliest\n',
    },
  ],
  create: (config, ctx) =>
    pulsarSource({
      url: config.url,
      token: config.token,
      topics: config.topics ?? (config.topic !== undefined ? [config.topic] : undefined),
      topicsPattern: config.topicsPattern,
      subscription: config.subscription ?? ctx.pipelineName,
      subscriptionType: config.subscriptionType,
      start: config.start,
      consumerName: config.consumerName,
      format: config.format,
      decimals: config.decimals,
      batchSize: config.batchSize,
      maxWait: config.maxWait,
      receiverQueueSize: config.receiverQueueSize,
      badMessages: config.badMessages,
      failedRecords: config.failedRecords,
      redeliveryDelay: config.redeliveryDelay,
      maxRedeliveries: config.maxRedeliveries,
      deadLetterTopic: config.deadLetterTopic,
      idleTimeout: config.idleTimeout,
      commitInterval: config.commitInterval,
      connectTimeout: config.connectTimeout,
    }),
});

/** Config of the `pulsar` sink. */
export const pulsarSinkConfig = z
  .object({
    url: urlSchema,
    token: tokenSchema,
    topic: z
      .string()
      .min(1)
      .describe(`Topic to publish to: ${topicDoc}. Created on first use when the broker allows it.`),
    format: formatSchema,
    key: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Record field whose value is the message key. Default: the key the record came with (`meta.key`). A record without the field goes to the `dlq` output.',
      ),
    properties: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Record field holding an object whose entries become message properties. Default: `meta.headers` (see `keepProperties`).',
      ),
    keepProperties: z
      .boolean()
      .default(true)
      .describe(
        'Without `properties`: pass the record’s `meta.headers` (a Pulsar or Kafka input’s) on as properties.',
      ),
    eventTime: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Record field holding the event time (epoch ms or ISO-8601). Default: the record’s `meta.timestamp`.',
      ),
    partitions: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Create the topic as a partitioned topic of this many partitions when it does not exist. Keyed messages go to a partition by key hash.',
      ),
    batching: z
      .boolean()
      .default(false)
      .describe(
        'Producer batching. Keep it off for topics read by `key_shared` subscriptions: a batch goes to one consumer whatever keys it holds. Throughput comes from `connections` instead.',
      ),
    batchingMaxMessages: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('With `batching`: most messages per batch.'),
    batchingMaxPublishDelay: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('With `batching`: longest a batch waits, in milliseconds.'),
    compression: z
      .enum(['none', 'lz4', 'zlib', 'zstd', 'snappy'])
      .default('none')
      .describe('Compression of messages (of batches, with `batching`) between the proxy and the broker.'),
    connections: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe(
        'Producer sockets to spread sends over; a keyed record always uses the same one, so per-key order holds.',
      ),
    maxPending: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe('Most messages awaiting the broker’s receipt per socket (sends are pipelined).'),
    connectTimeout: durationField()
      .optional()
      .describe(
        'Fail the run when the broker stays unreachable this long (`2m`). Default: wait, retrying with backoff.',
      ),
  })
  .strict();

/**
 * The `pulsar` sink spec.
 *
 * @example
 * registry.add(pulsarSinkSpec);
 */
export const pulsarSinkSpec = defineComponent({
  name: 'pulsar',
  kind: 'sink',
  stability: 'experimental',
  summary:
    'Publishes each record as a Pulsar message (key, properties, event time) through the broker’s WebSocket API, with pipelined sends over several sockets.',
  description:
    'A barrier and the end of input wait until the broker acknowledged every message sent before them, so upstream ' +
    'acknowledgements never run ahead of the output. Delivery is at-least-once: messages without a receipt when a ' +
    'socket closes are sent again on a new one. A record that cannot be encoded, or lacks its `key` field, goes to the ' +
    '`dlq` output; a message the broker refuses fails the run with the topic named.',
  config: pulsarSinkConfig,
  examples: [
    {
      title: 'JSON records keyed by `userId`, over four sockets',
      yaml: 'url: http://127.0.0.1:8080\ntopic: scored\nkey: userId\nconnections: 4\n',
    },
    {
      title: 'A partitioned topic, LZ4-compressed batches (not for key_shared readers)',
      yaml: 'url: http://127.0.0.1:8080\ntopic: metrics\npartitions: 4\nbatching: true\ncompression: lz4\n',
    },
  ],
  create: (config) =>
    pulsarSink({
      url: config.url,
      token: config.token,
      topic: config.topic,
      format: config.format,
      key: config.key,
      properties: config.properties,
      keepProperties: config.keepProperties,
      eventTime: config.eventTime,
      partitions: config.partitions,
      batching: config.batching,
      batchingMaxMessages: config.batchingMaxMessages,
      batchingMaxPublishDelay: config.batchingMaxPublishDelay,
      compression: config.compression,
      connections: config.connections,
      maxPending: config.maxPending,
      connectTimeout: config.connectTimeout,
    }),
});
