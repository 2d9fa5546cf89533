import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../core/errors.ts';
import { REDACTED, SECRET, startTestRun } from '../metrics/test-helpers.ts';
import { parseAddress, serveRun } from './http.ts';

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('serveRun', () => {
  it('serves metrics, health, readiness, the topology, the state and the dashboard of a live run', async () => {
    const run = startTestRun({ batches: 3, hold: true });
    const server = await serveRun(run.handle, { address: '127.0.0.1:0', intervalMs: 50 });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      for (let i = 0; i < 200 && run.handle.metrics().recordsRead < 30; i++)
        await new Promise((r) => setTimeout(r, 5));
      const metrics = await get(`${server.url}metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
      assert.match(metrics.body, /sluice_records_in_total\{pipeline="metrics-test",stage="numbers"\} 30/);
      assert.equal((await get(`${server.url}health`)).status, 200);
      assert.equal((await get(`${server.url}ready`)).status, 200);

      const topology = JSON.parse((await get(`${server.url}api/topology`)).body);
      assert.deepEqual(topology.stages.map((s: { name: string }) => s.name).sort(), [
        'dlq',
        'numbers',
        'out',
        'picky',
      ]);
      assert.ok(
        topology.edges.some(
          (e: { from: string; port: string; to: string }) =>
            e.from === 'picky' && e.port === 'dlq' && e.to === 'dlq',
        ),
      );

      const state = JSON.parse((await get(`${server.url}api/state`)).body);
      assert.equal(state.snapshot.recordsRead, 30);
      assert.equal(state.lag.numbers.partitions[0].lag, 12);
      assert.equal(state.deadLetters.length, 3);
      const letter = JSON.stringify(state.deadLetters);
      assert.ok(!letter.includes(SECRET), 'a secret reached the dashboard');
      assert.ok(letter.includes(REDACTED));

      const page = await get(server.url);
      assert.equal(page.status, 200);
      assert.match(page.type, /text\/html/);
      assert.match(page.body, /dashboard\.js/);
      assert.equal((await get(`${server.url}dashboard.js`)).status, 200);
      assert.equal((await get(`${server.url}nope`)).status, 404);

      // The event stream: the topology first, then states.
      const ac = new AbortController();
      const res = await fetch(`${server.url}events`, { signal: ac.signal });
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while ((text.match(/\n\n/g) ?? []).length < 3)
        text += new TextDecoder().decode((await reader.read()).value);
      ac.abort();
      assert.match(text, /^event: topology\ndata: \{/);
      assert.equal((text.match(/^data: \{"time"/gm) ?? []).length >= 2, true);
    } finally {
      run.release();
      await run.handle.done;
    }
    assert.equal((await get(`${server.url}ready`)).status, 503, 'not ready once the run ended');
    await server.close();
    await assert.rejects(fetch(`${server.url}health`));
  });

  it('fails with a clear error when the port is taken', async () => {
    const run = startTestRun({ batches: 1 });
    const first = await serveRun(run.handle, { address: '127.0.0.1:0' });
    try {
      const port = new URL(first.url).port;
      await assert.rejects(serveRun(run.handle, { address: `127.0.0.1:${port}` }), (err: unknown) => {
        assert.ok(err instanceof SluiceError);
        assert.match(err.message, /cannot serve metrics on `127\.0\.0\.1:\d+`: the port is in use/);
        return true;
      });
    } finally {
      await first.close();
      await run.handle.done;
    }
  });
});

describe('parseAddress', () => {
  it('takes host:port, [v6]:port', () => {
    assert.deepEqual(parseAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseAddress('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseAddress('[::1]:9464'), { host: '::1', port: 9464 });
  });

  it('rejects what is not host:port, saying what to write', () => {
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:99999', 'http://127.0.0.1:9464', ':9464', '']) {
      assert.throws(
        () => parseAddress(bad),
        /bad HTTP address `.*`: use `host:port` with a port 0–65535, e\.g\. `127\.0\.0\.1:9464`/,
        bad,
      );
    }
  });
});
