/**
 * The coordinator's timer path sends a barrier for an idle source only while the source says its
 * position is exact (`Source.idleBarrierReady`): a source filling a partial batch counts records
 * it has not emitted yet, and a checkpoint stored then would skip them on restore.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { batchOf } from '../core/message.ts';
import type { Logger, Source } from '../core/stage.ts';
import { Pipeline } from '../pipeline.ts';
import { memoryBackend } from '../state/backend.ts';
import { CheckpointCoordinator } from './coordinator.ts';
import { CheckpointStore } from './store.ts';

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} };
const turn = () => new Promise((r) => setImmediate(r));
const seqs = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ n: from + i }));

describe('idle barriers and idleBarrierReady', () => {
  it('no barrier while the source holds records its position counts; one with the exact position once it emitted them', async () => {
    const store = new CheckpointStore(memoryBackend());
    const clock = new ManualClock(0);
    let next = 0;
    let ready = true;
    let release: (() => void) | undefined;
    let written = 0;
    // Emits 10 records, then takes 5 more into a batch it does not emit until released (as the
    // kafka source waits for a partial batch to fill): `position()` already counts them.
    const holding: Source = {
      idleBarriers: true,
      idleBarrierReady: () => ready,
      async run(out, ctx) {
        next = 10;
        await out.emit(batchOf(seqs(0, 10)));
        next = 15;
        ready = false;
        await new Promise<void>((r) => {
          release = r;
        });
        await out.emit(batchOf(seqs(10, 15)));
        ready = true;
        if (ctx.stopSignal.aborted) return; // stopped while it held the batch (a failed assertion)
        await new Promise<void>((r) => ctx.stopSignal.addEventListener('abort', () => r(), { once: true }));
      },
      position: () => ({ next }),
      restore() {},
    };
    const p = new Pipeline('idle-ready');
    p.from(holding, { name: 'in' }).to(
      {
        write(b) {
          written += b.records.length;
        },
      },
      { name: 'out' },
    );
    const checkpoint = new CheckpointCoordinator({ store, intervalMs: 1000, clock, log: quiet });
    const stored = async () => (await store.latest())?.sources.in as { next: number } | undefined;
    const handle = p.run({ clock, checkpoint, log: quiet });
    try {
      for (let i = 0; i < 100 && release === undefined; i++) await turn();
      assert.ok(release !== undefined, 'the source never reached its partial batch');
      // Many checkpoint intervals while the source holds the partial batch.
      for (let i = 0; i < 20; i++) {
        clock.advance(500);
        await turn();
      }
      const during = await stored();
      assert.equal(written, 10);
      assert.ok(
        during === undefined || during.next === 10,
        `a checkpoint stored position ${JSON.stringify(during)} while only 10 records were emitted`,
      );
      release();
      for (let i = 0; i < 100 && (await stored())?.next !== 15; i++) {
        clock.advance(500);
        await turn();
      }
      assert.equal(written, 15);
      assert.deepEqual(await stored(), { next: 15 }, 'no checkpoint once the source was idle and exact');
    } finally {
      release?.(); // a failed assertion must not leave the source waiting
      await handle.stop();
    }
  });
});
