/**
 * Acceptance of issue #20's metrics: the real CLI runs Kafka → throttle → window → PostgreSQL with
 * `--http 127.0.0.1:0 --log-format json`, and `/metrics` is scraped every 200 ms while it runs.
 * The counters of the last scrapes must equal the run's own summary (its last JSON log line) and
 * the rows in the table; the consumer lag per partition must be bounded by the broker's end
 * offsets while the throttled run is behind, and be 0 at the end, where the broker holds the
 * group's commits at those same end offsets.
 *
 * The input: 3 partitions of events over 20 minutes of event time, 5 messages that are not JSON
 * (dead letters of the source), and one closing event per partition an hour later whose
 * watermark fires every data window while the run is still going; a `filter` after the window
 * drops the closing window, so the sink writes nothing after the last scrape.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Admin, Consumer } from '@platformatic/kafka';
import pg from 'pg';
import { createTopic, fresh, produce, type TestMessage } from '../src/connectors/kafka/test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const BIN = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));
const PARTITIONS = 3;
const EVENTS = 15_000;
const KEYS = 40;
const BAD = 5;
const BASE = Date.UTC(2026, 0, 1);
/** 100 ms of event time between events: 1,500 s, so 25 one-minute windows per key. */
const STEP_MS = 100;

const dir = mkdtempSync(join(tmpdir(), 'sluice-metrics-it-'));
const table = `metrics_it_${randomUUID().slice(0, 8)}`;
const client = new pg.Client({ connectionString: PG_URL });

after(async () => {
  await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
  await client.end().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** One sample of a scrape: metric name, labels, value. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `where`. */
function sum(samples: readonly Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Event `i` of the input. */
function event(i: number): { id: number; k: string; ts: string; amount: number } {
  return { id: i, k: `k${i % KEYS}`, ts: new Date(BASE + i * STEP_MS).toISOString(), amount: i % 97 };
}

/** The broker's end offsets of `topic`, by partition. */
async function endOffsets(topic: string): Promise<number[]> {
  const c = new Consumer({ clientId: 'sluice-metrics-it', groupId: fresh('lo'), bootstrapBrokers: BROKERS });
  try {
    return ((await c.listOffsets({ topics: [topic] })).get(topic) ?? []).map(Number);
  } finally {
    await c.close(true);
  }
}

/** The offsets `group` committed on `topic`, by partition (-1: none). */
async function committedOffsets(group: string, topic: string): Promise<number[]> {
  const admin = new Admin({ clientId: 'sluice-metrics-it', bootstrapBrokers: BROKERS });
  try {
    const [g] = await admin.listConsumerGroupOffsets({ groups: [group] });
    const out = Array.from({ length: PARTITIONS }, () => -1);
    for (const p of g?.topics.find((t) => t.name === topic)?.partitions ?? []) {
      out[p.partitionIndex] = Number(p.committedOffset);
    }
    return out;
  } finally {
    await admin.close();
  }
}

test('/metrics during a Kafka → window → PostgreSQL run agrees with the summary, the table and the broker', {
  timeout: 180_000,
}, async () => {
  await client.connect();
  await client.query(
    `CREATE TABLE ${table} (k text, "windowStart" timestamptz, "windowEnd" timestamptz, n bigint, amount numeric,
       PRIMARY KEY (k, "windowStart"))`,
  );
  const topic = await createTopic(BROKERS, 'metrics', PARTITIONS);
  const group = fresh('metrics');
  const messages: TestMessage[] = [];
  for (let i = 0; i < EVENTS; i++) {
    messages.push({ key: event(i).k, value: JSON.stringify(event(i)), partition: i % PARTITIONS });
    if (i % 3001 === 1000) messages.push({ value: `{not json ${i}`, partition: i % PARTITIONS });
  }
  const closing = new Date(BASE + EVENTS * STEP_MS + 3_600_000).toISOString();
  for (let p = 0; p < PARTITIONS; p++) {
    messages.push({ value: JSON.stringify({ id: -1, k: 'closing', ts: closing, amount: 0 }), partition: p });
  }
  assert.equal(messages.length, EVENTS + BAD + PARTITIONS);
  await produce(BROKERS, topic, messages);
  const ends = await endOffsets(topic);
  assert.equal(
    ends.reduce((a, b) => a + b, 0),
    messages.length,
  );
  const windows = new Set(
    Array.from({ length: EVENTS }, (_, i) => `${event(i).k}|${Math.floor((BASE + i * STEP_MS) / 60_000)}`),
  ).size;

  const pipeline = join(dir, 'pipeline.yaml');
  writeFileSync(
    pipeline,
    `name: metrics-acceptance
input:
  kafka:
    brokers: ${JSON.stringify(BROKERS)}
    topic: ${topic}
    group: ${group}
    start: earliest
    batchSize: 250
    idleTimeout: 5s
pipeline:
  - throttle: { rate: 3000 }
  - window:
      key: k
      time: ts
      tumbling: 1m
      watermark: { maxOutOfOrder: 1s }
      aggregate: { n: count(), amount: sum(amount) }
  - filter: 'k != "closing"'
output:
  postgres:
    url: ${PG_URL}
    table: ${table}
    mode: upsert
    key: [k, windowStart]
    columns: [k, windowStart, windowEnd, n, amount]
    linger: 50ms
dlq:
  file: { path: ${JSON.stringify(join(dir, 'dead.jsonl'))}, format: jsonl }
checkpoint: { interval: 1s, dir: ${JSON.stringify(join(dir, 'checkpoints'))} }
maxErrorRate: 0.01
`,
  );

  const child = spawn(
    process.execPath,
    [BIN, 'run', pipeline, '--http', '127.0.0.1:0', '--log-format', 'json'],
    {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SLUICE_DEBUG: '' },
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });

  let url: string | undefined;
  while (url === undefined && running) {
    url = /Serving metrics and the dashboard at (\S+?)"/.exec(stderr)?.[1];
    if (url === undefined) await sleep(20);
  }
  assert.ok(url, `the run did not serve:\n${stderr}`);
  const topology = (await (await fetch(`${url}api/topology`)).json()) as {
    stages: { name: string; kind: string; component: string }[];
  };
  const stageOf = (component: string, kind: string) => {
    const s = topology.stages.find((x) => x.component === component && x.kind === kind);
    assert.ok(s, `no ${kind} ${component} in ${JSON.stringify(topology.stages)}`);
    return s.name;
  };
  const source = stageOf('kafka', 'source');
  const windowStage = stageOf('window', 'operator');
  const sink = stageOf('postgres', 'sink');

  const scrapes: Sample[][] = [];
  while (running) {
    const text = await fetch(`${url}metrics`)
      .then((r) => (r.ok ? r.text() : undefined))
      .catch(() => undefined);
    if (text !== undefined) scrapes.push(parseExposition(text));
    await sleep(200);
  }
  const code = await exited;
  assert.equal(code, 0, stderr);
  assert.ok(scrapes.length >= 10, `only ${scrapes.length} scrapes`);

  const lines = stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { message: string; context?: Record<string, unknown> });
  const summary = lines.at(-1)?.context as {
    state: string;
    recordsRead: number;
    recordsWritten: number;
    deadLetters: number;
  };
  assert.equal(summary.state, 'succeeded', stderr);
  assert.match(lines.at(-1)?.message ?? '', /^Finished `metrics-acceptance`/);

  // The run's own summary and the table agree with what the input is.
  const rows = Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const counted = Number((await client.query(`SELECT sum(n) AS n FROM ${table}`)).rows[0].n);
  assert.equal(rows, windows);
  assert.equal(counted, EVENTS);
  assert.equal(summary.recordsWritten, windows);
  assert.equal(summary.deadLetters, BAD);

  // Counters never run ahead of the summary, and the last scrape (input over, windows fired,
  // waiting out idleTimeout) equals it.
  const name = 'metrics-acceptance';
  for (const s of scrapes) {
    assert.ok(sum(s, 'sluice_records_in_total', { pipeline: name, stage: source }) <= summary.recordsRead);
    assert.ok(sum(s, 'sluice_records_out_total', { pipeline: name, stage: sink }) <= summary.recordsWritten);
    assert.ok(sum(s, 'sluice_dead_letters_total', { pipeline: name }) <= summary.deadLetters);
  }
  const last = scrapes.at(-1) as Sample[];
  assert.equal(sum(last, 'sluice_records_in_total', { pipeline: name, stage: source }), summary.recordsRead);
  assert.equal(
    sum(last, 'sluice_records_out_total', { pipeline: name, stage: sink }),
    summary.recordsWritten,
  );
  assert.equal(sum(last, 'sluice_records_in_total', { pipeline: name, stage: sink }), summary.recordsWritten);
  assert.equal(sum(last, 'sluice_dead_letters_total', { pipeline: name }), summary.deadLetters);
  assert.equal(
    sum(last, 'sluice_dead_letters_total', { pipeline: name, stage: source, code: 'SLUICE_PARSE' }),
    BAD,
    'the source dead-lettered the messages that are not JSON',
  );
  assert.equal(
    sum(last, 'sluice_records_in_total', { pipeline: name, stage: windowStage }),
    EVENTS + PARTITIONS,
  );
  assert.ok(sum(last, 'sluice_checkpoints_total', { pipeline: name }) >= 1, 'no checkpoint counted');

  // Consumer lag: one series per partition the source has read from (a partition joins once its
  // first records are in: before, the source has no position there, and like Kafka's own tools
  // no lag is shown), never above the broker's end offset, non-zero while the throttled run was
  // behind, and 0 for every partition at the end.
  const lagOf = (s: readonly Sample[]) =>
    s.filter((x) => x.name === 'sluice_kafka_consumer_lag' && x.labels.stage === source);
  const withLag = scrapes.filter((s) => lagOf(s).length > 0);
  assert.ok(withLag.length > 0, 'no scrape reported the consumer lag');
  const partitions = Array.from({ length: PARTITIONS }, (_, p) => `${topic}:${p}`);
  for (const s of withLag) {
    const lag = lagOf(s);
    for (const x of lag) {
      assert.ok(partitions.includes(x.labels.partition as string), `lag of ${x.labels.partition}`);
      const p = Number(x.labels.partition?.split(':').at(-1));
      assert.ok(x.value >= 0 && x.value <= (ends[p] as number), `lag ${x.value} of ${x.labels.partition}`);
    }
  }
  assert.ok(
    withLag.some((s) => lagOf(s).reduce((a, x) => a + x.value, 0) > 0),
    'the throttled run was never behind',
  );
  assert.deepEqual(
    lagOf(last)
      .map((x) => [x.labels.partition, x.value])
      .sort(),
    partitions.map((p) => [p, 0]),
    'lag at the end',
  );
  assert.deepEqual(await committedOffsets(group, topic), ends, 'the group committed up to the end offsets');
});
