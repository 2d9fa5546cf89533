/**
 * Sluice — stream processing for TypeScript. This module is the whole public API; anything
 * not exported here is internal and may change.
 *
 * @example
 * import { Pipeline, generateSource, fileSink } from 'sluice';
 * const p = new Pipeline('demo');
 * p.from(generateSource({ count: 1000 })).filter((e) => e.risk > 50).to(fileSink({ path: 'out.jsonl', format: 'jsonl' }));
 * await p.run().done;
 */

// Event time: windows, watermarks, aggregates.
export {
  type Aggregate,
  count,
  distinct,
  ema,
  hdrPercentile,
  max,
  mean,
  min,
  percentile,
  RollingWindow,
  rollingMean,
  sum,
} from './aggregate/index.ts';
// State and checkpoints.
export { type CheckpointSettings, openCheckpoints } from './checkpoint/setup.ts';
export { defaultRegistry } from './components.ts';
// Pipeline files and the component registry.
export { buildPipeline, lintPipelineFile } from './config/build.ts';
export { loadPipelineFile, type PipelineConfig } from './config/load.ts';
export { pipelineJsonSchema } from './config/schema.ts';
export { blackholeSink } from './connectors/blackhole/sink.ts';
// Connectors.
export { type FileSinkOptions, fileSink } from './connectors/file/sink.ts';
export { type FileSourceOptions, fileSource } from './connectors/file/source.ts';
export {
  type GeneratedEvent,
  type GenerateSourceOptions,
  generateSource,
} from './connectors/generate/source.ts';
export { type StdoutSinkOptions, stdoutSink } from './connectors/stdio/sink.ts';
export { type StdinSourceOptions, stdinSource } from './connectors/stdio/source.ts';
export type { OverflowPolicy } from './core/channel.ts';
export { type Clock, ManualClock, systemClock } from './core/clock.ts';
export { parseDuration } from './core/duration.ts';
export { ErrorCode, type ErrorContext, SluiceError } from './core/errors.ts';
export {
  type BufferOptions,
  DLQ_PORT,
  Graph,
  type GraphEdge,
  type GraphNode,
  MAIN_PORT,
  type NodeOptions,
} from './core/graph.ts';
export {
  DEFAULT_MAX_KEY_GROUPS,
  type Key,
  keyGroupOf,
  keyGroupRange,
  shardOfKeyGroup,
} from './core/keygroups.ts';
// Core: batches, signals, buffers, the graph, the run handle, errors, time.
export {
  type Barrier,
  type Batch,
  barrier,
  batchOf,
  isBatch,
  type Message,
  type Position,
  type RecordMeta,
  type Signal,
  type Watermark,
  watermark,
} from './core/message.ts';
export type { MetricsSnapshot, RunState, StageSnapshot } from './core/metrics.ts';
export { type RunHandle, type RunOptions, type RunSummary, runGraph } from './core/run.ts';
export type {
  DeadLetter,
  Emitter,
  Logger,
  Operator,
  PartitionResume,
  PartitionStateAccess,
  Sink,
  Source,
  SourceContext,
  StageContext,
} from './core/stage.ts';
// CEL expressions and hot-reloaded rules.
export { type CompiledExpression, compileExpression } from './expr/cel.ts';
export { CelFilter, CelMap, CelRoute } from './expr/cel-operators.ts';
export {
  type Codec,
  type CompressOptions,
  compress,
  type DecompressOptions,
  decompress,
} from './formats/compression/index.ts';
export {
  type CsvDecodeOptions,
  type CsvEncodeOptions,
  type CsvRow,
  createCsvDecoder,
  createCsvEncoder,
} from './formats/csv/index.ts';
// Formats and compression.
export type { DecodeSink, RecordDecoder, RecordEncoder } from './formats/format.ts';
export { jsonlDecoder, jsonlEncoder } from './formats/jsonl.ts';
export { linesDecoder, linesEncoder } from './formats/lines.ts';
// Operators (also available as `Stream` methods).
export {
  type AsyncOptions,
  type BatchOptions,
  batch,
  filter,
  flatMap,
  flatMapAsync,
  type KeySelector,
  keyBy,
  map,
  mapAsync,
  type RouteOptions,
  type RouteRule,
  route,
  type ShardOptions,
  shard,
  type ThrottleOptions,
  throttle,
} from './operators/index.ts';
export { partitionScoped } from './operators/partitioned.ts';
export {
  type FanOutBranch,
  type FanOutOptions,
  Pipeline,
  type StageOptions,
  Stream,
} from './pipeline.ts';
export {
  type BuildContext,
  type ComponentKind,
  type ComponentSpec,
  defineComponent,
  Registry,
} from './spec/registry.ts';
export {
  type LmdbBackendOptions,
  lmdbBackend,
  memoryBackend,
  type StateBackend,
} from './state/backend.ts';
export {
  type AggregatingState,
  KeyedStateStore,
  type ListState,
  type MapState,
  type StateTtl,
  type ValueState,
} from './state/keyed.ts';
export { openStateBackend, type StateStoreSpec } from './state/open.ts';
export { DEFAULT_STATE_TABLE, type PostgresBackendOptions, postgresBackend } from './state/postgres.ts';
export { type RedisBackendOptions, redisBackend } from './state/redis.ts';
export { type LateEvent, type WindowOptions, windowOperator } from './time/window.ts';
