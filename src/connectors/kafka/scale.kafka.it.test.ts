/**
 * Scale-out against the real broker (`npm run services -- up kafka`): several `sluice run`
 * processes with one pipeline and one consumer group share a topic's partitions, with
 * `checkpoint: { scope: partition }` keeping each partition's window state in a folder they all
 * open. Every test uses fresh topic, group and folder names.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { createTopic, fresh, messageCount, produce, readValues } from './test-helpers.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PROJECT = new URL('../../../', import.meta.url).pathname;

interface Run {
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
  stderr: string;
}

function sluiceRun(file: string, cwd: string, member = 'single'): Run {
  const child = spawn(process.execPath, [join(PROJECT, 'bin/sluice.js'), 'run', file], {
    cwd,
    env: { ...process.env, SLUICE_IT_MEMBER: member },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const run: Run = {
    child,
    exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    stderr: '',
  };
  child.stderr?.on('data', (d) => {
    run.stderr += d;
  });
  return run;
}

/** The window job: per key and 1-second window, the count and sum of `amount`. */
function pipelineYaml(o: {
  input: string;
  output: string;
  group: string;
  dir: string;
  rate: number;
  idle: string;
}): string {
  return `name: it-scale
input:
  kafka: { brokers: ${BROKERS[0]}, topic: ${o.input}, group: ${o.group}, clientId: "\${SLUICE_IT_MEMBER}", batchSize: 50, idleTimeout: ${o.idle}, sessionTimeout: 6s }
pipeline:
  - throttle: { rate: ${o.rate} }
  - window:
      key: key
      time: ts
      tumbling: 1s
      watermark: { maxOutOfOrder: 0ms }
      aggregate: { n: count(), total: sum(amount) }
output:
  kafka: { brokers: ${BROKERS[0]}, topic: ${o.output} }
checkpoint: { interval: 300ms, records: 200, dir: ${o.dir}, scope: partition }
`;
}

/** How many partitions each member (by client id) of `group` is assigned now. */
async function assignment(group: string): Promise<Map<string, number>> {
  const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: BROKERS });
  try {
    const groups = await admin.describeGroups({ groups: [group] });
    const out = new Map<string, number>();
    for (const m of groups.get(group)?.members.values() ?? []) {
      let n = 0;
      for (const a of m.assignments?.values() ?? []) n += a.partitions.length;
      out.set(m.clientId, n);
    }
    return out;
  } finally {
    await admin.close();
  }
}

interface WindowResult {
  key: string;
  windowStart: string;
  n: number;
  total: number;
  revision: number;
}

/**
 * The results by key and window, the last revision of each; fails when two copies of one
 * revision differ (a re-played partition must give the same results).
 */
function finalResults(values: readonly string[]): Map<string, WindowResult> {
  const out = new Map<string, WindowResult>();
  for (const v of values) {
    const r = JSON.parse(v) as WindowResult;
    const id = `${r.key}|${r.windowStart}`;
    const had = out.get(id);
    if (had !== undefined && had.revision === r.revision) {
      assert.deepEqual(r, had, `two results of ${id} revision ${r.revision} differ`);
    }
    if (had === undefined || r.revision > had.revision) out.set(id, r);
  }
  return out;
}

test('scale-out: three processes share six partitions; one is SIGKILLed; the others take its partitions with their state; results equal a single-process run', async () => {
  const KEYS = 12;
  const PARTITIONS = 6;
  const PER_KEY = 800;
  const input = await createTopic(BROKERS, 'scale-in', PARTITIONS);
  const output = await createTopic(BROKERS, 'scale-out', 3);
  const reference = await createTopic(BROKERS, 'scale-ref', 1);
  // Each key in one partition, in event-time order: 40 ms apart, 25 per 1-second window.
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const messages = [];
  for (let j = 0; j < PER_KEY; j++) {
    for (let k = 0; k < KEYS; k++) {
      messages.push({
        key: `k${k}`,
        partition: k % PARTITIONS,
        value: JSON.stringify({ key: `k${k}`, ts: T0 + j * 40, amount: (j * 7 + k) % 13 }),
      });
    }
  }
  await produce(BROKERS, input, messages);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-scale-'));
  const runs: Run[] = [];
  const group = fresh('g');
  try {
    const shared = join(dir, 'shared-state');
    writeFileSync(
      join(dir, 'scale.yaml'),
      pipelineYaml({ input, output, group, dir: shared, rate: 600, idle: '12s' }),
    );
    writeFileSync(
      join(dir, 'single.yaml'),
      pipelineYaml({
        input,
        output: reference,
        group: fresh('g'),
        dir: join(dir, 'single-state'),
        rate: 100_000,
        idle: '3s',
      }),
    );
    const single = sluiceRun(join(dir, 'single.yaml'), dir);
    runs.push(single);
    const members = [0, 1, 2].map((i) => sluiceRun(join(dir, 'scale.yaml'), dir, `m${i}`));
    runs.push(...members);
    // Kill one member mid-run: once every member has partitions and some windows fired, long
    // before the input is done.
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(Date.now() < deadline, 'the three members got partitions and produced results');
      const owners = await assignment(group);
      if (
        [0, 1, 2].every((i) => (owners.get(`m${i}`) ?? 0) > 0) &&
        (await messageCount(BROKERS, output)) >= 24
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const victim = members[0] as Run;
    victim.child.kill('SIGKILL');
    assert.equal(await victim.exit, null, 'killed, not finished');
    const [a, b] = [members[1] as Run, members[2] as Run];
    assert.equal(await a.exit, 0, a.stderr);
    assert.equal(await b.exit, 0, b.stderr);
    assert.equal(await single.exit, 0, single.stderr);

    const expected = finalResults(await readValues(BROKERS, reference));
    const got = finalResults(await readValues(BROKERS, output));
    const windows = PER_KEY / 25;
    assert.equal(expected.size, KEYS * windows, 'the single run has every window of every key');
    assert.equal(
      [...expected.values()].reduce((s, r) => s + r.n, 0),
      KEYS * PER_KEY,
      'the single run counted every record once',
    );
    const missing = [...expected.keys()].filter((id) => !got.has(id));
    const differ = [...expected].filter(
      ([id, r]) => got.has(id) && JSON.stringify(got.get(id)) !== JSON.stringify(r),
    );
    const extra = [...got.keys()].filter((id) => !expected.has(id));
    assert.deepEqual(
      { missing, differ: differ.map(([id, r]) => ({ id, expected: r, got: got.get(id) })), extra },
      { missing: [], differ: [], extra: [] },
      `three processes with a kill give the results of one\n${[...members].map((m) => m.stderr).join('\n---\n')}`,
    );
    assert.deepEqual(
      [...got.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
      [...expected.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
      'three processes with a kill give the results of one',
    );
  } finally {
    for (const r of runs) r.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
