/**
 * A saga of HTTP calls through the real CLI against a real local HTTP service that fails on
 * purpose, SIGKILLed three times while sagas are under way and restarted (issue #15, §3): the
 * service answers 503 twice to `flaky-*` sagas, never answers the first charge of `slow-*` ones
 * (the step times out and is retried), drops the connection of the first charge of `drop-*` ones
 * (as a service that dies mid-request), and refuses the charge of `bad-*` ones (402, so the saga
 * compensates its reservation). Every call takes a few milliseconds, so the kills land mid-saga.
 *
 * Every saga must end completed or fully compensated, once: one outcome each, and per saga the
 * effects the service applied (once per idempotency key) are exactly what its outcome calls for
 * — never a reservation without its charge or its release.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type FailingService, failingService } from './support/failing-service.ts';
import { assertKeysPerSaga, killSagaRuns, sagaStatuses } from './support/saga-checks.ts';

const SAGAS = 300;
const KINDS = ['ok', 'ok', 'ok', 'flaky', 'slow', 'drop', 'bad'] as const;
const lines = Array.from({ length: SAGAS }, (_, i) => ({ id: `${KINDS[i % KINDS.length]}-${i}` }));

let service: FailingService;
let dir: string;

before(async () => {
  service = await failingService(5);
  const base = service.base;
  dir = mkdtempSync(join(tmpdir(), 'sluice-saga-http-'));
  writeFileSync(join(dir, 'orders.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    `name: saga-http
input: { file: { path: orders.jsonl, format: jsonl } }
pipeline:
  - saga:
      id: id
      concurrency: 8
      steps:
        - name: reserve
          action: { http: { url: '${base}/reserve' } }
          compensate: { http: { url: '${base}/release' } }
          retry: { minDelay: 5ms, maxDelay: 20ms }
        - name: charge
          action: { http: { url: '${base}/charge' } }
          timeout: 300ms
          retry: { minDelay: 5ms, maxDelay: 20ms }
output: { file: { path: out/outcomes.jsonl, format: jsonl } }
dlq: { file: { path: out/dead-letters.jsonl, format: jsonl } }
checkpoint: { interval: 200ms }
`,
  );
});

after(() => {
  service.close();
  rmSync(dir, { recursive: true, force: true });
});

test('HTTP sagas against a failing service, SIGKILLed mid-saga: each ends completed or fully compensated', async (t) => {
  await killSagaRuns({
    dir,
    name: 'saga-http',
    progress: async () => [...service.applied].filter((k) => k.endsWith(':reserve')).length,
    total: SAGAS,
    diagnostic: (m) => t.diagnostic(m),
  });

  const status = sagaStatuses(join(dir, 'out/outcomes.jsonl'), lines);
  assert.equal(readFileSync(join(dir, 'out/dead-letters.jsonl'), 'utf8'), '');
  for (const l of lines)
    assert.equal(status.get(l.id), l.id.startsWith('bad-') ? 'compensated@charge' : 'completed', l.id);
  assertKeysPerSaga(service.applied, lines, status, {
    completed: 'charge,reserve',
    'compensated@charge': 'reserve,reserve:compensate',
  });
  t.diagnostic(
    `${[...service.requests.values()].reduce((a, b) => a + b, 0)} requests for ${service.applied.size} effects`,
  );
});
