/**
 * The joins beyond the oracle: the event-time table join (versions, deletions, left outer, what
 * it keeps), checkpoints (a join restored mid-stream ends as an uninterrupted one), the typed
 * builder (`Stream.join`, `Stream.joinTable`) on the real runtime with two sources, and pipeline
 * files with `inputs:` and a `join` step (good and bad).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPipeline } from '../config/build.ts';
import { parsePipeline } from '../config/load.ts';
import { collected, testRegistry } from '../config/test-registry.ts';
import type { Batch } from '../core/message.ts';
import { batchOf, type RecordMeta } from '../core/message.ts';
import type { Sink, Source } from '../core/stage.ts';
import { OperatorHarness } from '../operators/harness.ts';
import { Pipeline } from '../pipeline.ts';
import { problemsOf } from '../spec/problems.ts';
import { type JoinOperator, streamJoin, tableJoin } from './join.ts';
import { joinSpec } from './spec.ts';

const T0 = Date.UTC(2024, 0, 1);
const s = (n: number) => T0 + n * 1000;

interface Order {
  id: number;
  c: string;
  ts: number;
}
interface Customer {
  name: string;
  at: number;
}

const meta = (side: string, n: number): RecordMeta[] => Array.from({ length: n }, () => ({ source: side }));

async function push(
  h: OperatorHarness<unknown, Record<string, unknown>>,
  side: 'left' | 'right',
  records: unknown[],
  m?: RecordMeta[],
) {
  await h.process(records, m ?? meta(side, records.length), side);
}

function tableHarness(type: 'inner' | 'left' = 'left') {
  return new OperatorHarness<unknown, Record<string, unknown>>(
    tableJoin({
      key: { left: 'c', right: '$key' },
      time: { left: 'ts', right: 'at' },
      type,
      as: { left: 'order', right: 'customer' },
    }),
  );
}

const row = (key: string, value: Customer): RecordMeta => ({ source: 'customers', key, timestamp: value.at });

/** Ends both inputs and returns each result as `[order id, customer name or null]`. */
async function endedOrders(h: OperatorHarness<unknown, Record<string, unknown>>): Promise<unknown[][]> {
  await h.endInput('left');
  await h.endInput('right');
  await h.finish();
  return h.records().map((r) => [(r.order as Order).id, (r.customer as Customer | null)?.name ?? null]);
}

describe('table join (event time, versioned)', () => {
  it('joins each record with the row its key had at the record’s time; a null value deletes', async () => {
    const h = tableHarness();
    await h.open();
    const rows: [string, Customer][] = [
      ['a', { name: 'Ann', at: s(0) }],
      ['b', { name: 'Bob', at: s(0) }],
      ['a', { name: 'Ann v2', at: s(10) }],
    ];
    await h.process(
      rows.map(([, v]) => v),
      rows.map(([k, v]) => row(k, v)),
      'right',
    );
    const orders: Order[] = [
      { id: 1, c: 'a', ts: s(5) },
      { id: 2, c: 'a', ts: s(10) },
      { id: 3, c: 'b', ts: s(15) },
      { id: 4, c: 'z', ts: s(16) },
      { id: 5, c: 'a', ts: s(30) },
    ];
    await push(h, 'left', orders);
    const got = await endedOrders(h);
    assert.deepEqual(got, [
      [1, 'Ann'],
      [2, 'Ann v2'],
      [3, 'Bob'],
      [4, null],
      [5, 'Ann v2'],
    ]);
  });

  it('deletes on a tombstone (null value) at its message timestamp, and forgets deleted keys once the watermark passes them', async () => {
    const op = tableJoin({
      key: { left: 'c', right: '$key' },
      time: { left: 'ts', right: 'at' },
      type: 'left',
    });
    const h = new OperatorHarness<unknown, Record<string, unknown>>(op);
    await h.open();
    await h.process(
      [{ name: 'Bob', at: s(0) }, null],
      [
        { source: 'customers', key: 'b', timestamp: s(0) },
        { source: 'customers', key: 'b', timestamp: s(10) },
      ],
      'right',
    );
    await push(h, 'left', [
      { id: 1, c: 'b', ts: s(9) },
      { id: 2, c: 'b', ts: s(10) },
    ]);
    await h.process([{ name: 'later', at: s(40) }], [{ source: 'customers', key: 'x' }], 'right');
    await push(h, 'left', [{ id: 3, c: 'b', ts: s(41) }]);
    // Watermark is s(40) − 1: `b`'s versions (s0, deleted at s10) are folded away entirely.
    assert.equal(op.metrics().joinHeld, 2, 'the one row of `x` and the waiting order 3');
    await h.endInput('left');
    await h.endInput('right');
    await h.finish();
    const got = h
      .records()
      .map((r) => [(r.left as Order).id, (r.right as { name: string } | null)?.name ?? null]);
    assert.deepEqual(got, [
      [1, 'Bob'],
      [2, null],
      [3, null],
    ]);
  });

  it('applies a late table change (counted as late, not sent to `late`): waiting records see it, emitted ones are not revised', async () => {
    const op = tableJoin({
      key: { left: 'c', right: '$key' },
      time: { left: 'ts', right: 'at' },
      type: 'left',
      late: 'late',
      as: { left: 'order', right: 'customer' },
    });
    const h = new OperatorHarness<unknown, Record<string, unknown>>(op);
    await h.open();
    await h.process([{ name: 'Ann', at: s(0) }], [row('a', { name: 'Ann', at: s(0) })], 'right');
    await push(h, 'left', [
      { id: 1, c: 'a', ts: s(10) },
      { id: 2, c: 'a', ts: s(30) },
    ]);
    const x = { name: 'X', at: s(20) };
    await h.process([x], [row('x', x)], 'right');
    // Watermark s(20) − 1: order 1 is out with `Ann`; order 2 waits.
    const late = { name: 'Ann late', at: s(15) };
    await h.process([late], [row('a', late)], 'right');
    const got = await endedOrders(h);
    assert.deepEqual(got, [
      [1, 'Ann'],
      [2, 'Ann late'],
    ]);
    assert.equal(op.metrics().lateEvents, 1);
    assert.deepEqual(h.records('late'), []);
  });

  it('an inner table join drops records without a row; a record waits until the watermark reaches its time', async () => {
    const h = tableHarness('inner');
    await h.open();
    await h.process([{ name: 'Ann', at: s(0) }], [row('a', { name: 'Ann', at: s(0) })], 'right');
    await push(h, 'left', [
      { id: 1, c: 'a', ts: s(5) },
      { id: 2, c: 'q', ts: s(5) },
    ]);
    assert.equal(h.records().length, 0, 'nothing before the table side passes the records’ time');
    await h.process([{ name: 'Ann v9', at: s(6) }], [row('a', { name: 'Ann v9', at: s(6) })], 'right');
    assert.equal(
      h.records().length,
      0,
      'the watermark (s6 − 1 on the right, s5 − 1 on the left) has not reached s5',
    );
    await push(h, 'left', [{ id: 3, c: 'a', ts: s(7) }]);
    assert.deepEqual(
      h.records().map((r) => [(r.order as Order).id, (r.customer as Customer).name]),
      [[1, 'Ann']],
      'the version at s5, not the newer one',
    );
  });
});

/** Feeds `steps` into a fresh operator, snapshotting and restoring into another one after `cut` of them. */
async function runWithRestore(
  make: () => JoinOperator,
  steps: { side: 'left' | 'right'; records: unknown[]; meta: RecordMeta[] }[],
  cut: number | undefined,
): Promise<string[]> {
  let op = make();
  let h = new OperatorHarness<unknown, Record<string, unknown>>(op);
  await h.open();
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < steps.length; i++) {
    if (i === cut) {
      out.push(...h.records());
      const state = structuredClone(op.snapshot());
      op = make();
      h = new OperatorHarness<unknown, Record<string, unknown>>(op);
      await h.open();
      op.restore(state);
    }
    const st = steps[i] as (typeof steps)[number];
    await h.process(st.records, st.meta, st.side);
  }
  await h.endInput('left');
  await h.endInput('right');
  await h.finish();
  out.push(...h.records());
  return out.map((r) => JSON.stringify(r)).sort();
}

describe('join checkpoints', () => {
  const stepsOf = () => {
    const steps: { side: 'left' | 'right'; records: unknown[]; meta: RecordMeta[] }[] = [];
    for (let i = 0; i < 40; i++) {
      const side = i % 3 === 0 ? 'right' : 'left';
      const records = [0, 1, 2].map((j) => ({
        id: `${side}${i}.${j}`,
        k: `k${(i + j) % 4}`,
        ts: s(i * 2 + j),
      }));
      steps.push({
        side,
        records,
        meta: records.map((r) => ({ source: side, key: r.k, timestamp: r.ts })),
      });
    }
    return steps;
  };

  for (const [name, make] of [
    [
      'interval',
      () =>
        streamJoin({
          key: 'k',
          time: 'ts',
          between: [-4000, 3000],
          type: 'left',
          watermark: { maxOutOfOrder: 2000 },
        }),
    ],
    ['window', () => streamJoin({ key: 'k', time: 'ts', tumbling: 5000, type: 'left' })],
    ['table', () => tableJoin({ key: 'k', time: 'ts', type: 'left', watermark: { maxOutOfOrder: 1000 } })],
  ] as const) {
    it(`a ${name} join restored from a snapshot at any point ends with the results of an uninterrupted run`, async () => {
      const steps = stepsOf();
      const whole = await runWithRestore(make, steps, undefined);
      assert.ok(whole.length > 20, `${whole.length} results`);
      for (const cut of [1, 7, 20, 33])
        assert.deepEqual(await runWithRestore(make, steps, cut), whole, `cut at ${cut}`);
    });
  }

  it('refuses the snapshot of another kind of join', async () => {
    const a = streamJoin({ key: 'k', time: 'ts', tumbling: 1000 });
    await new OperatorHarness(a).open();
    const b = tableJoin({ key: 'k', time: 'ts' });
    await new OperatorHarness(b).open();
    assert.throws(() => b.restore(a.snapshot()), /restoring a table join: .* delete the checkpoint folder/);
  });
});

describe('idle sides', () => {
  it('an idle side stops holding the watermark back once, without asking for a timer that is already due', async () => {
    const h = new OperatorHarness<unknown, Record<string, unknown>>(
      streamJoin({ key: 'k', time: 't', between: [0, 0], type: 'left', watermark: { idleTimeout: 1000 } }),
    );
    await h.open();
    await push(h, 'left', [{ k: 'a', t: s(1) }]);
    assert.equal(await h.fireTimerIfDue(), false, 'nothing due before the idle timeout');
    h.clock.advance(1000);
    assert.equal(await h.fireTimerIfDue(), true, 'the idle timeout is due');
    assert.equal(await h.fireTimerIfDue(), false, 'and then not due again (it spun for ever before)');
    await push(h, 'left', [{ k: 'b', t: s(5) }]);
    assert.deepEqual(
      h.records().map((r) => [r.left, r.right]),
      [[{ k: 'a', t: s(1) }, null]],
      'the right side, idle, no longer holds the left-outer result back',
    );
  });
});

describe('bad records', () => {
  it('dead-letters a record without its key or time, and a late one without a `late` output', async () => {
    const h = new OperatorHarness<unknown, Record<string, unknown>>(
      streamJoin({ key: 'k', time: 'ts', between: [0, 0] }),
    );
    await h.open();
    await push(h, 'left', [{ ts: s(1) }, { k: 'a', ts: 'yesterday' }, { k: 'a', ts: s(100) }]);
    await push(h, 'right', [{ k: 'a', ts: s(100) }]);
    await push(h, 'left', [{ k: 'a', ts: s(2) }]);
    const messages = h.deadLetters.map((d) => (d.error as Error).message);
    assert.match(messages[0] as string, /the left record has no key `k`/);
    assert.match(messages[1] as string, /time field `ts` is "yesterday"/);
    assert.match(messages[2] as string, /late left record .* name a `late` output/);
    assert.equal(h.records().length, 1);
  });

  it('fails on a batch from an unnamed input, saying how to connect it', async () => {
    const h = new OperatorHarness(streamJoin({ key: 'k', time: 'ts', between: [0, 0] }));
    await h.open();
    await assert.rejects(
      h.process([{ k: 1, ts: 1 }]),
      /got a batch on an unnamed input; connect its two inputs as `left` and `right`/,
    );
  });

  it('reports every problem of the options at once', () => {
    assert.throws(
      () =>
        streamJoin({
          key: { left: ['a', 'b'], right: 'c' },
          time: 'ts',
          between: ['1m', '-1m'],
          type: 'full' as 'left',
          late: 'out',
        }),
      (err: Error) => {
        for (const m of [
          /lower bound \(1m\) is after its upper bound/,
          /different numbers of key fields/,
          /`type` is `inner` or `left`/,
          /`late` names a side output/,
        ])
          assert.match(err.message, m);
        return true;
      },
    );
    assert.throws(
      () => streamJoin({ key: 'k', time: 'ts' }),
      /needs `between: \[lower, upper\]` .* or `tumbling: 1m`/,
    );
    assert.throws(() => tableJoin({ key: 'k', time: 'ts', between: [0, 1] }), /remove `between`/);
  });
});

function arraySource<T>(batches: { records: T[]; meta?: RecordMeta[] }[]): Source<T> {
  return {
    async run(out) {
      for (const b of batches) {
        await out.emit(batchOf(b.records, b.meta));
        await new Promise((r) => setImmediate(r));
      }
    },
  };
}

function collect<T>(): Sink<T> & { got: T[] } {
  const sink = {
    got: [] as T[],
    write(b: Batch<T>) {
      sink.got.push(...b.records);
    },
  };
  return sink;
}

describe('Stream.join and Stream.joinTable on the runtime', () => {
  it('joins two sources of one pipeline, typed, with watermarks merged by minimum', async () => {
    const p = new Pipeline('join-ts');
    const orders = p.from(
      arraySource([
        {
          records: [
            { id: 1, ts: s(0) },
            { id: 2, ts: s(10) },
          ],
        },
        { records: [{ id: 3, ts: s(20) }] },
      ]),
      { name: 'orders' },
    );
    const payments = p.from(
      arraySource([
        {
          records: [
            { orderId: 1, ts: s(3), amount: 5 },
            { orderId: 3, ts: s(21), amount: 7 },
          ],
        },
      ]),
      {
        name: 'payments',
      },
    );
    const sink = collect<string>();
    orders
      .join(payments, {
        key: { left: 'id', right: 'orderId' },
        time: 'ts',
        between: ['-1s', '5s'],
        type: 'left',
        as: { left: 'order', right: 'payment' },
      })
      .map((r) => `${r.order.id}:${r.payment === null ? '-' : r.payment.amount}`)
      .to(sink);
    const summary = await p.run().done;
    assert.deepEqual(sink.got.sort(), ['1:5', '2:-', '3:7']);
    assert.equal(summary.recordsRead, 5);
  });

  it('refuses to join a stream of another pipeline', () => {
    const a = new Pipeline('a').from(arraySource([]));
    const b = new Pipeline('b').from(arraySource([]));
    assert.throws(
      () => a.joinTable(b, { key: 'k', time: 'ts' }),
      /cannot join a stream of pipeline `b` into pipeline `a`/,
    );
  });

  it('joins a stream with a table fed by another source', async () => {
    const p = new Pipeline('join-table');
    const customers = p.from(
      arraySource([
        {
          records: [{ name: 'Ann' }, { name: 'Bob' }],
          meta: [
            { source: 'customers', key: 'a', timestamp: s(0) },
            { source: 'customers', key: 'b', timestamp: s(0) },
          ],
        },
      ]),
    );
    const orders = p.from(
      arraySource([
        {
          records: [
            { c: 'a', ts: s(1) },
            { c: 'b', ts: s(2) },
            { c: 'x', ts: s(3) },
          ],
        },
      ]),
    );
    const sink = collect<string>();
    orders
      .joinTable(customers, { key: { left: 'c', right: '$key' }, time: { left: 'ts' } })
      .map((r) => `${r.left.c}=${r.right.name}`)
      .to(sink);
    await p.run().done;
    assert.deepEqual(sink.got.sort(), ['a=Ann', 'b=Bob']);
  });
});

describe('pipeline files: `inputs:` and the `join` step', () => {
  const registry = testRegistry().add(joinSpec);
  const parse = (yaml: string) => parsePipeline(yaml, 'p.yaml', { registry, env: {}, baseDir: '/tmp' });
  const problems = async (yaml: string): Promise<string[]> => {
    const r = parse(yaml);
    if (r.config === undefined) return r.problems.map((p) => `${p.path}: ${p.message}`);
    try {
      await buildPipeline(r.config);
      return [];
    } catch (err) {
      return problemsOf(err).map((p) => `${p.path}: ${p.message}`);
    }
  };

  it('runs two named inputs through a join into the steps after it', async () => {
    const r = parse(`
name: files
inputs:
  orders: { memory: { records: [{ id: 1, ts: 1000 }, { id: 2, ts: 5000 }] } }
  payments: { memory: { records: [{ id: 1, ts: 1500, paid: true }] } }
pipeline:
  - join: { left: orders, right: payments, key: id, time: ts, between: [0s, 1s], type: left }
  - tag: { field: seen, value: yes }
output: { collect: { id: join-files } }
`);
    assert.deepEqual(r.problems, []);
    const config = r.config as NonNullable<typeof r.config>;
    assert.deepEqual([...config.inputs.keys()], ['orders', 'payments']);
    const { pipeline } = await buildPipeline(config);
    const edges = pipeline.graph.edges.filter((e) => e.to === 'join').map((e) => `${e.from}→${e.input}`);
    assert.deepEqual(edges.sort(), ['orders→left', 'payments→right']);
    await pipeline.run().done;
    const got = (collected.get('join-files') as Record<string, unknown>[])
      .map((x) => JSON.stringify(x))
      .sort();
    assert.deepEqual(got, [
      '{"orders":{"id":1,"ts":1000},"payments":{"id":1,"ts":1500,"paid":true},"seen":"yes"}',
      '{"orders":{"id":2,"ts":5000},"payments":null,"seen":"yes"}',
    ]);
  });

  it('reports what is wrong with named inputs, each at its place', async () => {
    const base = (inputs: string, steps: string) =>
      `inputs:\n${inputs}\npipeline:\n${steps}\noutput: { collect: { id: x } }\n`;
    const two = '  a: { memory: {} }\n  b: { memory: {} }';
    assert.deepEqual(await problems(base(two, '  - tag: { field: f, value: v }')), [
      'pipeline[0]: with `inputs:` the first step joins them: start `pipeline` with `- join: { left: a, right: b, … }`, not `tag`',
    ]);
    assert.deepEqual(
      await problems(
        base(
          `${two}\n  c: { memory: {} }`,
          '  - join: { left: a, right: bb, key: k, time: t, tumbling: 1m }',
        ),
      ),
      [
        'inputs.b: input `b` is read but `join` does not take it; name it in the `join` step or remove it',
        'inputs.c: input `c` is read but `join` does not take it; name it in the `join` step or remove it',
        'pipeline[0].join.right: `bb` is not an entry of `inputs:`; did you mean `b`? The inputs are `a`, `b` and `c`.',
      ],
    );
    assert.deepEqual(
      await problems(
        base(
          two,
          '  - tag: { field: f, value: v }\n  - join: { left: a, right: b, key: k, time: t, tumbling: 1m }',
        ),
      ),
      [
        'pipeline[0]: with `inputs:` the first step joins them: start `pipeline` with `- join: { left: a, right: b, … }`, not `tag`',
        "pipeline[1]: `join` takes the pipeline's named inputs, so it must be the first step; move it to the top of `pipeline`",
      ],
    );
    assert.deepEqual(
      await problems(
        'input: { memory: {} }\npipeline:\n  - join: { left: a, table: b, key: k, time: t }\noutput: { collect: { id: x } }\n',
      ),
      [
        'pipeline[0]: `join` joins named inputs: replace `input:` with `inputs:` naming each source (`inputs: { orders: { kafka: … }, payments: { kafka: … } }`) and name them in the step',
      ],
    );
    const both = await problems(
      `input: { memory: {} }\n${base(two, '  - join: { left: a, right: b, table: b, key: k, time: t }')}`,
    );
    assert.ok(
      both.includes('inputs: give `input` (one source) or `inputs` (named sources for a `join`), not both'),
      both.join('\n'),
    );
    assert.ok(
      both.includes(
        'pipeline[0].join.right: give `right` (a second stream) or `table` (a table’s changelog), exactly one',
      ),
      both.join('\n'),
    );
    assert.deepEqual(await problems('inputs: {}\noutput: { collect: { id: x } }\n'), [
      'inputs: `inputs` maps names to sources (`orders: { kafka: … }`) for a `join` step to name, got an empty map',
    ]);
    const names = await problems(
      base(
        '  dlq: { memory: {} }\n  b: { memory: {} }',
        '  - join: { left: dlq, right: b, key: k, time: t, tumbling: 1m }',
      ),
    );
    assert.ok(
      names.some((m) => m.startsWith('inputs.dlq: `dlq` cannot name an input')),
      names.join('\n'),
    );
    const bounds = await problems(
      base(two, '  - join: { left: a, right: b, key: k, time: { left: t }, between: [1m, soon] }'),
    );
    assert.ok(
      bounds.some((m) => m.startsWith('pipeline[0].join.between[1]: `soon` is not a duration')),
      bounds.join('\n'),
    );
    assert.ok(
      bounds.some((m) =>
        m.startsWith('pipeline[0].join.time.right: a stream join needs the right side’s event-time field'),
      ),
      bounds.join('\n'),
    );
  });
});
