/**
 * Partition-scoped state under exactly-once: each entry keeps the version it replaced, and `load`
 * with the group's committed offsets resumes from the newest version not ahead of them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serialize } from 'node:v8';
import { memoryBackend } from '../state/backend.ts';
import { chooseVersion, type PartitionEntry, PartitionStates } from './partitions.ts';

const slice = (n: number) => new Uint8Array(serialize({ count: n }));
const warnings: string[] = [];
const log = { info() {}, warn: (m: string) => warnings.push(m), error() {} };

/** A store holding `p0` at checkpoints 1 (offset 10) and 2 (offset 20), as one process writes them. */
async function storeWithTwoCheckpoints(): Promise<PartitionStates> {
  const states = new PartitionStates(memoryBackend(), log);
  await states.load('g', ['t:0']);
  await states.save(
    1,
    new Map([['input', { 't:0': 10 }]]),
    new Map([['win', new Map([['t:0', slice(10)]])]]),
  );
  await states.save(
    2,
    new Map([['input', { 't:0': 20 }]]),
    new Map([['win', new Map([['t:0', slice(20)]])]]),
  );
  return states;
}

test('chooseVersion: the newest version not ahead of the committed offset', () => {
  const operators = new Map<string, Uint8Array>();
  const entry: PartitionEntry = {
    version: 1,
    checkpoint: 3,
    offset: 90,
    operators,
    previous: { checkpoint: 2, offset: 60, operators },
  };
  assert.deepEqual(chooseVersion(entry, 90), { chosen: entry, dropped: [] });
  assert.deepEqual(chooseVersion(entry, 60), { chosen: entry.previous, dropped: [entry] });
  assert.deepEqual(chooseVersion(entry, 10), { chosen: undefined, dropped: [entry, entry.previous] });
  // Committed past the state (the end of input commits without a checkpoint): the newest, kept.
  assert.deepEqual(chooseVersion(entry, 120), { chosen: entry, dropped: [] });
  // No commit at all (expired, deleted): no evidence against the entry.
  assert.deepEqual(chooseVersion(entry, undefined), { chosen: entry, dropped: [] });
  // An entry written before `previous` existed.
  const old: PartitionEntry = { version: 1, checkpoint: 1, offset: 5, operators };
  assert.deepEqual(chooseVersion(old, 0), { chosen: undefined, dropped: [old] });
});

test('a new owner whose group committed checkpoint 1 resumes from its state, and the store forgets checkpoint 2', async () => {
  const states = await storeWithTwoCheckpoints();
  const owner = new PartitionStates(states.backend, log);
  warnings.length = 0;
  const resume = await owner.load('g', ['t:0'], async (names) => {
    assert.deepEqual(names, ['t:0']);
    return new Map([['t:0', 10]]);
  });
  assert.deepEqual(resume.get('t:0'), { offset: 10 });
  assert.deepEqual(owner.loaded('win', 't:0'), { count: 10 });
  assert.equal(owner.stats.rolledBack, 1);
  assert.match(
    warnings.join('\n'),
    /state stored at offset 20 \(checkpoint 2\) was dropped.*committed offset 10/,
  );
  // The rolled-back entry is what the next member finds, even without committed offsets.
  const next = new PartitionStates(states.backend, log);
  assert.deepEqual((await next.load('g', ['t:0'])).get('t:0'), { offset: 10 });
});

test('the version replaced stays as `previous`, so a second crash rolls back one checkpoint again', async () => {
  const states = await storeWithTwoCheckpoints();
  // Checkpoint 3 moves the offset: checkpoint 2 becomes the previous version.
  await states.save(
    3,
    new Map([['input', { 't:0': 30 }]]),
    new Map([['win', new Map([['t:0', slice(30)]])]]),
  );
  const owner = new PartitionStates(states.backend, log);
  const resume = await owner.load('g', ['t:0'], async () => new Map([['t:0', 20]]));
  assert.deepEqual(resume.get('t:0'), { offset: 20 });
  assert.deepEqual(owner.loaded('win', 't:0'), { count: 20 });
});

test('committed offsets matching the newest version load it unchanged; below every version start the partition over', async () => {
  const states = await storeWithTwoCheckpoints();
  const same = new PartitionStates(states.backend, log);
  assert.deepEqual((await same.load('g', ['t:0'], async () => new Map([['t:0', 20]]))).get('t:0'), {
    offset: 20,
  });
  assert.equal(same.stats.rolledBack, 0);
  const over = new PartitionStates(states.backend, log);
  const resume = await over.load('g', ['t:0'], async () => new Map([['t:0', 3]]));
  assert.equal(resume.has('t:0'), false, 'no state: the partition starts from the committed offset');
  assert.equal(over.loaded('win', 't:0'), undefined);
  assert.equal(await states.backend.read('partitions/g/t/0'), undefined, 'the entry is deleted');
});

test('the committed offsets are read before the entries (a checkpoint still being stored is complete by then)', async () => {
  const states = await storeWithTwoCheckpoints();
  const owner = new PartitionStates(states.backend, log);
  const resume = await owner.load('g', ['t:0'], async () => {
    // The previous owner's transaction commits checkpoint 3 while the new owner waits for it.
    await states.save(3, new Map([['input', { 't:0': 30 }]]), new Map());
    return new Map([['t:0', 30]]);
  });
  assert.deepEqual(resume.get('t:0'), { offset: 30 });
});

test('a damaged `previous` is reported with what to do', async () => {
  const backend = memoryBackend();
  await backend.write(
    new Map([
      [
        'partitions/g/t/0',
        serialize({ version: 1, checkpoint: 2, offset: 20, operators: new Map(), previous: { offset: 'x' } }),
      ],
    ]),
  );
  const states = new PartitionStates(backend, log);
  await assert.rejects(
    states.load('g', ['t:0']),
    /reading partition state `partitions\/g\/t\/0`: not a partition entry/,
  );
});

test('committed past the newest version: its state is loaded, and the partition resumes at the committed offset (a checkpoint before the next record does not move the group back)', async () => {
  const states = await storeWithTwoCheckpoints();
  const owner = new PartitionStates(states.backend, log);
  warnings.length = 0;
  const resume = await owner.load('g', ['t:0'], async () => new Map([['t:0', 35]]));
  assert.deepEqual(resume.get('t:0'), { offset: 35 });
  assert.deepEqual(owner.loaded('win', 't:0'), { count: 20 });
  assert.equal(owner.stats.rolledBack, 0);
  assert.match(warnings.join('\n'), /committed offset 35, past the stored state \(offset 20\).*resume at 35/);
});
