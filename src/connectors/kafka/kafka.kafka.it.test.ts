/**
 * The `kafka` source and sink against the real broker (`npm run services -- up kafka`, which
 * `npm test` runs for this file's name). Every test uses fresh topic and group names.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import type { Batch, RecordMeta, Signal } from '../../core/batch.ts';
import { systemClock } from '../../core/clock.ts';
import { Pipeline } from '../../core/pipeline.ts';
import type { DeadLetter, Emitter, Logger, Sink, SourceContext } from '../../core/stage.ts';
import { kafkaSink } from './sink.ts';
import { type KafkaSourceOptions, kafkaSource } from './source.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PROJECT = new URL('../../../', import.meta.url).pathname;

let admin: Admin;
let producer: Producer<Buffer, Buffer, Buffer, Buffer>;

before(async () => {
  admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: BROKERS });
  producer = new Producer({ clientId: 'sluice-it', bootstrapBrokers: BROKERS, autocreateTopics: false });
});

after(async () => {
  await producer.close();
  await admin.close();
});

function fresh(name: string): string {
  return `it-${name}-${randomUUID().slice(0, 8)}`;
}

async function createTopic(name: string, partitions = 3): Promise<string> {
  const topic = fresh(name);
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  // A new topic's partitions get their leader a moment after CreateTopics returns.
  for (let tries = 0; tries < 100; tries++) {
    const meta = await admin.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
    const parts = meta?.topics.get(topic)?.partitions ?? [];
    if (parts.length === partitions && parts.every((p) => p !== undefined && p.leader >= 0)) return topic;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`topic ${topic} got no leaders`);
}

interface Produced {
  key?: string;
  value: Buffer | string;
  partition?: number;
  headers?: Record<string, string>;
}

async function produce(topic: string, messages: Produced[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 500) {
    await producer.send({
      messages: messages.slice(i, i + 500).map((m) => ({
        topic,
        value: Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value),
        ...(m.key !== undefined ? { key: Buffer.from(m.key) } : {}),
        ...(m.partition !== undefined ? { partition: m.partition } : {}),
        ...(m.headers
          ? { headers: new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }
          : {}),
      })),
    });
  }
}

/** The number of messages in `topic`: the sum of its partitions' end offsets. */
async function endOffsetTotal(topic: string): Promise<bigint> {
  const consumer = new Consumer({
    clientId: 'sluice-it-offsets',
    groupId: fresh('lo'),
    bootstrapBrokers: BROKERS,
  });
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] });
    return (offsets.get(topic) ?? []).reduce((s, o) => s + o, 0n);
  } finally {
    await consumer.close(true);
  }
}

/** Every message of `topic` (all partitions), read from the start by a plain consumer. */
async function readAll(topic: string): Promise<{ key: string; value: string }[]> {
  const total = Number(await endOffsetTotal(topic));
  const consumer = new Consumer({
    clientId: 'sluice-it-reader',
    groupId: fresh('reader'),
    bootstrapBrokers: BROKERS,
    autocommit: false,
    groupProtocol: 'consumer',
    maxWaitTime: 200,
  });
  const out: { key: string; value: string }[] = [];
  try {
    if (total === 0) return out;
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    for await (const m of stream) {
      out.push({ key: m.key?.toString() ?? '', value: m.value?.toString() ?? '' });
      if (out.length >= total) break;
    }
  } finally {
    await consumer.close(true);
  }
  return out;
}

async function committedOffsets(group: string, topic: string, partitions: number): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'sluice-it-offsets', groupId: group, bootstrapBrokers: BROKERS });
  try {
    const commits = await consumer.listCommittedOffsets({
      topics: [{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }],
    });
    return commits.get(topic) ?? [];
  } finally {
    await consumer.close(true);
  }
}

/** A sink keeping what it is given: the records, their meta and the signals. */
function collect<T = unknown>(): Sink<T> & {
  records: T[];
  meta: (RecordMeta | undefined)[];
  signals: Signal[];
} {
  const records: T[] = [];
  const meta: (RecordMeta | undefined)[] = [];
  const signals: Signal[] = [];
  return {
    records,
    meta,
    signals,
    write(batch: Batch<T>) {
      for (let i = 0; i < batch.records.length; i++) {
        records.push(batch.records[i] as T);
        meta.push(batch.meta?.[i]);
      }
    },
    onSignal(s) {
      signals.push(s);
    },
  };
}

function sourceOptions(
  topic: string,
  group: string,
  extra: Partial<KafkaSourceOptions> = {},
): KafkaSourceOptions {
  return {
    brokers: BROKERS,
    topics: [topic],
    group,
    start: 'earliest',
    format: 'json',
    batchSize: 256,
    maxWait: 20,
    commitInterval: 200,
    idleTimeout: 1500,
    groupProtocol: 'classic',
    ...extra,
  };
}

const quiet: Logger = { info() {}, warn() {}, error() {} };

describe('kafka source and sink', () => {
  test('consume → map → produce delivers every record exactly once and commits every offset', async () => {
    const input = await createTopic('in');
    const output = await createTopic('out');
    const group = fresh('group');
    const N = 3000;
    await produce(
      input,
      Array.from({ length: N }, (_, i) => ({
        key: `k${i % 17}`,
        value: JSON.stringify({ id: i }),
        headers: { trace: `t${i}` },
      })),
    );
    const pipeline = new Pipeline('it-map');
    pipeline
      .from(kafkaSource(sourceOptions(input, group)))
      .map((r) => {
        const { id } = r as { id: number };
        return { id, doubled: id * 2 };
      })
      .to(
        kafkaSink({
          brokers: BROKERS,
          topic: output,
          format: 'json',
          compression: 'lz4',
          batchSize: 500,
          linger: 5,
          idempotent: true,
          acks: 'all',
          keepHeaders: true,
        }),
      );
    const summary = await pipeline.run({ log: quiet }).done;
    assert.equal(summary.recordsRead, N);

    const got = await readAll(output);
    assert.equal(got.length, N);
    const ids = new Set<number>();
    for (const m of got) {
      const v = JSON.parse(m.value) as { id: number; doubled: number };
      assert.equal(v.doubled, v.id * 2);
      assert.equal(m.key, `k${v.id % 17}`, 'the key travels from input to output');
      ids.add(v.id);
    }
    assert.equal(ids.size, N, 'every id exactly once');

    const commits = await committedOffsets(group, input, 3);
    const total = commits.reduce((s, o) => s + o, 0n);
    assert.equal(total, BigInt(N), 'the committed offsets cover every input message');
  });

  test('records carry topic, partition, offset, key, timestamp and headers', async () => {
    const topic = await createTopic('meta', 1);
    const before = Date.now();
    await produce(topic, [{ key: 'a', value: '{"n":1}', partition: 0, headers: { h: 'x' } }]);
    const sink = collect();
    await new Pipeline('it-meta')
      .from(kafkaSource(sourceOptions(topic, fresh('g'))))
      .to(sink)
      .run({ log: quiet }).done;
    assert.deepEqual(sink.records, [{ n: 1 }]);
    const meta = sink.meta[0] as RecordMeta;
    assert.deepEqual(meta.position, { topic, partition: 0, offset: 0 });
    assert.equal(meta.key, 'a');
    assert.deepEqual(meta.headers, { h: 'x' });
    assert.ok(typeof meta.timestamp === 'number' && meta.timestamp >= before - 60_000);
  });

  test('bad JSON goes to the dlq with its bytes and position while the partition keeps flowing', async () => {
    const topic = await createTopic('dlq', 1);
    const notUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x00]);
    await produce(topic, [
      { value: '{"id":1}' },
      { value: '{"id":2,' },
      { value: notUtf8 },
      { value: '{"id":3}' },
    ]);
    const out = collect();
    const dead = collect<DeadLetter>();
    const group = fresh('g');
    await new Pipeline('it-dlq')
      .dlq(dead)
      .from(kafkaSource(sourceOptions(topic, group)))
      .to(out)
      .run({ log: quiet }).done;
    assert.deepEqual(out.records, [{ id: 1 }, { id: 3 }]);
    assert.equal(dead.records.length, 2);
    const [text, bytes] = dead.records as [DeadLetter, DeadLetter];
    assert.deepEqual(text.position, { topic, partition: 0, offset: 1 });
    assert.deepEqual(text.record, { value: '{"id":2,' });
    assert.equal(text.error.code, 'SLUICE_PARSE');
    assert.match(text.error.message, new RegExp(`topic \`${topic}\` partition 0 offset 1`));
    assert.deepEqual(bytes.position, { topic, partition: 0, offset: 2 });
    assert.deepEqual(bytes.record, { valueBase64: notUtf8.toString('base64') });
    assert.deepEqual(await committedOffsets(group, topic, 1), [4n], 'dead letters are committed past too');
  });

  test('a restarted consumer resumes at the committed offsets: nothing lost, nothing repeated', async () => {
    const topic = await createTopic('restart', 2);
    const group = fresh('g');
    await produce(
      topic,
      Array.from({ length: 100 }, (_, i) => ({ value: JSON.stringify({ id: i }), key: `${i}` })),
    );
    const first = collect<{ id: number }>();
    await new Pipeline('it-r1')
      .from(kafkaSource(sourceOptions(topic, group)))
      .to(first)
      .run({ log: quiet }).done;
    // Every id; the client may re-deliver after a group (re)join, which at-least-once allows.
    assert.equal(new Set(first.records.map((r) => r.id)).size, 100);

    await produce(
      topic,
      Array.from({ length: 50 }, (_, i) => ({ value: JSON.stringify({ id: 100 + i }), key: `${i}` })),
    );
    const second = collect<{ id: number }>();
    await new Pipeline('it-r2')
      .from(kafkaSource(sourceOptions(topic, group)))
      .to(second)
      .run({ log: quiet }).done;
    assert.deepEqual(
      [...new Set(second.records.map((r) => r.id))].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => 100 + i),
    );
  });

  test('a failed run commits nothing, so the next run re-reads every record', async () => {
    const topic = await createTopic('fail', 1);
    const group = fresh('g');
    await produce(
      topic,
      Array.from({ length: 20 }, (_, i) => ({ value: JSON.stringify({ id: i }) })),
    );
    const failing: Sink = {
      write() {
        throw new Error('disk full');
      },
    };
    await assert.rejects(
      new Pipeline('it-f1')
        .from(kafkaSource(sourceOptions(topic, group)))
        .to(failing)
        .run({ log: quiet }).done,
      /disk full/,
    );
    const again = collect();
    await new Pipeline('it-f2')
      .from(kafkaSource(sourceOptions(topic, group)))
      .to(again)
      .run({ log: quiet }).done;
    assert.equal(again.records.length, 20);
  });

  test('offsets of a barrier are committed when it completes, not before', async () => {
    const topic = await createTopic('barrier', 1);
    const group = fresh('g');
    await produce(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ value: JSON.stringify({ id: i }) })),
    );
    const source = kafkaSource(sourceOptions(topic, group, { commitInterval: 0, idleTimeout: undefined }));
    const stop = new AbortController();
    const cancel = new AbortController();
    const barriers: number[] = [];
    let seen = 0;
    let sawAll!: () => void;
    const all = new Promise<void>((r) => {
      sawAll = r;
    });
    const out: Emitter<unknown> = {
      async emit(batch) {
        seen += batch.records.length;
      },
      async signal(s) {
        if (s.kind === 'barrier') barriers.push(s.id);
        if (seen === 10) sawAll();
      },
    };
    const ctx: SourceContext = {
      name: 'kafka',
      signal: cancel.signal,
      stopSignal: stop.signal,
      checkpointing: false,
      clock: systemClock,
      log: quiet,
      deadLetter() {
        throw new Error('no dead letters expected');
      },
    };
    await source.open?.(ctx);
    const running = source.run(out, ctx);
    await all;
    assert.deepEqual(
      await committedOffsets(group, topic, 1),
      [-1n],
      'nothing committed before the barrier completes',
    );
    await source.onBarrierComplete?.(barriers.at(-1) as number);
    assert.deepEqual(await committedOffsets(group, topic, 1), [10n]);
    // A cancelled run commits nothing more at close.
    cancel.abort();
    await running.catch(() => {});
    await source.close?.();
  });

  test('a broker that is not there is waited for with a clear warning, and a stop ends the wait', async () => {
    const warnings: string[] = [];
    const log: Logger = {
      info() {},
      warn(msg) {
        warnings.push(msg);
        if (warnings.length === 2) void handle.stop();
      },
      error() {},
    };
    const source = kafkaSource({ ...sourceOptions('nowhere', fresh('g')), brokers: ['127.0.0.1:1'] });
    const handle = new Pipeline('it-down').from(source).to(collect()).run({ log });
    const summary = await handle.done;
    assert.equal(summary.recordsRead, 0);
    assert.match(warnings[0] as string, /Kafka at `127\.0\.0\.1:1` is not reachable while joining group/);
    assert.match(warnings[0] as string, /retrying in \d+ ms/);
    assert.doesNotMatch(warnings[0] as string, /\n\s+at /, 'no stack trace');
  });

  test('the sink fails at start on a topic that does not exist, naming it', async () => {
    const missing = fresh('missing');
    const sink = kafkaSink({
      brokers: BROKERS,
      topic: missing,
      format: 'json',
      compression: 'none',
      batchSize: 10,
      linger: 0,
      idempotent: true,
      acks: 'all',
      keepHeaders: true,
    });
    await assert.rejects(
      new Pipeline('it-missing')
        .from(kafkaSource(sourceOptions(missing, fresh('g'))))
        .to(sink)
        .run({ log: quiet }).done,
      (err: Error) => err.message.includes(`\`${missing}\` does not exist`),
    );
  });

  test('SIGKILL mid-run through the CLI, then a restart: every record reaches the output', async () => {
    const input = await createTopic('kill-in', 2);
    const output = await createTopic('kill-out', 2);
    const N = 4000;
    await produce(
      input,
      Array.from({ length: N }, (_, i) => ({ key: `${i}`, value: JSON.stringify({ id: i }) })),
    );
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-'));
    try {
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(
        file,
        `name: it-kill
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, batchSize: 100, commitInterval: 100ms, idleTimeout: 2s }
pipeline:
  - throttle: { rate: 4000 }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output} }
`,
      );
      const cli = (): ReturnType<typeof spawn> =>
        spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      const first = cli();
      // Kill once some output exists, i.e. mid-run.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if ((await endOffsetTotal(output)) > 0n) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));

      const second = cli();
      let stderr = '';
      second.stderr?.on('data', (d) => {
        stderr += d;
      });
      const code = await new Promise((r) => second.once('exit', r));
      assert.equal(code, 0, stderr);
      const got = await readAll(output);
      const ids = new Set(got.map((m) => (JSON.parse(m.value) as { id: number }).id));
      assert.equal(ids.size, N, 'no record lost across the kill');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
