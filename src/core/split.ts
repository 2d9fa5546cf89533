/**
 * Split-parallel execution, the runtime's side: a source whose input can be cut into independent
 * byte ranges ({@link SplittableSource}, a plain file) feeding a step that can pre-aggregate
 * ranges on worker threads and merge them ({@link SplitOperator}, a window) is replaced, in a
 * copy of the graph made at `run()`, by one source that runs the split job and emits the step's
 * results. What the job does lives with the step (`time/split-window.ts`); this pass only finds
 * the pairs and tells a step asked to run in parallel why it cannot when it cannot.
 */
import { Graph, type GraphEdge, MAIN_PORT } from './graph.ts';
import type { FieldUse } from './projection.ts';
import type { Operator, Source } from './stage.ts';

/** What a split job reads: a plain file, its format and its decoder options (structured-cloneable). */
export interface SplitInput {
  readonly path: string;
  readonly format: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** The compression setting (`auto` or `none`: the job checks the file's magic number itself). */
  readonly compression: string;
  /** The fields the source was told to decode (see `projectSources`), if any, and how they are read. */
  readonly fields?: readonly string[] | undefined;
  readonly uses?: readonly (readonly [string, FieldUse])[] | undefined;
}

/** A source that can say what it reads, for a split job. */
export interface SplittableSource extends Source {
  /** Its input as a {@link SplitInput}, or why it cannot be split (a sentence). */
  splitInput(): SplitInput | string;
}

/** A step that can run split-parallel on its input. */
export interface SplitOperator extends Operator {
  /** Threads asked for (1: none). */
  readonly parallelism: number;
  /**
   * The source that replaces `source` and this step: it runs the split job over `input` (and
   * the two as they were when a split run cannot be exact), emitting what this step would.
   * A string says why this step cannot run split-parallel. Called at most once, before `open`.
   */
  splitSource(input: SplitInput, source: Source): Source | string;
  /** Told once, before `open`, why it runs on one thread although it asked for more. */
  notSplit(reason: string): void;
}

const isSplitOperator = (op: unknown): op is SplitOperator =>
  typeof (op as Partial<SplitOperator>).splitSource === 'function';

/** What {@link splitParallel} needs to know of the run. */
export interface SplitRunOptions {
  /** The run takes checkpoints: a split job has no position to resume from, so none is split. */
  readonly checkpointing?: boolean;
}

/**
 * Returns `graph` with each (splittable source → split operator asking for parallelism > 1)
 * pair joined by a lone plain edge replaced by the operator's split source, and the reasons
 * for the operators that asked and could not (also told to them via `notSplit`), by node id.
 * Call it after `projectSources`, so a split job decodes only what the step reads.
 */
export function splitParallel(
  graph: Graph,
  run: SplitRunOptions = {},
): { graph: Graph; reasons: Map<string, string> } {
  const reasons = new Map<string, string>();
  const replace = new Map<string, { source: string; stage: Source }>();
  for (const node of graph.nodes.values()) {
    const op = node.stage as Operator;
    if (node.kind !== 'operator' || !isSplitOperator(op) || op.parallelism <= 1) continue;
    const why = (reason: string) => {
      reasons.set(node.id, reason);
      op.notSplit(reason);
    };
    if (run.checkpointing === true) {
      why('the run takes checkpoints, and a split job has no position to resume from');
      continue;
    }
    const ins = graph.edges.filter((e) => e.to === node.id);
    const from = ins.length === 1 ? graph.nodes.get((ins[0] as GraphEdge).from) : undefined;
    if (from === undefined || from.kind !== 'source') {
      why('its input is not a source it reads alone (steps between them, or several inputs)');
      continue;
    }
    const outs = graph.edges.filter((e) => e.from === from.id);
    const edge = ins[0] as GraphEdge;
    if (outs.length !== 1 || edge.port !== MAIN_PORT || edge.buffer !== undefined) {
      why(`source \`${from.id}\` feeds other steps too`);
      continue;
    }
    const src = from.stage as Partial<SplittableSource>;
    const input = typeof src.splitInput === 'function' ? src.splitInput() : 'its source cannot be split';
    if (typeof input === 'string') {
      why(input);
      continue;
    }
    const made = op.splitSource(input, from.stage as Source);
    if (typeof made === 'string') {
      why(made);
      continue;
    }
    replace.set(node.id, { source: from.id, stage: made });
  }
  if (replace.size === 0) return { graph, reasons };
  const out = new Graph(graph.name);
  out.dlqNode = graph.dlqNode;
  const gone = new Set([...replace.values()].map((r) => r.source));
  for (const node of graph.nodes.values()) {
    if (gone.has(node.id)) continue;
    const r = replace.get(node.id);
    const component = `${(graph.nodes.get(r?.source ?? '') ?? node).component}+${node.component}`;
    out.nodes.set(
      node.id,
      r === undefined ? node : { id: node.id, kind: 'source', component, stage: r.stage },
    );
  }
  for (const e of graph.edges) if (!gone.has(e.from)) out.edges.push(e);
  return { graph: out, reasons };
}
