/**
 * Topic administration through the Kafka admin API, so that nothing outside Sluice is needed
 * to make a topic: the sink's `createTopic` (create at `open` when missing) and
 * `sluice kafka topics create | list | describe`.
 */
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { kafkaClient } from './client.ts';
import { brokerFailure, rootMessage } from './connection.ts';
import { clientOptions, type KafkaConnection, securityFailure } from './security.ts';

/** The sink's `createTopic:` block. */
export const topicSettingsSchema = z
  .object({
    partitions: z.number().int().min(1).max(100_000).default(1).describe('Number of partitions.'),
    replicationFactor: z
      .number()
      .int()
      .min(1)
      .max(32)
      .default(1)
      .describe('Copies of each partition (at most the number of brokers).'),
    config: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .describe('Topic configs, e.g. `{ cleanup.policy: compact, retention.ms: 604800000 }`.'),
  })
  .strict();

/** Settings of a topic to create. */
export type TopicSettings = z.output<typeof topicSettingsSchema>;

/** One partition as {@link describeTopic} reports it. */
export interface PartitionInfo {
  readonly partition: number;
  readonly leader: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

/** A topic as {@link describeTopic} reports it. */
export interface TopicInfo {
  readonly name: string;
  readonly partitions: readonly PartitionInfo[];
  /** Configs set on the topic itself (not broker defaults). */
  readonly config: Readonly<Record<string, string>>;
}

type Admin = InstanceType<Awaited<ReturnType<typeof kafkaClient>>['Admin']>;

/** Runs `fn` with an admin client of `connection`; a refused or failed connection is one clear error. */
async function withAdmin<T>(
  connection: KafkaConnection,
  what: string,
  fn: (admin: Admin) => Promise<T>,
): Promise<T> {
  const { Admin } = await kafkaClient();
  const admin = new Admin({ ...clientOptions(connection), connectTimeout: 5000, retries: 1 });
  try {
    return await fn(admin);
  } catch (err) {
    const known = securityFailure(err, connection);
    if (known !== undefined) throw known;
    const failure = brokerFailure(err, connection.brokers);
    if (failure !== err) throw failure;
    if (err instanceof SluiceError) throw err;
    throw new SluiceError(
      ErrorCode.STAGE,
      `${what}: ${rootMessage(err)}`,
      { brokers: connection.brokers.join(',') },
      {
        cause: err,
      },
    );
  } finally {
    await admin.close().catch(() => {});
  }
}

/**
 * Creates `topic` with `settings` unless it exists. Resolves true when it created it. Rejects
 * with a `SLUICE_CONFIG` error when the broker refuses the settings (e.g. a replication factor
 * larger than the number of brokers, an unknown config).
 */
export async function ensureTopic(
  connection: KafkaConnection,
  topic: string,
  settings: TopicSettings,
): Promise<boolean> {
  return withAdmin(connection, `creating the Kafka topic \`${topic}\``, async (admin) => {
    const existing = await admin.listTopics();
    if (existing.includes(topic)) return false;
    try {
      await admin.createTopics({
        topics: [topic],
        partitions: settings.partitions,
        replicas: settings.replicationFactor,
        configs: Object.entries(settings.config).map(([name, value]) => ({ name, value: String(value) })),
      });
    } catch (err) {
      const root = rootMessage(err);
      // Another process created it meanwhile: fine.
      if (/already exists/i.test(root)) return false;
      if (securityFailure(err, connection) !== undefined || brokerFailure(err, connection.brokers) !== err)
        throw err;
      throw new SluiceError(
        ErrorCode.CONFIG,
        `creating the Kafka topic \`${topic}\` (${settings.partitions} partitions, replication factor ${settings.replicationFactor}) was refused: ${describeError(err)}; fix \`createTopic\``,
        { topic },
        { cause: err },
      );
    }
    return true;
  });
}

/** The broker's own explanation of a refused request, when it sent one. */
function describeError(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e !== undefined && e !== null; depth++) {
    const r = (e as { response?: { topics?: { errorMessage?: string | null }[] } }).response;
    const m = r?.topics?.find((t) => t.errorMessage)?.errorMessage;
    if (m) return m;
    e = (e as { errors?: unknown[] }).errors?.[0] ?? (e as { cause?: unknown }).cause;
  }
  return rootMessage(err);
}

/** The topics of the cluster, sorted, without internal ones unless `internal`. */
export function listTopics(connection: KafkaConnection, internal = false): Promise<string[]> {
  return withAdmin(connection, 'listing Kafka topics', async (admin) =>
    (await admin.listTopics({ includeInternals: internal })).sort(),
  );
}

/** Partitions (leader, replicas, in-sync replicas) and topic-level configs of `topic`. */
export function describeTopic(connection: KafkaConnection, topic: string): Promise<TopicInfo> {
  return withAdmin(connection, `describing the Kafka topic \`${topic}\``, async (admin) => {
    if (!(await admin.listTopics({ includeInternals: true })).includes(topic)) {
      throw new SluiceError(ErrorCode.CONFIG, `the Kafka topic \`${topic}\` does not exist`, { topic });
    }
    const meta = await admin.metadata({ topics: [topic] });
    const t = meta.topics.get(topic);
    const partitions = (t?.partitions ?? []).map((p, partition) => ({
      partition,
      leader: p.leader,
      replicas: p.replicas,
      isr: p.isr,
    }));
    const [described] = await admin.describeConfigs({
      resources: [{ resourceType: 2, resourceName: topic }],
    });
    const config: Record<string, string> = {};
    // Source 1: set on the topic (DYNAMIC_TOPIC_CONFIG); the rest are broker defaults.
    for (const c of described?.configs ?? [])
      if (c.configSource === 1 && typeof c.value === 'string') config[c.name] = c.value;
    return { name: topic, partitions, config };
  });
}
