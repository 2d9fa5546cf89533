/**
 * A small real run for the metrics tests: numbers in batches of 10 → an operator that dead-letters
 * every number ending in 3 (its error quoting a registered secret) and emits a watermark per batch →
 * a collecting sink, with a dlq. The source reports a fixed Kafka-like lag and can be held open.
 */
import { batchOf, type RecordMeta, watermark } from '../core/message.ts';
import type { SourceLag } from '../core/metrics.ts';
import type { RunHandle } from '../core/run.ts';
import { registerSecret } from '../core/secrets.ts';
import type { DeadLetter, Operator, Sink, Source, StageContext } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';

/** The secret the operator's errors quote; redacted to {@link REDACTED}. */
export const SECRET = 'sup3r-s3cret-token';

/** What {@link SECRET} is replaced by. */
export const REDACTED = '$' + '{TEST_SECRET}';

/** The lag the source reports. */
export const LAG: SourceLag = {
  partitions: [
    { partition: 'events:0', position: 40, end: 52, lag: 12 },
    { partition: 'events:1', position: 7, end: 7, lag: 0 },
  ],
  commitAgeMs: 1500,
};

/** Starts the run; with `hold`, the source waits for `release()` after its batches. */
export function startTestRun(options: { batches?: number; hold?: boolean } = {}): {
  handle: RunHandle;
  release(): void;
  letters: DeadLetter[];
  lagCalls: () => number;
} {
  registerSecret(SECRET, REDACTED);
  const gate = Promise.withResolvers<void>();
  let lagCalls = 0;
  const source: Source<number> = {
    async run(out, ctx) {
      for (let b = 0; b < (options.batches ?? 5); b++) {
        const records = Array.from({ length: 10 }, (_, i) => b * 10 + i);
        const meta: RecordMeta[] = records.map((n) => ({ source: ctx.name, position: { n } }));
        await out.emit(batchOf(records, meta));
        await out.signal(watermark(1_700_000_000_000 + b * 1000));
      }
      if (options.hold)
        await Promise.race([gate.promise, new Promise((r) => ctx.stopSignal.addEventListener('abort', r))]);
    },
    async lag() {
      lagCalls++;
      return LAG;
    },
  };
  let ctx: StageContext | undefined;
  const picky: Operator<number, number> = {
    open(c) {
      ctx = c;
    },
    process(b, out) {
      const bad = (n: number) => n % 10 === 3;
      for (let i = 0; i < b.records.length; i++) {
        const n = b.records[i] as number;
        if (bad(n))
          ctx?.deadLetter({ n, token: SECRET }, new Error(`bad number ${n} (token ${SECRET})`), b.meta?.[i]);
      }
      return out.emit(batchOf(b.records.filter((n) => !bad(n))));
    },
  };
  const written: number[] = [];
  const sink: Sink<number> = {
    write(b) {
      written.push(...b.records);
    },
  };
  const letters: DeadLetter[] = [];
  const dlq: Sink<DeadLetter> = {
    write(b) {
      letters.push(...b.records);
    },
  };
  const p = new Pipeline('metrics-test');
  p.from(source, { name: 'numbers' }).via(picky, { name: 'picky' }).to(sink, { name: 'out' });
  p.dlq(dlq);
  const handle = p.run();
  return { handle, release: () => gate.resolve(), letters, lagCalls: () => lagCalls };
}
