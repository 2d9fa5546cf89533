/**
 * The pipeline graph as data: nodes (sources, operators, sinks) joined by edges from a named
 * output port of one node to another node. Each edge becomes one bounded channel when the
 * graph runs, so fan-out (one port, several edges) gives each branch its own buffer, and
 * fan-in (several edges into one node) keeps the inputs apart for watermarks and barriers.
 */
import type { OverflowPolicy } from './channel.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import type { Operator, Sink, Source } from './stage.ts';

/** Buffer of one edge: how many messages it queues and what happens when it is full. */
export interface BufferOptions {
  /** Messages (batches or signals) the edge queues; default: the run's `channelCapacity`. */
  size?: number;
  /** `block` (default, backpressure), `dropOldest`, or `error`. */
  overflow?: OverflowPolicy;
}

/** A node of the graph. */
export type GraphNode =
  | { readonly id: string; readonly kind: 'source'; readonly component: string; readonly stage: Source }
  | { readonly id: string; readonly kind: 'operator'; readonly component: string; readonly stage: Operator }
  | { readonly id: string; readonly kind: 'sink'; readonly component: string; readonly stage: Sink };

/** An edge: messages emitted by `from` on `port` go to `to`. */
export interface GraphEdge {
  readonly from: string;
  readonly port: string;
  readonly to: string;
  readonly buffer?: BufferOptions | undefined;
  /**
   * The name of the input this edge feeds at `to`, for a stage that tells its inputs apart (a
   * join's `left` and `right`): the runtime passes it with every batch (`Operator.process`) and
   * says when that input ended (`Operator.endInput`). Undefined: an unnamed input.
   */
  readonly input?: string | undefined;
}

/** The port every stage emits to by default. */
export const MAIN_PORT = 'out';
/** The port dead letters go out on; the runtime connects it to the `dlq` sink. */
export const DLQ_PORT = 'dlq';

/** Options when adding a node. */
export interface NodeOptions {
  /** Unique stage name; default `<component>` or `<component>#<n>`. */
  name?: string;
  /** Component name for docs and metrics (e.g. `file`, `map`). */
  component?: string;
}

/** A mutable pipeline graph. Build it with {@link Pipeline} and {@link Stream}, or directly. */
export class Graph {
  readonly nodes = new Map<string, GraphNode>();
  readonly edges: GraphEdge[] = [];
  /** Id of the sink that takes dead letters, if any. */
  dlqNode: string | undefined;

  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  /** Adds a source node and returns its id. */
  addSource(stage: Source, options: NodeOptions = {}): string {
    return this.add('source', stage, options);
  }

  /** Adds an operator node and returns its id. */
  addOperator(stage: Operator, options: NodeOptions = {}): string {
    return this.add('operator', stage, options);
  }

  /** Adds a sink node and returns its id. */
  addSink(stage: Sink, options: NodeOptions = {}): string {
    return this.add('sink', stage, options);
  }

  /**
   * Connects `port` of node `from` to node `to`; `input` names the input it feeds at `to` (see
   * {@link GraphEdge.input}).
   */
  connect(from: string, to: string, port: string = MAIN_PORT, buffer?: BufferOptions, input?: string): void {
    const a = this.nodes.get(from);
    const b = this.nodes.get(to);
    if (!a || !b)
      throw new SluiceError(ErrorCode.CONFIG, `cannot connect unknown stage \`${a ? to : from}\``);
    if (a.kind === 'sink')
      throw new SluiceError(ErrorCode.CONFIG, `stage \`${from}\` is a sink and has no outputs`);
    if (b.kind === 'source')
      throw new SluiceError(ErrorCode.CONFIG, `stage \`${to}\` is a source and takes no input`);
    this.edges.push(input === undefined ? { from, port, to, buffer } : { from, port, to, buffer, input });
  }

  /** Checks the graph can run: every non-source has an input, every operator's main port a consumer, no cycles. */
  validate(): void {
    const problems: string[] = [];
    const hasInput = new Set(this.edges.map((e) => e.to));
    // Any connected output counts: `route` and `shard` emit only on named ports. An emit on a
    // port left unconnected fails at run time with a message naming the port.
    const hasMainOut = new Set(this.edges.filter((e) => e.port !== DLQ_PORT).map((e) => e.from));
    let sources = 0;
    for (const node of this.nodes.values()) {
      if (node.kind === 'source') sources++;
      else if (!hasInput.has(node.id) && node.id !== this.dlqNode)
        problems.push(`stage \`${node.id}\` has no input`);
      if (node.kind !== 'sink' && !hasMainOut.has(node.id)) {
        problems.push(
          `the output of stage \`${node.id}\` goes nowhere; end the pipeline with a sink (\`.to(…)\` or \`output:\`)`,
        );
      }
    }
    if (sources === 0) problems.push('the pipeline has no source; add an `input:` (or `.from(…)`)');
    if (this.topologicalOrder().length !== this.nodes.size) problems.push('the pipeline graph has a cycle');
    if (problems.length > 0) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `pipeline \`${this.name}\` is not runnable:\n  - ${problems.join('\n  - ')}`,
      );
    }
  }

  /** Node ids with every node after all nodes that feed it (sources first). */
  topologicalOrder(): string[] {
    const indegree = new Map<string, number>();
    for (const id of this.nodes.keys()) indegree.set(id, 0);
    for (const e of this.edges) indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
    const ready = [...indegree].filter(([, d]) => d === 0).map(([id]) => id);
    const order: string[] = [];
    while (ready.length > 0) {
      const id = ready.shift() as string;
      order.push(id);
      for (const e of this.edges) {
        if (e.from !== id) continue;
        const d = (indegree.get(e.to) ?? 0) - 1;
        indegree.set(e.to, d);
        if (d === 0) ready.push(e.to);
      }
    }
    return order;
  }

  private add(kind: GraphNode['kind'], stage: Source | Operator | Sink, options: NodeOptions): string {
    const component = options.component ?? kind;
    let id = options.name ?? component;
    if (this.nodes.has(id)) {
      if (options.name !== undefined)
        throw new SluiceError(ErrorCode.CONFIG, `two stages are named \`${id}\`; stage names must be unique`);
      let n = 2;
      while (this.nodes.has(`${component}#${n}`)) n++;
      id = `${component}#${n}`;
    }
    this.nodes.set(id, { id, kind, component, stage } as GraphNode);
    return id;
  }
}
