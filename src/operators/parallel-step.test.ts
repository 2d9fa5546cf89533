import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Decimal } from '../core/decimal.ts';
import { ErrorCode, type SluiceError } from '../core/errors.ts';
import type { RecordMeta } from '../core/message.ts';
import { OperatorHarness } from './harness.ts';
import { parallelStep } from './parallel-step.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-parallel-'));
const MODULE = join(dir, 'step.mjs');
// Per-key sequence numbers show that one worker saw every record of a key, in order.
writeFileSync(
  MODULE,
  `import { threadId } from 'node:worker_threads';
const seen = new Map();
export default (r) => {
  if (r.n % 7 === 3) throw new Error('bad ' + r.n);
  if (r.n % 5 === 0) return undefined;
  if (r.n % 11 === 0) return [{ n: r.n, part: 1 }, { n: r.n, part: 2 }];
  const seq = (seen.get(r.k) ?? 0) + 1;
  seen.set(r.k, seq);
  return { n: r.n, k: r.k, seq, thread: threadId };
};
export const slow = async (r) => { await new Promise((res) => setTimeout(res, r.n % 3)); return r.n; };
`,
);

let runs = 0;
type In = { n: number; k: string };
const input = (from: number, count: number): In[] =>
  Array.from({ length: count }, (_, i) => ({ n: from + i, k: `key${(from + i) % 9}` }));
const metaOf = (rs: In[]): RecordMeta[] =>
  rs.map((r) => ({ source: 'src', position: { line: r.n } }) as RecordMeta);

/** Runs the step over three batches and a barrier; what came out, with the thread ids removed. */
async function run(parallelism: number, key?: string, exportName?: string) {
  // A fresh module instance per run (the module keeps per-key counters).
  const op = parallelStep({
    module: `${pathToFileURL(MODULE).href}?run=${runs++}`,
    label: './step.mjs',
    parallelism,
    ...(key ? { key } : {}),
    ...(exportName ? { export: exportName } : {}),
  });
  const h = new OperatorHarness<unknown, unknown>(op);
  await h.open();
  for (const [from, count] of [
    [0, 40],
    [40, 1],
    [41, 60],
  ] as const) {
    const rs = input(from, count);
    await h.process(rs, metaOf(rs));
  }
  await h.signal({ kind: 'barrier', id: 1 } as never);
  await h.process(input(101, 30));
  await h.finish();
  await op.close?.();
  return h;
}

describe('parallelStep', () => {
  it('unkeyed on 2 threads: the same records, metas, dead letters and order as on one thread', async () => {
    const one = await run(1);
    const two = await run(2);
    // Without a key a key's records may meet different workers, so the per-key counters differ.
    const strip = (rs: unknown[]) => rs.map((r) => ({ ...(r as object), thread: undefined, seq: undefined }));
    assert.deepEqual(strip(two.records()), strip(one.records()));
    assert.deepEqual(two.metas(), one.metas());
    assert.equal(two.deadLetters.length, 19);
    assert.deepEqual(
      two.deadLetters.map((d) => [d.record, d.meta, (d.error as Error).message]),
      one.deadLetters.map((d) => [d.record, d.meta, (d.error as Error).message]),
    );
    assert.equal((two.deadLetters[0]?.error as SluiceError | undefined)?.code, ErrorCode.RECORD);
    assert.match(
      String((two.deadLetters[0]?.error as Error | undefined)?.message),
      /^module `\.\/step\.mjs` threw: bad 3$/,
    );
    // The barrier comes after every record before it.
    const signalAt = two.outputs.findIndex((o) => 'signal' in o);
    const before = two.outputs.slice(0, signalAt).flatMap((o) => ('batch' in o ? o.batch.records : []));
    assert.ok(before.every((r) => (r as { n: number }).n < 101));
    assert.ok(two.outputs.slice(signalAt + 1).some((o) => 'batch' in o));
  });

  it('keyed on 3 threads: every record of a key on one worker, in order; output in input order', async () => {
    const one = await run(1, 'k');
    const three = await run(3, 'k');
    const plain = (three.records() as { n: number; k?: string; seq?: number; thread?: number }[]).filter(
      (r) => r.k,
    );
    const threadOf = new Map<string, number>();
    for (const r of plain) {
      assert.equal(threadOf.get(r.k as string) ?? r.thread, r.thread, `key ${r.k} moved between threads`);
      threadOf.set(r.k as string, r.thread as number);
    }
    assert.ok(new Set(threadOf.values()).size > 1, 'the keys were spread over the workers');
    const strip = (rs: unknown[]) => rs.map((r) => ({ ...(r as object), thread: undefined }));
    // Same per-key sequence numbers as one thread saw: each worker got its keys' records in order.
    assert.deepEqual(strip(three.records()), strip(one.records()));
    assert.deepEqual(
      three.deadLetters.map((d) => d.record),
      one.deadLetters.map((d) => d.record),
    );
  });

  it('runs an async function, keeping input order', async () => {
    const two = await run(2, undefined, 'slow');
    assert.deepEqual(
      two.records(),
      Array.from({ length: 131 }, (_, i) => i),
    );
  });

  it('decimals cross the threads as decimals, both ways (money stays exact)', async () => {
    const decimalUrl = new URL('../core/decimal.ts', import.meta.url).href;
    const money = join(dir, 'money.mjs');
    writeFileSync(
      money,
      `import { Decimal } from ${JSON.stringify(decimalUrl)};
export default (r) => ({ n: r.n, received: r.amount instanceof Decimal, total: r.amount.add(Decimal.from('0.01')) });
`,
    );
    const op = parallelStep({ module: pathToFileURL(money).href, label: './money.mjs', parallelism: 2 });
    const h = new OperatorHarness<unknown, unknown>(op);
    await h.open();
    await h.process([
      { n: 1, amount: Decimal.from('1.10') },
      { n: 2, amount: Decimal.from('-0.015') },
    ]);
    await h.finish();
    await op.close?.();
    assert.equal(h.deadLetters.length, 0, String(h.deadLetters[0]?.error));
    const out = h.records() as { n: number; received: boolean; total: unknown }[];
    assert.deepEqual(
      out.map((r) => [r.n, r.received, r.total instanceof Decimal, String(r.total)]),
      [
        [1, true, true, '1.11'],
        [2, true, true, '-0.005'],
      ],
    );
  });

  it('refuses a closure: it cannot move to a worker thread', () => {
    assert.throws(
      () => parallelStep({ module: ((r: unknown) => r) as never, parallelism: 2 }),
      (e: SluiceError) =>
        e.code === ErrorCode.CONFIG && /a closure cannot move to a worker thread/.test(e.message),
    );
    assert.throws(
      () => parallelStep({ module: './rel.ts', parallelism: 2 }),
      /absolute path or a `file:` URL/,
    );
    assert.throws(
      () => parallelStep({ module: MODULE, parallelism: 0 }),
      /`parallelism` must be `auto` or a whole number/,
    );
  });

  it('fails the run when the module cannot load on the workers', async () => {
    const op = parallelStep({ module: MODULE, export: 'nope', parallelism: 2 });
    await assert.rejects(new OperatorHarness(op).open(), /export `nope` is not a function/);
    await op.close?.();
  });
});
