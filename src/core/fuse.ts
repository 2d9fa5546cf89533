/**
 * Operator fusion (what Flink calls chaining): consecutive per-record `map` and `filter`
 * stages joined by a plain edge run as one stage, one loop over the batch instead of one loop,
 * one array and one channel hop per stage. Measured on `npm run bench -- core`'s small records:
 * map → filter fused ran ~20 % faster than as two stages.
 *
 * The rewrite works on a copy of the graph at `run()`; the user's graph is unchanged. A fused
 * stage is named after its parts (`map+filter`); a record that fails in it goes to the dead
 * letters with the name of the part that failed in its error context (`step`).
 */

import { ErrorCode, wrapError } from './errors.ts';
import { Graph, type GraphEdge, type GraphNode, MAIN_PORT } from './graph.ts';
import { keptBatch } from './kept-batch.ts';
import type { Operator, StageContext } from './stage.ts';

/** What a fusable operator exposes: its per-record function and whether it maps or filters. */
export interface RecordStep {
  readonly kind: 'map' | 'filter';
  /** `map`: returns the new record; `filter`: returns whether to keep the record. */
  readonly fn: (record: unknown, index: number) => unknown;
}

/** An operator that can be fused with its neighbours (see {@link fuseRecordSteps}). */
export interface FusableOperator extends Operator {
  readonly recordStep: RecordStep;
}

function stepOf(node: GraphNode): RecordStep | undefined {
  return node.kind === 'operator' ? (node.stage as Partial<FusableOperator>).recordStep : undefined;
}

/**
 * Returns a graph in which every chain of fusable operators joined by a lone, unbuffered main
 * edge (the only output of the first, the only input of the second) is one operator. Returns
 * `graph` itself when there is nothing to fuse.
 */
export function fuseRecordSteps(graph: Graph): Graph {
  const outs = new Map<string, GraphEdge[]>();
  const ins = new Map<string, GraphEdge[]>();
  for (const e of graph.edges) {
    outs.set(e.from, [...(outs.get(e.from) ?? []), e]);
    ins.set(e.to, [...(ins.get(e.to) ?? []), e]);
  }
  /** The node `id` fuses into, if its only output is a lone plain edge to a fusable node. */
  const successor = (id: string): string | undefined => {
    const o = outs.get(id);
    if (o === undefined || o.length !== 1) return undefined;
    const e = o[0] as GraphEdge;
    if (e.port !== MAIN_PORT || e.buffer !== undefined || (ins.get(e.to)?.length ?? 0) !== 1)
      return undefined;
    const next = graph.nodes.get(e.to);
    return next !== undefined && stepOf(next) !== undefined ? e.to : undefined;
  };
  const fusedInto = new Map<string, string>();
  const chains: string[][] = [];
  for (const node of graph.nodes.values()) {
    if (stepOf(node) === undefined || fusedInto.has(node.id)) continue;
    // Start only at the head of a chain: a node nothing fusable feeds into.
    const pred = ins.get(node.id);
    const from = pred?.length === 1 ? (pred[0] as GraphEdge).from : undefined;
    const fromNode = from === undefined ? undefined : graph.nodes.get(from);
    if (fromNode !== undefined && stepOf(fromNode) !== undefined && successor(fromNode.id) === node.id)
      continue;
    const chain = [node.id];
    for (let next = successor(node.id); next !== undefined; next = successor(next)) chain.push(next);
    if (chain.length < 2) continue;
    chains.push(chain);
    const id = chain.join('+');
    for (const part of chain) fusedInto.set(part, id);
  }
  if (chains.length === 0) return graph;

  const fused = new Graph(graph.name);
  fused.dlqNode = graph.dlqNode;
  const heads = new Map(chains.map((c) => [c[0] as string, c]));
  for (const node of graph.nodes.values()) {
    const chain = heads.get(node.id);
    if (chain !== undefined) {
      const nodes = chain.map((id) => graph.nodes.get(id) as GraphNode);
      const steps = nodes.map((n) => ({ ...(stepOf(n) as RecordStep), name: n.id }));
      fused.nodes.set(chain.join('+'), {
        id: chain.join('+'),
        kind: 'operator',
        component: nodes.map((n) => n.component).join('+'),
        stage: fusedOperator(steps),
      });
    } else if (!fusedInto.has(node.id)) {
      fused.nodes.set(node.id, node);
    }
  }
  for (const e of graph.edges) {
    const from = fusedInto.get(e.from) ?? e.from;
    const to = fusedInto.get(e.to) ?? e.to;
    if (from !== to) fused.edges.push({ ...e, from, to });
  }
  return fused;
}

/** One operator running `steps` in order over each record, in one loop. */
function fusedOperator(steps: readonly (RecordStep & { name: string })[]): Operator {
  let ctx: StageContext;
  const n = steps.length;
  const isMap = steps.map((s) => s.kind === 'map');
  const fns = steps.map((s) => s.fn);
  return {
    open(c) {
      ctx = c;
    },
    process(batch, out) {
      const records = batch.records;
      // Sized for the whole batch and cut to length after: no growing while pushing. The meta is
      // not read (see `kept-batch.ts`): `from` says which input record each output came from.
      const res: unknown[] = new Array(records.length);
      const from: number[] = new Array(records.length);
      let kept = 0;
      next: for (let i = 0; i < records.length; i++) {
        let v = records[i];
        for (let k = 0; k < n; k++) {
          try {
            if (isMap[k]) v = (fns[k] as RecordStep['fn'])(v, i);
            else if (!(fns[k] as RecordStep['fn'])(v, i)) continue next;
          } catch (err) {
            const step = (steps[k] as { name: string }).name;
            ctx.deadLetter(
              v,
              wrapError(`step \`${step}\``, err, { step }, ErrorCode.RECORD),
              batch.meta?.[i],
            );
            continue next;
          }
        }
        res[kept] = v;
        from[kept++] = i;
      }
      res.length = kept;
      from.length = kept;
      return out.emit(keptBatch(batch, res, from));
    },
  };
}
