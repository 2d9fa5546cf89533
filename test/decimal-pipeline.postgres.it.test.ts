/**
 * Money end to end: CSV amounts (scale 2, and fees of mixed scales) → a CEL filter and CEL
 * arithmetic → a window's sum, mean, min and max → JSON Lines and a PostgreSQL `numeric` table,
 * through the real CLI. Python's `decimal` computes the same job from the same CSV; every value
 * Sluice wrote must equal it, digit for digit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { shown, sluice } from './support/cli.ts';

const PG_URL = process.env.SLUICE_POSTGRES_URL ?? 'postgres://sluice:sluice@127.0.0.1:5432/sluice';
const dir = mkdtempSync(join(tmpdir(), 'sluice-decimal-'));
const table = `money_${randomUUID().slice(0, 8)}`;
const client = new pg.Client({ connectionString: PG_URL });

after(async () => {
  await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
  await client.end().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

/** A reproducible CSV: amounts at scale 2 (up to 10^13, written with 0–2 digits), fees at 0–4 digits. */
function csv(): string {
  let seed = 7;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const rows = ['ts,user,amount,fee'];
  for (let i = 0; i < 400; i++) {
    const ts = new Date(Date.UTC(2024, 4, 1) + i * 1500).toISOString();
    const cents = BigInt(rand(100_000)) * BigInt(rand(4) === 0 ? 100_000_000 : 1) + BigInt(rand(100));
    let amount = `${cents / 100n}.${(cents % 100n).toString().padStart(2, '0')}`;
    if (rand(5) === 0 && amount.endsWith('0')) amount = amount.slice(0, -1); // `12.5`: scale 2 pads it
    const fs = rand(5);
    const fee = fs === 0 ? String(rand(10)) : `${rand(10)}.${String(rand(10 ** fs)).padStart(fs, '0')}`;
    rows.push(`${ts},${'abcd'[rand(4)]},${rand(9) === 0 ? `-${amount}` : amount},${fee}`);
  }
  return `${rows.join('\n')}\n`;
}

const PYTHON = `
import csv, json, sys
from datetime import datetime
from decimal import Decimal, getcontext, ROUND_HALF_EVEN
getcontext().prec = 1000
def q(d, s): return d.quantize(Decimal(1).scaleb(-s), rounding=ROUND_HALF_EVEN)
def out(d): return format(d, 'f')
# min/max of equal amounts spelt differently (0 and 0.0) give the shorter spelling: Sluice's rule,
# so a result does not depend on arrival order. Python's min/max keep the first of equals.
def lo(xs): return min(sorted(xs, key=out))
def hi(xs): return max(sorted(xs, key=out))
wins = {}
for row in csv.DictReader(open(sys.argv[1])):
    amount = q(Decimal(row['amount']), 2)          # types: { type: decimal, scale: 2 }
    fee = Decimal(row['fee'])                      # types: decimal (scale as written)
    if not amount > 100: continue                  # filter: amount > 100
    total = amount + fee                           # amount + fee
    doubled = amount * 2                           # amount * 2
    share = q(amount / 3, 2 + 6)                   # amount / 3: half even, scale + 6
    ts = datetime.fromisoformat(row['ts'].replace('Z', '+00:00'))
    start = ts.replace(second=0, microsecond=0).strftime('%Y-%m-%dT%H:%M:%S.000Z')
    wins.setdefault((row['user'], start), []).append((amount, fee, total, doubled, share))
res = []
for (user, start), xs in sorted(wins.items()):
    s = sum((x[2] for x in xs), Decimal(0))
    m = q(sum((x[0] for x in xs), Decimal(0)) / len(xs), 2 + 6)
    res.append({'user': user, 'windowStart': start, 'total': out(s), 'doubled': out(sum((x[3] for x in xs), Decimal(0))),
        'mean': out(m), 'max': out(hi(x[0] for x in xs)), 'minFee': out(lo(x[1] for x in xs)),
        'maxShare': out(hi(x[4] for x in xs)), 'n': len(xs)})
print(json.dumps(res))
`;

test('a decimal pipeline writes what Python’s decimal computes, to JSON Lines and PostgreSQL numeric', async () => {
  writeFileSync(join(dir, 'in.csv'), csv());
  await client.connect();
  await client.query(
    `CREATE TABLE ${table} ("user" text, "windowStart" timestamptz, "windowEnd" timestamptz, total numeric,
      doubled numeric, mean numeric, max numeric(16,2), "minFee" numeric, "maxShare" numeric, n integer,
      revision integer, update boolean)`,
  );
  writeFileSync(
    join(dir, 'money.yaml'),
    `name: money
input:
  file: { path: in.csv, format: csv, types: { ts: timestamp, amount: { type: decimal, scale: 2 }, fee: decimal } }
pipeline:
  - filter: 'amount > 100'
  - map: { fields: { total: 'amount + fee', doubled: 'amount * 2', share: 'amount / 3' } }
  - window:
      key: [user]
      time: ts
      tumbling: 1m
      aggregate: { total: sum(total), doubled: sum(doubled), mean: mean(amount), max: max(amount), minFee: min(fee), maxShare: max(share), n: count() }
output:
  - file: { path: out.jsonl, format: jsonl }
  - postgres: { url: '${PG_URL}', table: ${table} }
`,
  );
  const run = sluice(['run', 'money.yaml'], { cwd: dir });
  assert.equal(run.code, 0, shown(run));
  assert.match(run.stderr + run.stdout, /0 to DLQ/, shown(run));

  const py = spawnSync('python3', ['-c', PYTHON, join(dir, 'in.csv')], { encoding: 'utf8' });
  assert.equal(py.status, 0, py.stderr);
  const want = JSON.parse(py.stdout) as Record<string, unknown>[];
  assert.ok(want.length > 30, `only ${want.length} windows`);

  const fields = ['user', 'windowStart', 'total', 'doubled', 'mean', 'max', 'minFee', 'maxShare', 'n'];
  const pick = (r: Record<string, unknown>) => Object.fromEntries(fields.map((f) => [f, r[f]]));
  const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    `${a.user}${a.windowStart}` < `${b.user}${b.windowStart}` ? -1 : 1;
  const jsonl = readFileSync(join(dir, 'out.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => pick(JSON.parse(l)))
    .sort(byKey);
  assert.deepEqual(jsonl, want);

  const { rows } = await client.query(
    `SELECT "user", to_char("windowStart" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "windowStart",
       total::text, doubled::text, mean::text, max::text, "minFee"::text, "maxShare"::text, n FROM ${table}`,
  );
  assert.deepEqual((rows as Record<string, unknown>[]).map(pick).sort(byKey), want);
});
