/**
 * Projection: a source decodes only the fields its readers read. When every step a source feeds
 * says which top-level fields of a record it reads ({@link FieldReader}) and passes no input
 * record on, or passes some on unchanged (a filter) to steps that say so in turn, the source is
 * told that set ({@link ProjectableSource}); a CSV or JSON Lines decoder then skips the other
 * fields at byte level instead of making strings and objects nobody reads. A filter in front of
 * a window once cost the projection: on the 200 MB vs-go CSV run, all 12 columns were decoded
 * for a window reading 4 (~700 instead of ~400 MB allocated, and twice the scavenges).
 *
 * Results stay the same: only steps that read a fixed set of fields take part (a window with key
 * fields, a time field and field aggregates; not one with a key or time function, nor one with a
 * `late` output, which passes records on). Dead letters stay the same too: when the pipeline has
 * a dead-letter sink, only a source that can give back the whole record of a rejected one
 * ({@link ProjectableSource.wholeRecords}) is projected, and the runtime puts that whole record
 * in the letter (see `whole-letters.ts`). Runs on a copy-free pass over the graph at `run()`;
 * the graph is not changed.
 */
import type { Graph } from './graph.ts';
import type { Position } from './message.ts';
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
   *
   * `whole` is true when the pipeline has a dead-letter sink: the source must then be able to
   * answer {@link wholeRecords} for every record it emits, or emit whole records (ignore the
   * projection) when it finds at `open` that it cannot (a compressed file, a pipe).
   */
  project(fields: readonly string[], uses?: ReadonlyMap<string, FieldUse>, whole?: boolean): void;
  /**
   * Optional: the records at `rejected[i].position` as this source would have emitted them
   * without a projection, for dead letters of records a later stage rejected. Called by the
   * runtime after a stage's call that rejected some of this source's records, once for all of
   * them, before the letters go to the dlq; `rejected[i].record` is the (projected) record as
   * emitted. An entry is undefined when that record cannot be rebuilt (the input changed since):
   * its letter then keeps the record as emitted. Rejecting the promise fails the run.
   * Without this method, a source is not projected in a pipeline with a dead-letter sink.
   */
  wholeRecords?(rejected: readonly RejectedRecord[]): Promise<readonly unknown[]>;
}

/** A record a stage rejected, as {@link ProjectableSource.wholeRecords} receives it. */
export interface RejectedRecord {
  /** The record as the source emitted it (projected). */
  readonly record: unknown;
  /** Its position, as the source gave it in the record's meta. */
  readonly position: Position;
}

/**
 * A step that reads only some top-level fields of its input records and either never emits
 * them, or ({@link passesRecords}) emits some of them unchanged.
 */
export interface FieldReader {
  /** The fields read, or undefined when the step may read any field or pass records on. */
  readonly readsFields: readonly string[] | undefined;
  /** Fields among {@link readsFields} that it reads only in one {@link FieldUse} way. */
  readonly fieldUses?: ReadonlyMap<string, FieldUse> | undefined;
  /**
   * True when the records it emits, on every port, are input records as they came (a filter):
   * then the fields its consumers read are read too, and it takes part only when they all say
   * which. Absent or false: it emits none of its input records (a window's results).
   */
  readonly passesRecords?: boolean | undefined;
}

/**
 * Tells every {@link ProjectableSource} of `graph` whose consumers are all {@link FieldReader}s
 * with a known set the union of their fields; with a dead-letter sink, only sources that have
 * {@link ProjectableSource.wholeRecords}. Returns the projections made, by source id (for
 * `lint` and tests).
 */
export function projectSources(graph: Graph): Map<string, readonly string[]> {
  const made = new Map<string, readonly string[]>();
  const whole = graph.dlqNode !== undefined;
  for (const node of graph.nodes.values()) {
    const stage = node.stage as Partial<ProjectableSource>;
    if (node.kind !== 'source' || typeof stage.project !== 'function') continue;
    if (whole && typeof stage.wholeRecords !== 'function') continue;
    const readers = readersFrom(graph, node.id, new Set());
    if (readers === undefined || readers.length === 0) continue;
    const fields = new Set<string>();
    for (const r of readers) for (const f of r.readsFields as readonly string[]) fields.add(f);
    const list = [...fields];
    const uses = commonUses(list, readers);
    (node.stage as ProjectableSource).project(list, uses, whole);
    made.set(node.id, list);
  }
  return made;
}

/**
 * Every step that reads the records node `id` emits: its consumers, and through each that
 * {@link FieldReader.passesRecords passes records on}, that one's consumers. Undefined when one
 * of them may read any field (or is not a step: a sink writes whole records). `seen` guards a
 * cycle, which a pipeline graph does not have.
 */
function readersFrom(graph: Graph, id: string, seen: Set<string>): Partial<FieldReader>[] | undefined {
  const readers: Partial<FieldReader>[] = [];
  for (const e of graph.edges) {
    if (e.from !== id) continue;
    const to = graph.nodes.get(e.to);
    const reader = to?.kind === 'operator' ? (to.stage as Partial<FieldReader>) : undefined;
    if (to === undefined || reader?.readsFields === undefined || seen.has(to.id)) return undefined;
    readers.push(reader);
    if (reader.passesRecords !== true) continue;
    seen.add(to.id);
    const further = readersFrom(graph, to.id, seen);
    seen.delete(to.id);
    if (further === undefined || further.length === 0) return undefined;
    readers.push(...further);
  }
  return readers;
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
