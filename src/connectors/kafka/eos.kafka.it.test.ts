/**
 * Exactly-once Kafka → Kafka against the real broker (`npm run services -- up kafka`): the CLI
 * runs kafka → map → kafka with `exactlyOnce: true` and count-based checkpoints, is SIGKILLed
 * several times mid-run and restarted, and a `read_committed` consumer of the output must see
 * every input record exactly once. Also the configuration errors of `exactlyOnce`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Consumer, Producer } from '@platformatic/kafka';
import type { Logger } from '../../core/stage.ts';
import { createTopic, fresh, readThroughSource } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PROJECT = new URL('../../../', import.meta.url).pathname;

let producer: Producer<Buffer, Buffer, Buffer, Buffer>;

before(async () => {
  producer = new Producer({
    clientId: 'sluice-eos-it',
    bootstrapBrokers: BROKERS,
    autocreateTopics: false,
    idempotent: true,
  });
});

after(async () => {
  await producer.close();
});

/** The sum of `topic`'s end offsets: messages written so far, committed or not (plus markers). */
async function endOffsetTotal(topic: string): Promise<number> {
  const c = new Consumer({ clientId: 'sluice-eos-it', groupId: fresh('lo'), bootstrapBrokers: BROKERS });
  try {
    const offsets = await c.listOffsets({ topics: [topic], isolationLevel: 0 });
    return Number((offsets.get(topic) ?? []).reduce((s, o) => s + o, 0n));
  } finally {
    await c.close(true);
  }
}

/**
 * Every record of `topic` as Sluice's own `kafka` source reads it at `isolation`, so the test
 * also proves the source's read_committed filtering (`read-committed.ts`). Ends 3 s after the
 * last message (the runs are over, so everything is there).
 */
async function readAll(topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<unknown[]> {
  return readThroughSource(BROKERS, topic, isolation);
}

const _quiet: Logger = { info() {}, warn() {}, error() {} };

function cli(
  file: string,
  dir: string,
  env: Record<string, string> = {},
): { child: ReturnType<typeof spawn>; stderr: () => string } {
  const child = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  return { child, stderr: () => err };
}

describe('kafka exactly-once (real broker)', () => {
  test('SIGKILLed three times mid-run: the read_committed output holds every input record exactly once', async () => {
    const input = await createTopic(BROKERS, 'in', 3);
    const output = await createTopic(BROKERS, 'out', 3);
    const N = 12_000;
    for (let i = 0; i < N; i += 1000) {
      await producer.send({
        messages: Array.from({ length: 1000 }, (_, j) => ({
          topic: input,
          key: Buffer.from(`k${(i + j) % 97}`),
          value: Buffer.from(JSON.stringify({ seq: i + j, pad: 'x'.repeat(40) })),
        })),
      });
    }
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-eos-'));
    try {
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(
        file,
        `name: it-eos-${randomUUID().slice(0, 8)}
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, batchSize: 100, idleTimeout: 3s }
pipeline:
  - throttle: { rate: 2000 }
  - map: { fields: { doubled: 'seq * 2' } }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true }
checkpoint: { interval: 1h, records: 700 }
`,
      );
      // Kill when the output log (committed or not) has grown past each mark, so each kill lands
      // mid-run, some inside an open transaction; checkpoints come by record count at any speed.
      for (const mark of [N * 0.15, N * 0.4, N * 0.65]) {
        const run = cli(file, dir);
        const exited = new Promise<number | null>((r) => run.child.once('exit', r));
        const deadline = Date.now() + 60_000;
        let ended = false;
        void exited.then(() => {
          ended = true;
        });
        while (!ended && Date.now() < deadline && (await endOffsetTotal(output)) < mark)
          await new Promise((r) => setTimeout(r, 50));
        assert.ok(!ended, `the run ended before the kill at ${mark}: ${run.stderr()}`);
        run.child.kill('SIGKILL');
        await exited;
      }
      const last = cli(file, dir);
      const code = await new Promise((r) => last.child.once('exit', r));
      assert.equal(code, 0, last.stderr());

      const committed = (await readAll(output, 'read_committed')) as { seq: number; doubled: number }[];
      const seqs = committed.map((r) => r.seq);
      const unique = new Set(seqs);
      const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !unique.has(i));
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} input records missing from the output`);
      const seen = new Set<number>();
      const dups: number[] = [];
      for (const q of seqs) {
        if (seen.has(q)) dups.push(q);
        seen.add(q);
      }
      assert.equal(
        seqs.length,
        N,
        `${seqs.length - unique.size} duplicates in the read_committed output (e.g. ${dups.slice(0, 12).join(', ')})`,
      );
      assert.ok(committed.every((r) => r.doubled === r.seq * 2));
      // The killed runs left writes of aborted transactions in the log: a read_uncommitted reader sees them.
      const uncommitted = await readAll(output, 'read_uncommitted');
      assert.ok(uncommitted.length > N, `read_uncommitted sees ${uncommitted.length} messages`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** Produces `n` records `{seq}` keyed over 97 keys to `topic`. */
  async function produceSeqs(topic: string, n: number): Promise<void> {
    for (let i = 0; i < n; i += 1000) {
      await producer.send({
        messages: Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
          topic,
          key: Buffer.from(`k${(i + j) % 97}`),
          value: Buffer.from(JSON.stringify({ seq: i + j })),
        })),
      });
    }
  }

  for (const [crash, expectWarning] of [
    // Checkpoint 3 is half written, its transaction prepared: the restart resumes from checkpoint
    // 2, and the new producer aborts the transaction.
    ['mid-write:3', undefined],
    // Checkpoint 3 is stored, its prepared transaction not committed: the restart commits it.
    ['after-store:3', /Committed the transaction of checkpoint `3` that the previous run left prepared/],
  ] as const) {
    test(`killed at \`${crash}\` around the checkpoint store: the output still holds each record once`, async () => {
      const input = await createTopic(BROKERS, 'crash-in', 2);
      const output = await createTopic(BROKERS, 'crash-out', 2);
      const N = 5000;
      await produceSeqs(input, N);
      const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-eos-crash-'));
      try {
        const file = join(dir, 'pipeline.yaml');
        writeFileSync(
          file,
          `name: it-eos-${randomUUID().slice(0, 8)}
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, batchSize: 100, idleTimeout: 3s }
pipeline:
  - map: { fields: { doubled: 'seq * 2' } }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true }
checkpoint: { interval: 1h, records: 600 }
`,
        );
        const first = cli(file, dir, { SLUICE_TEST_CRASH: crash });
        const signal = await new Promise((r) => first.child.once('exit', (_code, sig) => r(sig)));
        assert.equal(signal, 'SIGKILL', `the run reached \`${crash}\`: ${first.stderr()}`);
        const second = cli(file, dir);
        assert.equal(await new Promise((r) => second.child.once('exit', r)), 0, second.stderr());
        const seqs = ((await readAll(output, 'read_committed')) as { seq: number }[]).map((r) => r.seq);
        assert.equal(new Set(seqs).size, N, 'every input record');
        assert.equal(seqs.length, N, 'none twice');
        if (expectWarning !== undefined) assert.match(second.stderr(), expectWarning);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('`exactlyOnce` without `checkpoint:` or without a kafka input is a configuration error', async () => {
    const output = await createTopic(BROKERS, 'cfg', 1);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-eos-cfg-'));
    try {
      const noCheckpoint = join(dir, 'a.yaml');
      writeFileSync(
        noCheckpoint,
        `name: eos-a
input:
  generate: { count: 10 }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true }
`,
      );
      const a = cli(noCheckpoint, dir);
      assert.equal(await new Promise((r) => a.child.once('exit', r)), 2);
      assert.match(a.stderr(), /`exactlyOnce` on the kafka sink .* add `checkpoint:/);

      const noKafkaInput = join(dir, 'b.yaml');
      writeFileSync(
        noKafkaInput,
        `${readFileSync(noCheckpoint, 'utf8').replace('eos-a', 'eos-b')}checkpoint: { interval: 1s }\n`,
      );
      const b = cli(noKafkaInput, dir);
      assert.equal(await new Promise((r) => b.child.once('exit', r)), 2);
      assert.match(b.stderr(), /the pipeline has no `kafka` input/);
      assert.equal(await endOffsetTotal(output), 0, 'nothing was written');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
