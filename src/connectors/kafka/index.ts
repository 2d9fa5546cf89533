/**
 * `sluice/kafka`: the Kafka source and sink for TypeScript pipelines, a subpath of its own so
 * that only programs that read or write Kafka load `@platformatic/kafka`.
 *
 * @example
 * import { kafkaSink, kafkaSource } from 'sluice/kafka';
 * const source = kafkaSource({
 *   brokers: ['127.0.0.1:9092'], topics: ['events'], group: 'enrich', start: 'earliest', format: 'json',
 *   batchSize: 1024, maxWait: 50, commitInterval: 1000, groupProtocol: 'classic',
 *   parallel: { mode: 'key', concurrency: 32, step: async (r) => ({ ...(r as object), user: await lookup(r) }) },
 * });
 */
export type { KafkaParallelMode, KafkaParallelOptions, KafkaRecordStep } from './parallel.ts';
export type { KafkaValueFormat } from './records.ts';
export { type KafkaCompression, type KafkaSink, type KafkaSinkOptions, kafkaSink } from './sink.ts';
export { type KafkaSource, type KafkaSourceOptions, type KafkaStart, kafkaSource } from './source.ts';
export { kafkaSinkSpec, kafkaSourceSpec } from './spec.ts';
