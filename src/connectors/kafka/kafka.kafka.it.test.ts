/**
 * The `kafka` source and sink against the real broker (`npm run services -- up kafka`, which
 * `npm test` runs for this file's name). Every test uses fresh topic and group names. A restart
 * that resumes at the group's offsets, a stop and a SIGKILL of `sluice run` with a restart are in
 * the connector conformance suite (test/connectors/kafka.kafka.it.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import { systemClock } from '../../core/clock.ts';
import type { Batch, RecordMeta, Signal } from '../../core/message.ts';
import {
  type DeadLetter,
  type Emitter,
  type Logger,
  runScope,
  type Sink,
  type SourceContext,
} from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { readCommitted } from './group.ts';
import { decodeDone } from './offsets.ts';
import { kafkaSink } from './sink.ts';
import { type KafkaSourceOptions, kafkaSource } from './source.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PROJECT = new URL('../../../', import.meta.url).pathname;

let admin: Admin;
let producer: Producer<Buffer, Buffer, Buffer, Buffer>;

before(async () => {
  admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: BROKERS });
  // Idempotent: a plain producer retrying a request the broker had written duplicates messages in
  // the log (seen on fresh topics: 149 messages for 100 sends), which then looks like a consumer bug.
  producer = new Producer({
    clientId: 'sluice-it',
    bootstrapBrokers: BROKERS,
    autocreateTopics: false,
    idempotent: true,
  });
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
    // Memory survives no crash, but the tests need no restart of it: let barriers commit offsets.
    durableOnBarrier: true,
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

  test('a dlq kafka topic gets the undecodable messages as they came in (bytes, key, headers) plus the error headers', async () => {
    const input = await createTopic('dlqt-in', 1);
    const dlqTopic = await createTopic('dlqt-dlq', 1);
    const notUtf8 = Buffer.from([0x7b, 0xff, 0xfe, 0x00]);
    await produce(input, [
      { key: 'a', value: '{"id":1}' },
      { key: 'b', value: '{"id":2,', headers: { trace: 't-2' } },
      { key: 'c', value: notUtf8, headers: { trace: 't-3' } },
      { key: 'd', value: '{"id":4}' },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-dlq-'));
    try {
      // Through a pipeline file, where a kafka `dlq:` writes original messages by default.
      const file = join(dir, 'pipeline.yaml');
      writeFileSync(
        file,
        `name: it-dlq-topic
maxErrorRate: 1 # every record of this input is bad on purpose
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, idleTimeout: 1500ms }
output:
  file: { path: out.jsonl, format: jsonl }
dlq:
  kafka: { brokers: ${BROKERS[0]}, topic: ${dlqTopic} }
`,
      );
      const run = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      run.stderr?.on('data', (d) => {
        stderr += d;
      });
      assert.equal(await new Promise((r) => run.once('exit', r)), 0, stderr);
      assert.equal(readFileSync(join(dir, 'out.jsonl'), 'utf8'), '{"id":1}\n{"id":4}\n');

      // Read back with Sluice's own source, raw: value bytes, key and headers as stored.
      const back = collect<Uint8Array>();
      await new Pipeline('it-dlq-read')
        .from(kafkaSource(sourceOptions(dlqTopic, fresh('g'), { format: 'raw' })))
        .to(back)
        .run({ log: quiet }).done;
      assert.equal(back.records.length, 2);
      const [text, bytes] = back.meta as [RecordMeta, RecordMeta];
      assert.deepEqual(Buffer.from(back.records[0] as Uint8Array), Buffer.from('{"id":2,'));
      assert.deepEqual(Buffer.from(back.records[1] as Uint8Array), notUtf8);
      assert.equal(text.key, 'b');
      assert.equal(bytes.key, 'c');
      assert.equal(text.headers?.trace, 't-2');
      assert.equal(bytes.headers?.trace, 't-3');
      assert.equal(text.headers?.['sluice.error.code'], 'SLUICE_PARSE');
      assert.match(
        String(text.headers?.['sluice.error.message']),
        new RegExp(`topic \`${input}\` partition 0 offset 1`),
      );
      assert.equal(text.headers?.['sluice.stage'], 'input');
      assert.deepEqual(JSON.parse(String(bytes.headers?.['sluice.position'])), {
        topic: input,
        partition: 0,
        offset: 2,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
      runScoped: runScope(),
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
    assert.match(
      warnings[0] as string,
      /^Joining group .* failed \(Kafka at `127\.0\.0\.1:1` is not reachable/,
    );
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

  test('checkpoints: SIGKILL through the CLI and a restart apply every record to keyed state exactly once', async () => {
    const input = await createTopic('cp-in', 2);
    const N = 6000;
    const KEYS = 13;
    await produce(
      input,
      Array.from({ length: N }, (_, i) => ({
        key: `${i}`,
        value: JSON.stringify({ seq: i, key: `k${i % KEYS}` }),
      })),
    );
    const dir = mkdtempSync(join(tmpdir(), 'sluice-kafka-cp-'));
    try {
      const file = join(dir, 'pipeline.yaml');
      // The keyed counter turns each record into `{seq, key, n}` (`n`: the key's count so far) and
      // ends with `{key, total}` per key: a record lost, applied twice or restored wrongly shows.
      writeFileSync(
        file,
        `name: it-cp
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, batchSize: 100, idleTimeout: 2s }
pipeline:
  - throttle: { rate: 3000 }
  - module: { path: ${join(PROJECT, 'test/crash/counter.ts')}, export: countByKey }
output:
  file: { path: out.jsonl, format: jsonl }
checkpoint: { interval: 100ms }
`,
      );
      const cli = (): ReturnType<typeof spawn> =>
        spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
          cwd: dir,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
      /** Bytes the running job has written to its temporary output file. */
      const written = (): number => {
        let size = 0;
        for (const f of readdirSync(dir))
          if (f.startsWith('.out.jsonl.sluice-tmp-'))
            size = Math.max(size, statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0);
        return size;
      };
      const first = cli();
      const exited = new Promise((r) => first.once('exit', r));
      // Kill once about a third of the output exists, i.e. after several checkpoints, mid-run.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && written() < N * 12) await new Promise((r) => setTimeout(r, 20));
      first.kill('SIGKILL');
      await exited;
      assert.ok(!existsSync(join(dir, 'out.jsonl')), 'killed before the end');

      const second = cli();
      let stderr = '';
      second.stderr?.on('data', (d) => {
        stderr += d;
      });
      const code = await new Promise((r) => second.once('exit', r));
      assert.equal(code, 0, stderr);
      const lines = readFileSync(join(dir, 'out.jsonl'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { seq?: number; key: string; n?: number; total?: number });
      const seqs = lines.filter((l) => l.seq !== undefined).map((l) => l.seq as number);
      assert.equal(seqs.length, N, 'one output line per input record');
      assert.equal(new Set(seqs).size, N, 'every record exactly once');
      const counts = new Map<string, number[]>();
      for (const l of lines) if (l.n !== undefined) counts.set(l.key, [...(counts.get(l.key) ?? []), l.n]);
      for (const [key, ns] of counts) {
        assert.deepEqual(
          ns.sort((a, b) => a - b),
          Array.from({ length: ns.length }, (_, i) => i + 1),
          `key ${key}: each record counted once, state restored exactly`,
        );
      }
      const totals = lines.filter((l) => l.total !== undefined);
      assert.equal(totals.length, KEYS);
      assert.equal(
        totals.reduce((s, l) => s + (l.total as number), 0),
        N,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('parallel steps: a stuck record holds the commit, and a restart redoes only what was not done', async () => {
    const topic = await createTopic('stuck', 1);
    const group = fresh('g');
    const N = 40;
    const STUCK = 7;
    await produce(
      topic,
      Array.from({ length: N }, (_, i) => ({ key: `k${i % 4}`, value: JSON.stringify({ id: i }) })),
    );
    const out = collect<{ id: number }>();
    const stuckStarted: { resolve?: () => void } = {};
    const handle = new Pipeline('it-stuck')
      .from(
        kafkaSource(
          sourceOptions(topic, group, {
            idleTimeout: undefined,
            commitInterval: 50,
            parallel: {
              mode: 'unordered',
              concurrency: 16,
              step: (record, _meta, signal) => {
                const { id } = record as { id: number };
                if (id !== STUCK) return Promise.resolve({ id });
                return new Promise((_resolve, reject) => {
                  stuckStarted.resolve?.();
                  signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true });
                });
              },
            },
          }),
        ),
      )
      .to(out)
      .run({ log: quiet });
    // Every record but the stuck one finishes; the commit stays at the stuck record, with the
    // records done past it in the commit metadata.
    let commit: { offset: number; metadata: string | null } | undefined;
    for (let tries = 0; tries < 200; tries++) {
      commit = (await readCommitted(BROKERS, 'sluice-it', group, [topic])).get(`${topic}:0`);
      if (
        out.records.length === N - 1 &&
        commit !== undefined &&
        decodeDone(commit.metadata, STUCK).size === N - 1 - STUCK
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(out.records.length, N - 1, 'the records after the stuck one were not held back');
    assert.equal(commit?.offset, STUCK, 'nothing past the stuck record is committed as an offset');
    assert.deepEqual(
      [...decodeDone(commit?.metadata, STUCK)].sort((a, b) => a - b),
      Array.from({ length: N - 1 - STUCK }, (_, i) => STUCK + 1 + i),
      'the records done past it are in the metadata',
    );
    await handle.stop({ drain: false }).catch(() => {});

    // The restart processes the stuck record only.
    const again = collect<{ id: number }>();
    await new Pipeline('it-stuck-2')
      .from(
        kafkaSource(
          sourceOptions(topic, group, { parallel: { mode: 'unordered', concurrency: 16, step: (r) => r } }),
        ),
      )
      .to(again)
      .run({ log: quiet }).done;
    assert.deepEqual(again.records, [{ id: STUCK }]);
    const last = (await readCommitted(BROKERS, 'sluice-it', group, [topic])).get(`${topic}:0`);
    assert.equal(last?.offset, N);
    assert.equal(decodeDone(last?.metadata, N).size, 0, 'no completion state left once the gap closed');
  });

  test('parallel steps with `mode: key`: records of one key never overtake each other', async () => {
    const topic = await createTopic('bykey', 2);
    const N = 400;
    await produce(
      topic,
      Array.from({ length: N }, (_, i) => ({
        key: `k${i % 7}`,
        value: JSON.stringify({ id: i, key: `k${i % 7}` }),
      })),
    );
    let inFlight = 0;
    let peak = 0;
    const running = new Set<string>();
    const out = collect<{ id: number; key: string }>();
    await new Pipeline('it-bykey')
      .from(
        kafkaSource(
          sourceOptions(topic, fresh('g'), {
            parallel: {
              mode: 'key',
              concurrency: 8,
              step: async (record) => {
                const r = record as { id: number; key: string };
                assert.ok(!running.has(r.key), `two records of key ${r.key} ran at once`);
                running.add(r.key);
                peak = Math.max(peak, ++inFlight);
                // Completion order differs from read order: later records often finish first.
                await new Promise((resolve) => setTimeout(resolve, (r.id * 7919) % 5));
                inFlight--;
                running.delete(r.key);
                return r;
              },
            },
          }),
        ),
      )
      .to(out)
      .run({ log: quiet }).done;
    assert.equal(out.records.length, N);
    assert.ok(peak > 1 && peak <= 8, `in flight at once: ${peak}`);
    const byKey = new Map<string, number[]>();
    for (const r of out.records) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.id]);
    for (const [key, ids] of byKey) {
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        `key ${key} in read order`,
      );
    }
  });
});
