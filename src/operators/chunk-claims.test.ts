import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkClaims, MAX_CHUNKS } from './chunk-claims.ts';

/**
 * Plays the worker (front) and the caller (back) in the interleaving `turns` gives (true: the
 * worker's turn), each stopping at its first refused claim, as step-worker.ts and
 * parallel-step.ts do; returns who ran each record and what the worker reported as done.
 */
function race(length: number, turns: readonly boolean[]) {
  let turn = 0;
  const next = () => turns[turn++ % Math.max(1, turns.length)] ?? true;
  const ring = ChunkClaims.ring(3);
  // A used slot beside it must not leak into this one.
  new ChunkClaims(ring, 0, 500).claimBack(0);
  const claims = new ChunkClaims(ring, 1, length).reset();
  const worker = new ChunkClaims(ring, 1, length);
  const ran: string[] = new Array(length).fill('');
  let front = 0;
  let back = claims.chunks - 1;
  let frontDone = false;
  let backDone = false;
  let done = 0;
  while (!frontDone || !backDone) {
    if (!frontDone && (backDone || next())) {
      if (front < worker.chunks && worker.claimFront(front)) {
        for (let i = worker.recordsBefore(front); i < worker.recordsBefore(front + 1); i++) ran[i] += 'w';
        done = worker.recordsBefore(front + 1);
        front++;
      } else frontDone = true;
    } else if (back >= 0 && claims.claimBack(back)) {
      for (let i = claims.recordsBefore(back); i < claims.recordsBefore(back + 1); i++) ran[i] += 'c';
      back--;
    } else backDone = true;
  }
  return { ran, done };
}

describe('ChunkClaims', () => {
  it('cuts a share into at most MAX_CHUNKS chunks that cover every record once', () => {
    for (const length of [0, 1, 2, 31, 32, 33, 100, 1024, 5000]) {
      const c = new ChunkClaims(ChunkClaims.ring(1), 0, length);
      assert.ok(c.chunks <= MAX_CHUNKS, `${length}: ${c.chunks} chunks`);
      assert.equal(c.recordsBefore(0), 0);
      assert.equal(c.recordsBefore(c.chunks), length);
      for (let k = 0; k < c.chunks; k++) assert.ok(c.recordsBefore(k + 1) > c.recordsBefore(k));
    }
  });

  it('a chunk is claimed once: by the first side that asks', () => {
    const ring = ChunkClaims.ring(2);
    const c = new ChunkClaims(ring, 1, 64).reset();
    const other = new ChunkClaims(ring, 1, 64);
    assert.equal(c.claimBack(5), true);
    assert.equal(other.claimFront(5), false);
    assert.equal(c.claimBack(5), false);
    assert.equal(other.claimFront(0), true);
    assert.equal(c.claimBack(0), false);
    assert.equal(new ChunkClaims(ring, 0, 64).claimFront(5), true, 'slot 0 is another set');
    c.reset();
    assert.equal(other.claimFront(5), true, 'free again after reset');
  });

  it('refuses a slot outside its ring', () => {
    assert.throws(() => new ChunkClaims(ChunkClaims.ring(2), 2, 10), /claim slot 2 is outside a ring of 2/);
    assert.throws(() => new ChunkClaims(ChunkClaims.ring(2), -1, 10), /claim slot -1/);
  });

  it('in any interleaving the worker runs a prefix up to `done` and the caller the rest, each record once', () => {
    fc.assert(
      fc.property(fc.nat(300), fc.array(fc.boolean(), { maxLength: 80 }), (length, turns) => {
        const { ran, done } = race(length, turns);
        assert.ok(
          ran.every((r, i) => r === (i < done ? 'w' : 'c')),
          `length ${length}, done ${done}: ${ran.join(',')}`,
        );
      }),
      { numRuns: 500 },
    );
  });
});
