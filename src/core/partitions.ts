/**
 * Partitioned positions: how a source whose input is split into ordered partitions names them,
 * so partition-scoped state (`PartitionStateAccess` in `stage.ts`, `checkpoint: { scope: partition }`)
 * and partition-scoped operators follow partitions without knowing which source it is.
 *
 * A source whose spec declares the `partitionedPositions` capability keeps this contract:
 * - Every record it emits has `meta.position` with `topic` (a string without `:`) and
 *   `partition` (a whole number); the record belongs to partition
 *   {@link partitionName}`(topic, partition)` = `topic:partition`.
 * - Its `position()` maps each partition's name to the next offset to read (a whole number),
 *   and may add an entry `<name>#done` ({@link DONE_SUFFIX}): a string, opaque to everyone but
 *   the source, describing records done beyond that offset. Nothing else.
 * - Under partition scope it calls `ctx.partitionState` as `PartitionStateAccess` says.
 *
 * The Kafka source is one; a future partitioned source (Kinesis shards, Pulsar partitions)
 * maps its own names onto the same shape.
 */
import type { RecordMeta } from './message.ts';

/** Suffix of a position entry holding what is done beyond a partition's offset (`topic:0#done`). */
export const DONE_SUFFIX = '#done';

/**
 * The name of partition `partition` of `topic`: `topic:partition`, the key of its offset in a
 * partitioned source's position.
 *
 * @example
 * partitionName('events', 3); // 'events:3'
 */
export function partitionName(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * The topic and partition of a {@link partitionName} (a `NaN` partition when it has none).
 *
 * @example
 * splitPartitionName('events:3'); // { topic: 'events', partition: 3 }
 */
export function splitPartitionName(name: string): { topic: string; partition: number } {
  const sep = name.lastIndexOf(':');
  return { topic: name.slice(0, sep), partition: sep < 0 ? Number.NaN : Number(name.slice(sep + 1)) };
}

/** The partition a record belongs to, from its `meta.position`; `''` when it has none. */
export function partitionOfRecord(meta: RecordMeta | undefined): string {
  const pos = meta?.position;
  if (pos === undefined || pos.partition === undefined) return '';
  return `${String(pos.topic ?? '')}:${String(pos.partition)}`;
}

/** True when `key`, an entry of a partitioned position, is a partition's offset (not its done entry). */
export function isOffsetEntry(key: string): boolean {
  return !key.endsWith(DONE_SUFFIX);
}

/** The done entry of partition `name` in `position` (a string), or undefined. */
export function doneEntry(position: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const done = position[`${name}${DONE_SUFFIX}`];
  return typeof done === 'string' ? done : undefined;
}
