/**
 * The interval join of examples/orders-payments through the real CLI: two file inputs (out of
 * order, with late records at the end of each), `join` with `type: left` and a `late` output.
 *
 * Which records are late depends on how the two files' reading interleaves (the join's watermark
 * is the minimum of both sides'), so the check is: every record the join called late was behind
 * its own side's watermark at least; and the results equal a join computed here by sorting over
 * the inputs without the late records — each pair once, each unmatched order exactly once with
 * `null`. The exact late set is checked by the in-process oracle (src/join/oracle.test.ts).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type JoinEvent, writeOrdersPayments } from '../examples/orders-payments/generate.ts';
import { shown, sluice } from './support/cli.ts';

const example = fileURLToPath(new URL('../examples/orders-payments/', import.meta.url));
const LOWER = -5 * 60_000;
const UPPER = 60_000;
const MAX_OUT_OF_ORDER = 10_000;

const jsonl = (path: string): unknown[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);

/** Records of `rows` that come after their own stream's bounded-out-of-orderness watermark. */
function behindOwnWatermark(rows: readonly JoinEvent[]): Set<JoinEvent> {
  const out = new Set<JoinEvent>();
  let max = Number.NEGATIVE_INFINITY;
  for (const r of rows) {
    if (r.ts <= max - MAX_OUT_OF_ORDER - 1) out.add(r);
    max = Math.max(max, r.ts);
  }
  return out;
}

/** The left join by sorting: per order, the payments of its id in range, sorted; else null. */
function reference(orders: readonly JoinEvent[], payments: readonly JoinEvent[]): string[] {
  const byId = new Map<string, JoinEvent[]>();
  for (const p of [...payments].sort((a, b) => a.ts - b.ts))
    byId.set(p.orderId, [...(byId.get(p.orderId) ?? []), p]);
  return orders
    .flatMap((o): { orders: JoinEvent; payments: JoinEvent | null }[] => {
      const matches = (byId.get(o.orderId) ?? []).filter((p) => p.ts - o.ts >= LOWER && p.ts - o.ts <= UPPER);
      return matches.length === 0
        ? [{ orders: o, payments: null }]
        : matches.map((p) => ({ orders: o, payments: p }));
    })
    .map((r) => JSON.stringify(r))
    .sort();
}

test('examples/orders-payments: two file inputs, an interval left join through the CLI, equal to a join by sorting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-join-cli-'));
  cpSync(join(example, 'pipeline.yaml'), join(dir, 'pipeline.yaml'));
  const { orders, payments } = writeOrdersPayments(dir, 2000);

  const r = sluice(['run', 'pipeline.yaml'], { cwd: dir });
  assert.equal(r.code, 0, shown(r));

  const late = jsonl(join(dir, 'out', 'late.jsonl')) as { side: string; event: JoinEvent }[];
  const lateKeys = new Set(late.map((l) => `${l.side} ${JSON.stringify(l.event)}`));
  const candidates = new Set([
    ...[...behindOwnWatermark(orders)].map((e) => `left ${JSON.stringify(e)}`),
    ...[...behindOwnWatermark(payments)].map((e) => `right ${JSON.stringify(e)}`),
  ]);
  for (const k of lateKeys) assert.ok(candidates.has(k), `called late but on time on its own side: ${k}`);
  assert.equal(lateKeys.size, late.length, 'each late record once');

  const onTime = (side: string, rows: readonly JoinEvent[]) =>
    rows.filter((e) => !lateKeys.has(`${side} ${JSON.stringify(e)}`));
  const expected = reference(onTime('left', orders), onTime('right', payments));
  const got = jsonl(join(dir, 'out', 'joined.jsonl'))
    .map((x) => JSON.stringify(x))
    .sort();
  assert.deepEqual(got, expected);
  const unmatched = got.filter((l) => l.endsWith('"payments":null}'));
  assert.equal(new Set(unmatched).size, unmatched.length, 'each unmatched order exactly once');
  assert.ok(
    unmatched.length > 500 && got.length - unmatched.length > 1000,
    'matches and unmatched orders both',
  );
  assert.deepEqual(jsonl(join(dir, 'out', 'dead.jsonl')), [], 'nothing dead-lettered');
  console.log(`${got.length} results (${unmatched.length} unmatched orders), ${late.length} late records`);
});

test('sluice lint: a join naming an unknown input, a Kafka input with `parallel`, a late output missing, a join inside a shard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-join-lint-'));
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    `inputs:
  orders: { kafka: { brokers: [127.0.0.1:9092], topic: orders, parallel: { concurrency: 2 } } }
  payments: { file: { path: payments.jsonl, format: jsonl } }
pipeline:
  - join: { left: orders, right: paymnts, key: orderId, time: ts, between: [-5m, 1m], late: late }
  - shard: { key: orderId, shards: 2, steps: [{ join: { left: orders, right: payments, key: orderId, time: ts, tumbling: 1m } }] }
output: { stdout: { format: jsonl } }
`,
  );
  const r = sluice(['lint', 'pipeline.yaml'], { cwd: dir });
  assert.equal(r.code, 1, shown(r));
  const said = `${r.stdout}${r.stderr}`;
  for (const expected of [
    "pipeline.yaml:2:11: error: inputs.orders.kafka: the `kafka` input would run the pipeline's first step inside the source (`parallel`), but with `inputs:` the first step is the `join`",
    'error: pipeline[0].join.right: `paymnts` is not an entry of `inputs:`; did you mean `payments`? The inputs are `orders` and `payments`.',
    'error: inputs.payments: input `payments` is read but `join` does not take it',
    'error: pipeline[0]: step `join` emits on side output `late`, but `outputs:` has no `late`',
    "error: pipeline[1].shard.steps[0]: `join` joins the pipeline's named inputs, so it cannot be inside a `shard` or `fanOut`",
  ])
    assert.ok(said.includes(expected), `missing: ${expected}\n${said}`);
});
