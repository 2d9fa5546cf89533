/**
 * Projection: a source decodes only the fields its readers read. When every step a source feeds
 * says which top-level fields of a record it reads ({@link FieldReader}) and passes no input
 * record on, the source is told that set ({@link ProjectableSource}); a CSV or JSON Lines decoder
 * then skips the other fields at byte level instead of making strings and objects nobody reads.
 *
 * Results stay the same: only steps that read a fixed set of fields take part (a window with key
 * fields, a time field and field aggregates; not one with a key or time function, nor one with a
 * `late` output, which passes records on), and nothing is projected when the pipeline has a
 * dead-letter sink, which writes whole records. Runs on a copy-free pass over the graph at
 * `run()`; the graph is not changed.
 */
import type { Graph } from './graph.ts';
import type { Source } from './stage.ts';

/** A source that can leave fields out of its records. */
export interface ProjectableSource extends Source {
  /**
   * Called at most once, before `open`, with the top-level field names its consumers read: the
   * records it emits may then hold only those (and must hold each of them when the input has it).
   * Decoding errors are reported as before.
   */
  project(fields: readonly string[]): void;
}

/** A step that reads only some top-level fields of its input records and never emits them. */
export interface FieldReader {
  /** The fields read, or undefined when the step may read any field or pass records on. */
  readonly readsFields: readonly string[] | undefined;
}

/**
 * Tells every {@link ProjectableSource} of `graph` whose consumers are all {@link FieldReader}s
 * with a known set the union of their fields. Returns the projections made, by source id (for
 * `lint` and tests).
 */
export function projectSources(graph: Graph): Map<string, readonly string[]> {
  const made = new Map<string, readonly string[]>();
  if (graph.dlqNode !== undefined) return made;
  for (const node of graph.nodes.values()) {
    if (node.kind !== 'source' || typeof (node.stage as Partial<ProjectableSource>).project !== 'function')
      continue;
    const edges = graph.edges.filter((e) => e.from === node.id);
    if (edges.length === 0) continue;
    const fields = new Set<string>();
    let known = true;
    for (const e of edges) {
      const to = graph.nodes.get(e.to);
      const reads = to?.kind === 'operator' ? (to.stage as Partial<FieldReader>).readsFields : undefined;
      if (reads === undefined) {
        known = false;
        break;
      }
      for (const f of reads) fields.add(f);
    }
    if (!known) continue;
    const list = [...fields];
    (node.stage as ProjectableSource).project(list);
    made.set(node.id, list);
  }
  return made;
}
