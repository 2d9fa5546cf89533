/**
 * Several `sluice run` processes (the real CLI) on one Pulsar subscription, against the broker
 * `npm run services -- up pulsar` starts (`npm test` does it for this file's name):
 *
 * - `key_shared`, 3 processes, 100 keys: a `module:` step in each process fails any record that
 *   is not the next of its key (order, no gap, no duplicate), then a keyed window counts each key.
 *   One process is SIGKILLed mid-run: its unacknowledged messages go to the others, and every key
 *   ends in exactly one surviving process with a count equal to the input.
 * - `shared` as a work queue with a slow step (a throttle): two processes share the work; messages
 *   that cannot be decoded are negatively acknowledged, redelivered, and after `maxRedeliveries`
 *   moved by the broker to the dead-letter topic.
 * - `shared` with `failedRecords: nack`: the same slow work run by 1 and by 3 processes (records/s
 *   of each reported, not asserted); records a step fails are negatively acknowledged, delivered
 *   again (to any process), and after `maxRedeliveries` moved to the dead-letter topic, each
 *   attempt a dead letter in the `dlq` output.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { deleteTopics, PULSAR_URL, publish, readAll } from './test-helpers.ts';

const CLI = new URL('../../cli/main.ts', import.meta.url).pathname;
const dirs: string[] = [];
const topics: string[] = [];

after(async () => {
  await deleteTopics(topics);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function start(dir: string, file: string): Proc {
  const child = spawn(process.execPath, [CLI, 'run', file], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stderr: () => err };
}

function lines(path: string): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

interface ConsumerStats {
  consumerName?: string;
  msgOutCounter?: number;
}

/** The consumers of `sub` on `topic` as the broker's stats list them. */
async function consumers(topic: string, sub: string): Promise<ConsumerStats[]> {
  const res = await fetch(`${PULSAR_URL}/admin/v2/persistent/public/default/${topic}/stats`);
  if (!res.ok) return [];
  const s = (await res.json()) as { subscriptions?: Record<string, { consumers?: ConsumerStats[] }> };
  return s.subscriptions?.[sub]?.consumers ?? [];
}

async function until(what: string, check: () => Promise<boolean>, procs: Proc[], ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}\n${procs.map((p) => p.stderr()).join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fails a record that is not the next one of its key in this process. */
const ORDER_CHECK = `const last = new Map();
export default function inOrder(r) {
  const prev = last.get(r.k) ?? -1;
  if (r.seq !== prev + 1) throw new Error(\`key \${r.k}: seq \${r.seq} after \${prev}\`);
  last.set(r.k, r.seq);
  return r;
}
`;

/** The input of one process of a `shared` work queue on `topic`: nacked messages come again after 200 ms. */
function worker(
  topic: string,
  name: string,
  dlq: string,
  more: Record<string, unknown>,
): Record<string, unknown> {
  return {
    url: PULSAR_URL,
    topic,
    subscription: 'workers',
    subscriptionType: 'shared',
    start: 'earliest',
    consumerName: name,
    idleTimeout: '10s', // long enough for publishing to start on a loaded machine
    batchSize: 20,
    redeliveryDelay: '200ms',
    deadLetterTopic: dlq,
    ...more,
  };
}

/** The step of the work-queue test: fails the records marked `fail`, stamps the others with when they were done. */
const WORK = `export default function work(r) {
  if (r.fail) throw new Error(\`job \${r.id} failed\`);
  return { ...r, at: Date.now() };
}
`;

describe('pulsar: several sluice processes on one subscription', () => {
  it('key_shared, 3 processes, 100 keys: one process per key in order; a SIGKILLed one’s keys go to the others, counts exact', async (t) => {
    const KEYS = 100;
    const PER_KEY = 40;
    const topic = `ks-${randomUUID().slice(0, 8)}`;
    topics.push(topic);
    const sub = 'counters';
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pulsar-ks-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'order.ts'), ORDER_CHECK);
    const names = ['p1', 'p2', 'p3'];
    for (const name of names) {
      const pipeline = {
        name: `ks-${name}`,
        input: {
          pulsar: {
            url: PULSAR_URL,
            topic,
            subscription: sub,
            subscriptionType: 'key_shared',
            start: 'earliest',
            consumerName: name,
            idleTimeout: '10s', // long enough for publishing to start on a loaded machine
            batchSize: 50,
            receiverQueueSize: 100,
          },
        },
        pipeline: [
          { throttle: { rate: 500, burst: 50 } },
          { module: './order.ts' },
          {
            window: {
              key: 'k',
              time: 't',
              tumbling: '1h',
              aggregate: { n: 'count()', first: 'min(seq)', last: 'max(seq)' },
            },
          },
        ],
        output: { file: { path: `${name}.jsonl`, format: 'jsonl' } },
        dlq: { file: { path: `${name}-dead.jsonl`, format: 'jsonl' } },
      };
      writeFileSync(join(dir, `${name}.yaml`), stringify(pipeline));
    }
    const procs = names.map((n) => start(dir, `${n}.yaml`));
    // All three join before any message exists, so hash ranges do not move before the kill.
    await until(
      '3 consumers on the subscription',
      async () => (await consumers(topic, sub)).length === 3,
      procs,
    );
    const messages = [];
    for (let seq = 0; seq < PER_KEY; seq++)
      for (let k = 0; k < KEYS; k++)
        messages.push({
          key: `key${k}`,
          payload: JSON.stringify({ k: `key${k}`, seq, t: 1_700_000_000_000 }),
        });
    await publish(topic, messages);
    const victim = procs[0] as Proc;
    await until(
      'p1 mid-run',
      async () =>
        ((await consumers(topic, sub)).find((c) => c.consumerName === 'p1')?.msgOutCounter ?? 0) >= 300,
      procs,
    );
    victim.child.kill('SIGKILL');
    assert.equal((await victim.exited).signal, 'SIGKILL');
    for (const p of procs.slice(1)) {
      const end = await p.exited;
      assert.equal(end.code, 0, `a survivor exits 0:\n${p.stderr()}`);
    }
    const owner = new Map<string, string>();
    for (const name of names.slice(1)) {
      assert.deepEqual(lines(join(dir, `${name}-dead.jsonl`)), [], `${name}: no record out of order`);
      for (const r of lines(join(dir, `${name}.jsonl`))) {
        const k = String(r.k);
        assert.ok(!owner.has(k), `key ${k} counted by ${owner.get(k)} and ${name}`);
        owner.set(k, name);
        assert.deepEqual([r.n, r.first, r.last], [PER_KEY, 0, PER_KEY - 1], `${name}: the count of ${k}`);
      }
    }
    assert.equal(owner.size, KEYS, 'every key counted by one survivor');
    const share = names.slice(1).map((n) => [...owner.values()].filter((o) => o === n).length);
    t.diagnostic(`keys per survivor: ${share.join(', ')}`);
  });

  it('shared as a work queue: two processes share a slow step; bad messages are nacked, redelivered, then dead-lettered', async (t) => {
    const N = 600;
    const BAD = 5;
    const topic = `wq-${randomUUID().slice(0, 8)}`;
    const dlq = `${topic}-dlq`;
    topics.push(topic, dlq);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pulsar-wq-'));
    dirs.push(dir);
    const names = ['w1', 'w2'];
    for (const name of names) {
      writeFileSync(
        join(dir, `${name}.yaml`),
        stringify({
          name: `wq-${name}`,
          input: {
            pulsar: worker(topic, name, dlq, {
              receiverQueueSize: 50,
              badMessages: 'nack',
              maxRedeliveries: 2,
            }),
          },
          // The slow step: 250 records/s per process.
          pipeline: [{ throttle: { rate: 250, burst: 10 } }],
          output: { file: { path: `${name}.jsonl`, format: 'jsonl' } },
        }),
      );
    }
    const procs = names.map((n) => start(dir, `${n}.yaml`));
    await until(
      '2 consumers on the subscription',
      async () => (await consumers(topic, 'workers')).length === 2,
      procs,
    );
    const messages = [];
    for (let i = 0; i < N; i++) {
      messages.push({ payload: JSON.stringify({ id: i }) });
      if (i % (N / BAD) === 7) messages.push({ payload: `not json ${i}` });
    }
    const began = Date.now();
    await publish(topic, messages);
    for (const p of procs) {
      const end = await p.exited;
      assert.equal(end.code, 0, `a worker exits 0:\n${p.stderr()}`);
    }
    const took = Date.now() - began;
    const got = names.map((n) => lines(join(dir, `${n}.jsonl`)).map((r) => Number(r.id)));
    const all = new Set(got.flat());
    assert.equal(all.size, N, 'every good message processed');
    for (const [i, ids] of got.entries())
      assert.ok(ids.length > N / 4, `${names[i]} did a share of the work (${ids.length} of ${N})`);
    t.diagnostic(
      `work split ${got.map((g) => g.length).join(' / ')} in ${took} ms (the work alone takes one process ${(N / 250) * 1000} ms; 3 s idle end)`,
    );
    const dead = await readAll(dlq);
    assert.deepEqual(
      dead.map((m) => m.payload).sort(),
      messages
        .filter((m) => m.payload.startsWith('not'))
        .map((m) => m.payload)
        .sort(),
      'each bad message reached the dead-letter topic once',
    );
  });

  it('shared work queue, failing step: 1 vs 3 processes; failed records nacked, redelivered, then dead-lettered after maxRedeliveries', async (t) => {
    const N = 900;
    const RATE = 150; // records/s per process: the slow step
    const MAX = 2;
    const failing = new Set([40, 310, 555, 777]);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-pulsar-fail-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'work.ts'), WORK);
    /** One round: `procs` processes on a fresh topic; what each wrote, its dead letters and the DLQ topic. */
    const round = async (procs: number) => {
      const topic = `fail${procs}-${randomUUID().slice(0, 8)}`;
      const dlq = `${topic}-dlq`;
      topics.push(topic, dlq);
      const names = Array.from({ length: procs }, (_, i) => `${topic}-w${i + 1}`);
      for (const name of names) {
        writeFileSync(
          join(dir, `${name}.yaml`),
          stringify({
            name,
            input: {
              pulsar: worker(topic, name, dlq, {
                receiverQueueSize: 40,
                failedRecords: 'nack',
                maxRedeliveries: MAX,
                commitInterval: '200ms',
              }),
            },
            pipeline: [{ throttle: { rate: RATE, burst: 10 } }, { module: './work.ts' }],
            output: { file: { path: `${name}.jsonl`, format: 'jsonl' } },
            dlq: { file: { path: `${name}-dead.jsonl`, format: 'jsonl' } },
          }),
        );
      }
      const ps = names.map((n) => start(dir, `${n}.yaml`));
      await until(
        `${procs} consumers on the subscription`,
        async () => (await consumers(topic, 'workers')).length === procs,
        ps,
      );
      const messages = Array.from({ length: N }, (_, id) => ({
        payload: JSON.stringify(failing.has(id) ? { id, fail: true } : { id }),
      }));
      await publish(topic, messages);
      for (const p of ps) {
        const end = await p.exited;
        assert.equal(end.code, 0, `a worker exits 0:\n${p.stderr()}`);
      }
      const done = names.map((n) => lines(join(dir, `${n}.jsonl`)));
      const dead = names.flatMap((n) => lines(join(dir, `${n}-dead.jsonl`)));
      return { done, dead, dlqTopic: await readAll(dlq) };
    };

    const figures: string[] = [];
    for (const procs of [1, 3]) {
      const { done, dead, dlqTopic } = await round(procs);
      const ids = done.flat().map((r) => Number(r.id));
      assert.equal(ids.length, N - failing.size, `${procs} process(es): each good record done once`);
      assert.equal(new Set(ids).size, N - failing.size);
      for (const id of failing) assert.ok(!ids.includes(id), `failing record ${id} is not in the output`);
      if (procs > 1) {
        for (const [i, d] of done.entries())
          assert.ok(
            d.length > N / (procs * 3),
            `process ${i + 1} did a share of the work (${d.length} of ${N})`,
          );
      }
      // Every attempt of a failing record is a dead letter in the dlq output, with its redelivery count.
      const attempts = new Map<number, number[]>();
      for (const letter of dead) {
        const record = letter.record as { id: number };
        const position = letter.position as { redeliveryCount?: number };
        assert.match(String((letter.error as { message: string }).message), /job \d+ failed/);
        attempts.set(record.id, [...(attempts.get(record.id) ?? []), position.redeliveryCount ?? 0]);
      }
      assert.deepEqual(
        [...attempts.keys()].sort((a, b) => a - b),
        [...failing].sort((a, b) => a - b),
      );
      for (const [id, counts] of attempts)
        assert.deepEqual(
          counts.sort(),
          Array.from({ length: MAX + 1 }, (_, i) => i),
          `record ${id}: delivered ${MAX + 1} times (redelivery counts 0..${MAX}), each a dead letter`,
        );
      // The broker's dead-letter producer is at-least-once (Pulsar documents it so): once in CI a
      // record Sluice saw exactly MAX + 1 times (checked above) was in the DLQ topic twice. So:
      // every failing record and nothing else reached it, after its last try.
      const inDlqTopic = dlqTopic.map((m) => (JSON.parse(m.payload) as { id: number }).id);
      assert.deepEqual(
        [...new Set(inDlqTopic)].sort((a, b) => a - b),
        [...failing].sort((a, b) => a - b),
        'each failing record, and only those, reached the dead-letter topic after its last try',
      );
      if (inDlqTopic.length > failing.size)
        t.diagnostic(
          `the DLQ topic holds ${inDlqTopic.length} messages for ${failing.size} records (Pulsar's DLQ is at-least-once)`,
        );
      const at = done.flat().map((r) => Number(r.at));
      const span = Math.max(...at) - Math.min(...at);
      const rate = Math.round((ids.length / Math.max(span, 1)) * 1000);
      figures.push(`${procs} process(es): ${ids.length} records in ${span} ms = ${rate} records/s`);
    }
    t.diagnostic(`work queue, slow step ${RATE} records/s per process: ${figures.join('; ')}`);
  });
});
