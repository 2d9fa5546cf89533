/**
 * Offset tracking for the `kafka` source: which records of a partition are done, in whatever
 * order they finish, and what may be committed.
 *
 * Kafka keeps one committed offset per partition: "every record before it is done". When records
 * of a partition finish out of order (parallel processing inside a partition), only the
 * contiguous *low watermark* may be committed — the first offset not done yet. The records done
 * beyond it (past the gap a slow record leaves) are described by a compact string kept beside
 * the offset (in the commit's metadata, or in a checkpoint's position), so a restart skips them
 * instead of processing them again.
 *
 * Offsets the partition never delivered between two tracked ones (compacted away, transaction
 * markers) count as done: there is nothing to process there.
 */

import { doneEntry, isOffsetEntry, splitPartitionName } from '../../core/partitions.ts';

/** Kafka's default `offset.metadata.max.bytes` is 4096; the encoded state stays below it. */
export const MAX_METADATA_CHARS = 4000;

/**
 * The most offsets a partition may span between its low watermark and its newest tracked record
 * ({@link MAX_METADATA_CHARS} base64 characters hold six offsets each, less the prefix). A source
 * stops reading while a partition's span is this wide, so the completion state always fits.
 */
export const MAX_SPAN = (MAX_METADATA_CHARS - 40) * 6;

const PREFIX = 's1:';

/** Where a partition may be committed: the low watermark, and the state beyond it (or undefined). */
export interface CommitPoint {
  /** The first offset not done: commit this. */
  readonly offset: number;
  /** The records done beyond `offset`, encoded (see {@link encodeDone}); undefined when none. */
  readonly metadata: string | undefined;
}

/**
 * Encodes which offsets after `offset` are done, as `s1:<offset>:<base64url bits>`: bit `i` is
 * set when offset `offset + 1 + i` is done. The offset inside the string lets a reader ignore
 * metadata that belongs to another committed offset (e.g. after an offset reset).
 *
 * @example
 * encodeDone(10, [12, 13]); // 's1:10:Bg' — 11 not done, 12 and 13 done
 */
export function encodeDone(offset: number, done: Iterable<number>): string | undefined {
  let max = -1;
  const rel: number[] = [];
  for (const o of done) {
    const i = o - offset - 1;
    if (i < 0) continue;
    rel.push(i);
    if (i > max) max = i;
  }
  if (max < 0) return undefined;
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const i of rel) bytes[i >> 3] = (bytes[i >> 3] as number) | (1 << (i & 7));
  return `${PREFIX}${offset}:${Buffer.from(bytes).toString('base64url')}`;
}

/**
 * The offsets marked done in `metadata` when it was written for committed offset `offset`;
 * empty for metadata that is absent, foreign (not written by Sluice) or for another offset.
 *
 * @example
 * decodeDone('s1:10:Bg', 10); // Set { 12, 13 }
 */
export function decodeDone(metadata: string | null | undefined, offset: number): Set<number> {
  const done = new Set<number>();
  if (metadata === undefined || metadata === null || !metadata.startsWith(PREFIX)) return done;
  const sep = metadata.indexOf(':', PREFIX.length);
  if (sep < 0 || Number(metadata.slice(PREFIX.length, sep)) !== offset) return done;
  const bytes = Buffer.from(metadata.slice(sep + 1), 'base64url');
  for (let b = 0; b < bytes.length; b++) {
    const byte = bytes[b] as number;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) done.add(offset + 1 + b * 8 + bit);
  }
  return done;
}

/**
 * The records of one partition from its low watermark on: tracked in offset order as they are
 * read, completed in any order.
 *
 * - `admit(offset)` when a record is read: false when it needs no processing (before the start,
 *   already seen — a re-delivery after a group rejoin — or marked done by restored state).
 * - `complete(offset)` when it is done; the low watermark then moves past every contiguous done
 *   record.
 *
 * @example
 * const p = new PartitionOffsets(0);
 * p.admit(0); p.admit(1); p.admit(2);
 * p.complete(1); p.complete(2);
 * p.commitPoint(); // { offset: 0, metadata: 's1:0:Aw' } — 0 is stuck, 1 and 2 are done
 * p.complete(0);
 * p.commitPoint(); // { offset: 3, metadata: undefined }
 */
export class PartitionOffsets {
  /** Tracked offsets, increasing, from `head` on; `done[i]` says whether `offsets[i]` is done. */
  private offsets: number[] = [];
  private done: boolean[] = [];
  private head = 0;
  /** Offsets done by restored state and not read yet. */
  private restoredDone: Set<number>;
  /** Low watermark when nothing is tracked: one past the newest record read (or the start). */
  private next: number;
  private pendingCount = 0;

  /**
   * `start`: the first offset to process (the committed offset or a checkpoint's); `done`: offsets
   * after it already done (decoded from metadata), skipped when read.
   */
  constructor(start: number, done: Iterable<number> = []) {
    this.next = start;
    this.restoredDone = new Set(done);
  }

  /** Records admitted and not completed yet. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Offsets between the low watermark and the newest record read (what the metadata must cover). */
  get span(): number {
    return this.head < this.offsets.length ? this.next - (this.offsets[this.head] as number) : 0;
  }

  /**
   * A record at `offset` was read. Returns true when it must be processed (then it is tracked
   * until `complete(offset)`), false when it is skipped: before the low watermark or not after
   * the newest record read (a re-delivery), or done according to restored state (then it counts
   * as done at once).
   */
  admit(offset: number): boolean {
    if (offset < this.next) return false;
    this.next = offset + 1;
    if (this.restoredDone.size > 0 && this.restoredDone.delete(offset)) {
      if (this.head < this.offsets.length) {
        this.offsets.push(offset);
        this.done.push(true);
      }
      return false;
    }
    this.offsets.push(offset);
    this.done.push(false);
    this.pendingCount++;
    return true;
  }

  /**
   * `admit` and `complete` at once, for a record done as soon as it is read (emitted in read
   * order). Returns what `admit` would; tracks nothing when nothing else is pending.
   */
  pass(offset: number): boolean {
    if (this.head < this.offsets.length) {
      if (!this.admit(offset)) return false;
      this.complete(offset);
      return true;
    }
    if (offset < this.next) return false;
    this.next = offset + 1;
    return !(this.restoredDone.size > 0 && this.restoredDone.delete(offset));
  }

  /**
   * The record at `offset` is done. Returns false when `offset` is not pending here (never
   * admitted, already completed, or forgotten), true otherwise.
   */
  complete(offset: number): boolean {
    const i = this.indexOf(offset);
    if (i < 0 || this.done[i]) return false;
    this.done[i] = true;
    this.pendingCount--;
    if (i === this.head) this.advance();
    return true;
  }

  /** The offset to commit (the first one not done) and the done records beyond it. */
  commitPoint(): CommitPoint {
    if (this.head >= this.offsets.length) {
      // Nothing in flight; restored done offsets past what was read stay described.
      return { offset: this.next, metadata: encodeDone(this.next, this.restoredDone) };
    }
    const low = this.offsets[this.head] as number;
    const beyond: number[] = [];
    for (let i = this.head + 1; i < this.offsets.length; i++)
      if (this.done[i]) beyond.push(this.offsets[i] as number);
    for (const o of this.restoredDone) beyond.push(o);
    return { offset: low, metadata: encodeDone(low, beyond) };
  }

  private advance(): void {
    while (this.head < this.offsets.length && this.done[this.head]) this.head++;
    if (this.head === this.offsets.length) {
      this.offsets.length = 0;
      this.done.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.offsets.length) {
      this.offsets = this.offsets.slice(this.head);
      this.done = this.done.slice(this.head);
      this.head = 0;
    }
  }

  private indexOf(offset: number): number {
    let lo = this.head;
    let hi = this.offsets.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.offsets[mid] as number;
      if (v === offset) return mid;
      if (v < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}

/** `topic:partition` keys grouped by topic, as the client's offset requests take them. */
export function byTopic(keys: Iterable<string>): { topic: string; partitions: number[] }[] {
  const out = new Map<string, number[]>();
  for (const key of keys) {
    const { topic, partition } = splitPartitionName(key);
    const list = out.get(topic);
    if (list === undefined) out.set(topic, [partition]);
    else list.push(partition);
  }
  return [...out].map(([topic, partitions]) => ({ topic, partitions }));
}

/** One partition's resume point, as read from a source position. */
export interface ResumePoint {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly done: Set<number>;
}

/**
 * Parses a `kafka` source position (`{ 'topic:0': 42, 'topic:0#done': 's1:42:…' }`) into resume
 * points. Throws on an entry it cannot read, naming it.
 */
export function parsePosition(position: Readonly<Record<string, unknown>>): ResumePoint[] {
  const out: ResumePoint[] = [];
  for (const [key, value] of Object.entries(position)) {
    if (!isOffsetEntry(key)) continue;
    const { topic, partition } = splitPartitionName(key);
    const offset = typeof value === 'bigint' ? Number(value) : value;
    if (
      topic === '' ||
      !Number.isInteger(partition) ||
      typeof offset !== 'number' ||
      !Number.isInteger(offset)
    ) {
      throw new Error(
        `the position entry \`${key}\` = ${String(value)} is not a Kafka \`topic:partition\` = offset; the checkpoint was not written by the kafka source`,
      );
    }
    out.push({ topic, partition, offset, done: decodeDone(doneEntry(position, key), offset) });
  }
  return out;
}
