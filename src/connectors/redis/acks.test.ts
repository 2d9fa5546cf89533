import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.ts';
import type { SourceContext } from '../../core/stage.ts';
import { Acknowledgements } from './acks.ts';
import type { GroupScope } from './group.ts';
import { EntryIntake, type Taken } from './intake.ts';

/** A stage context that records warnings and dead letters. */
function context() {
  const warnings: string[] = [];
  const dead: { record: unknown; error: unknown }[] = [];
  const ctx = {
    name: 'in',
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    clock: new ManualClock(0),
    log: { info() {}, warn: (m: string) => warnings.push(m), error() {} },
    deadLetter: (record: unknown, error: unknown) => dead.push({ record, error }),
    checkpointing: false,
  } as unknown as SourceContext;
  return { ctx, warnings, dead };
}

/** A client whose pipelined XACKs are recorded, and fail while `failing` is set. */
function fakeRedis() {
  const acked: string[][] = [];
  const state = { failing: false };
  const client = {
    pipeline() {
      const calls: string[][] = [];
      return {
        xack(stream: string, _group: string, ...ids: string[]) {
          calls.push([stream, ...ids]);
        },
        async exec() {
          if (state.failing) throw new Error('Connection is closed.');
          acked.push(...calls);
          return calls.map(() => [null, 1]);
        },
      };
    },
  } as unknown as Redis;
  return { client, acked, state };
}

function scopeOf(ctx: SourceContext): GroupScope {
  return {
    streams: ['a', 'b'],
    group: 'g',
    consumer: 'c',
    where: 'redis://x',
    names: '`a`, `b`',
    ctx: () => ctx,
  };
}

describe('redis acknowledgements', () => {
  it('a barrier acknowledges what was emitted before it, by stream, and never more', async () => {
    const { ctx } = context();
    const redis = fakeRedis();
    const acks = new Acknowledgements(scopeOf(ctx), () => redis.client);
    acks.hold('a', '1-0');
    acks.hold('b', '1-1');
    acks.hold('a', '2-0');
    acks.emitted();
    const id = acks.nextBarrier();
    acks.hold('a', '3-0'); // handed on after the barrier: not covered
    await acks.barrierComplete(id);
    assert.deepEqual(redis.acked, [
      ['a', '1-0', '2-0'],
      ['b', '1-1'],
    ]);
    assert.equal(acks.acked, 3);
    assert.equal(acks.held.size, 1);
  });

  it('a failed XACK keeps the entries held, says so, and the next call covers them', async () => {
    const { ctx, warnings } = context();
    const redis = fakeRedis();
    const acks = new Acknowledgements(scopeOf(ctx), () => redis.client);
    acks.hold('a', '1-0');
    acks.hold('a', '2-0');
    redis.state.failing = true;
    await acks.through(1);
    assert.equal(acks.acked, 0);
    assert.equal(acks.errors, 1);
    assert.match(
      warnings[0] as string,
      /^Acknowledging 1 entries of `a`, `b` for group `g` failed: Connection is closed\./,
    );
    redis.state.failing = false;
    await acks.through(2);
    assert.deepEqual(redis.acked, [['a', '1-0', '2-0']]);
    assert.equal(acks.held.size, 0);
  });
});

describe('redis entry intake', () => {
  it('decodes, dead-letters what cannot be decoded or was deleted, skips what is held or covered', () => {
    const { ctx, dead } = context();
    const scope = scopeOf(ctx);
    const acks = new Acknowledgements(scope, () => undefined);
    const intake = new EntryIntake(scope, acks, 'data', 'json');
    intake.covered = new Map([['a', new Set(['4-0'])]]);
    const out: Taken = { records: [], meta: [] };
    const n = intake.take(
      'a',
      [
        ['1-0', ['data', '{"x":1}']],
        ['2-0', ['data', 'not json']],
        ['3-0', null],
        ['4-0', ['data', '{"x":4}']],
      ],
      out,
      true,
    );
    assert.equal(n, 4, 'every entry is taken (held)');
    assert.deepEqual(out.records, [{ x: 1 }]);
    assert.deepEqual(out.meta[0], { source: 'in', position: { stream: 'a', id: '1-0' }, timestamp: 1 });
    assert.deepEqual(
      dead.map((d) => d.record),
      [
        { stream: 'a', id: '2-0', fields: { data: 'not json' } },
        { stream: 'a', id: '3-0', fields: null },
      ],
    );
    assert.equal(intake.coveredSkipped, 1);
    assert.equal(acks.held.size, 4);
    // The same entries again (a re-read after a reconnect): all held already.
    assert.equal(intake.take('a', [['1-0', ['data', '{"x":1}']]], out, true), 0);
  });
});
