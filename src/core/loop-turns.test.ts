import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pipeline } from '../pipeline.ts';
import { LoopTurns } from './loop-turns.ts';
import type { Sink, Source } from './stage.ts';

describe('LoopTurns', () => {
  it('says a turn is due at most once per interval', () => {
    let now = 1000;
    const turns = new LoopTurns(50, () => now);
    assert.equal(turns.due(), false);
    now = 1049;
    assert.equal(turns.due(), false);
    now = 1050;
    assert.equal(turns.due(), true);
    assert.equal(turns.due(), false);
    now = 1200;
    assert.equal(turns.due(), true);
  });

  it('lets a timer run while a source that never waits on I/O keeps emitting', async () => {
    // Channel hand-offs are microtasks: without forced turns this source would reach CAP
    // before the timer below could fire.
    const CAP = 300_000;
    let fired = false;
    let batches = 0;
    const source: Source<number> = {
      async run(out) {
        while (!fired && batches < CAP) {
          batches++;
          await out.emit({ kind: 'batch', records: [1, 2, 3, 4, 5, 6, 7, 8] });
        }
      },
    };
    let written = 0;
    const sink: Sink<number> = {
      write(b) {
        written += b.records.length;
      },
    };
    const done = new Pipeline('loop-turns')
      .from(source)
      .map((n) => n * 2)
      .to(sink)
      .run().done;
    setTimeout(() => {
      fired = true;
    }, 0);
    await done;
    assert.ok(fired);
    assert.ok(batches < CAP, `the timer fired only after ${batches} batches, at the end of the run`);
    assert.equal(written, batches * 8);
  });
});
