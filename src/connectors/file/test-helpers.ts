/**
 * Test helpers for the connectors that read and write files and streams (`file`, `stdin`,
 * `stdout`): a sink that keeps what reaches it and a source that emits fixed batches. Used by
 * the tests of those connectors only.
 */
import type { Batch } from '../../core/message.ts';
import type { Sink, Source } from '../../core/stage.ts';

/**
 * A sink that keeps every batch it is given; `records()` flattens them in arrival order.
 *
 * @example
 * const out = collect();
 * await new Pipeline('t').from(arraySource([[1, 2], [3]])).to(out).run().done;
 * out.records(); // [1, 2, 3]
 */
export function collect<T = unknown>(): Sink<T> & { batches: Batch<T>[]; records: () => T[] } {
  const batches: Batch<T>[] = [];
  return {
    batches,
    records: () => batches.flatMap((b) => [...b.records]),
    write(b) {
      batches.push(b);
    },
  };
}

/**
 * A source that emits each array of `batches` as one batch, in order, then ends.
 *
 * @example
 * new Pipeline('t').from(arraySource([[{ a: 1 }], [{ a: 2 }]])).to(sink);
 */
export function arraySource(batches: unknown[][]): Source {
  return {
    async run(out) {
      for (const records of batches) await out.emit({ kind: 'batch', records });
    },
  };
}
