/**
 * Batches and in-band control signals: what flows through a channel.
 *
 * A {@link Batch} is an array of records with optional per-record metadata. Batches are
 * immutable once emitted: a stage never changes a batch it received or emitted, it builds a
 * new one. Control signals ({@link Watermark}, {@link Barrier}) travel in the same channels,
 * in order with the data. The end of a stream is the closing of its channel, which a receiver
 * sees after every item sent before it.
 */

/** A position inside a source: file byte offset + line, Kafka partition + offset, a DB cursor. */
export type Position = Readonly<Record<string, string | number | bigint | boolean>>;

/**
 * Where a record came from and what is known about it beside its value. Sources attach it;
 * operators carry it along unchanged, so a dead letter or a sink can name the origin.
 */
export interface RecordMeta {
  /** Name of the source stage, e.g. `input` or `file:data/in.jsonl`. */
  readonly source: string;
  /** The record's position in that source (enough to find it again). */
  readonly position?: Position;
  /** Message key (Kafka key, shard key…), when the source has one. */
  readonly key?: string | Uint8Array;
  /** Event or ingestion timestamp in epoch milliseconds, when the source has one. */
  readonly timestamp?: number;
  /** Message headers, when the source has them. */
  readonly headers?: Readonly<Record<string, string | Uint8Array>>;
  /**
   * Annotations stages add on the way, e.g. `ruleVersion.<stage>`: the version of the rule set
   * that judged the record. A stage that adds one builds a new meta object (and a new
   * `attributes` object); it never changes the one it received.
   */
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
}

/** The unit that flows: records, plus metadata aligned by index when the source has it. */
export interface Batch<T = unknown> {
  readonly kind: 'batch';
  /**
   * The records. Never mutated after the batch is emitted. In a batch with {@link encoded}
   * bytes it holds `records.length` empty slots: the count, for metrics and checkpoints.
   */
  readonly records: readonly T[];
  /** `meta[i]` describes `records[i]`; absent when the source gives no metadata. */
  readonly meta?: readonly (RecordMeta | undefined)[] | undefined;
  /**
   * What every record's meta shares, when the source says so: each `meta[i]` then has this
   * `source` and this `position.partition` (undefined: none). A source that builds `meta` only
   * when it is first read (the byte sources) sets it, so a stage that needs only these per record
   * (a watermark's partition) never makes the batch build its meta. Stages that build a new batch
   * drop it unless it still holds.
   */
  readonly origin?: BatchOrigin | undefined;
  /**
   * The records already written in a sink's output format, instead of record objects. Only a
   * source fused with the sink it feeds emits these, and only into that sink (see
   * `core/encoded.ts`); no other stage ever receives such a batch.
   */
  readonly encoded?: EncodedRows | undefined;
}

/** The meta every record of a batch shares (see {@link Batch.origin}). */
export interface BatchOrigin {
  /** `meta[i].source` of every record. */
  readonly source: string;
  /** `meta[i].position?.partition` of every record. */
  readonly partition?: string | number | bigint | boolean | undefined;
}

/** The output formats a batch's records can travel pre-encoded in (see {@link Batch.encoded}). */
export type EncodedFormat = 'jsonl';

/** Records as the bytes a sink writes for them. */
export interface EncodedRows {
  /** `jsonl`: one JSON value per record, each line ending with `\n`, as the `jsonl` encoder writes it. */
  readonly format: EncodedFormat;
  /** The bytes of every record of the batch, in order. Not changed until `release` is called. */
  readonly bytes: Uint8Array;
  /**
   * Optional: tells the source that made the bytes that the sink is done with them, so their
   * memory can take later batches. The sink calls it at most once, when nothing holds the bytes
   * any more (written to a file; taken by the process's stdout), or never.
   */
  readonly release?: (() => void) | undefined;
}

/** "No event with a timestamp ≤ `time` is expected any more" (epoch ms). */
export interface Watermark {
  readonly kind: 'watermark';
  readonly time: number;
}

/** Checkpoint barrier `id`: state is snapshotted when it has passed on every input. */
export interface Barrier {
  readonly kind: 'barrier';
  readonly id: number;
}

/** An in-band control signal. */
export type Signal = Watermark | Barrier;

/** Anything a channel between two stages carries. */
export type Message<T = unknown> = Batch<T> | Signal;

/**
 * Builds a batch. `meta`, when given, must be as long as `records`.
 *
 * @example
 * const b = batchOf([{ id: 1 }, { id: 2 }]);
 * b.records.length; // 2
 */
export function batchOf<T>(records: readonly T[], meta?: readonly (RecordMeta | undefined)[]): Batch<T> {
  return meta === undefined ? { kind: 'batch', records } : { kind: 'batch', records, meta };
}

/** A watermark signal at `time` (epoch ms). */
export function watermark(time: number): Watermark {
  return { kind: 'watermark', time };
}

/** A checkpoint barrier signal with `id`. */
export function barrier(id: number): Barrier {
  return { kind: 'barrier', id };
}

/** True when `m` is a batch (not a control signal). */
export function isBatch<T>(m: Message<T>): m is Batch<T> {
  return m.kind === 'batch';
}

/** True for a batch (what a channel counts as records); signals are not. */
export function isBatchMessage(m: Message): boolean {
  return m.kind === 'batch';
}

/** The records a message carries, for a channel's fill: a batch's size, 0 for a signal. */
export function weighMessage(m: Message): number {
  return m.kind === 'batch' ? m.records.length : 0;
}
