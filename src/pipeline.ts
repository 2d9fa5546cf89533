/**
 * The typed builder: a {@link Pipeline} holds a {@link Graph}; a {@link Stream} is one output
 * port of one node in it. Each method adds a node and returns the stream of its output, so a
 * TypeScript pipeline reads like the YAML one.
 *
 * @example
 * const p = new Pipeline('demo');
 * p.from(source).via(operator).to(sink);
 * const summary = await p.run().done;
 */

import { fuseEncodedOutput } from './core/encoded.ts';
import { ErrorCode, SluiceError } from './core/errors.ts';
import { fuseRecordSteps } from './core/fuse.ts';
import { type BufferOptions, Graph, MAIN_PORT, type NodeOptions } from './core/graph.ts';
import { lazyModule } from './core/lazy-module.ts';
import { projectSources } from './core/projection.ts';
import { type RunHandle, type RunOptions, runGraph } from './core/run.ts';
import { splitParallel } from './core/split.ts';
import type { Operator, Sink, Source } from './core/stage.ts';
import type { JoinOptions, streamJoin, tableJoin } from './join/join.ts';
import type { AsyncFn, AsyncOptions, flatMapAsync, mapAsync } from './operators/async.ts';
import type { BatchOptions, batch } from './operators/batch.ts';
import { filter, flatMap, map } from './operators/map.ts';
import type { RouteOptions, RouteRule, route } from './operators/route.ts';
import type { ShardOptions, shard } from './operators/shard.ts';
import type { ThrottleOptions, throttle } from './operators/throttle.ts';
import { type WindowOptions, windowOperator } from './time/window.ts';

// The operators of the less common steps load on first use: a YAML run builds its graph through
// this module, and loading every operator (the join's dozen modules, shard, route…) would cost
// every run's start-up for steps most pipelines never name.
const joins = lazyModule<typeof import('./join/join.ts')>(import.meta.url, './join/join.ts');
const asyncOps = lazyModule<typeof import('./operators/async.ts')>(import.meta.url, './operators/async.ts');
const batching = lazyModule<typeof import('./operators/batch.ts')>(import.meta.url, './operators/batch.ts');
const routing = lazyModule<typeof import('./operators/route.ts')>(import.meta.url, './operators/route.ts');
const sharding = lazyModule<typeof import('./operators/shard.ts')>(import.meta.url, './operators/shard.ts');
const throttling = lazyModule<typeof import('./operators/throttle.ts')>(
  import.meta.url,
  './operators/throttle.ts',
);

/** One branch of {@link Stream.fanOut}: a function that builds it, or one with its own buffer. */
export type FanOutBranch<T> =
  | ((stream: Stream<T>) => unknown)
  | { readonly branch: (stream: Stream<T>) => unknown; readonly buffer?: BufferOptions };

/** Options of {@link Stream.fanOut}. */
export interface FanOutOptions extends NodeOptions {
  /** Buffer of every branch that does not set its own: size in messages and overflow policy. */
  buffer?: BufferOptions;
}

/**
 * A result record of {@link Stream.join} and {@link Stream.joinTable}: the left record under
 * `LN`, the right one under `RN` (null for an unmatched left record of a `type: 'left'` join).
 */
export type Joined<
  L,
  R,
  LN extends string = 'left',
  RN extends string = 'right',
  K extends 'inner' | 'left' = 'inner',
> = {
  readonly [k in LN]: L;
} & { readonly [k in RN]: K extends 'left' ? R | null : R };

/** Options of {@link Stream.join} and {@link Stream.joinTable}: the join's and the stage's. */
export type JoinStageOptions = JoinOptions & StageOptions;

/**
 * The result record of joining a stream of `L` with one of `R` under options `O`: the field names
 * of `O.as` (default `left`, `right`), and `R | null` when `O.type` is `'left'`.
 */
export type JoinedBy<L, R, O> = Joined<
  L,
  R,
  O extends { as: { left: infer N extends string } } ? N : 'left',
  O extends { as: { right: infer N extends string } } ? N : 'right',
  O extends { type: 'left' } ? 'left' : 'inner'
>;

/** Options for a stage added through a {@link Stream}. */
export interface StageOptions extends NodeOptions {
  /** Buffer of the edge into this stage (size in messages, overflow policy). */
  buffer?: BufferOptions;
}

/** A pipeline under construction; `run()` starts it. */
export class Pipeline {
  readonly graph: Graph;

  /** `name` names the run in metrics and logs (and later checkpoints and consumer groups). */
  constructor(name = 'pipeline') {
    this.graph = new Graph(name);
  }

  /** Adds a source and returns its stream of records. */
  from<T>(source: Source<T>, options: NodeOptions = {}): Stream<T> {
    const id = this.graph.addSource(source as Source, { component: 'source', ...options });
    return new Stream<T>(this, id, MAIN_PORT);
  }

  /** Sets the sink that takes dead letters from every stage. */
  dlq(sink: Sink, options: NodeOptions = {}): this {
    const id = this.graph.addSink(sink, { name: 'dlq', component: 'dlq', ...options });
    this.graph.dlqNode = id;
    return this;
  }

  /**
   * Why each step asking for `parallelism` above 1 would run on one thread, by stage name (empty
   * when every such step runs split-parallel); `checkpointing`: the run takes checkpoints. For
   * `sluice lint`; the graph is not changed.
   */
  parallelWarnings(checkpointing = false): Map<string, string> {
    return splitParallel(fuseRecordSteps(this.graph), { checkpointing }).reasons;
  }

  /**
   * Validates the graph and starts it; see {@link RunHandle}. Consecutive `map`/`filter` stages
   * run fused as one stage named after its parts (`map+filter`; see `fuseRecordSteps`); a source
   * that feeds one sink directly may write that sink's format itself (see `fuseEncodedOutput`); a window asking for
   * `parallelism` runs split-parallel where it can (see `splitParallel`).
   */
  run(options: RunOptions = {}): RunHandle {
    const fused = fuseRecordSteps(this.graph);
    projectSources(fused);
    // A source feeding one sink directly may hand it encoded bytes (see `core/encoded.ts`).
    fuseEncodedOutput(fused, options.checkpoint?.walAppend !== undefined);
    const { graph } = splitParallel(fused, { checkpointing: options.checkpoint !== undefined });
    return runGraph(graph, options);
  }
}

/** The records leaving one port of one stage. */
export class Stream<T> {
  readonly pipeline: Pipeline;
  /** Id of the node this stream leaves. */
  readonly node: string;
  /** Output port of that node. */
  readonly port: string;

  constructor(pipeline: Pipeline, node: string, port: string) {
    this.pipeline = pipeline;
    this.node = node;
    this.port = port;
  }

  /** Passes the stream through `operator` and returns its output. */
  via<O>(operator: Operator<T, O>, options: StageOptions = {}): Stream<O> {
    const g = this.pipeline.graph;
    const id = g.addOperator(operator as Operator, { component: 'operator', ...options });
    g.connect(this.node, id, this.port, options.buffer);
    return new Stream<O>(this.pipeline, id, MAIN_PORT);
  }

  /**
   * Writes the stream to `sink`. Calling `to` (or `via`) more than once on the same stream
   * fans out: every branch gets every batch through its own buffer.
   */
  to(sink: Sink<T>, options: StageOptions = {}): Pipeline {
    const g = this.pipeline.graph;
    const id = g.addSink(sink as Sink, { component: 'sink', ...options });
    g.connect(this.node, id, this.port, options.buffer);
    return this.pipeline;
  }

  /** The stream of a named side output of this stream's stage (e.g. `late`). */
  side<U = T>(port: string): Stream<U> {
    return new Stream<U>(this.pipeline, this.node, port);
  }

  /** Joins this stream and `others` into one stream (fan-in); watermarks merge by minimum. */
  merge(others: Stream<T>[], options: StageOptions = {}): Stream<T> {
    const g = this.pipeline.graph;
    const id = g.addOperator(passThrough as Operator, { component: 'merge', ...options });
    for (const s of [this, ...others]) {
      if (s.pipeline !== this.pipeline) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `cannot merge a stream of pipeline \`${s.pipeline.graph.name}\` into pipeline \`${this.pipeline.graph.name}\`; build every merged stream from the same Pipeline`,
          { stage: s.node },
        );
      }
      g.connect(s.node, id, s.port, options.buffer);
    }
    return new Stream<T>(this.pipeline, id, MAIN_PORT);
  }

  /**
   * Applies `fn` to every record; a throwing `fn` dead-letters its record. See {@link map}.
   *
   * @example
   * p.from(source).map((r) => ({ ...r, total: r.price * r.qty })).to(sink);
   */
  map<O>(fn: (record: T, index: number) => O, options: StageOptions = {}): Stream<O> {
    return this.via(map(fn), { component: 'map', ...options });
  }

  /**
   * Keeps the records for which `pred` is true; a throwing `pred` dead-letters. See {@link filter}.
   *
   * @example
   * p.from(source).filter((r) => r.risk > 50).to(sink);
   */
  filter(pred: (record: T, index: number) => boolean, options: StageOptions = {}): Stream<T> {
    return this.via(filter(pred), { component: 'filter', ...options });
  }

  /**
   * Maps every record to zero or more records. See {@link flatMap}.
   *
   * @example
   * p.from(lines).flatMap((line) => line.split(' ')).to(sink);
   */
  flatMap<O>(fn: (record: T, index: number) => Iterable<O>, options: StageOptions = {}): Stream<O> {
    return this.via(flatMap(fn), { component: 'flatMap', ...options });
  }

  /**
   * Applies an async `fn` with at most `concurrency` calls in flight, in input order unless
   * `ordered: false`. See {@link mapAsync}.
   *
   * @example
   * p.from(source).mapAsync(async (r, signal) => enrich(r, signal), { concurrency: 16 }).to(sink);
   */
  mapAsync<O>(fn: AsyncFn<T, O>, options: AsyncOptions & StageOptions = {}): Stream<O> {
    const { concurrency, ordered, key, ...stage } = options;
    return this.via(asyncOps().mapAsync(fn, { concurrency, ordered, key }), {
      component: 'mapAsync',
      ...stage,
    });
  }

  /**
   * Like {@link Stream.mapAsync}, with `fn` resolving to any number of records. See {@link flatMapAsync}.
   *
   * @example
   * p.from(orders).flatMapAsync(async (o) => fetchLines(o.id), { concurrency: 4 }).to(sink);
   */
  flatMapAsync<O>(fn: AsyncFn<T, Iterable<O>>, options: AsyncOptions & StageOptions = {}): Stream<O> {
    const { concurrency, ordered, key, ...stage } = options;
    return this.via(asyncOps().flatMapAsync(fn, { concurrency, ordered, key }), {
      component: 'flatMapAsync',
      ...stage,
    });
  }

  /**
   * Re-chunks the stream into batches of `size`, flushing a partial one after `maxWait`. See {@link batch}.
   *
   * @example
   * p.from(source).batch({ size: 500, maxWait: '100ms' }).to(dbSink);
   */
  batch(options: BatchOptions & StageOptions): Stream<T> {
    const { size, maxWait, ...stage } = options;
    return this.via(batching().batch<T>({ size, maxWait }), { component: 'batch', ...stage });
  }

  /**
   * Lets at most `rate` records per second through (token bucket or strict pacing). See {@link throttle}.
   *
   * @example
   * p.from(source).throttle({ rate: 100, burst: 10 }).to(apiSink);
   */
  throttle(options: ThrottleOptions & StageOptions): Stream<T> {
    const { rate, burst, mode, ...stage } = options;
    return this.via(throttling().throttle<T>({ rate, burst, mode }), { component: 'throttle', ...stage });
  }

  /**
   * Groups records by key into tumbling, sliding or session windows and emits one aggregate
   * record per key and window (key fields, `windowStart`, `windowEnd`, aggregates, `revision`,
   * `update`). Events later than `allowedLateness` go to the side output named by `late`
   * (`.side('late')` of the returned stream). See {@link windowOperator}.
   *
   * @example
   * const agg = p.from(source).window({
   *   key: 'country', time: 'ts', tumbling: '1m', watermark: { maxOutOfOrder: '5s' },
   *   aggregate: { count: 'count()', amount: 'sum(amount)' }, late: 'late',
   * });
   * agg.to(sink);
   * agg.side('late').to(lateSink);
   */
  window(options: WindowOptions<T> & StageOptions): Stream<Record<string, unknown>> {
    const { name, component, buffer, ...window } = options;
    const stage: StageOptions = {
      ...(name === undefined ? {} : { name }),
      ...(buffer === undefined ? {} : { buffer }),
    };
    return this.via(windowOperator<T>(window), { component: component ?? 'window', ...stage });
  }

  /**
   * Joins this stream (left) with `other` (right) on a key in event time: an interval join
   * (`between: [lower, upper]` bounds `right.time − left.time`) or a window join (`tumbling`).
   * Watermarks of the two sides merge by minimum; state is dropped once the watermark passes a
   * record's range; records older than the watermark go to the side output named by `late`
   * (`.side('late')`). Results are {@link Joined} records. See {@link streamJoin}.
   *
   * @example
   * const orders = p.from(orderSource);
   * const payments = p.from(paymentSource);
   * orders
   *   .join(payments, { key: 'orderId', time: 'ts', between: ['-5m', '1m'], watermark: { maxOutOfOrder: '10s' } })
   *   .map(({ left, right }) => ({ ...left, paidAt: right.ts }))
   *   .to(sink);
   */
  join<R, const O extends JoinStageOptions>(other: Stream<R>, options: O): Stream<JoinedBy<T, R, O>> {
    return this.joinWith(other, (join) => joins().streamJoin(join), options);
  }

  /**
   * Joins this stream (left) with the table `table` is the changelog of (right: last value per
   * key, a null value deletes), in event time: each record gets the row its key had at the
   * record's time (Flink's event-time temporal join). A record waits until the watermark reaches
   * its time. See {@link tableJoin}.
   *
   * @example
   * const customers = p.from(customerChangelog); // e.g. a compacted Kafka topic
   * p.from(orderSource)
   *   .joinTable(customers, { key: { left: 'customerId', right: '$key' }, time: { left: 'ts' }, type: 'left' })
   *   .to(sink);
   */
  joinTable<R, const O extends JoinStageOptions>(table: Stream<R>, options: O): Stream<JoinedBy<T, R, O>> {
    return this.joinWith(table, (join) => joins().tableJoin(join), options);
  }

  private joinWith<O>(
    other: Stream<unknown>,
    make: (options: JoinOptions) => Operator,
    options: JoinOptions & StageOptions,
  ): Stream<O> {
    const { name, component, buffer, ...join } = options;
    if (other.pipeline !== this.pipeline) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `cannot join a stream of pipeline \`${other.pipeline.graph.name}\` into pipeline \`${this.pipeline.graph.name}\`; build both streams from the same Pipeline`,
        { stage: other.node },
      );
    }
    const g = this.pipeline.graph;
    const id = g.addOperator(make(join), {
      component: component ?? 'join',
      ...(name === undefined ? {} : { name }),
    });
    g.connect(this.node, id, this.port, buffer, 'left');
    g.connect(other.node, id, other.port, buffer, 'right');
    return new Stream<O>(this.pipeline, id, MAIN_PORT);
  }

  /**
   * Splits the stream by predicates: each record goes to the stream of the first matching
   * rule's port, else to the `default` port, else to the dead-letter output. Returns one
   * stream per port; every one must be consumed. See {@link route}.
   *
   * @example
   * const { big, small } = p.from(source).route([{ when: (r) => r.amount > 1000, port: 'big' }], { default: 'small' });
   * big.to(alertSink);
   * small.to(archiveSink);
   */
  route<const P extends string, const D extends string = never>(
    rules: readonly (RouteRule<T> & { readonly port: P })[],
    options: RouteOptions & { readonly default?: D } & StageOptions = {},
  ): Record<P | D, Stream<T>> {
    const { default: def, ...stage } = options;
    const routeOptions: RouteOptions = def === undefined ? {} : { default: def };
    const node = this.via(routing().route(rules, routeOptions), { component: 'route', ...stage });
    const streams = {} as Record<string, Stream<T>>;
    for (const port of routing().routePorts(rules as readonly RouteRule<unknown>[], routeOptions))
      streams[port] = node.side<T>(port);
    return streams as Record<P | D, Stream<T>>;
  }

  /**
   * Runs `shards` copies of a segment side by side, each record going to the copy that owns its
   * key's key group, and merges their outputs into one stream. Records with the same key stay
   * in order (they always take the same copy); changing `shards` moves whole key groups. See
   * {@link shard}.
   *
   * @example
   * p.from(source)
   *   .shard({ key: 'userId', shards: 4 }, (s) => s.mapAsync(enrich, { concurrency: 8 }))
   *   .to(sink);
   */
  shard<O>(
    options: ShardOptions<T> & StageOptions,
    build: (stream: Stream<T>, shard: number) => Stream<O>,
  ): Stream<O> {
    const { key, shards, maxKeyGroups, ...stage } = options;
    const node = this.via(sharding().shard<T>({ key, shards, maxKeyGroups }), {
      component: 'shard',
      ...stage,
    });
    const outs: Stream<O>[] = [];
    for (let i = 0; i < shards; i++) {
      const o = build(node.side<T>(sharding().shardPort(i)), i);
      if (!(o instanceof Stream) || o.pipeline !== this.pipeline) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `the segment built for shard ${i} must return a stream of the same pipeline`,
        );
      }
      outs.push(o);
    }
    const [first, ...rest] = outs as [Stream<O>, ...Stream<O>[]];
    return first.merge(rest, { component: 'merge' });
  }

  /**
   * Sends every batch to every branch, each through its own buffer (size and overflow policy
   * `block`, `dropOldest` or `error`), so a slow branch with `dropOldest` loses its oldest
   * batches instead of slowing the others, and one with `error` fails the run when full.
   * Each branch starts at its own pass-through stage that owns the buffer.
   *
   * @example
   * p.from(source).fanOut(
   *   [(s) => s.to(mainSink), { branch: (s) => s.to(debugSink), buffer: { size: 4, overflow: 'dropOldest' } }],
   * );
   */
  fanOut(branches: readonly FanOutBranch<T>[], options: FanOutOptions = {}): Pipeline {
    if (branches.length === 0) throw new SluiceError(ErrorCode.CONFIG, 'fanOut needs at least one branch');
    const { buffer, ...node } = options;
    branches.forEach((b, i) => {
      const fn = typeof b === 'function' ? b : b.branch;
      const buf = typeof b === 'function' ? buffer : (b.buffer ?? buffer);
      const name = node.name === undefined ? undefined : `${node.name}.${i}`;
      const tee = this.via<T>(passThrough as Operator<T, T>, {
        component: 'fanOut',
        ...(name === undefined ? {} : { name }),
        ...(buf === undefined ? {} : { buffer: buf }),
      });
      fn(tee);
    });
    return this.pipeline;
  }
}

/** Forwards batches unchanged; the runtime merges its inputs' watermarks and barriers. */
const passThrough: Operator = {
  process: (batch, out) => out.emit(batch),
};
