/** What this member has not read of its own partitions (`own-unread.ts`), against a fake consumer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type EndOffsets,
  type OwnUnread,
  type OwnUnreadVerdict,
  OwnUnreadWait,
  unreadOwned,
} from './own-unread.ts';

/** A consumer answering topic `t` (3 partitions) with these high watermarks and last stable offsets. */
function consumer(high: bigint[], stable: bigint[]): EndOffsets & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    async listOffsets({ timestamp, isolationLevel }) {
      assert.equal(timestamp, -1n);
      asked.push(isolationLevel ?? -1);
      return new Map([['t', isolationLevel === 1 ? stable : high]]);
    },
  };
}

const all = new Set(['t:0', 't:1', 't:2']);

/** Positions of `t:0`, `t:1` and `t:2`. */
const at = (...offsets: number[]) => new Map(offsets.map((o, p) => [`t:${p}`, o]));

describe('unreadOwned', () => {
  it('lists owned partitions whose position is below the last stable offset (the stalled reader of the eos test)', async () => {
    const c = consumer([5806n, 5417n, 3502n], [5806n, 5417n, 3502n]);
    const positions = at(4313, 1221, 3502);
    assert.deepEqual(await unreadOwned(c, all, positions, 'read_committed'), [
      { partition: 't:0', position: 4313, end: 5806, highWatermark: 5806, heldByTransaction: false },
      { partition: 't:1', position: 1221, end: 5417, highWatermark: 5417, heldByTransaction: false },
    ]);
  });

  it('read_committed: read up to an LSO below the high watermark is held by an open transaction, not unread', async () => {
    const c = consumer([100n, 50n, 0n], [80n, 50n, 0n]);
    const positions = at(80, 50, 0);
    assert.deepEqual(await unreadOwned(c, all, positions, 'read_committed'), [
      { partition: 't:0', position: 80, end: 80, highWatermark: 100, heldByTransaction: true },
    ]);
  });

  it('read_uncommitted: the end is the high watermark, and the LSO is not asked', async () => {
    const c = consumer([100n, 50n, 0n], [80n, 50n, 0n]);
    const positions = at(80, 50, 0);
    assert.deepEqual(await unreadOwned(c, all, positions, 'read_uncommitted'), [
      { partition: 't:0', position: 80, end: 100, highWatermark: 100, heldByTransaction: false },
    ]);
    assert.deepEqual(c.asked, [0]);
  });

  it('only owned partitions count; one without a known position is unread unless empty; none owned asks nothing', async () => {
    const c = consumer([10n, 0n, 7n], [10n, 0n, 7n]);
    assert.deepEqual(await unreadOwned(c, new Set(['t:0', 't:1']), new Map(), 'read_committed'), [
      { partition: 't:0', position: undefined, end: 10, highWatermark: 10, heldByTransaction: false },
    ]);
    const none = consumer([], []);
    assert.deepEqual(await unreadOwned(none, new Set(), new Map(), 'read_committed'), []);
    assert.deepEqual(none.asked, []);
  });
});

const stalled: OwnUnread = {
  partition: 't:1',
  position: 1221,
  end: 5417,
  highWatermark: 5417,
  heldByTransaction: false,
};
const held: OwnUnread = {
  partition: 't:0',
  position: 80,
  end: 80,
  highWatermark: 100,
  heldByTransaction: true,
};

/** The line a verdict says under `key`, after checking its action. */
function said(verdict: OwnUnreadVerdict, action: OwnUnreadVerdict['action'], key: string): string {
  assert.equal(verdict.action, action);
  return (verdict as unknown as Record<string, string>)[key] ?? '';
}

describe('OwnUnreadWait', () => {
  it('ends only when nothing of its own is unread', () => {
    assert.deepEqual(new OwnUnreadWait({ stalled: 100, transaction: 100 }).decide([], 0), { action: 'end' });
  });

  it('records it can read: waits (saying so once), then fails the run past the bound instead of ending', () => {
    const w = new OwnUnreadWait({ stalled: 60_000, transaction: 70_000 });
    assert.match(
      said(w.decide([stalled], 1000), 'wait', 'info'),
      /has not read 4196 messages in `t:1` \(position 1221, end 5417\); reading on \(up to 60000 ms/,
    );
    assert.deepEqual(w.decide([stalled], 30_000), { action: 'wait' });
    assert.match(
      said(w.decide([stalled], 61_000), 'fail', 'message'),
      /no record arrived for 60000 ms .*`t:1` \(position 1221, end 5417\)\. Ending as finished would lose them/,
    );
  });

  it('a record arriving (reset) starts the wait over', () => {
    const w = new OwnUnreadWait({ stalled: 60_000, transaction: 70_000 });
    w.decide([stalled], 0);
    w.reset();
    assert.equal(w.decide([stalled], 61_000).action, 'wait');
    assert.equal(w.decide([stalled], 121_000).action, 'fail');
  });

  it('an open transaction holding records back: waits with a warning naming it, then ends with one', () => {
    const w = new OwnUnreadWait({ stalled: 60_000, transaction: 70_000 });
    assert.match(
      said(w.decide([held], 0), 'wait', 'warn'),
      /open transaction holds back `t:0` \(position 80, last stable offset 80, high watermark 100: 20 messages behind an open transaction\); waiting up to 70000 ms/,
    );
    assert.deepEqual(w.decide([held], 10_000), { action: 'wait' });
    const last = w.decide([held], 70_000);
    assert.equal(last.action, 'end');
    assert.match(
      (last as { warn: string }).warn,
      /still hold back `t:0` .* after 70000 ms: read_committed cannot read/,
    );
  });

  it('readable records come before a held transaction: it keeps reading', () => {
    const w = new OwnUnreadWait({ stalled: 60_000, transaction: 1 });
    assert.equal(w.decide([held, stalled], 0).action, 'wait');
    assert.equal(w.decide([held, stalled], 5).action, 'wait');
  });
});
