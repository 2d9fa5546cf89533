import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import {
  commitAcrossRebalances,
  GroupGenerations,
  isStaleGeneration,
  type Membership,
} from './generations.ts';

/** The broker's answer as `@platformatic/kafka` 2.12 nests it: a response error holding protocol errors. */
function brokerError(apiId: string): Error {
  return Object.assign(new Error('Received response with error while executing API TxnOffsetCommit(v3)'), {
    errors: [Object.assign(new Error(`broker said ${apiId}`), { apiId })],
  });
}

const tick = () => new Promise((r) => setImmediate(r));

test('a partition owned in consecutive generations of the same member is kept; a gap, a missing generation or another member id breaks it', () => {
  const g = new GroupGenerations(30_000);
  g.confirm('m1', 4, ['t:0', 't:1', 't:2']);
  g.confirm('m1', 5, ['t:0', 't:1']); // t:2 given up
  g.confirm('m1', 6, ['t:0', 't:1', 't:2']); // t:2 back: had another owner meanwhile?
  const from: Membership = { memberId: 'm1', generation: 4 };
  assert.deepEqual(g.lostSince(['t:0', 't:1', 't:2'], from), ['t:2']);
  g.confirm('m1', 8, ['t:0', 't:1', 't:2']); // generation 7 not seen
  assert.deepEqual(g.lostSince(['t:0'], { memberId: 'm1', generation: 6 }), ['t:0']);
  assert.deepEqual(g.lostSince(['t:0'], { memberId: 'm1', generation: 8 }), []);
  g.confirm('m2', 9, ['t:0']); // rejoined under a new member id
  assert.deepEqual(g.lostSince(['t:0'], { memberId: 'm1', generation: 8 }), ['t:0']);
  // The revoke step confirms the new generation with what the member still owns; the join after it
  // may confirm the same generation again.
  g.confirm('m2', 9, ['t:0']);
  g.confirm('m2', 7, []); // older: ignored
  assert.deepEqual(g.current, { memberId: 'm2', generation: 9 });
  assert.deepEqual(g.lostSince(['t:0'], { memberId: 'm2', generation: 9 }), []);
});

test('stale-generation answers are recognised inside the client’s nested errors; UNKNOWN_MEMBER_ID is not one', () => {
  assert.equal(isStaleGeneration(brokerError('ILLEGAL_GENERATION')), true);
  assert.equal(isStaleGeneration(new Error('x', { cause: brokerError('REBALANCE_IN_PROGRESS') })), true);
  assert.equal(isStaleGeneration(brokerError('UNKNOWN_MEMBER_ID')), false);
  assert.equal(isStaleGeneration(new Error('ILLEGAL_GENERATION')), false);
});

/** A member in generation 4 owning t:0 and t:1, and a fake broker that accepts only `accepted`. */
function setup() {
  const clock = new ManualClock(0);
  const generations = new GroupGenerations(30_000);
  generations.confirm('m1', 4, ['t:0', 't:1']);
  const broker = { generation: 4, sent: [] as Membership[] };
  const consumer = { memberId: 'm1', generation: 4 };
  const commit = (partitions: string[]) =>
    commitAcrossRebalances({
      partitions,
      generations,
      from: generations.current,
      current: () => ({ ...consumer }),
      async send(member) {
        broker.sent.push(member);
        if (member.generation !== broker.generation) throw brokerError('ILLEGAL_GENERATION');
      },
      group: 'g',
      clock,
      signal: new AbortController().signal,
    });
  return { clock, generations, broker, consumer, commit };
}

test('a commit refused for a stale generation is sent again with the generation the member is confirmed in next', async () => {
  const { generations, broker, consumer, commit } = setup();
  broker.generation = 5; // the group completed a join; the member's JoinGroup response is on its way
  let settled = false;
  const done = commit(['t:0', 't:1']).finally(() => {
    settled = true;
  });
  await tick();
  assert.equal(settled, false, 'waits for the member to be confirmed in the new generation');
  consumer.generation = 5;
  // The revoke step of a cooperative round: generation 5, still owning what it is about to give up.
  generations.confirm('m1', 5, ['t:0', 't:1']);
  await done;
  assert.deepEqual(broker.sent, [
    { memberId: 'm1', generation: 4 },
    { memberId: 'm1', generation: 5 },
  ]);
});

test('a commit is refused when a partition it covers was not this member’s in the new generation', async () => {
  const { generations, broker, commit } = setup();
  broker.generation = 5;
  const done = commit(['t:0', 't:1']);
  await tick();
  generations.confirm('m1', 5, ['t:0']); // t:1 went elsewhere (eager rebalance, or lost)
  await assert.rejects(done, /`t:1` may have had another owner .* generation 4 → member `m1` generation 5/);
  assert.equal(broker.sent.length, 1, 'not sent again');
});

test('a commit fails once no newer generation is confirmed within the wait, and at once on other errors', async () => {
  const { clock, broker, commit } = setup();
  broker.generation = 5;
  const done = commit(['t:0']);
  await tick();
  clock.advance(30_000);
  await assert.rejects(done, /did not finish its rebalance within 30000 ms/);

  const other = setup();
  other.broker.generation = 4;
  await other.commit(['t:0']);
  assert.equal(other.broker.sent.length, 1);
});
