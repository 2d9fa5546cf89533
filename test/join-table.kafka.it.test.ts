/**
 * A table from a compacted Kafka topic, joined in event time, through the real CLI with a SIGKILL
 * and a restart. Customers (a compacted topic: versions per key, tombstones) are the table;
 * orders the stream; each order gets the customer row valid at its time (`type: left`: null when
 * there was none or it was deleted).
 *
 * 1. An uninterrupted run gives the reference, checked against a join computed here by sorting.
 * 2. A second job is SIGKILLed once a checkpoint holds the whole table (the customers group has
 *    committed the topic's end) and part of the results are written.
 * 3. Every record of the customers topic is then deleted (`DeleteRecords` up to its end), so a
 *    restart that read the table again from the beginning would find nothing and join orders
 *    with `null`. The restarted run ends with the uninterrupted run's results: the table came from
 *    the checkpoint.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Admin, Producer } from '@platformatic/kafka';
import { createTopic, fresh, messageCount } from '../src/connectors/kafka/test-helpers.ts';
import { exited } from './support/kill-runs.ts';

const brokers = ['127.0.0.1:9092'];
const bin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));
const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;
const CUSTOMERS = 300;
const ORDERS = 3000;

/** An order of customer `c` at `ts`. */
type Order = { id: number; c: string; ts: number };
/** One change of the table: a row, or a deletion (`value` null) at `at`. */
type Change = { key: string; at: number; value: { name: string; at: number } | null };

/** Versions at T0 for all, new versions at +20m for every third, deletions at +35m for every tenth. */
function changes(): Change[] {
  const out: Change[] = [];
  for (let i = 0; i < CUSTOMERS; i++) out.push({ key: `c${i}`, at: T0, value: { name: `n${i}`, at: T0 } });
  for (let i = 0; i < CUSTOMERS; i += 3)
    out.push({ key: `c${i}`, at: T0 + 20 * MIN, value: { name: `n${i} v2`, at: T0 + 20 * MIN } });
  for (let i = 7; i < CUSTOMERS; i += 10) out.push({ key: `c${i}`, at: T0 + 35 * MIN, value: null });
  return out;
}

/** One order a second from T0 + 1m, up to 4 s out of order; some for customers that never exist. */
function orders(): Order[] {
  return Array.from({ length: ORDERS }, (_, i) => ({
    id: i,
    c: i % 50 === 0 ? `missing${i}` : `c${(i * 37) % CUSTOMERS}`,
    ts: T0 + MIN + i * 1000 - ((i * 7919) % 5) * 1000,
  }));
}

/** The reference: each order with the newest change of its key at or before its time. */
function reference(cs: Change[], os: Order[]): string[] {
  const byKey = new Map<string, Change[]>();
  for (const c of [...cs].sort((a, b) => a.at - b.at)) byKey.set(c.key, [...(byKey.get(c.key) ?? []), c]);
  return os
    .map((o) => {
      const version = (byKey.get(o.c) ?? []).filter((c) => c.at <= o.ts).at(-1);
      return JSON.stringify({ orders: o, customers: version?.value ?? null });
    })
    .sort();
}

async function produceAll(customers: string, orderTopic: string, cs: Change[], os: Order[]): Promise<void> {
  const producer = new Producer({ clientId: 'sluice-it', bootstrapBrokers: brokers, idempotent: true });
  try {
    await producer.send({
      messages: cs.map((c) => ({
        topic: customers,
        key: Buffer.from(c.key),
        ...(c.value === null ? {} : { value: Buffer.from(JSON.stringify(c.value)) }),
        timestamp: BigInt(c.at),
      })),
    });
    for (let i = 0; i < os.length; i += 500)
      await producer.send({
        messages: os.slice(i, i + 500).map((o) => ({
          topic: orderTopic,
          key: Buffer.from(String(o.id)),
          value: Buffer.from(JSON.stringify(o)),
        })),
      });
  } finally {
    await producer.close();
  }
}

function pipelineYaml(name: string, customers: string, orderTopic: string): string {
  const kafka = (topic: string, group: string) =>
    `{ kafka: { brokers: [${brokers[0]}], topic: ${topic}, group: ${group}, start: earliest, format: json, batchSize: 100, idleTimeout: 3s } }`;
  return `name: ${name}
inputs:
  orders: ${kafka(orderTopic, `${name}-orders`)}
  customers: ${kafka(customers, `${name}-customers`)}
pipeline:
  - join:
      left: orders
      table: customers
      key: { left: c, right: $key }
      time: { left: ts, right: at }
      timeFormat: epochMillis
      type: left
      watermark: { maxOutOfOrder: 5s }
  - throttle: { rate: 500 }
output: { file: { path: out/joined.jsonl, format: jsonl } }
checkpoint: { interval: 200ms }
`;
}

function start(dir: string) {
  return spawn(process.execPath, [bin, 'run', 'pipeline.yaml', '--log-format', 'json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The summary of a JSON-logged run: its last line with `recordsRead`. */
function summaryOf(stdout: string, stderr: string): { recordsRead: number; recordsWritten: number } {
  const lines = `${stdout}\n${stderr}`.split('\n').filter((l) => l.includes('"recordsRead"'));
  const last = JSON.parse(lines.at(-1) ?? '{}') as {
    context?: { recordsRead: number; recordsWritten: number };
    recordsRead?: number;
    recordsWritten?: number;
  };
  return (last.context ?? last) as { recordsRead: number; recordsWritten: number };
}

async function run(dir: string): Promise<{ recordsRead: number; recordsWritten: number }> {
  const child = start(dir);
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const end = await exited(child);
  assert.equal(end.code, 0, end.stderr);
  return summaryOf(stdout, end.stderr);
}

function job(root: string, name: string, customers: string, orderTopic: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'pipeline.yaml'), pipelineYaml(name, customers, orderTopic));
  return dir;
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

/** Lines written so far to the output's temporary file (the sink publishes it at the end). */
function written(dir: string): number {
  const out = join(dir, 'out');
  let n = 0;
  for (const f of readdirSync(out, { withFileTypes: true }).filter((d) => d.name.startsWith('.joined')))
    n += lines(join(out, f.name)).length;
  return n;
}

async function committed(admin: Admin, group: string, topic: string): Promise<number> {
  const [g] = await admin.listConsumerGroupOffsets({
    groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: [0, 1] }] }],
  });
  let sum = 0;
  for (const t of g?.topics ?? [])
    for (const p of t.partitions) if (p.committedOffset > 0n) sum += Number(p.committedOffset);
  return sum;
}

test('a compacted topic as a table: SIGKILL and restart restore the table from the checkpoint, not the topic; results equal an uninterrupted run', async () => {
  const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: brokers });
  try {
    // Compacted, with deletion allowed (infinite retention) so the test can empty it later.
    const customers = await createTopic(brokers, 'customers', 2, {
      'cleanup.policy': 'compact,delete',
      'retention.ms': '-1',
    });
    const orderTopic = await createTopic(brokers, 'orders', 2);
    const cs = changes();
    const os = orders();
    await produceAll(customers, orderTopic, cs, os);
    const tableEnd = await messageCount(brokers, customers);
    assert.equal(tableEnd, cs.length);

    const root = mkdtempSync(join(tmpdir(), 'sluice-join-table-'));
    const expected = reference(cs, os);
    assert.ok(
      expected.filter((l) => l.includes('v2')).length > 100 &&
        expected.filter((l) => l.includes('"customers":null')).length > 100,
      'the data exercises new versions, deletions and missing keys',
    );

    // 1. Uninterrupted.
    const whole = job(root, fresh('whole'), customers, orderTopic);
    const first = await run(whole);
    const uninterrupted = lines(join(whole, 'out', 'joined.jsonl')).sort();
    assert.deepEqual(uninterrupted, expected, 'the uninterrupted run equals the reference join');
    assert.equal(first.recordsRead, cs.length + os.length);

    // 2. Killed once a checkpoint holds the whole table and some results are out.
    const name = fresh('killed');
    const dir = job(root, name, customers, orderTopic);
    const child = start(dir);
    const ended = exited(child);
    let done = false;
    void ended.then(() => {
      done = true;
    });
    let tableCommitted = 0;
    while (!done) {
      tableCommitted = await committed(admin, `${name}-customers`, customers);
      if (tableCommitted === tableEnd && written(dir) >= ORDERS / 5) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(
      !done,
      `the run ended before the kill (customers committed ${tableCommitted}/${tableEnd}, ${written(dir)} results written)`,
    );
    child.kill('SIGKILL');
    const killed = await ended;
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const atKill = written(dir);
    const ordersCommitted = await committed(admin, `${name}-orders`, orderTopic);

    // 3. The table's topic emptied: what a restart needs of it can only come from the checkpoint.
    const deleted = await admin.deleteRecords({
      topics: [{ name: customers, partitions: [0, 1].map((partition) => ({ partition, offset: -1n })) }],
    });
    const lowWatermarks = deleted.flatMap((t) => t.partitions.map((p) => Number(p.lowWatermark)));
    assert.equal(
      lowWatermarks.reduce((a, b) => a + b, 0),
      tableEnd,
      'no record of the customers topic is left to read',
    );

    const second = await run(dir);
    const restarted = lines(join(dir, 'out', 'joined.jsonl')).sort();
    assert.deepEqual(restarted, uninterrupted, 'the restarted run ends with the uninterrupted run’s results');
    // What the restarted run read: only orders after the checkpoint (at most what the group had not committed).
    assert.ok(
      second.recordsRead <= os.length - ordersCommitted,
      `restarted run read ${second.recordsRead} records; orders not committed at the kill: ${os.length - ordersCommitted}`,
    );
    console.log(
      `table ${tableEnd} changes (${CUSTOMERS} keys); killed with ${atKill} of ${ORDERS} results written, customers committed ${tableCommitted}/${tableEnd}, orders committed ${ordersCommitted}/${ORDERS}; restarted run read ${second.recordsRead} records and wrote ${second.recordsWritten}`,
    );
  } finally {
    await admin.close();
  }
});
