import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../core/clock.ts';
import { runScope, type StageContext } from '../../core/stage.ts';
import { validateValue } from '../../spec/validate.ts';
import { OperatorHarness } from '../harness.ts';
import { fileLookup } from './file.ts';
import { httpLookup } from './http.ts';
import { lookup } from './operator.ts';
import { builtinLookupStores, lookupSpecWith } from './spec.ts';

const ctx: StageContext = {
  name: 'lookup',
  signal: new AbortController().signal,
  stopSignal: new AbortController().signal,
  checkpointing: false,
  runScoped: runScope(),
  clock: systemClock,
  log: { info() {}, warn() {}, error() {} },
  deadLetter() {},
};

let dir: string;
let server: Server;
let base: string;
const requests: string[] = [];
let failNext = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-lookup-'));
  // Users u0…u99 exist; `POST /batch` answers many keys at once; `failNext` 503s come first.
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (failNext > 0) {
      failNext--;
      res.writeHead(503).end('busy');
      return;
    }
    if (req.method === 'POST' && req.url === '/batch') {
      let body = '';
      req.on('data', (d: Buffer) => {
        body += d.toString();
      });
      req.on('end', () => {
        const { keys } = JSON.parse(body) as { keys: string[] };
        const rows = Object.fromEntries(
          keys.filter((k) => Number(k.slice(1)) < 100).map((k) => [k, { id: k }]),
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rows));
      });
      return;
    }
    const m = /^\/users\/(.+)$/.exec(req.url ?? '');
    const id = m ? decodeURIComponent(m[1] as string) : '';
    if (m && Number(id.slice(1)) < 100) res.writeHead(200).end(JSON.stringify({ id, name: `user ${id}` }));
    else if (req.url === '/teapot/x') res.writeHead(418).end('no');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('http store', () => {
  test('one GET per key, URL-encoded; 404 is a miss', async () => {
    requests.length = 0;
    const p = httpLookup({ url: `${base}/users/{key}` });
    assert.equal(p.maxBatch, 1);
    const rows = await p.fetch(['u1', 'u x', 'u500'], ctx.signal);
    assert.deepEqual([...rows], [['u1', { id: 'u1', name: 'user u1' }]]);
    assert.deepEqual(requests, ['GET /users/u1', 'GET /users/u%20x', 'GET /users/u500']);
  });

  test('batch: one POST of the keys, answered by rows by key', async () => {
    requests.length = 0;
    const p = httpLookup({ url: `${base}/batch`, batch: true });
    const rows = await p.fetch(['u1', 'u2', 'u300'], ctx.signal);
    assert.deepEqual([...rows.keys()], ['u1', 'u2']);
    assert.deepEqual(requests, ['POST /batch']);
  });

  test('5xx is retryable, other answers are not', async () => {
    failNext = 1;
    const p = httpLookup({ url: `${base}/users/{key}` });
    await assert.rejects(p.fetch(['u1'], ctx.signal), (err: Error & { retryable?: boolean }) => {
      assert.match(err.message, /HTTP 503 busy/);
      return err.retryable === true;
    });
    const teapot = httpLookup({ url: `${base}/teapot/{key}` });
    await assert.rejects(
      teapot.fetch(['x'], ctx.signal),
      (err: Error & { retryable?: boolean }) => err.retryable === false,
    );
  });

  test('through the step: 8 GETs at once, a 503 retried, input order kept', async () => {
    requests.length = 0;
    failNext = 2;
    const h = new OperatorHarness(
      lookup({
        provider: httpLookup({ url: `${base}/users/{key}` }),
        key: 'u',
        into: 'user',
        concurrency: 8,
        minRetryDelayMs: 1,
      }),
      { clock: undefined },
    );
    // The harness's manual clock would hold the retry's sleep: use the real one here.
    (h.ctx as { clock: unknown }).clock = systemClock;
    await h.open();
    const input = Array.from({ length: 40 }, (_, i) => ({ u: `u${i * 3}` }));
    await h.process(input);
    assert.deepEqual(
      h.records(),
      input.map((r) => ({
        ...r,
        user: Number(r.u.slice(1)) < 100 ? { id: r.u, name: `user ${r.u}` } : null,
      })),
    );
    assert.equal(requests.length, 42);
  });
});

describe('file store', () => {
  test('loads a CSV or JSONL table at open and answers from memory', async () => {
    writeFileSync(join(dir, 'c.csv'), 'code,name\nDE,Germany\nFR,France\n');
    writeFileSync(join(dir, 'c.jsonl'), '{"code":"DE","n":1}\n{"code":"FR","n":2}\n{"code":"DE","n":3}\n');
    const csv = fileLookup({ path: join(dir, 'c.csv'), format: 'csv', keyField: 'code' });
    await csv.open?.(ctx);
    assert.deepEqual(
      [...(await csv.fetch(['FR', 'XX'], ctx.signal))],
      [['FR', { code: 'FR', name: 'France' }]],
    );
    const jl = fileLookup({ path: join(dir, 'c.jsonl'), format: 'jsonl', keyField: 'code' });
    await jl.open?.(ctx);
    assert.equal(jl.rows(), 2);
    assert.deepEqual(
      (await jl.fetch(['DE'], ctx.signal)).get('DE'),
      { code: 'DE', n: 3 },
      'a later row replaces an earlier one',
    );
  });

  test('a missing file, a row without the key and a broken line fail the open with where', async () => {
    await assert.rejects(
      fileLookup({ path: join(dir, 'none.csv'), format: 'csv', keyField: 'code' }).open?.(
        ctx,
      ) as Promise<void>,
      /reading the lookup table file `.*none\.csv`: .*ENOENT.*check `path`/,
    );
    writeFileSync(join(dir, 'nokey.jsonl'), '{"code":"DE"}\n{"name":"x"}\n');
    await assert.rejects(
      fileLookup({ path: join(dir, 'nokey.jsonl'), format: 'jsonl', keyField: 'code' }).open?.(
        ctx,
      ) as Promise<void>,
      /has a row without `code` at line 2/,
    );
    writeFileSync(join(dir, 'broken.jsonl'), '{"code":"DE"}\n{"code":\n');
    await assert.rejects(
      fileLookup({ path: join(dir, 'broken.jsonl'), format: 'jsonl', keyField: 'code' }).open?.(
        ctx,
      ) as Promise<void>,
      /reading the lookup table file `.*broken\.jsonl`/,
    );
  });
});

describe('lookup spec', () => {
  const spec = lookupSpecWith(builtinLookupStores);
  const problems = (config: unknown) => {
    const r = validateValue(spec.config, config);
    return r.ok ? [] : r.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
  };

  test('takes exactly one store, and says which are known', () => {
    assert.deepEqual(problems({ key: 'u', file: { path: 'x.csv', format: 'csv', keyField: 'id' } }), []);
    assert.match(problems({ key: 'u' }).join('\n'), /say where rows come from: one of `file`, `http`/);
    assert.match(problems({ key: 'u', postgres: {} }).join('\n'), /postgres/);
  });

  test('reports an http URL without {key}, a cache without a bound, a bad onMiss', () => {
    const all = problems({
      key: 'u',
      onMiss: 'skip',
      cache: { ttl: '1m' },
      http: { url: 'http://x/users' },
    }).join('\n');
    assert.match(all, /http\.url: must contain `\{key\}`/);
    assert.match(all, /cache: give `maxEntries`, `maxBytes` or both/);
    assert.match(all, /onMiss/);
  });
});
