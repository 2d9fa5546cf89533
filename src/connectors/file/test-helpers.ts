/**
 * Test helpers for the connectors that read and write files and streams (`file`, `stdin`,
 * `stdout`): a sink that keeps what reaches it and a source that emits fixed batches. Used by
 * the tests of those connectors only.
 */
import { systemClock } from '../../core/clock.ts';
import type { Batch } from '../../core/message.ts';
import { type DeadLetter, runScope, type Sink, type Source, type StageContext } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';

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

/**
 * Runs `src` into a collecting sink with a collecting dlq; returns records, dead letters, batches
 * and the run's summary.
 *
 * @example
 * const { records, dead } = await runWithDlq(fileSource({ path, format: 'jsonl' }));
 */
export async function runWithDlq(src: Source) {
  const out = collect();
  const dead = collect<DeadLetter>();
  const p = new Pipeline('t');
  p.from(src, { name: 'input' }).to(out);
  p.dlq(dead);
  const summary = await p.run().done;
  return { records: out.records(), dead: dead.records(), summary, batches: out.batches };
}

/**
 * A stage context for driving a source or sink by hand; a dead letter throws.
 *
 * @example
 * await fileSink({ path, format: 'jsonl' }).open?.(stageContext(true));
 */
export function stageContext(checkpointing: boolean, name = 'out'): StageContext {
  return {
    name,
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    checkpointing,
    runScoped: runScope(),
    clock: systemClock,
    log: { info() {}, warn() {}, error() {} },
    deadLetter() {
      throw new Error('unexpected dead letter');
    },
  };
}
