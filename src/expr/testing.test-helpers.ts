/**
 * Test helpers for src/expr tests: an in-memory source and a collecting sink.
 * (Not a test file itself; imported by the `*.test.ts` beside it.)
 */
import { type Batch, batchOf, type RecordMeta } from '../core/message.ts';
import type { DeadLetter, Emitter, Sink, Source } from '../core/stage.ts';

/** A source emitting `records` in batches of `size`, with meta `{source: 'mem', position: {i}}`. */
export function memorySource(
  records: readonly unknown[],
  size = 3,
  between?: (batchIndex: number) => Promise<void>,
): Source {
  return {
    async run(out: Emitter<unknown>) {
      for (let start = 0, b = 0; start < records.length; start += size, b++) {
        if (between) await between(b);
        const chunk = records.slice(start, start + size);
        const meta: RecordMeta[] = chunk.map((_, k) => ({ source: 'mem', position: { i: start + k } }));
        await out.emit(batchOf(chunk, meta));
      }
    },
  };
}

/** A sink keeping every record and meta it got. */
export class CollectSink implements Sink {
  readonly records: unknown[] = [];
  readonly meta: (RecordMeta | undefined)[] = [];
  write(batch: Batch): void {
    batch.records.forEach((r, i) => {
      this.records.push(r);
      this.meta.push(batch.meta?.[i]);
    });
  }
  /** The dead letters, when this sink is the DLQ. */
  get letters(): DeadLetter[] {
    return this.records as DeadLetter[];
  }
}
