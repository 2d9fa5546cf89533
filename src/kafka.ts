/**
 * `sluice/kafka`: the Kafka source and sink. A separate entry so that importing `sluice` never
 * loads the Kafka client (`@platformatic/kafka`); this entry loads it only when a source or sink
 * opens.
 *
 * @example
 * import { Pipeline } from 'sluice';
 * import { kafkaSink, kafkaSource } from 'sluice/kafka';
 * const p = new Pipeline('copy');
 * const brokers = ['localhost:9092'];
 * p.from(
 *   kafkaSource({
 *     brokers, topics: ['in'], group: 'copy', start: 'earliest', format: 'json',
 *     batchSize: 1000, maxWait: 100, commitInterval: 5000, groupProtocol: 'classic',
 *   }),
 * ).to(
 *   kafkaSink({
 *     brokers, topic: 'out', format: 'json', compression: 'lz4', batchSize: 1000, linger: 10,
 *     idempotent: true, acks: 'all', keepHeaders: false,
 *   }),
 * );
 * await p.run().done;
 *
 * @module sluice/kafka
 */

export type {
  KafkaParallelMode,
  KafkaParallelOptions,
  KafkaRecordStep,
} from './connectors/kafka/parallel.ts';
export type { KafkaValueFormat } from './connectors/kafka/records.ts';
export {
  type KafkaCompression,
  type KafkaSink,
  type KafkaSinkOptions,
  kafkaSink,
} from './connectors/kafka/sink.ts';
export {
  type KafkaSource,
  type KafkaSourceOptions,
  type KafkaStart,
  kafkaSource,
} from './connectors/kafka/source.ts';
