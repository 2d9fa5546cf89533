import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type FailingService, failingService } from '../../test/support/failing-service.ts';
import { OperatorHarness } from './harness.ts';
import { httpCall, type SagaOutcome, saga } from './saga.ts';

/** The service that fails on purpose (test/support/failing-service.ts): `bad-*`, `flaky-*`, `slow-*`. */
let service: FailingService;
let base: string;
let effects: Set<string>; // idempotency keys applied (once each)
let calls: Map<string, number>; // idempotency key → requests
before(async () => {
  service = await failingService();
  ({ base, applied: effects, requests: calls } = service);
});
after(() => service.close());

function orderSaga(log?: string) {
  const fast = { minDelayMs: 5, maxDelayMs: 20, timeoutMs: 2000 };
  return saga<{ id: string }>({
    id: 'id',
    concurrency: 4,
    ...(log !== undefined ? { log } : {}),
    steps: [
      {
        name: 'reserve',
        action: httpCall({ url: `${base}/reserve` }),
        compensate: httpCall({ url: `${base}/release` }),
        retry: fast,
      },
      { name: 'charge', action: httpCall({ url: `${base}/charge` }), timeoutMs: 2000, retry: fast },
      { name: 'ship', action: async () => 'shipped', retry: fast },
    ],
  });
}

test('saga: completed, compensated after a refused step, retried through 503s and a timeout', async () => {
  const h = new OperatorHarness(orderSaga());
  await h.open();
  await h.process([{ id: 'ok-1' }, { id: 'bad-1' }, { id: 'flaky-1' }, { id: 'slow-1' }]);
  const out = h.records() as SagaOutcome<{ id: string }>[];
  assert.deepEqual(
    out.map((o) => `${o.sagaId}:${o.status}${o.step ? `@${o.step}` : ''}`),
    ['ok-1:completed', 'bad-1:compensated@charge', 'flaky-1:completed', 'slow-1:completed'],
  );
  assert.match(String(out[1]?.error), /HTTP 402/);
  assert.ok(effects.has('bad-1:reserve:compensate'), 'the reservation was released');
  assert.equal(calls.get('bad-1:charge'), 1, 'a 402 is not retried');
  assert.equal(calls.get('slow-1:charge'), 2, 'the hung attempt timed out and was retried');
});

test('saga: the durable log resumes a compensation and re-emits an ended saga', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-saga-'));
  try {
    const log = join(dir, 'saga.log');
    // As a crash left it: `resume-1` reserved, then its charge failed; `done-1` had ended.
    writeFileSync(
      log,
      `${[
        { s: 'resume-1', e: 'done', n: 1 },
        { s: 'resume-1', e: 'fail', step: 'charge', error: 'HTTP 402' },
        { s: 'done-1', e: 'end', o: { status: 'completed' } },
      ]
        .map((e) => JSON.stringify(e))
        .join('\n')}\n{"s":"cut`,
    );
    const h = new OperatorHarness(orderSaga(log));
    await h.open();
    await h.process([{ id: 'resume-1' }, { id: 'done-1' }]);
    assert.deepEqual(
      (h.records() as SagaOutcome<unknown>[]).map((o) => `${o.sagaId}:${o.status}`),
      ['resume-1:compensated', 'done-1:completed'],
    );
    assert.equal(calls.get('resume-1:reserve'), undefined, 'a logged action is not run again');
    assert.equal(calls.get('resume-1:charge'), undefined);
    assert.ok(effects.has('resume-1:reserve:compensate'));
    assert.equal(calls.get('done-1:reserve'), undefined);
    assert.match(readFileSync(log, 'utf8'), /"resume-1","e":"end"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('saga spec: each action is exactly one of http, postgres, kafka, module; postgres and kafka take their defaults', async () => {
  const { sagaSpec } = await import('./keyed-spec.ts');
  const parse = (action: unknown) => sagaSpec.config.safeParse({ id: 'id', steps: [{ name: 'a', action }] });
  const ok = parse({ postgres: { url: 'postgres://x@h/db', statement: 'SELECT 1' } });
  assert.ok(ok.success);
  assert.deepEqual(ok.data.steps[0]?.action.postgres, {
    url: 'postgres://x@h/db',
    statement: 'SELECT 1',
    params: [],
    minRows: 0,
    table: 'sluice_saga_calls',
  });
  const kafka = parse({ kafka: { brokers: 'a:1, b:2', topic: 't' } });
  assert.ok(kafka.success);
  assert.deepEqual(kafka.data.steps[0]?.action.kafka?.brokers, ['a:1', 'b:2']);
  for (const [bad, message] of [
    [{}, /give exactly one of `http`, `postgres`, `kafka`, `module`$/],
    [{ module: './a.ts', kafka: { brokers: 'a:1', topic: 't' } }, /\(found `kafka` and `module`\)/],
  ] as const) {
    const r = parse(bad);
    assert.equal(r.success, false);
    assert.match(r.error?.issues[0]?.message ?? '', message);
  }
});
