/**
 * `Source.recordFailed`: the runtime tells a source which of its records a later stage sent to
 * the dlq, before the barrier that follows them completes, so a source that settles messages one
 * by one can nack those instead of acking them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../pipeline.ts';
import { type Batch, barrier, batchOf, type RecordMeta } from './message.ts';
import type { DeadLetter, Operator, Sink, Source, StageContext } from './stage.ts';

/** What the source saw, in order: `failed n` per reported record, `complete k` per completed barrier. */
type Seen = string[];

/** Emits records 0..batches*10-1 in batches of 10 with meta `{ source, position: { n } }`, barrier k after batch k. */
function source(batches: number, seen: Seen, own?: (ctx: StageContext) => void): Source<number> {
  return {
    async run(out, ctx) {
      own?.(ctx);
      for (let b = 1; b <= batches; b++) {
        const records = Array.from({ length: 10 }, (_, i) => (b - 1) * 10 + i);
        const meta: RecordMeta[] = records.map((n) => ({ source: ctx.name, position: { n } }));
        await out.emit(batchOf(records, meta));
        await out.signal(barrier(b));
      }
    },
    recordFailed(meta, error) {
      seen.push(`failed ${meta.position?.n} ${(error as Error).message}`);
    },
    onBarrierComplete(id) {
      seen.push(`complete ${id}`);
    },
  };
}

function collector<T>(): Sink<T> & { got: T[] } {
  const sink = {
    got: [] as T[],
    durableOnBarrier: true,
    write(b: Batch<T>) {
      sink.got.push(...b.records);
    },
  };
  return sink;
}

/** An operator dead-lettering the records `fails` picks. */
function picky(fails: (n: number) => boolean): Operator<number, number> {
  let ctx: StageContext | undefined;
  return {
    open(c) {
      ctx = c;
    },
    process(b, out) {
      const keep: number[] = [];
      const meta: (RecordMeta | undefined)[] = [];
      b.records.forEach((n, i) => {
        if (fails(n)) ctx?.deadLetter(n, new Error(`op ${n}`), b.meta?.[i]);
        else {
          keep.push(n);
          meta.push(b.meta?.[i]);
        }
      });
      return out.emit(batchOf(keep, meta));
    },
  };
}

describe('Source.recordFailed', () => {
  it('reports records an operator and a sink dead-lettered, before the barrier after them completes', async () => {
    const seen: Seen = [];
    let sinkCtx: StageContext | undefined;
    const kept: number[] = [];
    const table: Sink<number> = {
      durableOnBarrier: true,
      open(c) {
        sinkCtx = c;
      },
      write(b) {
        b.records.forEach((n, i) => {
          if (n === 25) sinkCtx?.deadLetter(n, new Error(`sink ${n}`), b.meta?.[i]);
          else kept.push(n);
        });
      },
    };
    const dead = collector<DeadLetter>();
    const p = new Pipeline('record-failed');
    p.from(source(3, seen), { name: 'in' })
      .via(
        picky((n) => n === 3 || n === 14),
        { name: 'check' },
      )
      .to(table);
    p.dlq(dead);
    await p.run().done;
    assert.deepEqual(
      seen.filter((s) => s.startsWith('failed')),
      ['failed 3 op 3', 'failed 14 op 14', 'failed 25 sink 25'],
    );
    // Record n went out before barrier ⌊n/10⌋ + 1: it is reported before that barrier completes.
    for (const [n, b] of [
      [3, 1],
      [14, 2],
      [25, 3],
    ] as const) {
      const failed = seen.findIndex((s) => s.startsWith(`failed ${n} `));
      assert.ok(
        failed < seen.indexOf(`complete ${b}`),
        `record ${n} before barrier ${b}: ${seen.join(', ')}`,
      );
    }
    assert.equal(dead.got.length, 3, 'the dead letters are written all the same');
    assert.equal(kept.length, 27);
  });

  it("does not report the source's own dead letters, and a throwing hook does not fail the run", async () => {
    const seen: Seen = [];
    const src = source(1, seen, (ctx) =>
      ctx.deadLetter('undecodable', new Error('own'), { source: ctx.name }),
    );
    const warnings: string[] = [];
    const throwing: Source<number> = {
      ...src,
      recordFailed(meta, error) {
        src.recordFailed?.(meta, error);
        throw new Error('boom');
      },
    };
    const p = new Pipeline('record-failed-own');
    p.from(throwing, { name: 'in' })
      .via(
        picky((n) => n === 5),
        { name: 'check' },
      )
      .to(collector());
    p.dlq(collector());
    await p.run({ log: { info() {}, warn: (m) => warnings.push(m), error() {} } }).done;
    assert.deepEqual(seen, ['failed 5 op 5', 'complete 1']);
    assert.match(warnings.join('\n'), /Source `in` failed to take note of a failed record: boom/);
  });
});
