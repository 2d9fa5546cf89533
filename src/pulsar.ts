/**
 * `sluice/pulsar`: the Apache Pulsar source and sink. They speak the broker's WebSocket API
 * through Node's built-in `WebSocket`, so this entry needs no client library; it is a separate
 * entry like the other connectors' so that importing `sluice` loads none of it.
 *
 * The factories take the same config as the `pulsar` input and output of a pipeline file (same
 * fields, same defaults, durations as strings such as `'1s'`; see docs/components.md).
 *
 * @example
 * import { Pipeline, stdoutSink } from 'sluice';
 * import { pulsarSource } from 'sluice/pulsar';
 * const p = new Pipeline('tail');
 * p.from(pulsarSource({ url: 'http://localhost:8080', topic: 'events', subscription: 'tail', subscriptionType: 'key_shared' }))
 *   .to(stdoutSink({ format: 'jsonl' }));
 * await p.run().done;
 *
 * @module sluice/pulsar
 */
import type { z } from 'zod';
import type { PulsarSink } from './connectors/pulsar/sink.ts';
import type { PulsarSource } from './connectors/pulsar/source.ts';
import {
  type pulsarSinkConfig,
  pulsarSinkSpec,
  type pulsarSourceConfig,
  pulsarSourceSpec,
} from './connectors/pulsar/spec.ts';
import { type FactoryContext, specFactory } from './spec/factory.ts';

export type { PulsarFormat } from './connectors/pulsar/message.ts';
export type { PulsarSink } from './connectors/pulsar/sink.ts';
export type { PulsarSource, SubscriptionType } from './connectors/pulsar/source.ts';
export type { FactoryContext } from './spec/factory.ts';

/** Config of {@link pulsarSource}: the fields of the pipeline file's `pulsar` input. */
export type PulsarSourceConfig = z.input<typeof pulsarSourceConfig>;
/** Config of {@link pulsarSink}: the fields of the pipeline file's `pulsar` output. */
export type PulsarSinkConfig = z.input<typeof pulsarSinkConfig>;

const buildSource = specFactory(pulsarSourceSpec);
const buildSink = specFactory(pulsarSinkSpec);

/**
 * A Pulsar subscription source over the broker's WebSocket API (see the `pulsar` input in
 * docs/components.md). Throws a `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * pulsarSource({ url: 'http://localhost:8080', topic: 'jobs', subscription: 'workers', subscriptionType: 'shared' });
 */
export function pulsarSource(config: PulsarSourceConfig, context: FactoryContext = {}): PulsarSource {
  return buildSource(config, context) as PulsarSource;
}

/**
 * A Pulsar producer sink over the broker's WebSocket API (see the `pulsar` output in
 * docs/components.md). Throws a `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * pulsarSink({ url: 'http://localhost:8080', topic: 'out', key: 'user' });
 */
export function pulsarSink(config: PulsarSinkConfig, context: FactoryContext = {}): PulsarSink {
  return buildSink(config, context) as PulsarSink;
}
