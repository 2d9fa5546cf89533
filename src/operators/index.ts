/**
 * The operators: per-record transforms, async enrichment, micro-batching, rate limiting,
 * routing and key-group sharding. Each is a factory returning an {@link Operator}; the same
 * steps are methods of `Stream` (`stream.map(…)`, `stream.batch(…)` …).
 */
export { type AsyncFn, type AsyncOptions, flatMapAsync, mapAsync } from './async.ts';
export { type BatchOptions, batch } from './batch.ts';
export { type DedupeOptions, dedupe } from './dedupe.ts';
export { dedupeSpec, keyedSpecs, sagaSpec, serialSpec } from './keyed-spec.ts';
export { type FileLookupOptions, fileLookup } from './lookup/file.ts';
export { type HttpLookupOptions, httpLookup } from './lookup/http.ts';
export {
  LOOKUP_METRICS,
  type LookupCacheOptions,
  type LookupMiss,
  type LookupOptions,
  lookup,
} from './lookup/operator.ts';
export type { LookupProvider, LookupRows } from './lookup/provider.ts';
export { filter, flatMap, map } from './map.ts';
export { type ParallelStepOptions, parallelStep } from './parallel-step.ts';
export { type RouteOptions, type RouteRule, route, routePorts } from './route.ts';
export {
  httpCall,
  type SagaOptions,
  type SagaOutcome,
  type SagaStep,
  type SagaStepContext,
  saga,
} from './saga.ts';
export { type SerialContext, type SerialFn, type SerialOptions, serial } from './serial.ts';
export { type KeySelector, keyBy, keyFunction, type ShardOptions, shard, shardPort } from './shard.ts';
export { batchSpec, operatorSpecs, throttleSpec } from './spec.ts';
export { type ThrottleOptions, throttle } from './throttle.ts';
