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

/**
 * How every reader of a field reads it, when that lets a decoder hand the value over ready:
 *
 * - `epochMillis`: as an event time in which an ISO-8601 string and the number of epoch
 *   milliseconds it denotes are the same value (a window's `time` field with `timeFormat: auto`).
 *   A decoder may then give the number instead of the string, and must give the string whenever
 *   it does not parse it (the reader then judges the string as before).
 */
export type FieldUse = 'epochMillis';

/** A source that can leave fields out of its records. */
export interface ProjectableSource extends Source {
  /**
   * Called at most once, before `open`, with the top-level field names its consumers read: the
   * records it emits may then hold only those (and must hold each of them when the input has it).
   * `uses` names fields that every consumer reads in one way (see {@link FieldUse}), which the
   * source may honour or ignore. Decoding errors are reported as before.
   */
  project(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>): void;
}

/** A step that reads only some top-level fields of its input records and never emits them. */
export interface FieldReader {
  /** The fields read, or undefined when the step may read any field or pass records on. */
  readonly readsFields: readonly string[] | undefined;
  /** Fields among {@link readsFields} that it reads only in one {@link FieldUse} way. */
  readonly fieldUses?: ReadonlyMap<string, FieldUse> | undefined;
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
    const readers: Partial<FieldReader>[] = [];
    let known = true;
    for (const e of edges) {
      const to = graph.nodes.get(e.to);
      const reader = to?.kind === 'operator' ? (to.stage as Partial<FieldReader>) : undefined;
      const reads = reader?.readsFields;
      if (reads === undefined) {
        known = false;
        break;
      }
      readers.push(reader as Partial<FieldReader>);
      for (const f of reads) fields.add(f);
    }
    if (!known) continue;
    const list = [...fields];
    (node.stage as ProjectableSource).project(list, commonUses(list, readers));
    made.set(node.id, list);
  }
  return made;
}

/** The uses of `fields` that every reader of each field agrees on (a field one reader reads plainly has none). */
function commonUses(
  fields: readonly string[],
  readers: readonly Partial<FieldReader>[],
): Map<string, FieldUse> {
  const uses = new Map<string, FieldUse>();
  for (const f of fields) {
    let use: FieldUse | undefined;
    let agreed = true;
    for (const r of readers) {
      if (!r.readsFields?.includes(f)) continue;
      const u = r.fieldUses?.get(f);
      if (u === undefined || (use !== undefined && u !== use)) {
        agreed = false;
        break;
      }
      use = u;
    }
    if (agreed && use !== undefined) uses.set(f, use);
  }
  return uses;
}
