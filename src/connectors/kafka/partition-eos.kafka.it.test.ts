/**
 * Exactly-once under partition-scoped checkpoints (`checkpoint: { scope: partition }`) against the
 * real broker (`npm run services -- up kafka`): two `sluice run` members of one group share a
 * topic's partitions, kafka → step → kafka with `exactlyOnce: true`. Member `a` is SIGKILLed at
 * `after-store:3` — its checkpoint 3 is stored per partition (offsets and operator slices) but its
 * transaction, holding that checkpoint's output and offsets, is never committed. Member `b` takes
 * its partitions over (its idle timeout is longer than `a`'s session timeout plus the broker's
 * abort of `a`'s transaction). A `read_committed` reader must see every input record's effect
 * exactly once: the new owner must not resume from the stored state of a checkpoint whose
 * transaction did not commit. (No third run after `b`: a run that ends fires its open windows
 * without storing that, so a later run fires them again — a separate, known gap.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createTopic,
  fresh,
  type GroupMember,
  groupMember,
  produce,
  readThroughSource,
} from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PARTITIONS = 4;
const KEYS = 16;
const PER_KEY = 500;
/**
 * `transactionTimeout` of the member killed: the broker aborts its open transaction after it, and
 * the new owner waits for that. The other member's is 60 s: it must outlast that wait, during
 * which its source loop is blocked and takes no checkpoint, so its open transaction ages.
 */
const TXN_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const member = groupMember;

interface Input {
  readonly seq: number;
  readonly key: string;
  readonly ts: number;
}

/** Each key in one partition, in event-time order: 40 ms apart, 25 per 1-second window. */
function inputs(): Input[] {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const out: Input[] = [];
  for (let j = 0; j < PER_KEY; j++)
    for (let k = 0; k < KEYS; k++) out.push({ seq: out.length, key: `k${k}`, ts: T0 + j * 40 });
  return out;
}

/** Runs the members as described in the module comment; resolves with the read_committed output. */
async function killedAndTakenOver(step: string): Promise<unknown[]> {
  const input = await createTopic(BROKERS, 'peos-in', PARTITIONS);
  const output = await createTopic(BROKERS, 'peos-out', 2);
  await produce(
    BROKERS,
    input,
    inputs().map((r) => ({
      key: r.key,
      partition: Number(r.key.slice(1)) % PARTITIONS,
      value: JSON.stringify(r),
    })),
  );
  const dir = mkdtempSync(join(tmpdir(), 'sluice-partition-eos-'));
  const members: GroupMember[] = [];
  try {
    const file = join(dir, 'pipeline.yaml');
    writeFileSync(
      file,
      `name: it-partition-eos
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${input}, group: ${fresh('g')}, clientId: "\${SLUICE_IT_MEMBER}", batchSize: 50, idleTimeout: 20s, sessionTimeout: 6s }
pipeline:
  - throttle: { rate: 800 }
${step}
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${output}, exactlyOnce: true, transactionTimeout: "\${SLUICE_IT_TXN}" }
checkpoint: { interval: 2s, records: 300, dir: ${join(dir, 'shared-state')}, scope: partition }
`,
    );
    const a = member(file, dir, 'a', {
      SLUICE_TEST_CRASH: 'after-store:3',
      SLUICE_IT_TXN: `${TXN_TIMEOUT_MS}ms`,
    });
    members.push(a);
    // `b` joins at once, so `a` is killed while both own partitions.
    const b = member(file, dir, 'b', { SLUICE_IT_TXN: '60s' });
    members.push(b);
    assert.equal(await a.exit, null, `member a was killed at after-store:3\n${a.stderr}`);
    const killedAt = Date.now();
    assert.equal(await b.exit, 0, b.stderr);
    // The killed member's transaction holds back read_committed readers until the broker aborts it.
    await sleep(Math.max(0, killedAt + TXN_TIMEOUT_MS + 2000 - Date.now()));
    return await readThroughSource(BROKERS, output);
  } finally {
    for (const m of members)
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

test('partition scope, exactly-once map: a member killed between storing checkpoint 3 and committing its transaction loses nothing and duplicates nothing', {
  timeout: 240_000,
}, async () => {
  const out = (await killedAndTakenOver("  - map: { fields: { doubled: 'seq * 2' } }")) as {
    seq: number;
    doubled: number;
  }[];
  const N = KEYS * PER_KEY;
  const seen = new Uint16Array(N);
  for (const r of out) seen[r.seq] = (seen[r.seq] as number) + 1;
  const missing = seen.filter((n) => n === 0).length;
  const twice = out.length - (N - missing);
  console.log(`partition-scope exactly-once map: ${N} records, ${missing} missing, ${twice} twice`);
  assert.deepEqual({ missing, twice }, { missing: 0, twice: 0 }, 'every input record exactly once');
  assert.ok(out.every((r) => r.doubled === r.seq * 2));
});

interface WindowResult {
  key: string;
  windowStart: string;
  n: number;
  /** `sum` keeps exact decimals: a string. */
  total: string;
  revision: number;
}

test('partition scope, exactly-once keyed window: a member killed between storing checkpoint 3 and committing its transaction gives every window once, with every record counted once', {
  timeout: 240_000,
  // Was `todo` until Dec 7: in ~2 of 10 runs member `b` failed at a checkpoint taken while the
  // other member joined ("adding the consumed offsets of checkpoint 3 to the transaction":
  // ILLEGAL_GENERATION, the request carried the generation before the join). The commit is now sent
  // again with the new generation when the member kept the partitions (`generations.ts`).
}, async () => {
  const out = (await killedAndTakenOver(`  - window:
      key: key
      time: ts
      tumbling: 1s
      watermark: { maxOutOfOrder: 0ms }
      aggregate: { n: count(), total: sum(seq) }`)) as WindowResult[];
  const expected = new Map<string, { n: number; total: number }>();
  for (const r of inputs()) {
    const id = `${r.key}|${new Date(r.ts - (r.ts % 1000)).toISOString()}`;
    const e = expected.get(id) ?? { n: 0, total: 0 };
    e.n++;
    e.total += r.seq;
    expected.set(id, e);
  }
  const results = new Map<string, WindowResult>();
  const repeated: string[] = [];
  for (const r of out) {
    const id = `${r.key}|${r.windowStart}`;
    const had = results.get(id);
    if (had?.revision === r.revision) repeated.push(`${id}#${r.revision}`);
    if (had === undefined || r.revision > had.revision) results.set(id, r);
  }
  const missing = [...expected.keys()].filter((id) => !results.has(id));
  const wrong = [...expected].filter(([id, e]) => {
    const got = results.get(id);
    return got !== undefined && (got.n !== e.n || Number(got.total) !== e.total);
  });
  const counted = [...results.values()].reduce((s, r) => s + r.n, 0);
  console.log(
    `partition-scope exactly-once window: ${expected.size} windows, ${missing.length} missing, ${wrong.length} wrong, ${repeated.length} written twice; ${counted} of ${KEYS * PER_KEY} records counted`,
  );
  assert.deepEqual(
    {
      missing: missing.length,
      wrong: wrong.slice(0, 5).map(([id, e]) => ({ id, expected: e, got: results.get(id) })),
      repeated: repeated.slice(0, 5),
    },
    { missing: 0, wrong: [], repeated: [] },
  );
});
