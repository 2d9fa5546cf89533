/**
 * The stream–table join in event time (Flink's event-time temporal join): the right input is
 * the changelog of a table — a compacted Kafka topic, or any source — materialised as a versioned
 * keyed table (last value per key; a `null` value, a Kafka tombstone, deletes the key). A left
 * record at time `t` is joined with the table row its key had *at `t`*: the newest version with a
 * time ≤ `t`. So it waits until the watermark reaches `t` (no version at or before `t` can still
 * come), then is emitted in event-time order; without a row (or deleted) it is dropped, or in a
 * left outer join emitted with `null`.
 *
 * A table change that comes late (at or before the watermark) is still applied, counted as late:
 * the left records still waiting (all after the watermark) see it if it is the newest version at
 * their time; results already emitted are not revised. Kafka Streams' KTable likewise never drops
 * an update; sending it to `late` instead would leave the table stale for good.
 *
 * Versions older than the watermark are folded: per key only the newest version at or before the
 * watermark is kept (it is what any later left record sees), plus the newer ones; a key whose
 * kept version is a deletion goes entirely. The table and the waiting left records are the state
 * a checkpoint holds, so a restart resumes with the table as it was — without reading the table's
 * topic from the beginning again.
 */
import type { RecordMeta } from '../core/message.ts';
import type { JoinAlgorithm, JoinResults, JoinSide } from './base.ts';
import { MinHeap } from './heap.ts';

/** One version of a key's row: valid from `time` until the next version. `value` null: deleted. */
interface Version {
  readonly time: number;
  readonly value: unknown;
}

interface Pending {
  readonly key: string;
  readonly time: number;
  readonly record: unknown;
  readonly meta: RecordMeta | undefined;
  readonly seq: number;
}

/** What {@link TemporalTableJoin.save} returns. */
interface SavedTable {
  readonly rows: [string, [number, unknown][]][];
  readonly pending: [string, number, unknown, RecordMeta | undefined][];
}

/** The versioned table and the left records waiting for the watermark; see the module comment. */
export class TemporalTableJoin implements JoinAlgorithm {
  private readonly outer: boolean;
  private readonly results: JoinResults;
  private readonly rows = new Map<string, Version[]>();
  private readonly pending = new MinHeap<Pending>((a, b) => a.time - b.time || a.seq - b.seq);
  /** Keys with more than one version or a deletion: folded once the watermark passes their versions. */
  private readonly toFold = new MinHeap<{ key: string; time: number }>((a, b) => a.time - b.time);
  private seq = 0;
  private wm = Number.NEGATIVE_INFINITY;
  private versionCount = 0;
  /** Late table changes are applied (see the module comment). */
  readonly takesLate = 'right' as const;

  constructor(outer: boolean, results: JoinResults) {
    this.outer = outer;
    this.results = results;
  }

  /** Records held: table versions plus waiting left records. */
  get held(): number {
    return this.pending.size + this.versionCount;
  }

  /** Keys in the table (deleted keys not yet folded included). */
  get tableKeys(): number {
    return this.rows.size;
  }

  add(side: JoinSide, key: string, time: number, record: unknown, meta: RecordMeta | undefined): void {
    if (side === 'left') {
      this.pending.push({ key, time, record, meta, seq: this.seq++ });
      return;
    }
    const value = record ?? null;
    const versions = this.rows.get(key);
    if (versions === undefined) {
      if (value === null) return;
      this.rows.set(key, [{ time, value }]);
      this.versionCount++;
      return;
    }
    // Versions stay sorted by time; an equal time goes after (the later arrival wins).
    let i = versions.length;
    while (i > 0 && (versions[i - 1] as Version).time > time) i--;
    versions.splice(i, 0, { time, value });
    this.versionCount++;
    this.toFold.push({ key, time });
  }

  advance(wm: number): void {
    this.wm = wm;
    const pending = this.pending;
    for (let p = pending.peek(); p !== undefined && p.time <= wm; p = pending.peek()) {
      pending.pop();
      const row = this.versionAt(p.key, p.time);
      if (row !== null) this.results.push(p.record, row, p.meta);
      else if (this.outer) this.results.push(p.record, null, p.meta);
    }
    const fold = this.toFold;
    for (let f = fold.peek(); f !== undefined && f.time <= wm; f = fold.peek()) {
      fold.pop();
      this.fold(f.key);
    }
  }

  /** The value of `key`'s row at `time`, or null (no row then, or deleted). */
  private versionAt(key: string, time: number): unknown {
    const versions = this.rows.get(key);
    if (versions === undefined) return null;
    for (let i = versions.length - 1; i >= 0; i--) {
      const v = versions[i] as Version;
      if (v.time <= time) return v.value;
    }
    return null;
  }

  /** Keeps only the newest version at or before the watermark and the newer ones; drops a deleted key. */
  private fold(key: string): void {
    const versions = this.rows.get(key);
    if (versions === undefined) return;
    let last = -1;
    for (let i = 0; i < versions.length; i++) if ((versions[i] as Version).time <= this.wm) last = i;
    if (last > 0) {
      versions.splice(0, last);
      this.versionCount -= last;
    }
    const first = versions[0];
    if (first !== undefined && first.value === null && first.time <= this.wm) {
      versions.shift();
      this.versionCount--;
    }
    if (versions.length === 0) this.rows.delete(key);
  }

  save(): SavedTable {
    const rows: SavedTable['rows'] = [];
    for (const [key, versions] of this.rows) rows.push([key, versions.map((v) => [v.time, v.value])]);
    const pending = [...this.pending.items()]
      .sort((a, b) => a.seq - b.seq)
      .map((p): SavedTable['pending'][number] => [p.key, p.time, p.record, p.meta]);
    return { rows, pending };
  }

  load(state: unknown): void {
    const s = state as SavedTable;
    this.rows.clear();
    this.pending.clear();
    this.toFold.clear();
    this.seq = 0;
    this.versionCount = 0;
    for (const [key, versions] of s.rows) {
      this.versionCount += versions.length;
      this.rows.set(
        key,
        versions.map(([time, value]) => ({ time, value })),
      );
      if (versions.length > 1 || versions[0]?.[1] === null)
        this.toFold.push({ key, time: (versions[versions.length - 1] as [number, unknown])[0] });
    }
    for (const [key, time, record, meta] of s.pending)
      this.pending.push({ key, time, record, meta, seq: this.seq++ });
  }
}
