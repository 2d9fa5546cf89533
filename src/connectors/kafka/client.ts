/**
 * The Kafka client library, loaded on first use. Importing `@platformatic/kafka` costs about
 * 60 MB of resident memory (measured: a process goes from 41 to 99 MB), which every `sluice`
 * command would otherwise pay just because the registry lists the Kafka connector.
 */
export type KafkaClient = typeof import('@platformatic/kafka');

let loading: Promise<KafkaClient> | undefined;

/** The client module; the first call imports it, later calls share that import. */
export function kafkaClient(): Promise<KafkaClient> {
  loading ??= import('@platformatic/kafka');
  return loading;
}
