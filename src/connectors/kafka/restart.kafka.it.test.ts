/**
 * A broker that goes away: a PRIVATE broker (own folder and ports, `privateKafkaBroker` from
 * scripts/services/kafka.ts) is stopped before the run starts and SIGKILLed in the middle of
 * it — never the shared broker other tests use at the same time. Needs the Kafka jars, which
 * `npm run services -- up kafka` installs (`npm test` does it for this file's name).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { privateKafkaBroker } from '../../../scripts/services/kafka.ts';
import { freePort } from '../../../test/support/net.ts';
import type { Batch } from '../../core/message.ts';
import type { Logger, Sink } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { kafkaSource } from './source.ts';
import { createTopic, fresh, produce } from './test-helpers.ts';

/** A port nothing listens on right now. */
/** Resolves once `check` is true, polling; rejects after `ms`. */
async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    info() {},
    warn(msg) {
      warnings.push(msg);
    },
    error(msg) {
      warnings.push(msg);
    },
  };
}

test('a broker absent at start is waited for, and one SIGKILLed mid-run is waited for again: every record arrives', async () => {
  const broker = privateKafkaBroker({
    dir: mkdtempSync(join(tmpdir(), 'sluice-private-kafka-')),
    port: await freePort(),
    controllerPort: await freePort(),
  });
  try {
    await broker.start();
    const brokers = [broker.address];
    const topic = await createTopic(brokers, 'restart', 3);
    const N = 3000;
    await produce(
      brokers,
      topic,
      Array.from({ length: N }, (_, i) => ({ key: `${i}`, value: JSON.stringify({ id: i }) })),
    );
    await broker.stop('SIGTERM');

    const ids: number[] = [];
    const sink: Sink<{ id: number }> = {
      durableOnBarrier: true,
      write(batch: Batch<{ id: number }>) {
        for (const r of batch.records) ids.push(r.id);
      },
    };
    const log = recorder();
    const source = kafkaSource({
      brokers,
      topics: [topic],
      group: fresh('g'),
      start: 'earliest',
      format: 'json',
      batchSize: 100,
      maxWait: 20,
      commitInterval: 200,
      idleTimeout: 4000,
      groupProtocol: 'classic',
      maxRetryDelay: 1000,
    });
    const handle = new Pipeline('it-restart')
      .from(source)
      .throttle({ rate: 600 })
      .map((r) => r as { id: number })
      .to(sink)
      .run({ log });

    // Absent at start: one clear line per attempt, naming the broker and saying it retries.
    await until('a warning about the absent broker', () => log.warnings.length > 0, 30_000);
    const first = log.warnings[0] as string;
    assert.match(
      first,
      new RegExp(`^Joining group .* failed \\(Kafka at \`${broker.address}\` is not reachable`),
    );
    assert.match(first, /retrying in \d+ ms/);
    assert.doesNotMatch(first, /\n/, 'one line, no stack trace');

    await broker.start();
    // Mid-run: a crash of the broker, back a few seconds later on the same folder and ports.
    await until('a third of the records', () => ids.length >= N / 3, 60_000);
    await broker.stop('SIGKILL');
    const atKill = ids.length;
    await new Promise((r) => setTimeout(r, 3000));
    await broker.start();

    const summary = await handle.done;
    assert.ok(atKill < N, 'the broker went away mid-run');
    assert.ok(
      log.warnings.some((w) => /lost its connection|is not reachable/.test(w) && w !== first),
      `the loss was reported:\n${log.warnings.join('\n')}`,
    );
    assert.equal(new Set(ids).size, N, 'every record arrived');
    assert.equal(summary.recordsRead, ids.length);
  } finally {
    await broker.destroy();
  }
});

test('`connectTimeout`: a broker that never comes fails the run with one clear message', async () => {
  const port = await freePort();
  const source = kafkaSource({
    brokers: [`127.0.0.1:${port}`],
    topics: ['nowhere'],
    group: fresh('g'),
    start: 'earliest',
    format: 'json',
    batchSize: 10,
    maxWait: 20,
    commitInterval: 200,
    groupProtocol: 'classic',
    connectTimeout: 1500,
  });
  const sink: Sink = { write() {} };
  await assert.rejects(
    new Pipeline('it-absent').from(source).to(sink).run({ log: recorder() }).done,
    (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`Kafka at \`127\\.0\\.0\\.1:${port}\` was not reachable while joining group`),
      );
      assert.match(
        err.message,
        /\d+ attempts in \d+ ms failed \(last: .+\), and `connectTimeout` is 1500 ms/,
      );
      assert.doesNotMatch(err.message, /\n/, 'one line, no stack trace');
      assert.match(err.message, /Start the broker, fix `brokers`, or raise `connectTimeout`/);
      return true;
    },
  );
});
