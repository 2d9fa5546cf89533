/**
 * Hostile input: a window fed ever more keys. Before the state budget, 2.5M keys ran V8 out of
 * heap (exit 134, a raw native stack, the file sink's temporary file left behind); now the run
 * stops at `maxKeys` or `maxStateBytes` with a `SLUICE_STATE_LIMIT` error that names the stage,
 * the count, the estimate and what to do, and fails like any other run (temporary files removed).
 * The limits here are tiny, so the test holds a few hundred windows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileSink } from '../connectors/file/sink.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Source } from '../core/stage.ts';
import { defaultMaxStateBytes, StateBudget } from '../core/state-budget.ts';
import { OperatorHarness } from '../operators/harness.ts';
import { Pipeline } from '../pipeline.ts';
import { windowOperator } from './window.ts';

const isLimit = (err: unknown) => err instanceof SluiceError && err.code === ErrorCode.STATE_LIMIT;

/** `batches` batches of `size` records, each of a new key. */
function manyKeys(batches: number, size: number): Source<Record<string, unknown>> {
  return {
    async run(out) {
      for (let b = 0; b < batches; b++) {
        const records = [];
        for (let i = 0; i < size; i++) records.push({ k: `key-${b * size + i}`, ts: 1000, v: i });
        await out.emit({ kind: 'batch', records });
      }
    },
  };
}

test('a window past its maxKeys fails with the stage, the count, the estimate and what to do', async () => {
  const op = windowOperator({
    key: 'k',
    time: 'ts',
    tumbling: '1m',
    aggregate: { n: 'count()', p99: 'percentile(v, 0.99)', users: 'distinct(u)' },
    maxKeys: 3,
  });
  const h = new OperatorHarness(op, { name: 'per-user' });
  await h.open();
  await h.process([
    { k: 'a', ts: 1 },
    { k: 'b', ts: 1 },
    { k: 'c', ts: 1 },
  ]);
  await assert.rejects(h.process([{ k: 'd', ts: 1 }]), (err: unknown) => {
    assert.ok(isLimit(err), String(err));
    const e = err as SluiceError;
    assert.equal(e.context.stage, 'per-user');
    assert.equal(e.context.keys, 4);
    assert.match(e.message, /holds 4 open windows, above its `maxKeys: 3`/);
    assert.match(e.message, /per window: n 48 B, p99 2400 B, users 1024 B/);
    assert.match(e.message, /raise `maxKeys`, or shorten the window/);
    assert.match(e.message, /cheapen the large aggregates/);
    return true;
  });
});

test('maxKeys is checked with the other window options', () => {
  assert.throws(
    () => windowOperator({ time: 'ts', tumbling: '1m', aggregate: { n: 'count()' }, maxKeys: 0 }),
    /`maxKeys` must be a whole number ≥ 1, got 0/,
  );
});

test('the run-wide budget adds up every stage and names the one that crossed it', () => {
  const b = new StateBudget(1000);
  const usage = (bytes: number) => ({
    keys: bytes / 100,
    bytes,
    perKey: '100 B',
    noun: 'windows',
    remedies: [],
  });
  b.report('a', usage(600));
  b.report('a', usage(500)); // a report replaces the stage's previous one
  assert.equal(b.totalBytes, 500);
  assert.throws(
    () => b.report('b', usage(600)),
    (err: unknown) =>
      isLimit(err) &&
      (err as SluiceError).context.stage === 'b' &&
      /6 windows, about 600 B \(100 B\), and other stages 500 B: above `maxStateBytes` \(1000 B\)/.test(
        (err as Error).message,
      ),
  );
  b.release('a');
  assert.equal(b.totalBytes, 600);
  assert.throws(() => new StateBudget(0), /`maxStateBytes` must be a positive number/);
});

test('the default budget is half the old space, not half of a heap limit that counts the young generation', () => {
  const d = defaultMaxStateBytes();
  assert.ok(d > 0 && d < 4 * 1024 ** 3, String(d));
});

test('a run past maxStateBytes fails cleanly: one clear error and no temporary file left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-state-limit-'));
  try {
    const p = new Pipeline('state-limit');
    p.from(manyKeys(20, 100))
      .window({ key: 'k', time: 'ts', tumbling: '1h', aggregate: { n: 'count()' }, name: 'by-key' })
      .to(fileSink({ path: join(dir, 'out.jsonl'), format: 'jsonl' }));
    // ~350 B per window: 100 000 B is passed within the first few hundred keys.
    await assert.rejects(
      p.run({ maxStateBytes: 100_000, log: { info() {}, warn() {}, error() {} } }).done,
      (err: unknown) => {
        assert.ok(isLimit(err), String(err));
        assert.equal((err as SluiceError).context.stage, 'by-key');
        assert.match((err as Error).message, /open windows, about .* above `maxStateBytes` \(97.7 KB\)/);
        return true;
      },
    );
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
