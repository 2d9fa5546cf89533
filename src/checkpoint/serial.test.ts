import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serialize } from 'node:v8';
import type { SluiceError } from '../core/errors.ts';
import { deserializeState, serializeState } from './serial.ts';

function deepValue(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

describe('checkpoint serialisation', () => {
  it('round-trips state as v8.serialize does', () => {
    const state = { m: new Map([['k', 1n]]), s: new Set([1]) };
    assert.deepEqual(deserializeState(serializeState(state, 'x'), 'x'), state);
  });

  it('says what was stored and where it nests too deep, instead of overflowing the stack', () => {
    assert.throws(
      () => serializeState({ records: [deepValue(100_000)] }, 'checkpoint 3: the state of stage `w`'),
      (err: SluiceError) => {
        assert.equal(err.code, 'SLUICE_STAGE');
        assert.match(
          err.message,
          /^storing checkpoint 3: the state of stage `w`: it nests deeper than 512 levels of objects and arrays \(at `records\.0\.a\.a\.a\.a…`\); keep records and state flatter$/,
        );
        return true;
      },
    );
  });

  it('says what to do with stored state too deep to read back', () => {
    // v8.serialize takes more levels than v8.deserialize (3,293 against 1,646 on Node 24).
    let bytes: Buffer | undefined;
    for (const n of [2500, 2000, 1800]) {
      try {
        bytes = serialize(deepValue(n));
        break;
      } catch {}
    }
    assert.ok(bytes);
    assert.throws(
      () => deserializeState(bytes as Buffer, 'checkpoint 4: the state of stage `w`'),
      /^SluiceError: reading checkpoint 4: the state of stage `w`: it nests too deep for the stack; restore it once with a larger stack/,
    );
    assert.throws(
      () => deserializeState(Buffer.from([1, 2, 3]), 'checkpoint 5'),
      /^SluiceError: reading checkpoint 5: .*delete the checkpoint folder to start over/,
    );
  });
});
