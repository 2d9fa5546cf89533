/** The `blackhole` sink: discards every record and counts them (for benchmarks and dry runs). */
import type { Batch } from '../../core/message.ts';
import type { Sink } from '../../core/stage.ts';

/** A {@link Sink} that discards records; see {@link blackholeSink}. */
export interface BlackholeSink extends Sink<unknown> {
  /** Records received so far. */
  readonly records: number;
  /** Batches received so far. */
  readonly batches: number;
}

/**
 * A sink that discards every record and counts records and batches.
 *
 * @example
 * const sink = blackholeSink();
 * await new Pipeline('bench').from(source).to(sink).run().done;
 * sink.records; // how many arrived
 */
export function blackholeSink(): BlackholeSink {
  let records = 0;
  let batches = 0;
  return {
    durableOnBarrier: true,
    get records() {
      return records;
    },
    get batches() {
      return batches;
    },
    write(batch: Batch<unknown>) {
      records += batch.records.length;
      batches++;
    },
  };
}
