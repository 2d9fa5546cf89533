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
            pulsar: {
              url: PULSAR_URL,
              topic,
              subscription: 'workers',
              subscriptionType: 'shared',
              start: 'earliest',
              consumerName: name,
              idleTimeout: '10s', // long enough for publishing to start on a loaded machine
              batchSize: 20,
              receiverQueueSize: 50,
              badMessages: 'nack',
              redeliveryDelay: '200ms',
              maxRedeliveries: 2,
              deadLetterTopic: dlq,
            },
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
});
