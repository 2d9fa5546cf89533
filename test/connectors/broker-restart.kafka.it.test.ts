/**
 * Restart tests (conformance suite, `outage.ts`): a PRIVATE Kafka broker (own folder and ports,
 * `privateKafkaBroker` from scripts/services/kafka.ts — never the shared one) is SIGKILLed while a
 * `sluice run` writes to it through the `kafka` sink, and started again a few seconds later on the
 * same data:
 *
 * - file → kafka, at-least-once (no checkpoints): the run waits, says so, and ends with every
 *   record in the topic;
 * - file → kafka with `checkpoint:`: the same, across the barriers the sink flushes on;
 * - kafka → kafka with `exactlyOnce` and `checkpoint:`: a `read_committed` reader sees every
 *   record exactly once.
 *
 * Needs the Kafka jars (`npm run services -- up kafka`, which `npm test` runs for this file's name).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { type PrivateKafkaBroker, privateKafkaBroker } from '../../scripts/services/kafka.ts';
import {
  createTopic,
  fresh,
  messageCount,
  produce,
  readThroughSource,
} from '../../src/connectors/kafka/test-helpers.ts';
import type { Logger } from '../../src/core/stage.ts';
import { freePort } from '../support/net.ts';
import { assertDelivered, padded, records, runToEnd, startRun, until } from './conformance.ts';
import { assertStatusLine, type Outage, runThroughOutage } from './outage.ts';

/** Records per test: at 1,000/s a run lasts a few seconds past the outage. */
const N = 6000;
const RATE = 1000;
/** How long the broker stays dead. */
const DOWN_MS = 4000;

const _quiet: Logger = { info() {}, warn() {}, error() {} };

let broker: PrivateKafkaBroker;
let brokers: string[];
const dirs: string[] = [];

before(async () => {
  broker = privateKafkaBroker({
    dir: mkdtempSync(join(tmpdir(), 'sluice-restart-kafka-')),
    port: await freePort(),
    controllerPort: await freePort(),
  });
  await broker.start();
  brokers = [broker.address];
});

after(async () => {
  await broker?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The broker crashes (SIGKILL) and comes back on the same folder and ports. */
const crash = (): Outage => ({
  what: 'the private Kafka broker',
  down: () => broker.stop('SIGKILL'),
  up: () => broker.start(),
});

/** A fresh folder with `pipeline.yaml` (and `in.jsonl` holding `input` when given). */
function folder(pipeline: Record<string, unknown>, input?: readonly unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-restart-kafka-run-'));
  dirs.push(dir);
  if (input !== undefined)
    writeFileSync(join(dir, 'in.jsonl'), input.map((r) => `${JSON.stringify(padded(r))}\n`).join(''));
  writeFileSync(join(dir, 'pipeline.yaml'), stringify(pipeline));
  return dir;
}

/** Every record of `topic` as Sluice's `kafka` source reads it at `isolation` (ends 3 s after the last). */
async function readTopic(
  topic: string,
  isolation: 'read_committed' | 'read_uncommitted',
): Promise<unknown[]> {
  return readThroughSource(brokers, topic, isolation);
}

/** The warnings the `kafka` sink prints while the broker is away, and once it is back. */
const WAITING =
  /^WARN Producing to topic `[^`]+` failed \(Kafka at `127\.0\.0\.1:\d+` is not reachable: .+\); retrying in \d+(\.\d)? m?s \(attempt \d+[^)]*\)\. Start the broker or fix `brokers`/;
const BACK = /^WARN Producing to topic `[^`]+` goes on: Kafka at `127\.0\.0\.1:\d+` answers again after \d/;

/** Asserts the run said the broker was away and that it is back. */
function assertSaidSo(stderr: string): void {
  assertStatusLine(stderr, WAITING, 'while the broker was away');
  assertStatusLine(stderr, BACK, 'once the broker was back');
}

describe('kafka sink: the broker is SIGKILLed mid-run and restarted', { timeout: 240_000 }, () => {
  for (const checkpoint of [false, true]) {
    test(`file → kafka${checkpoint ? ' with checkpoints' : ''}: the run waits, says so, goes on; nothing lost`, async () => {
      const topic = await createTopic(brokers, 'restart-out', 2);
      const want = records(N);
      const dir = folder(
        {
          name: `restart-sink-${randomUUID().slice(0, 8)}`,
          input: { file: { path: 'in.jsonl', format: 'jsonl', batchSize: 50 } },
          pipeline: [{ throttle: { rate: RATE, burst: 50 } }],
          output: { kafka: { brokers: broker.address, topic } },
          ...(checkpoint ? { checkpoint: { interval: '1h', records: 300 } } : {}),
        },
        want,
      );
      const r = await runThroughOutage(dir, {
        progress: () => messageCount(brokers, topic).catch(() => 0),
        at: N / 4,
        outage: crash(),
        downMs: DOWN_MS,
      });
      assert.equal(r.end.code, 0, `the run ends by itself once the broker is back:\n${r.run.stderr()}`);
      assert.ok(r.atDown < N, `the broker went away mid-run (${r.atDown} of ${N} written)`);
      assertSaidSo(r.run.stderr());
      // At-least-once (the sink's README): a request in flight at the crash may be written twice.
      assertDelivered(await readTopic(topic, 'read_uncommitted'), want, 'at-least-once', 'the topic');
    });
  }

  test('kafka → kafka with `exactlyOnce`: a read_committed reader sees every record exactly once', async () => {
    const input = await createTopic(brokers, 'restart-eos-in', 2);
    const output = await createTopic(brokers, 'restart-eos-out', 2);
    const want = records(N);
    await produce(
      brokers,
      input,
      want.map((r, i) => ({ value: JSON.stringify(padded(r)), partition: i % 2 })),
    );
    const dir = folder({
      name: `restart-eos-${randomUUID().slice(0, 8)}`,
      input: {
        kafka: { brokers: broker.address, topic: input, group: fresh('g'), batchSize: 50, idleTimeout: '3s' },
      },
      pipeline: [{ throttle: { rate: RATE, burst: 50 } }],
      output: { kafka: { brokers: broker.address, topic: output, exactlyOnce: true } },
      checkpoint: { interval: '1h', records: 300 },
    });
    const r = await runThroughOutage(dir, {
      // Every message written, committed or not (the log's end offsets).
      progress: () => messageCount(brokers, output).catch(() => 0),
      at: N / 4,
      outage: crash(),
      downMs: DOWN_MS,
    });
    assert.equal(r.end.code, 0, `the run ends by itself once the broker is back:\n${r.run.stderr()}`);
    assert.ok(r.atDown < N, `the broker went away mid-run (${r.atDown} of ${N} written)`);
    assertSaidSo(r.run.stderr());
    assertDelivered(
      await readTopic(output, 'read_committed'),
      want,
      'exactly-once',
      'the read_committed output',
    );
  });

  test('an outage longer than `connectTimeout` fails the run with one line; the next run resumes from the last checkpoint', async () => {
    const topic = await createTopic(brokers, 'restart-bound', 2);
    const want = records(N);
    const dir = folder(
      {
        name: `restart-bound-${randomUUID().slice(0, 8)}`,
        input: { file: { path: 'in.jsonl', format: 'jsonl', batchSize: 50 } },
        pipeline: [{ throttle: { rate: RATE, burst: 50 } }],
        output: { kafka: { brokers: broker.address, topic, connectTimeout: '3s' } },
        checkpoint: { interval: '1h', records: 300 },
      },
      want,
    );
    const first = startRun(dir);
    await until(
      'half the records',
      async () => (await messageCount(brokers, topic).catch(() => 0)) >= N / 2,
      {
        run: first,
      },
    );
    await broker.stop('SIGKILL');
    const end = await first.exited;
    const stderr = first.stderr();
    assert.equal(end.code, 1, `the run fails once \`connectTimeout\` has passed:\n${stderr}`);
    assertStatusLine(stderr, WAITING, 'while the broker was away');
    assertStatusLine(
      stderr,
      /Kafka at `127\.0\.0\.1:\d+` was not reachable while producing to topic `[^`]+`: \d+ attempts in .+ failed \(last: .+\), and `connectTimeout` is 3 s\. Start the broker, fix `brokers`, or raise `connectTimeout`/,
      'the failure',
    );
    await broker.start();
    const written = await messageCount(brokers, topic);
    await runToEnd(dir, 'the run after the outage');
    const got = await readTopic(topic, 'read_uncommitted');
    assertDelivered(got, want, 'at-least-once', 'the topic');
    // Resumed from the last checkpoint (every 300 records), not from the start: what the failed
    // run wrote is mostly not written again.
    const twice = got.length - N;
    assert.ok(twice < written / 2, `${twice} records written twice of ${written} before the failure`);
  });
});
