/**
 * Sluice — stream processing for TypeScript. This module is the public API of `sluice`; anything
 * not exported here (or from the `sluice/kafka`, `sluice/postgres` and `sluice/redis` entries) is
 * internal and may change.
 *
 * What it holds, by the folder each export comes from (exports are sorted by path, which keeps
 * these groups together):
 * - `aggregate/`: aggregate functions for windows (`count`, `sum`, `percentile`, …);
 * - `cli/http.ts`, `metrics/`: metrics for Prometheus (`prometheusRegistry`, `watchRun`) and the
 *   HTTP server of `sluice run --http` with its dashboard (`serveRun`);
 * - `checkpoint/`, `state/`: checkpoints (`openCheckpoints`), keyed state and its embedded backends;
 * - `components.ts`, `config/`, `spec/`: pipeline files (load, lint, build, JSON Schema) and the
 *   component registry, for custom components (`defineComponent`, `Registry`);
 * - `connectors/`: the built-in connectors without a client library (`file`, `stdin`/`stdout`,
 *   `generate`, `blackhole`); Kafka, PostgreSQL and Redis are the subpath entries `sluice/kafka`,
 *   `sluice/postgres` and `sluice/redis`, so that importing `sluice` loads none of their clients;
 * - `core/`: what a custom source, operator or sink implements and receives (`Source`, `Operator`,
 *   `Sink`, `StageContext`, `Batch`, signals), the run handle, errors and clocks;
 * - `expr/`: CEL expressions; `formats/`: record codecs and compression;
 * - `operators/`, `pipeline.ts`, `time/`, `join/`: the operators, the `Pipeline`/`Stream` builder, windows and joins.
 *
 * @example
 * import { Pipeline, generateSource, fileSink } from 'sluice';
 * const p = new Pipeline('demo');
 * p.from(generateSource({ count: 1000 })).filter((e) => e.risk > 50).to(fileSink({ path: 'out.jsonl', format: 'jsonl' }));
 * await p.run().done;
 *
 * @module sluice
 */

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
export { type CheckpointSettings, openCheckpoints } from './checkpoint/setup.ts';
export { type ObservedRun, type RunServer, type ServeOptions, serveRun } from './cli/http.ts';
export { defaultRegistry } from './components.ts';
export { type BuiltPipeline, buildPipeline, lintPipelineFile } from './config/build.ts';
export { type LoadOptions, loadPipelineFile, type PipelineConfig } from './config/load.ts';
export { pipelineJsonSchema } from './config/schema.ts';
export { type BlackholeSink, blackholeSink } from './connectors/blackhole/sink.ts';
export { type FileSink, type FileSinkOptions, fileSink } from './connectors/file/sink.ts';
export { type FileSource, type FileSourceOptions, fileSource } from './connectors/file/source.ts';
export {
  type GeneratedEvent,
  type GenerateSource,
  type GenerateSourceOptions,
  generateSource,
} from './connectors/generate/source.ts';
export { type StdoutSink, type StdoutSinkOptions, stdoutSink } from './connectors/stdio/sink.ts';
export { type StdinSource, type StdinSourceOptions, stdinSource } from './connectors/stdio/source.ts';
export type { OverflowPolicy } from './core/channel.ts';
export { type Clock, ManualClock, systemClock } from './core/clock.ts';
export { Decimal, MAX_DECIMAL_SCALE, QUOTIENT_SCALE } from './core/decimal.ts';
export { parseDuration } from './core/duration.ts';
export { ErrorCode, type ErrorContext, SluiceError } from './core/errors.ts';
export type { BufferOptions } from './core/graph.ts';
export type { Key } from './core/keygroups.ts';
export {
  type Barrier,
  type Batch,
  type BatchOrigin,
  batchOf,
  type Position,
  type RecordMeta,
  type Signal,
  type Watermark,
  watermark,
} from './core/message.ts';
export {
  type ChannelSnapshot,
  type CheckpointSnapshot,
  type HistogramSnapshot,
  LATENCY_BUCKETS_MS,
  type MetricsSnapshot,
  type PartitionLag,
  type RunState,
  type SourceLag,
  type StageSnapshot,
} from './core/metrics.ts';
export {
  DEAD_LETTER_SAMPLE_SIZE,
  type RunHandle,
  type RunOptions,
  type RunSummary,
  type RunTopology,
} from './core/run.ts';
export type {
  CommittedPositions,
  DeadLetter,
  Emitter,
  Logger,
  Operator,
  Sink,
  Source,
  SourceContext,
  StageContext,
  StageMetricsHook,
} from './core/stage.ts';
export { type CompiledExpression, type CompileOptions, compileExpression } from './expr/cel.ts';
export {
  CelFilter,
  type CelFilterOptions,
  CelMap,
  type CelMapOptions,
  CelRoute,
  type CelRouteOptions,
} from './expr/cel-operators.ts';
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
  type CsvType,
  createCsvDecoder,
  createCsvEncoder,
} from './formats/csv/index.ts';
export type { DecodeSink, RecordDecoder, RecordEncoder } from './formats/format.ts';
export { type JsonlFormatOptions, jsonlDecoder, jsonlEncoder } from './formats/jsonl.ts';
export { type LinesFormatOptions, linesDecoder, linesEncoder } from './formats/lines.ts';
export {
  type BySide,
  type JoinDuration,
  type JoinOperator,
  type JoinOptions,
  type JoinSnapshot,
  type LateJoinRecord,
  streamJoin,
  tableJoin,
} from './join/join.ts';
export { METRICS, type MetricDef, type MetricType } from './metrics/catalog.ts';
export { type MetricsSource, type PrometheusExporter, prometheusRegistry } from './metrics/prometheus.ts';
export { type WatchedRun, type WatchOptions, watchRun } from './metrics/watch.ts';
export {
  type AsyncFn,
  type AsyncOptions,
  type BatchOptions,
  batch,
  type DedupeOptions,
  dedupe,
  type FileLookupOptions,
  fileLookup,
  filter,
  flatMap,
  flatMapAsync,
  type HttpLookupOptions,
  httpCall,
  httpLookup,
  type KeySelector,
  keyBy,
  LOOKUP_METRICS,
  type LookupCacheOptions,
  type LookupMiss,
  type LookupOptions,
  type LookupProvider,
  type LookupRows,
  lookup,
  map,
  mapAsync,
  type ParallelStepOptions,
  parallelStep,
  type RouteOptions,
  type RouteRule,
  route,
  type SagaOptions,
  type SagaOutcome,
  type SagaStep,
  type SagaStepContext,
  type SerialContext,
  type SerialFn,
  type SerialOptions,
  type ShardOptions,
  saga,
  serial,
  shard,
  type ThrottleOptions,
  throttle,
} from './operators/index.ts';
export {
  type FanOutBranch,
  type FanOutOptions,
  type Joined,
  type JoinedBy,
  type JoinStageOptions,
  Pipeline,
  type StageOptions,
  Stream,
} from './pipeline.ts';
export type { ConfigProblem } from './spec/problems.ts';
export {
  type BuildContext,
  type ComponentKind,
  type ComponentSpec,
  defineComponent,
  type NestedSteps,
  Registry,
  type Segments,
} from './spec/registry.ts';
export {
  type LmdbBackendOptions,
  lmdbBackend,
  memoryBackend,
  type StateBackend,
} from './state/backend.ts';
export {
  type AggregatingState,
  type Aggregator,
  KeyedStateStore,
  type KeyedStateStoreOptions,
  type ListState,
  type MapState,
  type StateOptions,
  type StateTtl,
  type ValueState,
} from './state/keyed.ts';
export { openStateBackend, type StateStoreSpec } from './state/open.ts';
export { type LateEvent, type WindowOptions, windowOperator } from './time/window.ts';
