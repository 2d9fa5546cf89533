/**
 * `sluice/kafka`: the Kafka source and sink. A separate entry so that importing `sluice` never
 * loads the Kafka client (`@platformatic/kafka`); this entry loads it only when a source or sink
 * opens.
 *
 * The factories take the same config as the `kafka` input and output of a pipeline file (same
 * fields, same defaults, durations as strings such as `'100ms'`; see docs/components.md), so a
 * TypeScript pipeline and a YAML one read alike.
 *
 * @example
 * import { Pipeline } from 'sluice';
 * import { kafkaSink, kafkaSource } from 'sluice/kafka';
 * const p = new Pipeline('copy');
 * p.from(kafkaSource({ brokers: 'localhost:9092', topic: 'in', group: 'copy' }))
 *   .to(kafkaSink({ brokers: 'localhost:9092', topic: 'out' }));
 * await p.run().done;
 *
 * @module sluice/kafka
 */
import type { z } from 'zod';
import type { KafkaParallelOptions } from './connectors/kafka/parallel.ts';
import type { KafkaSink } from './connectors/kafka/sink.ts';
import type { KafkaSource } from './connectors/kafka/source.ts';
import {
  type kafkaSinkConfig,
  kafkaSinkSpec,
  type kafkaSourceConfig,
  kafkaSourceSpec,
} from './connectors/kafka/spec.ts';
import { type FactoryContext, specFactory } from './spec/factory.ts';

export type { KafkaParallelMode, KafkaRecordStep } from './connectors/kafka/parallel.ts';
export type { KafkaValueFormat } from './connectors/kafka/records.ts';
export type { KafkaCompression, KafkaSink } from './connectors/kafka/sink.ts';
export type { KafkaSource, KafkaStart } from './connectors/kafka/source.ts';
export type { FactoryContext } from './spec/factory.ts';

/**
 * Config of {@link kafkaSource}: the fields of the pipeline file's `kafka` input. With
 * `parallel`, `step` is the per-record function the source runs inside each partition (in YAML,
 * the pipeline's first `module:` step).
 */
export type KafkaSourceConfig = Omit<z.input<typeof kafkaSourceConfig>, 'parallel'> & {
  readonly parallel?: Partial<Omit<KafkaParallelOptions, 'step'>> & Pick<KafkaParallelOptions, 'step'>;
};

/** Config of {@link kafkaSink}: the fields of the pipeline file's `kafka` output. */
export type KafkaSinkConfig = z.input<typeof kafkaSinkConfig>;

const buildSource = specFactory(kafkaSourceSpec);
const buildSink = specFactory(kafkaSinkSpec);

/**
 * A Kafka consumer-group source (see the `kafka` input in docs/components.md). Throws a
 * `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * kafkaSource({ brokers: ['b1:9092', 'b2:9092'], topics: ['orders'], group: 'billing', start: 'earliest' });
 */
export function kafkaSource(config: KafkaSourceConfig, context: FactoryContext = {}): KafkaSource {
  const { parallel, ...rest } = config;
  if (parallel === undefined) return buildSource(rest, context) as KafkaSource;
  const { step, ...settings } = parallel;
  return buildSource({ ...rest, parallel: settings }, { ...context, firstStep: step }) as KafkaSource;
}

/**
 * A Kafka producer sink (see the `kafka` output in docs/components.md). Throws a `SLUICE_CONFIG`
 * error listing every problem of `config`.
 *
 * @example
 * kafkaSink({ brokers: 'localhost:9092', topic: 'out', key: 'user', compression: 'zstd' });
 */
export function kafkaSink(config: KafkaSinkConfig, context: FactoryContext = {}): KafkaSink {
  return buildSink(config, context) as KafkaSink;
}
