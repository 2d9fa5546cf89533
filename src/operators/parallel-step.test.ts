import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
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

// ~0.2 ms of work per record, so a worker and this thread both get chunks of one batch.
const BUSY = join(dir, 'busy.mjs');
writeFileSync(
  BUSY,
  `import { threadId } from 'node:worker_threads';
export default (r) => {
  const t = performance.now();
  while (performance.now() - t < 0.2);
  if (r.n % 13 === 6) throw new Error('bad ' + r.n);
  return r.n % 17 === 0 ? undefined : { n: r.n, thread: threadId };
};
export const exitOnWorker = (r) => {
  if (threadId !== 0) process.exit(3);
  const t = performance.now();
  while (performance.now() - t < 0.2);
  return r;
};
`,
);
// Loads on the calling thread, throws when a worker imports it.
const MAIN_ONLY = join(dir, 'main-only.mjs');
writeFileSync(
  MAIN_ONLY,
  `import { isMainThread } from 'node:worker_threads';
if (!isMainThread) throw new Error('needs the main thread');
export default (r) => r;
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
    // Keyed, every record runs on a worker.
    assert.deepEqual(
      (await run(2, 'k', 'slow')).records(),
      Array.from({ length: 131 }, (_, i) => i),
    );
  });

  it('unkeyed: the batches that come while the workers start run on this thread, the rest on the workers', async () => {
    const batches = (from: number) => Array.from({ length: 8 }, (_, b) => input(from + b * 200, 200));
    const expected = (rs: In[]) => rs.filter((r) => r.n % 13 !== 6 && r.n % 17 !== 0).map((r) => r.n);
    const op = parallelStep({
      module: `${pathToFileURL(BUSY).href}?run=${runs++}`,
      label: './busy.mjs',
      parallelism: 2,
    });
    const h = new OperatorHarness<unknown, unknown>(op);
    // A failed assertion must not leave the workers running (the file would wait for them).
    after(() => op.close?.());
    await h.open();
    // The workers take tens of milliseconds to start: the first batch runs here.
    const first = input(0, 50);
    await h.process(first, metaOf(first));
    assert.equal(op.metrics?.().parallelCallerRecords, 50);
    assert.ok((h.records() as { thread: number }[]).every((r) => r.thread === 0));
    // Until the workers have said they are ready, batches keep running here; then on them.
    let fed = 50;
    const sent: In[] = [...first];
    for (let round = 0; round < 50; round++) {
      for (const b of batches(fed)) {
        await h.process(b, metaOf(b));
        sent.push(...b);
      }
      fed += 1600;
      const threads = new Set((h.records() as { thread: number }[]).map((r) => r.thread));
      if (threads.size > 1) break;
    }
    await h.finish();
    await op.close?.();
    const out = h.records() as { n: number; thread: number }[];
    assert.deepEqual(
      out.map((r) => r.n),
      expected(sent),
      'every record once, in input order, none lost or doubled at the switch',
    );
    const onWorkers = out.findIndex((r) => r.thread !== 0);
    assert.ok(onWorkers > 0, 'workers ran records too');
    assert.ok(
      out.slice(onWorkers).every((r) => r.thread !== 0),
      'once the workers are up, nothing runs here any more',
    );
    const caller = op.metrics?.().parallelCallerRecords as number;
    assert.ok(caller >= 50 && caller < sent.length, `this thread ran ${caller} of ${sent.length}`);
    // Dead letters where they fell (this thread or a worker), with the record's own meta.
    const dead = sent.filter((r) => r.n % 13 === 6);
    assert.deepEqual(
      h.deadLetters.map((d) => [d.record, d.meta, (d.error as Error).message]),
      dead.map((r) => [
        r,
        { source: 'src', position: { line: r.n } },
        `module \`./busy.mjs\` threw: bad ${r.n}`,
      ]),
    );
    assert.deepEqual(h.metas(), metaOf(sent.filter((r) => r.n % 13 !== 6 && r.n % 17 !== 0)));
  });

  it('fails the run when a worker dies mid-run', async () => {
    const op = parallelStep({
      module: `${pathToFileURL(BUSY).href}?run=${runs++}`,
      export: 'exitOnWorker',
      label: './busy.mjs',
      parallelism: 2,
    });
    const h = new OperatorHarness<unknown, unknown>(op);
    await h.open();
    try {
      // Its first record kills a worker, once the workers are up (before, every batch runs here).
      await assert.rejects(
        (async () => {
          for (let from = 0; from < 100_000; from += 400) await h.process(input(from, 400));
          await h.finish();
        })(),
        (e: SluiceError) =>
          e.code === ErrorCode.STAGE &&
          /worker thread \d of `\.\/busy\.mjs` exited \(code 3\)/.test(e.message),
      );
    } finally {
      await op.close?.();
    }
  });

  it('fails a short run too when the module cannot load on a worker, though this thread ran every record', async () => {
    const op = parallelStep({ module: MAIN_ONLY, label: './main-only.mjs', parallelism: 2 });
    const h = new OperatorHarness<unknown, unknown>(op);
    after(() => op.close?.());
    await h.open();
    await h.process(input(0, 5));
    assert.equal(h.records().length, 5);
    await assert.rejects(
      h.finish(),
      /module `\.\/main-only\.mjs` on worker thread \d: loading the module: needs the main thread/,
    );
    await op.close?.();
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
    // Keyed: every record runs on a worker (unkeyed, the first batches run on this thread).
    const op = parallelStep({
      module: pathToFileURL(money).href,
      label: './money.mjs',
      parallelism: 2,
      key: 'n',
    });
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
    await assert.rejects(
      new OperatorHarness(op).open(),
      (e: SluiceError) =>
        e.code === ErrorCode.CONFIG &&
        /module `.*step\.mjs`: export `nope` is not a function/.test(e.message),
    );
    await op.close?.();
  });
});
