/** What the group has not read in partitions other members own (`unread.ts`), against a fake consumer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeUnread, type GroupOffsets, unreadElsewhere } from './unread.ts';

/** A consumer answering with fixed end, beginning and committed offsets of topic `t` (3 partitions). */
function consumer(committed: bigint[], ends = [100n, 100n, 100n], beginnings = [10n, 0n, 0n]): GroupOffsets {
  return {
    async listOffsets({ timestamp }) {
      return new Map([['t', timestamp === -2n ? beginnings : ends]]);
    },
    async listCommittedOffsets({ topics }) {
      assert.deepEqual(
        topics.map((t) => t.topic),
        ['t'],
      );
      return new Map([['t', committed]]);
    },
  };
}

describe('unreadElsewhere', () => {
  it('lists partitions others own whose commit is below the end, not the ones this member owns', async () => {
    const got = await unreadElsewhere(consumer([40n, 100n, 5n]), ['t'], new Set(['t:2']), 'earliest');
    assert.deepEqual(got, [{ partition: 't:0', committed: 40, end: 100, unread: 60 }]);
  });

  it('counts a partition without a commit from its beginning, unless the start is `latest`', async () => {
    const c = consumer([-1n, 100n, 100n]);
    assert.deepEqual(await unreadElsewhere(c, ['t'], new Set(), 'earliest'), [
      { partition: 't:0', committed: undefined, end: 100, unread: 90 },
    ]);
    assert.deepEqual(await unreadElsewhere(c, ['t'], new Set(), 'latest'), []);
  });

  it('asks nothing more when this member owns every partition', async () => {
    const c = consumer([0n, 0n, 0n]);
    c.listCommittedOffsets = () => Promise.reject(new Error('not asked'));
    assert.deepEqual(await unreadElsewhere(c, ['t'], new Set(['t:0', 't:1', 't:2']), 'earliest'), []);
  });
});

describe('describeUnread', () => {
  it('names the total, each partition with its commit and end, and how many more past eight', () => {
    assert.equal(
      describeUnread([
        { partition: 'o:3', committed: 800, end: 2000, unread: 1200 },
        { partition: 'o:4', committed: undefined, end: 5, unread: 5 },
      ]),
      '1205 messages in 2 partitions: `o:3` (committed 800, end 2000), `o:4` (no commit, end 5)',
    );
    const ten = Array.from({ length: 10 }, (_, i) => ({
      partition: `o:${i}`,
      committed: 0,
      end: 1,
      unread: 1,
    }));
    assert.match(
      describeUnread(ten),
      /^10 messages in 10 partitions: .*`o:7` \(committed 0, end 1\), and 2 more$/,
    );
  });
});
