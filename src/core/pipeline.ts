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
import { type BufferOptions, Graph, MAIN_PORT, type NodeOptions } from './graph.ts';
import { type RunHandle, type RunOptions, runGraph } from './run.ts';
import type { Operator, Sink, Source } from './stage.ts';

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

  /** Validates the graph and starts it; see {@link RunHandle}. */
  run(options: RunOptions = {}): RunHandle {
    return runGraph(this.graph, options);
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
      if (s.pipeline !== this.pipeline) throw new Error('cannot merge streams of different pipelines');
      g.connect(s.node, id, s.port, options.buffer);
    }
    return new Stream<T>(this.pipeline, id, MAIN_PORT);
  }
}

/** Forwards batches unchanged; the runtime merges its inputs' watermarks and barriers. */
const passThrough: Operator = {
  process: (batch, out) => out.emit(batch),
};
