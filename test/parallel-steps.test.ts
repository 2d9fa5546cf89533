/**
 * The parallel steps through pipeline files and the real CLI: `mapAsync` against a local HTTP
 * server with injected latency (input order, per-key order, completion order), `shard` with
 * concurrency inside (per-key order), `fanOut` with a slow branch (`dropOldest` keeps the main
 * line flowing, `block` loses nothing, `error` fails the run), and what `sluice lint` says of bad
 * configs. Throughput of concurrency 16 against 1 is printed, never asserted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../src/operators/lookup/store.test-helpers.ts';
import { shown, sluice } from './support/cli.ts';

interface Rec {
  id: number;
  user: string;
  score?: number;
  slow?: boolean;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-parallel-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Latency of record `id` in ms: 2–14, spread so that later records often finish first. */
const latency = (id: number) => 2 + ((id * 7919) % 13);

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function readJsonl(name: string): Rec[] {
  const text = readFileSync(join(dir, name), 'utf8');
  return text === ''
    ? []
    : text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Rec);
}

/** Ids of each user in output order. */
function idsByUser(records: readonly Rec[]): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const r of records) by.set(r.user, [...(by.get(r.user) ?? []), r.id]);
  return by;
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (d: Buffer) => {
      text += d.toString();
    });
    req.on('end', () => resolve(text));
  });
}

describe('mapAsync over HTTP (a local server answering after 2–14 ms)', () => {
  let server: Server;
  let url = '';
  const inFlightByUser = new Map<string, number>();
  let sameKeyOverlap = 0;

  before(async () => {
    server = createServer(async (req, res) => {
      const r = JSON.parse(await body(req)) as Rec;
      const now = (inFlightByUser.get(r.user) ?? 0) + 1;
      inFlightByUser.set(r.user, now);
      if (now > 1) sameKeyOverlap++;
      setTimeout(() => {
        inFlightByUser.set(r.user, (inFlightByUser.get(r.user) ?? 1) - 1);
        res.writeHead(r.id % 97 === 13 ? 500 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r.id * 2));
      }, latency(r.id));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/score`;
  });
  after(() => server.close());

  const pipeline = (name: string, count: number, step: string) =>
    write(
      `${name}.yaml`,
      `name: ${name}
input:
  generate: { count: ${count}, userCount: 7, batchSize: 100 }
pipeline:
  - mapAsync: { http: { url: "${url}", into: score }, ${step} }
output:
  file: { path: ${name}.jsonl, format: jsonl }
dlq:
  file: { path: ${name}.dead.jsonl, format: jsonl }
maxErrorRate: 1
`,
    );

  test('`ordered: true` with concurrency 16: output order equals input order; a 500 dead-letters its record', async () => {
    const r = await runCli(['run', pipeline('ordered', 500, 'concurrency: 16, ordered: true')], dir, {});
    assert.equal(r.code, 0, r.text);
    const out = readJsonl('ordered.jsonl');
    const failed = new Set(Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 97 === 13));
    assert.deepEqual(
      out.map((x) => x.id),
      Array.from({ length: 500 }, (_, i) => i).filter((i) => !failed.has(i)),
    );
    for (const x of out) assert.equal(x.score, x.id * 2);
    const dead = readFileSync(join(dir, 'ordered.dead.jsonl'), 'utf8');
    assert.equal(dead.trimEnd().split('\n').length, failed.size);
    assert.match(dead, /HTTP 500/);
  });

  test('`ordered: key`: one call per user at a time, every user in input order, users interleaved', async () => {
    sameKeyOverlap = 0;
    const r = await runCli(
      ['run', pipeline('bykey', 500, 'concurrency: 16, ordered: key, key: user')],
      dir,
      {},
    );
    assert.equal(r.code, 0, r.text);
    const out = readJsonl('bykey.jsonl');
    assert.equal(out.length + 6, 500); // 13, 110, 207, 304, 401 and 498 answered 500
    for (const [user, ids] of idsByUser(out))
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        `user ${user}`,
      );
    assert.equal(sameKeyOverlap, 0, 'two calls of one user were in flight at once');
    const ids = out.map((x) => x.id);
    assert.notDeepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'users overlap, so the output is not in input order',
    );
  });

  test('`ordered: false`: every record, in completion order', async () => {
    const r = await runCli(['run', pipeline('unordered', 500, 'concurrency: 16, ordered: false')], dir, {});
    assert.equal(r.code, 0, r.text);
    const ids = readJsonl('unordered.jsonl').map((x) => x.id);
    assert.equal(ids.length, 494);
    assert.notDeepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 97 !== 13),
    );
  });

  test('throughput with concurrency 16 against 1 (printed, not asserted)', async (t) => {
    // The run's own time, from the summary line (`Finished `c16` in 568ms: …`): no process start-up.
    const rate = async (concurrency: number) => {
      const file = pipeline(`c${concurrency}`, 300, `concurrency: ${concurrency}`);
      const r = await runCli(['run', file], dir, {});
      assert.equal(r.code, 0, r.text);
      assert.equal(readJsonl(`c${concurrency}.jsonl`).length, 297);
      const m = /Finished `c\d+` in ([\d.]+)(ms|s)/.exec(r.text);
      assert.ok(m, r.text);
      const seconds = Number(m[1]) / (m[2] === 'ms' ? 1000 : 1);
      return { seconds, perSecond: 300 / seconds };
    };
    const one = await rate(1);
    const sixteen = await rate(16);
    t.diagnostic(
      `300 records, 2–14 ms per call (mean 8 ms): concurrency 1 ${one.seconds.toFixed(2)} s (${one.perSecond.toFixed(0)}/s), concurrency 16 ${sixteen.seconds.toFixed(2)} s (${sixteen.perSecond.toFixed(0)}/s), ×${(one.seconds / sixteen.seconds).toFixed(1)}`,
    );
  });
});

describe('shard', () => {
  test('4 copies of a mapAsync (concurrency 8, latency 2–14 ms): every record once, every key in order', () => {
    write(
      'slow.ts',
      `export default async (r: { id: number }) => {
  await new Promise((res) => setTimeout(res, 2 + ((r.id * 7919) % 13)));
  return { ...r, done: true };
};
`,
    );
    const file = write(
      'shard.yaml',
      `name: shard
input:
  generate: { count: 2000, userCount: 50, batchSize: 200 }
pipeline:
  - shard:
      key: user
      shards: 4
      steps:
        - mapAsync: { module: ./slow.ts, concurrency: 8 }
output:
  file: { path: shard.jsonl, format: jsonl }
`,
    );
    const r = sluice(['run', file], { cwd: dir });
    assert.equal(r.code, 0, shown(r));
    const out = readJsonl('shard.jsonl');
    assert.deepEqual(
      out.map((x) => x.id).sort((a, b) => a - b),
      Array.from({ length: 2000 }, (_, i) => i),
    );
    const byUser = idsByUser(out);
    assert.equal(byUser.size, 50);
    for (const [user, ids] of byUser)
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        `user ${user}`,
      );
    // The copies interleave: the merged output is not the input order.
    assert.notDeepEqual(
      out.map((x) => x.id),
      Array.from({ length: 2000 }, (_, i) => i),
    );
  });
});

describe('fanOut', () => {
  const slowBranch = (name: string, count: number, buffer: string, sleepMs: number) => {
    write(
      `sleep${sleepMs}.ts`,
      `export default async (r: unknown) => {
  await new Promise((res) => setTimeout(res, ${sleepMs}));
  return r;
};
`,
    );
    return write(
      `${name}.yaml`,
      `name: ${name}
input:
  generate: { count: ${count}, batchSize: 10 }
pipeline:
  - fanOut:
      branches:
        audit:
          buffer: ${buffer}
          steps:
            - mapAsync: { module: ./sleep${sleepMs}.ts, concurrency: 1 }
output:
  file: { path: ${name}.main.jsonl, format: jsonl }
outputs:
  audit: { file: { path: ${name}.audit.jsonl, format: jsonl } }
`,
    );
  };

  test('`dropOldest`: the main line gets every record while the slow branch drops its oldest batches', () => {
    const r = sluice(['run', slowBranch('drop', 3000, '{ size: 2, overflow: dropOldest }', 20)], {
      cwd: dir,
    });
    assert.equal(r.code, 0, shown(r));
    const main = readJsonl('drop.main.jsonl').map((x) => x.id);
    assert.deepEqual(
      main,
      Array.from({ length: 3000 }, (_, i) => i),
    );
    const audit = readJsonl('drop.audit.jsonl').map((x) => x.id);
    assert.ok(audit.length > 0 && audit.length < 3000, `audit got ${audit.length}`);
    assert.deepEqual(
      audit,
      [...audit].sort((a, b) => a - b),
      'what the branch keeps stays in order',
    );
    assert.match(
      r.stderr,
      /records? dropped before `fanOut\.audit`: its input buffer was full \(overflow `dropOldest`\)/,
    );
  });

  test('`block` (default): the slow branch loses nothing', () => {
    const r = sluice(['run', slowBranch('block', 200, '{ size: 2 }', 1)], { cwd: dir });
    assert.equal(r.code, 0, shown(r));
    const all = Array.from({ length: 200 }, (_, i) => i);
    assert.deepEqual(
      readJsonl('block.main.jsonl').map((x) => x.id),
      all,
    );
    assert.deepEqual(
      readJsonl('block.audit.jsonl').map((x) => x.id),
      all,
    );
  });

  test('`error`: a full branch buffer fails the run and says what to do', () => {
    const r = sluice(['run', slowBranch('fail', 3000, '{ size: 1, overflow: error }', 20)], { cwd: dir });
    assert.notEqual(r.code, 0, shown(r));
    assert.match(
      r.stderr,
      /buffer `fanOut\.out→fanOut\.audit` is full .*overflow policy is `error`; raise its buffer size/,
    );
  });
});

describe('sluice lint of the parallel steps', () => {
  test('says what is wrong, where, and what to do', () => {
    write('noop.ts', 'export default async (r: unknown) => r;\n');
    const file = write(
      'bad.yaml',
      `input:
  generate: { count: 10 }
pipeline:
  - shard: { shards: 4, steps: [ { mapAsync: { module: ./noop.ts } } ] }
  - shard: { key: user, shards: 2, steps: [ { mapAsync: { module: ./noop.ts, concurrency: 0 } } ] }
  - shard: { key: user, shards: 300, steps: [] }
  - mapAsync: { module: ./noop.ts, ordered: key }
  - mapAsync: { module: ./noop.ts, key: user }
  - mapAsync: { http: { url: "http://x/y" }, module: ./noop.ts }
  - fanOut: { branches: { audit: { steps: [ { mapAsyn: {} } ] } } }
  - mapAsync: { module: ./noop.ts, concurrency: 2.5, ordered: sometimes }
output:
  stdout: { format: jsonl }
`,
    );
    const r = sluice(['lint', file], { cwd: dir });
    assert.equal(r.code, 1, shown(r));
    const expected = [
      /bad\.yaml:4:\d+: error: pipeline\[0\]\.shard\.key: a `shard` needs `key`: the field \(or list of fields\) whose records go to the same copy, e\.g\. `key: userId`/,
      /pipeline\[1\]\.shard\.steps\[0\]\.mapAsync\.concurrency: `concurrency` must be at least 1/,
      /pipeline\[2\]\.shard\.shards: `shards` \(300\) cannot exceed `maxKeyGroups` \(256\)/,
      /pipeline\[2\]\.shard\.steps: a `shard` needs at least one step in `steps`/,
      /pipeline\[3\]\.mapAsync\.key: `ordered: key` needs `key`/,
      /pipeline\[4\]\.mapAsync\.key: `key` is used only with `ordered: key`/,
      /pipeline\[5\]\.mapAsync: give exactly one of `module` .* and `http`/,
      /pipeline\[7\]\.mapAsync\.concurrency: expected a whole number, got number 2\.5/,
      /pipeline\[7\]\.mapAsync\.ordered: string "sometimes" is not one of `true`, `false` or `key`/,
      /pipeline\[6\]\.fanOut\.branches\.audit\.steps\[0\]\.mapAsyn: unknown operator `mapAsyn`; did you mean `mapAsync`\?/,
    ];
    for (const e of expected) assert.match(r.stdout + r.stderr, e);
  });

  test('a branch without its side output, and a side output no branch writes', () => {
    const file = write(
      'branch.yaml',
      `input:
  generate: { count: 10 }
pipeline:
  - fanOut: { branches: { audit: {} } }
output:
  stdout: { format: jsonl }
outputs:
  audt: { file: { path: a.jsonl, format: jsonl } }
`,
    );
    const r = sluice(['lint', file], { cwd: dir });
    assert.equal(r.code, 1, shown(r));
    const text = r.stdout + r.stderr;
    assert.match(
      text,
      /pipeline\[0\]: step `fanOut` emits on side output `audit`, but `outputs:` has no `audit`; add `outputs: \{ audit: .* \(outputs defined: `audt`\)/,
    );
    assert.match(text, /outputs\.audt: no step emits on side output `audt` \(steps emit on: `audit`\)/);
  });
});

test('examples/scoring runs: every event scored and labelled, each user in order, review ⊆ scored', async () => {
  const { startScorer } = await import('../examples/scoring/scorer.ts');
  const { server, port } = await startScorer(0);
  try {
    const example = new URL('../examples/scoring/pipeline.yaml', import.meta.url).pathname;
    const sets = ['output.file.path', 'outputs.review.file.path', 'dlq.file.path'].flatMap((p, i) => [
      '--set',
      `${p}=${join(dir, ['scored', 'review', 'dead'][i] as string)}.jsonl`,
    ]);
    const r = await runCli(['run', example, ...sets], dir, { SCORER_URL: `http://127.0.0.1:${port}/score` });
    assert.equal(r.code, 0, r.text);
  } finally {
    server.close();
  }
  const scored = readJsonl('scored.jsonl') as (Rec & { label?: string })[];
  assert.equal(scored.length, 5000);
  assert.ok(scored.every((x) => typeof x.score === 'number' && typeof x.label === 'string'));
  for (const [user, ids] of idsByUser(scored))
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      `user ${user}`,
    );
  const ids = new Set(scored.map((x) => x.id));
  const review = readJsonl('review.jsonl') as (Rec & { label?: string })[];
  assert.ok(review.every((x) => ids.has(x.id) && x.label !== 'allow'));
});
