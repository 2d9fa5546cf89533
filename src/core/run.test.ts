import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../pipeline.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import { type Batch, barrier, batchOf, type RecordMeta, type Signal, watermark } from './message.ts';
import type { DeadLetter, Operator, Sink, Source, SourceContext, StageContext } from './stage.ts';

/** A source that emits `batches` batches of `size` numbers, or forever, honouring both signals. */
function counter(
  options: { batches?: number; size?: number; closed?: string[] } = {},
): Source<number> & { sent: number } {
  const size = options.size ?? 10;
  const src = {
    sent: 0,
    async run(out: Parameters<Source<number>['run']>[0], ctx: SourceContext) {
      for (let b = 0; options.batches === undefined || b < options.batches; b++) {
        if (ctx.stopSignal.aborted) return;
        const records = Array.from({ length: size }, (_, i) => b * size + i);
        const meta: RecordMeta[] = records.map((n) => ({ source: ctx.name, position: { n } }));
        await out.emit(batchOf(records, meta));
        src.sent += size;
        // Yield so a stop request or cancel can land between batches, as I/O would.
        await new Promise((r) => setImmediate(r));
      }
    },
    close() {
      options.closed?.push('source');
    },
  };
  return src;
}

function collector<T>(closed?: string[]): Sink<T> & { got: T[]; finished: boolean; signals: Signal[] } {
  const sink = {
    got: [] as T[],
    finished: false,
    signals: [] as Signal[],
    write(b: Batch<T>) {
      sink.got.push(...b.records);
    },
    onSignal(s: Signal) {
      sink.signals.push(s);
    },
    finish() {
      sink.finished = true;
    },
    close() {
      closed?.push('sink');
    },
  };
  return sink;
}

/** A sink whose writes wait until the test opens the gate, one batch per `release()`. */
function gatedSink(): Sink<number> & { written: number; release(): void; waiting: Promise<void> } {
  let open: (() => void) | undefined;
  let signalWaiting: () => void = () => {};
  const sink = {
    written: 0,
    waiting: Promise.resolve(),
    release() {
      open?.();
    },
    write(b: Batch<number>) {
      const p = new Promise<void>((resolve) => {
        open = () => {
          sink.written += b.records.length;
          resolve();
        };
      });
      signalWaiting();
      return p;
    },
  };
  sink.waiting = new Promise<void>((r) => {
    signalWaiting = r;
  });
  return sink;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runGraph', () => {
  it('runs source → operator → sink and reports metrics', async () => {
    const p = new Pipeline('basic');
    const sink = collector<number>();
    p.from(counter({ batches: 5 }))
      .via<number>({
        process: (b, out) =>
          out.emit(
            batchOf(
              b.records.map((x) => x * 2),
              b.meta,
            ),
          ),
      })
      .to(sink);
    const summary = await p.run().done;
    assert.equal(summary.state, 'succeeded');
    assert.equal(sink.got.length, 50);
    assert.equal(sink.got[49], 98);
    assert.equal(sink.finished, true);
    assert.equal(summary.recordsRead, 50);
    assert.equal(summary.recordsWritten, 50);
  });

  it('keeps records in flight within the channel buffers with a fast source and a slow sink', async () => {
    const size = 10;
    const capacity = 4;
    const src = counter({ size });
    const sink = gatedSink();
    const p = new Pipeline('bounded');
    p.from(src)
      .via<number>({ process: (b, out) => out.emit(b) }, { name: 'pass' })
      .to(sink);
    const handle = p.run({ channelCapacity: capacity });
    // Two channels (source→pass, pass→sink) of `capacity` batches, plus one batch held by
    // each of the three stages: the source cannot get further ahead than that.
    const bound = 2 * capacity * size + 3 * size;
    let maxAhead = 0;
    for (let i = 0; i < 50; i++) {
      for (let k = 0; k < 20; k++) await tick();
      maxAhead = Math.max(maxAhead, src.sent - sink.written);
      assert.ok(handle.metrics().queuedRecords <= 2 * capacity * size);
      sink.release();
    }
    await handle.stop({ drain: false });
    assert.ok(src.sent > 100, `the source must have made progress (sent ${src.sent})`);
    assert.ok(maxAhead <= bound, `records in flight ${maxAhead} exceed the buffers' bound ${bound}`);
    assert.ok(handle.metrics().peakQueuedRecords <= 2 * capacity * size);
    const snap = handle.metrics();
    assert.ok((snap.stages.find((s) => s.name === 'pass')?.blockedMs ?? 0) >= 0);
  });

  it('stop without drain frees a producer blocked on a full channel and closes every stage', async () => {
    const closed: string[] = [];
    const src = counter({ closed });
    const sink = gatedSink();
    const opClosed: string[] = [];
    const p = new Pipeline('cancel');
    p.from(src)
      .via<number>({ process: (b, out) => out.emit(b), close: () => void opClosed.push('op') })
      .to(Object.assign(sink, { close: () => void closed.push('sink') }));
    const handle = p.run({ channelCapacity: 1 });
    await sink.waiting;
    for (let k = 0; k < 20; k++) await tick();
    const sentBefore = src.sent;
    const summary = await handle.stop({ drain: false });
    assert.equal(summary.state, 'cancelled');
    assert.deepEqual(closed.sort(), ['sink', 'source']);
    assert.deepEqual(opClosed, ['op']);
    assert.ok(src.sent <= sentBefore + 10, 'the source must not keep producing after cancel');
  });

  it('an external AbortSignal cancels the run', async () => {
    const ac = new AbortController();
    const p = new Pipeline('external');
    p.from(counter()).to(gatedSink());
    const handle = p.run({ signal: ac.signal });
    await tick();
    ac.abort();
    assert.equal((await handle.done).state, 'cancelled');
  });

  it('graceful stop drains: everything the source emitted reaches the sink, which finishes', async () => {
    const src = counter();
    const sink = collector<number>();
    const p = new Pipeline('drain');
    p.from(src).to(sink);
    const handle = p.run();
    for (let k = 0; k < 30; k++) await tick();
    const summary = await handle.stop();
    assert.equal(summary.state, 'succeeded');
    assert.ok(src.sent > 0);
    assert.equal(sink.got.length, src.sent);
    assert.equal(sink.finished, true);
  });

  it('an error in one stage cancels the others, closes every resource and rejects with the stage named', async () => {
    const closed: string[] = [];
    let timerCleared = false;
    let timer: NodeJS.Timeout | undefined;
    const failing: Operator<number, number> = {
      open() {
        timer = setInterval(() => {}, 1000);
      },
      process(b, out) {
        if ((b.records[0] as number) >= 30) throw new Error('disk on fire');
        return out.emit(b);
      },
      close() {
        clearInterval(timer);
        timerCleared = true;
      },
    };
    const sink = collector<number>(closed);
    const p = new Pipeline('fail');
    p.from(counter({ closed })).via(failing, { name: 'burner' }).to(sink);
    await assert.rejects(p.run().done, (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.match(err.message, /stage `burner`.*disk on fire/);
      assert.equal(err.context.stage, 'burner');
      return true;
    });
    assert.equal(timerCleared, true);
    assert.deepEqual(closed.sort(), ['sink', 'source']);
    assert.equal(sink.finished, false, 'a failed run must not commit its sinks');
  });

  it('a sink that fails to open stops the run before any source reads, and closes everything', async () => {
    const closed: string[] = [];
    const src = counter({ closed, batches: 3 });
    const p = new Pipeline('open-fail');
    p.from(src).to({
      open() {
        throw new Error('permission denied: /out');
      },
      write() {},
      close: () => void closed.push('sink'),
    });
    await assert.rejects(p.run().done, /opening stage `sink`: permission denied/);
    assert.equal(src.sent, 0);
    assert.deepEqual(closed.sort(), ['sink', 'source']);
  });

  it('sends failed records to the dlq with stage, source and position, and keeps flowing', async () => {
    const dead = collector<DeadLetter>();
    const sink = collector<number>();
    let ctx: StageContext | undefined;
    const picky: Operator<number, number> = {
      open(c) {
        ctx = c;
      },
      process(b, out) {
        const keep: number[] = [];
        b.records.forEach((n, i) => {
          if (n % 10 === 3) ctx?.deadLetter(n, new Error(`odd record ${n}`), b.meta?.[i]);
          else keep.push(n);
        });
        return out.emit(batchOf(keep));
      },
    };
    const p = new Pipeline('dlq');
    p.from(counter({ batches: 5 }), { name: 'numbers' })
      .via(picky, { name: 'picky' })
      .to(sink);
    p.dlq(dead);
    const summary = await p.run().done;
    assert.equal(sink.got.length, 45);
    assert.equal(dead.got.length, 5);
    const first = dead.got[0] as DeadLetter;
    assert.equal(first.stage, 'picky');
    assert.equal(first.source, 'numbers');
    assert.deepEqual(first.position, { n: 3 });
    assert.equal(first.record, 3);
    assert.equal(first.error.message, 'odd record 3');
    assert.equal(summary.deadLetters, 5);
    assert.equal(summary.recordsWritten, 45, 'dead letters are not counted as written');
  });

  it('counts as written only what a sink kept: rows it dead-letters (a database rejected them) are not', async () => {
    const dead = collector<DeadLetter>();
    const kept: number[] = [];
    let ctx: StageContext | undefined;
    const table: Sink<number> = {
      open(c) {
        ctx = c;
      },
      write(b) {
        b.records.forEach((n, i) => {
          if (n % 4 === 0) ctx?.deadLetter(n, new Error(`duplicate key ${n}`), b.meta?.[i]);
          else kept.push(n);
        });
      },
    };
    const p = new Pipeline('rejecting-sink');
    p.from(counter({ batches: 3 })).to(table);
    p.dlq(dead);
    const summary = await p.run().done;
    assert.equal(dead.got.length, 8);
    assert.equal(summary.recordsWritten, kept.length);
    assert.equal(summary.recordsWritten, 22);
  });

  it("a source's dead letters reach the dlq whether it uses the context of `open` or of `run`", async () => {
    const dead = collector<DeadLetter>();
    const sink = collector<number>();
    let opened: SourceContext | undefined;
    const source: Source<number> = {
      open(c) {
        opened = c;
      },
      async run(out, c) {
        assert.equal(c, opened, 'one context per stage');
        (opened as SourceContext).deadLetter('bad 1', new Error('undecodable 1'));
        await out.emit(batchOf([1, 2]));
        c.deadLetter('bad 2', new Error('undecodable 2'));
      },
    };
    const p = new Pipeline('source-dlq');
    p.from(source, { name: 'reader' }).to(sink);
    p.dlq(dead);
    const summary = await p.run().done;
    assert.deepEqual(sink.got, [1, 2]);
    assert.deepEqual(
      dead.got.map((d) => [d.record, d.stage, d.error.message]),
      [
        ['bad 1', 'reader', 'undecodable 1'],
        ['bad 2', 'reader', 'undecodable 2'],
      ],
    );
    assert.equal(summary.deadLetters, 2);
  });

  it('fails with a clear message when a record is rejected and no dlq is configured', async () => {
    const p = new Pipeline('no-dlq');
    let ctx: StageContext | undefined;
    p.from(counter({ batches: 1 }))
      .via<number>(
        {
          open: (c) => {
            ctx = c;
          },
          process: (b) => ctx?.deadLetter(b.records[0], new Error('bad amount'), b.meta?.[0]),
        },
        { name: 'validate' },
      )
      .to(collector());
    await assert.rejects(p.run().done, (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, ErrorCode.NO_DLQ);
      assert.match(
        err.message,
        /stage `validate` rejected a record at \{"n":0\}: bad amount\. Configure a `dlq` output/,
      );
      return true;
    });
  });

  it('stops the run when the dead-letter rate exceeds maxErrorRate', async () => {
    let ctx: StageContext | undefined;
    const p = new Pipeline('rate');
    p.from(counter({ batches: 100 }))
      .via<number>({
        open: (c) => {
          ctx = c;
        },
        process(b, out) {
          const keep: number[] = [];
          for (const n of b.records) {
            if (n % 5 === 0) ctx?.deadLetter(n, new Error('bad'));
            else keep.push(n);
          }
          return out.emit(batchOf(keep));
        },
      })
      .to(collector());
    p.dlq(collector());
    await assert.rejects(
      p.run({ maxErrorRate: 0.1, errorRateMinRecords: 100 }).done,
      (err: unknown) =>
        err instanceof SluiceError && /above maxErrorRate 10\.00%.*raise `maxErrorRate`/.test(err.message),
    );
  });

  it('merges watermarks by minimum and aligns barriers across inputs', async () => {
    const sink = collector<string>();
    const p = new Pipeline('signals');
    const mk = (name: string, marks: number[]): Source<string> => ({
      async run(out) {
        for (const [i, m] of marks.entries()) {
          await out.emit(batchOf([`${name}${i}`]));
          await out.signal(watermark(m));
          if (i === 1) await out.signal(barrier(1));
        }
      },
    });
    const a = p.from(mk('a', [10, 20, 30]), { name: 'a' });
    const b = p.from(mk('b', [5, 25, 40]), { name: 'b' });
    a.merge([b]).to(sink);
    await p.run().done;
    const marks = sink.signals.filter((s) => s.kind === 'watermark').map((s) => (s as { time: number }).time);
    assert.ok(marks.length > 0);
    for (let i = 1; i < marks.length; i++)
      assert.ok((marks[i] as number) > (marks[i - 1] as number), 'watermarks only advance');
    // While both inputs are open the merged mark is their minimum, so a's first mark (10)
    // can never pass before b reported at least 10, and b's 5 is never skipped over by 10+.
    assert.ok(!marks.includes(10) || !marks.includes(5) || marks.indexOf(5) < marks.indexOf(10));
    assert.ok(
      marks.every((m) => [5, 10, 20, 25, 30, 40].includes(m)),
      `merged marks come from the inputs (got ${marks})`,
    );
    assert.deepEqual(
      sink.signals.filter((s) => s.kind === 'barrier'),
      [barrier(1)],
      'barrier 1 passes once, after both inputs delivered it',
    );
    // Records after the barrier on each input come after the barrier at the merge.
    assert.equal(sink.got.length, 6);
  });

  it('rejects a graph whose operator output goes nowhere, before running anything', async () => {
    const p = new Pipeline('dangling');
    p.from(counter({ batches: 1 })).via({ process: () => {} }, { name: 'lonely' });
    await assert.rejects(p.run().done, /the output of stage `lonely` goes nowhere/);
  });

  it('fails when a stage emits on a side output that is not connected', async () => {
    const p = new Pipeline('side');
    p.from(counter({ batches: 1 }))
      .via<number>({ process: (b, out) => out.emit(b, 'late') }, { name: 'win' })
      .to(collector());
    await assert.rejects(
      p.run().done,
      /stage `win` emitted 10 records on its output `late`, which is not connected/,
    );
  });

  it('fans out: each branch gets every batch', async () => {
    const s1 = collector<number>();
    const s2 = collector<number>();
    const p = new Pipeline('fan');
    const stream = p.from(counter({ batches: 3 }));
    stream.to(s1);
    stream.to(s2);
    await p.run().done;
    assert.equal(s1.got.length, 30);
    assert.deepEqual(s1.got, s2.got);
  });

  it("includes a stage's own metrics in the snapshot", async () => {
    let seen = 0;
    const p = new Pipeline('custom');
    p.from(counter({ batches: 2 }))
      .via<number>(
        {
          process(b, out) {
            seen += b.records.length;
            return out.emit(b);
          },
          metrics: () => ({ seen }),
        },
        { name: 'counting' },
      )
      .to(collector());
    const summary = await p.run().done;
    assert.deepEqual(summary.stages.find((s) => s.name === 'counting')?.custom, { seen: 20 });
  });

  describe('barrier acknowledgement without checkpoints', () => {
    /** A source that emits `batches` batches with barrier k after batch k, recording completions. */
    function acking(
      batches: number,
      completed: number[],
      written?: () => number,
      seen?: number[],
    ): Source<number> {
      return {
        async run(out) {
          for (let b = 1; b <= batches; b++) {
            await out.emit(batchOf([b]));
            await out.signal(barrier(b));
          }
        },
        onBarrierComplete(id) {
          completed.push(id);
          seen?.push(written?.() ?? -1);
        },
      };
    }

    it('tells the source once every sink, the dlq included, handled the barrier', async () => {
      const completed: number[] = [];
      const seen: number[] = [];
      const sink = collector<number>();
      const p = new Pipeline('acks');
      p.from(acking(5, completed, () => sink.got.length, seen)).to(
        Object.assign(sink, { durableOnBarrier: true }),
      );
      p.dlq(Object.assign(collector(), { durableOnBarrier: true }));
      await p.run().done;
      assert.deepEqual(completed, [1, 2, 3, 4, 5]);
      // Barrier k completes only after record k was written.
      for (let k = 0; k < seen.length; k++)
        assert.ok((seen[k] as number) >= k + 1, `barrier ${k + 1} before its record`);
    });

    it('waits for the slowest of several sinks', async () => {
      const completed: number[] = [];
      const slow = gatedSink();
      const p = new Pipeline('acks-fan');
      const s = p.from(acking(3, completed));
      s.to(Object.assign(collector(), { durableOnBarrier: true }));
      s.to(Object.assign(slow, { durableOnBarrier: true }));
      const handle = p.run();
      await slow.waiting;
      for (let k = 0; k < 20; k++) await tick();
      assert.deepEqual(completed, [], 'no barrier completes while a sink still holds its records');
      await handle.stop({ drain: false });
    });

    it('is not given when an operator holds state that only a checkpoint would cover', async () => {
      const completed: number[] = [];
      const p = new Pipeline('acks-state');
      p.from(acking(3, completed))
        .via<number>({ process: (b, out) => out.emit(b), snapshot: () => ({}) })
        .to(Object.assign(collector(), { durableOnBarrier: true }));
      await p.run().done;
      assert.deepEqual(completed, []);
    });

    it('is not given when a sink is not durable at a barrier (e.g. a file without checkpoints)', async () => {
      const completed: number[] = [];
      const p = new Pipeline('acks-file');
      const s = p.from(acking(3, completed));
      s.to(Object.assign(collector(), { durableOnBarrier: true }));
      s.to(collector());
      await p.run().done;
      assert.deepEqual(completed, []);
    });
  });
});

describe('StageContext.runScoped', () => {
  it('gives every stage of one run the same value, made once, and another run its own', async () => {
    const key = Symbol('test');
    const seen: { stage: string; value: { n: number } }[] = [];
    let made = 0;
    const init = () => ({ n: ++made });
    const source: Source<number> = {
      open(ctx) {
        seen.push({ stage: 'source', value: ctx.runScoped(key, init) });
      },
      async run(out) {
        await out.emit(batchOf([1]));
      },
    };
    const sink: Sink<number> = {
      open(ctx) {
        seen.push({ stage: 'sink', value: ctx.runScoped(key, init) });
      },
      write() {},
    };
    await new Pipeline('a').from(source).to(sink).run().done;
    await new Pipeline('b').from(source).to(sink).run().done;
    assert.deepEqual(
      seen.map((s) => [s.stage, s.value.n]),
      [
        ['sink', 1],
        ['source', 1],
        ['sink', 2],
        ['source', 2],
      ],
    );
    assert.equal(seen[0]?.value, seen[1]?.value);
  });
});
