import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METRICS } from './catalog.ts';
import { cachedLag } from './lag-cache.ts';
import { prometheusRegistry } from './prometheus.ts';
import { startTestRun } from './test-helpers.ts';

/** `name{labels} value` lines of a scrape → map from `name{labels}` to value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('prometheusRegistry', () => {
  it('reports the counters of the run summary, per stage and per dead-letter code', async () => {
    const { handle } = startTestRun({ batches: 5 });
    const summary = await handle.done;
    const got = samples(await (await prometheusRegistry(handle)).scrape());
    const l = (stage: string) => `{pipeline="metrics-test",stage="${stage}"}`;
    assert.equal(got.get(`sluice_records_in_total${l('numbers')}`), summary.recordsRead);
    assert.equal(summary.recordsRead, 50);
    assert.equal(got.get(`sluice_records_in_total${l('picky')}`), 50);
    assert.equal(got.get(`sluice_records_out_total${l('picky')}`), 45);
    assert.equal(got.get(`sluice_records_out_total${l('out')}`), summary.recordsWritten);
    assert.equal(
      got.get('sluice_dead_letters_total{pipeline="metrics-test",stage="picky",code="SLUICE_RECORD"}'),
      summary.deadLetters,
    );
    assert.equal(summary.deadLetters, 5);
    // One observation per batch: the operator got 5 batches, the sink 5.
    assert.equal(got.get(`sluice_batch_duration_seconds_count${l('picky')}`), 5);
    assert.equal(
      got.get(`sluice_batch_duration_seconds_bucket{pipeline="metrics-test",stage="out",le="+Inf"}`),
      5,
    );
    assert.equal(got.get(`sluice_watermark_seconds${l('picky')}`), 1_700_000_004);
    assert.equal(got.get(`sluice_watermark_seconds${l('out')}`), 1_700_000_004);
    assert.equal(got.get('sluice_ready{pipeline="metrics-test"}'), 0, 'not ready once finished');
    assert.ok((got.get('sluice_process_resident_memory_bytes{pipeline="metrics-test"}') ?? 0) > 0);
  });

  it('reports the lag a source gives, per partition, and its commit age', async () => {
    const { handle } = startTestRun({ batches: 1 });
    await handle.done;
    const got = samples(await (await prometheusRegistry(handle)).scrape());
    assert.equal(
      got.get('sluice_kafka_consumer_lag{pipeline="metrics-test",stage="numbers",partition="events:0"}'),
      12,
    );
    assert.equal(
      got.get('sluice_kafka_consumer_lag{pipeline="metrics-test",stage="numbers",partition="events:1"}'),
      0,
    );
    assert.equal(got.get('sluice_kafka_commit_age_seconds{pipeline="metrics-test",stage="numbers"}'), 1.5);
  });

  it('says ready while running', async () => {
    const run = startTestRun({ batches: 1, hold: true });
    const exporter = await prometheusRegistry(run.handle);
    for (let i = 0; i < 100 && run.handle.metrics().state !== 'running'; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(samples(await exporter.scrape()).get('sluice_ready{pipeline="metrics-test"}'), 1);
    run.release();
    await run.handle.done;
  });

  it('declares every metric of the catalog, once, with its type', async () => {
    const { handle } = startTestRun({ batches: 1 });
    await handle.done;
    const text = await (await prometheusRegistry(handle)).scrape();
    for (const m of Object.values(METRICS)) {
      assert.ok(text.includes(`# TYPE ${m.name} ${m.type}\n`), `${m.name} is not declared as a ${m.type}`);
      assert.match(m.name, /^sluice_[a-z_]+$/);
      if (m.type === 'counter') assert.match(m.name, /_total$/, `counter ${m.name} must end in _total`);
      for (const label of m.labels)
        assert.ok(!/key|value|record/.test(label), `${m.name}: per-record label ${label}`);
    }
    const names = Object.values(METRICS).map((m) => m.name);
    assert.equal(new Set(names).size, names.length, 'a metric name is used twice');
  });
});

describe('cachedLag', () => {
  it('asks at most once per interval and keeps the last answer when a call fails', async () => {
    let calls = 0;
    let fail = false;
    const lag = cachedLag(async () => {
      calls++;
      if (fail) throw new Error('broker down');
      return { s: { partitions: [{ partition: 't:0', position: 1, end: 3, lag: 2 }] } };
    }, 60_000);
    await Promise.all([lag(), lag(), lag()]);
    assert.equal(calls, 1);
    assert.equal((await lag()).s?.partitions[0]?.lag, 2);
    assert.equal(calls, 1);
    fail = true;
    const again = cachedLag(async () => {
      calls++;
      throw new Error('broker down');
    }, 0);
    assert.deepEqual(await again(), {});
  });
});
