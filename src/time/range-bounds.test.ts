import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { fixedBounds, RangeBounds } from './range-bounds.ts';

describe('RangeBounds', () => {
  it('claims pieces up to the end, and the end moves down only past what is claimed', () => {
    const b = RangeBounds.create(100, 1000);
    assert.equal(b.claim(100, 300), 400);
    assert.equal(b.claimed(), 400);
    assert.equal(b.shrink(400), false, 'a claimed byte cannot be taken');
    assert.equal(b.shrink(1000), false, 'the end itself is no cut');
    assert.equal(b.shrink(700), true);
    assert.equal(b.end(), 700);
    assert.equal(b.claim(400, 500), 700, 'a claim stops at the new end');
    assert.equal(b.claim(700, 500), 700, 'nothing is left');
    assert.equal(fixedBounds(50).claim(40, 100), 50);
    assert.equal(fixedBounds(50).claim(50, 100), 50);
  });

  it('never lets a reader on another thread claim past an end moved while it reads', async () => {
    const size = 2_000_000;
    const b = RangeBounds.create(0, size);
    // The worker claims 1-byte pieces as fast as it can and reports where it stopped.
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const lock = new Int32Array(workerData, 0, 1);
      const at = new BigInt64Array(workerData, 8, 2);
      let pos = 0;
      for (;;) {
        while (Atomics.compareExchange(lock, 0, 0, 1) !== 0);
        const end = Number(Atomics.load(at, 1));
        const next = pos < end ? pos + 1 : pos;
        if (next > Number(Atomics.load(at, 0))) Atomics.store(at, 0, BigInt(next));
        Atomics.store(lock, 0, 0);
        if (next === pos) break;
        pos = next;
      }
      parentPort.postMessage(pos);
    `;
    const w = new Worker(code, { eval: true, workerData: b.buffer });
    const stopped = new Promise<number>((resolve) => w.once('message', resolve));
    let cut = size;
    for (let k = 0; k < 200; k++) {
      const c = b.claimed() + 5_000;
      if (c < cut && b.shrink(c)) cut = c;
    }
    const pos = await stopped;
    await w.terminate();
    assert.equal(pos, b.end(), 'the reader stopped exactly at the final end');
    assert.equal(b.end(), cut);
  });
});
