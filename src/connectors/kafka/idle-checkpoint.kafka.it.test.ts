/**
 * An idle `kafka` source still takes checkpoints, against the real broker (`npm run services --
 * up kafka`): the CLI runs kafka → map → kafka with `exactlyOnce: true`, `checkpoint: { interval:
 * 1s }` and a short `transactionTimeout`; once the input topic goes quiet, the transaction
 * holding its last records must still be committed on the interval. Without barriers for the
 * idle source it stays open until the broker aborts it: a read_committed reader never sees those
 * records while the topic is quiet, and the run is fenced when data comes again.
 *
 * Run twice: with the default pipeline-scoped checkpoints, and with `scope: partition` (the
 * scale-out mode, one member here), where each checkpoint stores the state per partition and the
 * transaction's offsets carry the group generation.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createTopic, fresh, produce, readThroughSource } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PROJECT = new URL('../../../', import.meta.url).pathname;

/** The sink's `transactionTimeout`, ms. */
const TXN_TIMEOUT_MS = 4000;
/**
 * How long the input stays quiet: past the transaction timeout plus the broker's check for
 * timed-out transactions (`transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s by
 * default), so an open transaction would have been aborted.
 */
const QUIET_MS = TXN_TIMEOUT_MS + 10_000 + 6000;

/** Produces records `{ seq }` for `from` ≤ seq < `to` to `topic`, keyed over 31 keys. */
function produceSeqs(topic: string, from: number, to: number): Promise<void> {
  return produce(
    BROKERS,
    topic,
    Array.from({ length: to - from }, (_, i) => ({
      key: `k${(from + i) % 31}`,
      value: JSON.stringify({ seq: from + i }),
    })),
  );
}

/** The `seq` of each record a read_committed reader (Sluice's own source) sees in `topic`. */
async function committedSeqs(topic: string): Promise<number[]> {
  return (
    (await readThroughSource(BROKERS, topic, 'read_committed')) as { seq: number; doubled: number }[]
  ).map((r) => {
    assert.equal(r.doubled, r.seq * 2);
    return r.seq;
  });
}

/** Asserts that `seqs` holds each of 0 … n − 1 exactly once. */
function assertExactlyOnce(seqs: number[], n: number, when: string): void {
  const unique = new Set(seqs);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !unique.has(i));
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${when}: ${missing.length} of ${n} records not in the read_committed output`,
  );
  assert.equal(
    seqs.length,
    n,
    `${when}: ${seqs.length - unique.size} records twice in the read_committed output`,
  );
}

/**
 * Runs the pipeline described in the module comment with checkpoints of `scope`, through a quiet
 * spell, more data and a draining stop; asserts the read_committed output at each step.
 */
async function quietTopic(scope: 'pipeline' | 'partition'): Promise<void> {
  const input = await createTopic(BROKERS, 'idle-cp-in', 2);
  const output = await createTopic(BROKERS, 'idle-cp-out', 2);
  const N = 500;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-idle-cp-'));
  const file = join(dir, 'pipeline.yaml');
  const checkpoint =
    scope === 'partition'
      ? `{ interval: 1s, dir: ${join(dir, 'shared-state')}, scope: partition }`
      : '{ interval: 1s }';
  writeFileSync(
    file,
    `name: it-idle-cp-${randomUUID().slice(0, 8)}
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, start: earliest, batchSize: 100 }
pipeline:
  - map: { fields: { doubled: 'seq * 2' } }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true, transactionTimeout: ${TXN_TIMEOUT_MS}ms }
checkpoint: ${checkpoint}
`,
  );
  const child = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await produceSeqs(input, 0, N);
    // The topic stays quiet well past the transaction timeout.
    await new Promise((r) => setTimeout(r, QUIET_MS));
    assert.equal(child.exitCode, null, `the run ended while the topic was quiet: ${stderr}`);
    assertExactlyOnce(await committedSeqs(output), N, 'the topic quiet');
    assert.equal(child.exitCode, null, `the run ended while the topic was quiet: ${stderr}`);
    assert.doesNotMatch(stderr, /fenced/i);

    // Data again: the run goes on (not fenced), and commits the next records while quiet again.
    await produceSeqs(input, N, 2 * N);
    await new Promise((r) => setTimeout(r, 3000));
    assertExactlyOnce(await committedSeqs(output), 2 * N, 'after more data');
    assert.equal(child.exitCode, null, `the run failed after more data: ${stderr}`);

    child.kill('SIGTERM');
    assert.equal(await exited, 143, stderr); // a draining stop: Stopped, 128 + SIGTERM
    assertExactlyOnce(await committedSeqs(output), 2 * N, 'after the stop');
    assert.doesNotMatch(stderr, /fenced/i);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('an idle kafka source under checkpoints (real broker)', () => {
  test('a quiet topic still commits the exactly-once transaction on the checkpoint interval', () =>
    quietTopic('pipeline'));

  test('the same under partition-scoped checkpoints', () => quietTopic('partition'));
});
