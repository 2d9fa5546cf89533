/**
 * Source–sink fusion: when a source feeds one sink directly, with no stage between, and the
 * source can write records in the sink's output format itself (a CSV file source turning rows
 * into JSON Lines bytes without making record objects), the source emits batches of those bytes
 * ({@link Batch.encoded}) and the sink writes them as they are. Decided once, at `run()`, from the
 * graph and each side's options; what the user gets is the same bytes, dead letters, positions and
 * counts as without it (each side's tests hold it to that).
 *
 * Only a source whose main output goes to exactly one stage, a sink that said it takes that
 * format, is fused: no operator can then see (or change) a record, so pre-encoded bytes cannot go
 * stale. Not under a write-ahead log either, which logs the batches' records.
 */
import { ErrorCode, SluiceError } from './errors.ts';
import type { Graph } from './graph.ts';
import { MAIN_PORT } from './graph.ts';
import type { Batch, EncodedFormat } from './message.ts';
import type { Sink, Source } from './stage.ts';

/** A source that can emit its records pre-encoded (see {@link Batch.encoded}). */
export interface EncodingSource extends Source {
  /**
   * Called at most once, before `open`, when the source's only consumer is a sink that writes
   * `format`. Returns true when the source will from now on emit every batch with `encoded` bytes
   * in that format (and `records` of empty slots), giving exactly what that sink would write for
   * the records it would otherwise emit; false (nothing changes) when its options do not allow it.
   */
  encodeFor(format: EncodedFormat): boolean;
}

/** A sink that writes {@link Batch.encoded} bytes of its format as they are. */
export interface EncodedSink extends Sink {
  /** The format whose pre-encoded batches this sink writes verbatim; undefined: none. */
  readonly writesEncoded: EncodedFormat | undefined;
}

/**
 * Fuses every source of `graph` whose main output is one edge into a sink taking a format the
 * source can write (see the module comment). Returns the format chosen, by source id (for tests
 * and `lint`). With `walLogged` (a write-ahead log records batches), nothing is fused.
 */
export function fuseEncodedOutput(graph: Graph, walLogged = false): Map<string, EncodedFormat> {
  const made = new Map<string, EncodedFormat>();
  if (walLogged) return made;
  for (const node of graph.nodes.values()) {
    const source = node.stage as Partial<EncodingSource>;
    if (node.kind !== 'source' || typeof source.encodeFor !== 'function') continue;
    const edges = graph.edges.filter((e) => e.from === node.id);
    if (edges.length !== 1 || edges[0]?.port !== MAIN_PORT) continue;
    const to = graph.nodes.get(edges[0].to);
    if (to?.kind !== 'sink' || to.id === graph.dlqNode) continue;
    const format = (to.stage as Partial<EncodedSink>).writesEncoded;
    if (format === undefined) continue;
    if (source.encodeFor(format)) made.set(node.id, format);
  }
  return made;
}

/**
 * The bytes of `batch` when it is pre-encoded, after checking they are in `format`; undefined for
 * a batch of records. A sink calls it first in `write`.
 */
export function encodedBytes(
  batch: Batch<unknown>,
  format: EncodedFormat | undefined,
): Uint8Array | undefined {
  const e = batch.encoded;
  if (e === undefined) return undefined;
  if (e.format !== format) {
    // A planner bug, never the user's: writing the bytes anyway would write the wrong format.
    throw new SluiceError(
      ErrorCode.STAGE,
      `a batch pre-encoded as \`${e.format}\` reached a sink writing \`${format ?? 'records'}\`; this is a bug in Sluice's planner, please report it`,
    );
  }
  return e.bytes;
}
