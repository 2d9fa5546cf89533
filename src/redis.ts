/**
 * `sluice/redis`: the Redis Streams source and sink, and the Redis state backend. A separate
 * entry so that importing `sluice` never loads the client (`ioredis`); this entry loads it only
 * when a source, sink or backend connects.
 *
 * @example
 * import { Pipeline, stdoutSink } from 'sluice';
 * import { redisSource } from 'sluice/redis';
 * const p = new Pipeline('tail');
 * p.from(
 *   redisSource({
 *     url: 'redis://localhost:6379', streams: ['events'], group: 'tail', consumer: 'tail-1',
 *     start: '$', batchSize: 500, block: 1000, format: 'json', commitInterval: 1000,
 *   }),
 * ).to(stdoutSink({ format: 'jsonl' }));
 * await p.run().done;
 *
 * @module sluice/redis
 */

export type { RedisFormat } from './connectors/redis/entry.ts';
export { type RedisSink, type RedisSinkOptions, redisSink } from './connectors/redis/sink.ts';
export { type RedisSource, type RedisSourceOptions, redisSource } from './connectors/redis/source.ts';
export { type RedisBackendOptions, redisBackend } from './state/redis.ts';
