/**
 * `sluice/redis`: the Redis Streams source and sink, and the Redis state backend. A separate
 * entry so that importing `sluice` never loads the client (`ioredis`); this entry loads it only
 * when a source, sink or backend connects.
 *
 * The factories take the same config as the `redis` input and output of a pipeline file (same
 * fields, same defaults, durations as strings such as `'1s'`; see docs/components.md).
 *
 * @example
 * import { Pipeline, stdoutSink } from 'sluice';
 * import { redisSource } from 'sluice/redis';
 * const p = new Pipeline('tail');
 * p.from(redisSource({ url: 'redis://localhost:6379', stream: 'events', group: 'tail' }))
 *   .to(stdoutSink({ format: 'jsonl' }));
 * await p.run().done;
 *
 * @module sluice/redis
 */
import type { z } from 'zod';
import type { RedisSink } from './connectors/redis/sink.ts';
import type { RedisSource } from './connectors/redis/source.ts';
import {
  type redisSinkConfig,
  redisSinkSpec,
  type redisSourceConfig,
  redisSourceSpec,
} from './connectors/redis/spec.ts';
import { type FactoryContext, specFactory } from './spec/factory.ts';

export type { RedisFormat } from './connectors/redis/entry.ts';
export {
  type RedisLookupCommand,
  type RedisLookupOptions,
  redisLookup,
} from './connectors/redis/lookup.ts';
export type { RedisSink } from './connectors/redis/sink.ts';
export type { RedisSource } from './connectors/redis/source.ts';
export type { FactoryContext } from './spec/factory.ts';
export { type RedisBackendOptions, redisBackend } from './state/redis.ts';

/** Config of {@link redisSource}: the fields of the pipeline file's `redis` input. */
export type RedisSourceConfig = z.input<typeof redisSourceConfig>;
/** Config of {@link redisSink}: the fields of the pipeline file's `redis` output. */
export type RedisSinkConfig = z.input<typeof redisSinkConfig>;

const buildSource = specFactory(redisSourceSpec);
const buildSink = specFactory(redisSinkSpec);

/**
 * A Redis Streams consumer-group source (see the `redis` input in docs/components.md). Throws a
 * `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * redisSource({ url: 'redis://localhost:6379', streams: ['a', 'b'], group: 'etl' });
 */
export function redisSource(config: RedisSourceConfig, context: FactoryContext = {}): RedisSource {
  return buildSource(config, context) as RedisSource;
}

/**
 * A Redis Streams sink (`XADD`; see the `redis` output in docs/components.md). Throws a
 * `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * redisSink({ url: 'redis://localhost:6379', stream: 'out', maxLen: 100000 });
 */
export function redisSink(config: RedisSinkConfig, context: FactoryContext = {}): RedisSink {
  return buildSink(config, context) as RedisSink;
}
