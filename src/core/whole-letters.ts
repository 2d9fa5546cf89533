/**
 * Dead letters of projected records made whole again. A projected source (see `projection.ts`)
 * emits records holding only the fields its readers read; when a later stage rejects one, its
 * letter must still hold the record as the source would have emitted it without the projection,
 * so that users can read and replay it. Before a stage's letters go to the dlq, the runtime hands
 * every letter whose record came from a source that can rebuild records
 * ({@link ProjectableSource.wholeRecords}) to that source, once per source and call, and puts
 * what it gives back in the letter; everything else in the letter stays as it is.
 */
import type { Batch, RecordMeta } from './message.ts';
import type { ProjectableSource, RejectedRecord } from './projection.ts';
import type { DeadLetter } from './stage.ts';

/** A source that can rebuild the whole records it emitted. */
type Rebuilder = Required<Pick<ProjectableSource, 'wholeRecords'>>;

/** Rebuilds the records of dead letters from projected sources; see the module comment. */
export class WholeLetters {
  private readonly sources: ReadonlyMap<string, Rebuilder>;

  /** @param sources the sources that can rebuild records, by stage name (`RecordMeta.source`) */
  constructor(sources: ReadonlyMap<string, Rebuilder>) {
    this.sources = sources;
  }

  /**
   * The sources among `stages` (by stage name) that have `wholeRecords`, or undefined when none:
   * then no letter ever needs rebuilding.
   */
  static of(stages: Iterable<readonly [string, unknown]>): WholeLetters | undefined {
    const sources = new Map<string, Rebuilder>();
    for (const [name, stage] of stages) {
      const s = stage as Partial<ProjectableSource>;
      if (typeof s.wholeRecords === 'function') sources.set(name, s as Rebuilder);
    }
    return sources.size === 0 ? undefined : new WholeLetters(sources);
  }

  /** True when some letter of `batch` came from a source that can rebuild its record. */
  concerns(batch: Batch<DeadLetter>): boolean {
    const meta = batch.meta;
    if (meta === undefined) return false;
    for (const m of meta) if (this.rebuilderOf(m) !== undefined) return true;
    return false;
  }

  /**
   * `batch` with the record of each letter its source rebuilt replaced by the whole record (the
   * same batch when none was). Throws what a source's `wholeRecords` throws.
   */
  async restore(batch: Batch<DeadLetter>): Promise<Batch<DeadLetter>> {
    const meta = batch.meta;
    if (meta === undefined) return batch;
    const asked = new Map<Rebuilder, { at: number[]; rejected: RejectedRecord[] }>();
    for (let i = 0; i < meta.length; i++) {
      const m = meta[i];
      const source = this.rebuilderOf(m);
      if (source === undefined || m?.position === undefined) continue;
      let ask = asked.get(source);
      if (ask === undefined) {
        ask = { at: [], rejected: [] };
        asked.set(source, ask);
      }
      ask.at.push(i);
      ask.rejected.push({ record: (batch.records[i] as DeadLetter).record, position: m.position });
    }
    if (asked.size === 0) return batch;
    const records = [...batch.records];
    for (const [source, { at, rejected }] of asked) {
      const whole = await source.wholeRecords(rejected);
      for (let j = 0; j < at.length; j++) {
        const record = whole[j];
        if (record === undefined) continue;
        const i = at[j] as number;
        records[i] = { ...(records[i] as DeadLetter), record };
      }
    }
    return { kind: 'batch', records, meta };
  }

  private rebuilderOf(m: RecordMeta | undefined): Rebuilder | undefined {
    return m === undefined ? undefined : this.sources.get(m.source);
  }
}
