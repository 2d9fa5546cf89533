import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MetricsSnapshot, StageSnapshot } from '../core/metrics.ts';
import {
  backpressure,
  formatBytes,
  formatCount,
  formatDuration,
  formatElapsed,
  formatLogLine,
  formatRate,
  formatStatusLine,
  formatSummary,
  progressOf,
} from './status.ts';

function stage(name: string, over: Partial<StageSnapshot> = {}): StageSnapshot {
  return {
    name,
    kind: 'operator',
    component: name,
    recordsIn: 0,
    recordsOut: 0,
    batchesIn: 0,
    batchesOut: 0,
    deadLetters: 0,
    errors: 0,
    blockedMs: 0,
    queued: 0,
    queueCapacity: 16,
    queuedRecords: 0,
    droppedRecords: 0,
    ...over,
  };
}

function snap(over: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    pipeline: 'etl',
    state: 'running',
    elapsedMs: 3000,
    recordsRead: 12_345,
    recordsWritten: 12_300,
    deadLetters: 3,
    droppedRecords: 0,
    queuedRecords: 0,
    peakQueuedRecords: 64,
    stages: [
      stage('input', { kind: 'source', queueCapacity: 0 }),
      stage('batch'),
      stage('output', { kind: 'sink' }),
    ],
    ...over,
  };
}

describe('number formatting', () => {
  it('counts, rates, times and sizes', () => {
    assert.equal(formatCount(1234567), '1,234,567');
    for (const n of [0, 7, 999, 1000, 12_345, 100_000, 999_999.6, 1e15, -4321, Number.MAX_SAFE_INTEGER])
      assert.equal(formatCount(n), Math.round(n).toLocaleString('en-US'), String(n));
    assert.equal(formatRate(850.4), '850/s');
    assert.equal(formatRate(4100), '4.10k/s');
    assert.equal(formatRate(12_345), '12.3k/s');
    assert.equal(formatRate(4_100_000), '4.10M/s');
    assert.equal(formatRate(Number.NaN), '0/s');
    assert.equal(formatElapsed(7_900), '0:07');
    assert.equal(formatElapsed(725_000), '12:05');
    assert.equal(formatElapsed(3_723_000), '1:02:03');
    assert.equal(formatDuration(420), '420ms');
    assert.equal(formatDuration(3_240), '3.2s');
    assert.equal(formatDuration(125_000), '2m05s');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.50 KB');
    assert.equal(formatBytes(2.7 * 1024 * 1024), '2.70 MB');
  });
});

describe('backpressure', () => {
  it('names the stage with the fullest input queue when it is at least half full', () => {
    const s = snap({ stages: [stage('batch', { queued: 9 }), stage('output', { queued: 16 })] });
    assert.deepEqual(backpressure(s), { kind: 'queue', stage: 'output', queued: 16, capacity: 16 });
  });

  it('else the stage blocked longest since the last snapshot', () => {
    const before = snap({
      elapsedMs: 1000,
      stages: [stage('input', { blockedMs: 100 }), stage('batch', { blockedMs: 0 })],
    });
    const now = snap({
      elapsedMs: 2000,
      stages: [stage('input', { blockedMs: 700 }), stage('batch', { blockedMs: 300 })],
    });
    assert.deepEqual(backpressure(now, before), { kind: 'blocked', stage: 'input', fraction: 0.6 });
  });

  it('is undefined when records flow freely (and with no time elapsed)', () => {
    assert.equal(backpressure(snap({ stages: [stage('a', { queued: 7 })] })), undefined);
    assert.equal(backpressure(snap({ elapsedMs: 0 })), undefined);
  });
});

describe('progress', () => {
  it('gives percent and ETA from the average rate so far', () => {
    const p = progressOf(snap({ elapsedMs: 10_000, progress: { done: 25, total: 100, unit: 'bytes' } }));
    assert.ok(p);
    assert.equal(p.percent, 25);
    assert.equal(p.etaMs, 30_000);
    assert.equal(p.text, '25% of 100 B');
  });

  it('is undefined without a known total, and has no ETA at 0% or 100%', () => {
    assert.equal(progressOf(snap({ progress: { done: 5, unit: 'records' } })), undefined);
    assert.equal(progressOf(snap({ progress: { done: 0, total: 0, unit: 'records' } })), undefined);
    assert.equal(progressOf(snap({ progress: { done: 0, total: 10, unit: 'records' } }))?.etaMs, undefined);
    assert.equal(
      progressOf(snap({ progress: { done: 10, total: 10, unit: 'records' } }))?.text,
      '100% of 10 records',
    );
  });
});

describe('status line and log line', () => {
  it('shows read, rate, written, DLQ, backpressure, elapsed, progress and ETA', () => {
    const prev = snap({ elapsedMs: 2000, recordsRead: 8245 });
    const now = snap({ progress: { done: 1024 * 1024, total: 4 * 1024 * 1024, unit: 'bytes' } });
    assert.equal(
      formatStatusLine(now, prev, { frame: 0 }),
      '⠋ 12,345 read · 4.10k/s · 12,300 written · 3 DLQ · backpressure none · 0:03 · 25% of 4.00 MB ETA 0:09',
    );
  });

  it('shows draining, and cuts to the terminal width', () => {
    const line = formatStatusLine(snap({ state: 'draining' }), undefined, { width: 30 });
    assert.equal(line.length, 29);
    assert.ok(line.startsWith('… 12,345 read'));
    assert.ok(line.endsWith('…'));
  });

  it('off a TTY: a plain sentence', () => {
    assert.equal(
      formatLogLine(snap({ stages: [stage('output', { queued: 16 })] })),
      'Progress of `etl`: 12,345 read, 4.12k/s, 12,300 written, 3 DLQ, backpressure `output` 16/16, 0:03',
    );
  });
});

describe('summary', () => {
  it('says how the run ended, with totals and who dead-lettered', () => {
    const s = snap({
      state: 'succeeded',
      stages: [stage('input', { deadLetters: 1 }), stage('map', { deadLetters: 2 })],
    });
    assert.equal(
      formatSummary(s),
      'Finished `etl` in 3.0s: 12,345 read, 12,300 written, 3 to DLQ (4.12k/s); peak 64 records queued.\n  `input` sent 1 record to the DLQ\n  `map` sent 2 records to the DLQ',
    );
    assert.match(formatSummary(snap({ state: 'cancelled' })), /^Stopped `etl` after 3\.0s/);
    const lossy = snap({
      droppedRecords: 45,
      stages: [stage('input', { kind: 'source' }), stage('debug', { kind: 'sink', droppedRecords: 45 })],
    });
    assert.match(
      formatSummary(lossy),
      /\n {2}45 records dropped before `debug`: its input buffer was full \(overflow `dropOldest`\)$/,
    );
    assert.match(
      formatSummary(snap({ state: 'failed', elapsedMs: 0, recordsRead: 0 })),
      /^Failed `etl` after 0ms: 0 read.*\(0\/s\)/,
    );
  });
});
