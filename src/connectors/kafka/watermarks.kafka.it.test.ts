/**
 * Watermarks over a partitioned backlog (issue "Production-ready connections and long-running
 * jobs", section 2): a keyed 1-minute window with `maxOutOfOrder: 5s` over a 6-partition topic
 * whose disorder is under 5 s must give exactly the results of a reference computed here, and
 * send nothing to `late`. The first fetch of one partition spans minutes of event time; before
 * every assigned partition held the watermark back until it delivered, that fetch moved the
 * watermark past the other partitions' first records (thousands of them late, dozens of windows
 * wrong).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch } from '../../core/message.ts';
import type { Logger, Sink } from '../../core/stage.ts';
import { Pipeline } from '../../pipeline.ts';
import { kafkaSource } from './source.ts';
import { createTopic, fresh, produceMany } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const N = Number(process.env.SLUICE_IT_WATERMARK_EVENTS ?? 200_000);
const PARTITIONS = 6;
const KEYS = 97;
const BASE = Date.UTC(2024, 0, 1);
const quiet: Logger = { info() {}, warn() {}, error() {} };

/** Event `i`: 6 ms of event time apart, shifted by up to ±2 s (disorder under 5 s), round robin over partitions. */
function event(i: number): { id: number; k: string; ts: number } {
  return { id: i, k: `k${i % KEYS}`, ts: BASE + i * 6 + (((i * 7919) % 4001) - 2000) };
}

function collect(): Sink & { records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  return {
    records,
    durableOnBarrier: true,
    write(batch: Batch) {
      for (const r of batch.records) records.push(r as Record<string, unknown>);
    },
  };
}

test('a backlog on 6 partitions with disorder under maxOutOfOrder: exact windows, no late records', {
  timeout: 300_000,
}, async () => {
  const topic = await createTopic(BROKERS, 'wm-backlog', PARTITIONS);
  await produceMany(BROKERS, topic, N, (i) => ({
    key: event(i).k,
    value: JSON.stringify(event(i)),
    partition: i % PARTITIONS,
  }));
  const expected = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const e = event(i);
    const start = new Date(Math.floor(e.ts / 60_000) * 60_000).toISOString();
    const k = `${e.k}|${start}`;
    expected.set(k, (expected.get(k) ?? 0) + 1);
  }

  const out = collect();
  const late = collect();
  const pipeline = new Pipeline('it-wm-backlog');
  const windows = pipeline
    .from(
      kafkaSource({
        brokers: BROKERS,
        topics: [topic],
        group: fresh('wm-backlog'),
        start: 'earliest',
        format: 'json',
        batchSize: 1000,
        maxWait: 50,
        commitInterval: 1000,
        idleTimeout: 3000,
        groupProtocol: 'classic',
      }),
    )
    .window({
      key: 'k',
      time: 'ts',
      tumbling: '1m',
      watermark: { maxOutOfOrder: '5s' },
      aggregate: { count: 'count()' },
      late: 'late',
    });
  windows.side('late').to(late);
  windows.to(out);
  await pipeline.run({ log: quiet }).done;

  const got = new Map<string, number>();
  for (const r of out.records) got.set(`${r.k as string}|${r.windowStart as string}`, r.count as number);
  let wrong = 0;
  for (const [k, n] of expected) if (got.get(k) !== n) wrong++;
  for (const k of got.keys()) if (!expected.has(k)) wrong++;
  console.log(
    `watermarks over a backlog: ${N} events on ${PARTITIONS} partitions, ${late.records.length} late, ${wrong} of ${expected.size} windows wrong`,
  );
  assert.equal(late.records.length, 0, 'no on-time record is late');
  assert.equal(wrong, 0, 'every window equals the reference');
});
