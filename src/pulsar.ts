/**
 * `sluice/pulsar`: the Apache Pulsar source and sink. They speak the broker's WebSocket API
 * through Node's built-in `WebSocket`, so this entry needs no client library; it is a separate
 * entry like the other connectors' so that importing `sluice` loads none of it.
 *
 * @example
 * import { Pipeline, stdoutSink } from 'sluice';
 * import { pulsarSource } from 'sluice/pulsar';
 * const p = new Pipeline('tail');
 * p.from(
 *   pulsarSource({
 *     url: 'http://localhost:8080', topics: ['events'], subscription: 'tail', subscriptionType: 'key_shared',
 *     start: 'earliest', format: 'json', batchSize: 500, maxWait: 20, receiverQueueSize: 1000,
 *     badMessages: 'dlq', redeliveryDelay: 1000, commitInterval: 1000,
 *   }),
 * ).to(stdoutSink({ format: 'jsonl' }));
 * await p.run().done;
 *
 * @module sluice/pulsar
 */

export type { PulsarFormat } from './connectors/pulsar/message.ts';
export { type PulsarSink, type PulsarSinkOptions, pulsarSink } from './connectors/pulsar/sink.ts';
export {
  type PulsarSource,
  type PulsarSourceOptions,
  pulsarSource,
  type SubscriptionType,
} from './connectors/pulsar/source.ts';
