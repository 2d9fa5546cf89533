import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { SluiceError } from '../core/errors.ts';
import { runScope, type StageContext } from '../core/stage.ts';
import { CelFilter } from './cel-operators.ts';
import { FileRuleSource, HttpRuleSource, ruleSource } from './reload.ts';
import { parseRuleSet, RuleSlot } from './rules.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-expr-reload-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function stageContext(
  clock: ManualClock,
  warnings: string[] = [],
): { ctx: StageContext; abort: AbortController } {
  const abort = new AbortController();
  const ctx: StageContext = {
    name: 'gate',
    signal: abort.signal,
    stopSignal: new AbortController().signal,
    checkpointing: false,
    runScoped: runScope(),
    clock,
    log: { info() {}, warn: (m) => warnings.push(m), error() {} },
    deadLetter() {
      throw new Error('unexpected dead letter');
    },
  };
  return { ctx, abort };
}

/** Resolves once the poll loop is asleep on the manual clock again (so `advance` wakes it). */
async function asleep(clock: ManualClock): Promise<void> {
  while (clock.pendingSleeps === 0) await new Promise((r) => setImmediate(r));
}

describe('parseRuleSet', () => {
  test('reads YAML and JSON', () => {
    assert.deepEqual(parseRuleSet('version: 2\nfilter: risk > 50\n', 'r.yaml'), {
      version: 2,
      filter: 'risk > 50',
    });
    assert.deepEqual(parseRuleSet('{"routes": [{"when": "a", "to": "x"}], "default": "y"}', 'r.json'), {
      routes: [{ when: 'a', to: 'x' }],
      default: 'y',
    });
  });

  test('reports every problem at once', () => {
    assert.throws(
      () => parseRuleSet('version: -1\nfilter: 3\nbogus: 1\n', 'r.yaml'),
      (err: Error) => /version/.test(err.message) && /filter/.test(err.message) && /bogus/.test(err.message),
    );
    assert.throws(() => parseRuleSet('filter: [unclosed', 'r.yaml'), /reading rule set r\.yaml/);
  });
});

describe('RuleSlot', () => {
  const build = (doc: { filter?: string | undefined }) => {
    if (doc.filter === undefined || doc.filter.includes('!!'))
      throw new Error(`cannot compile ${doc.filter}`);
    return doc.filter;
  };

  test('a rejected set leaves the running one, counts and logs', () => {
    const warnings: string[] = [];
    const slot = new RuleSlot(
      build,
      () => ({ info() {}, warn: (m) => warnings.push(m), error() {} }),
      () => 'gate',
    );
    assert.equal(slot.offer('filter: a', 'f', true), true);
    assert.deepEqual(slot.take(), { version: 1, compiled: 'a', origin: 'f' });
    assert.equal(slot.offer('filter: b!!', 'f'), false);
    assert.equal(slot.take().compiled, 'a');
    assert.equal(slot.ruleRejects, 1);
    assert.match(
      warnings[0] ?? '',
      /Rejected a new rule set for `gate`.*version 1 keeps running.*cannot compile/,
    );
    // The same broken text seen again (watch + poll) is not counted twice.
    assert.equal(slot.offer('filter: b!!', 'f'), false);
    assert.equal(slot.ruleRejects, 1);
  });

  test('a new set is pending until `take`, versions only grow', () => {
    const slot = new RuleSlot(
      build,
      () => undefined,
      () => 'gate',
    );
    slot.offer('version: 5\nfilter: a', 'f', true);
    assert.equal(slot.offer('filter: b', 'f'), true);
    assert.equal(slot.ruleVersion, 5, 'still the old set until the next batch');
    assert.equal(slot.latestVersion, 6);
    assert.equal(slot.take().compiled, 'b');
    assert.equal(slot.ruleVersion, 6);
    assert.equal(slot.offer('version: 6\nfilter: c', 'f'), false, 'a declared version must be newer');
    assert.match(slot.lastRuleError ?? '', /not newer/);
    assert.equal(slot.offer('version: 10\nfilter: c', 'f'), true);
    assert.equal(slot.take().version, 10);
    assert.equal(slot.ruleReloads, 2);
    assert.equal(slot.offer('version: 10\nfilter: c', 'f'), true, 'the same text again is no change');
    assert.equal(slot.ruleReloads, 2);
  });

  test('a broken first set throws at startup', () => {
    const slot = new RuleSlot(
      build,
      () => undefined,
      () => 'gate',
    );
    assert.throws(() => slot.offer('filter: x!!', 'f', true), /cannot compile/);
  });
});

describe('file rules', () => {
  test('fs.watch notices a replaced file without any poll', async () => {
    const file = join(dir, 'watched.yaml');
    writeFileSync(file, 'filter: risk > 50\n');
    const clock = new ManualClock(0); // never advanced: only the watcher can notice
    const op = new CelFilter({ rules: { file, pollInterval: 60_000 } });
    const { ctx, abort } = stageContext(clock);
    await op.open(ctx);
    try {
      assert.equal(op.ruleVersion, 1);
      const changed = op.ruleChange();
      // Replace by rename, as editors and deploy tools do.
      writeFileSync(`${file}.tmp`, 'filter: risk > 10\n');
      renameSync(`${file}.tmp`, file);
      await changed;
      assert.equal(op.ruleReloads, 1);
      assert.equal(op.ruleRejects, 0);
    } finally {
      op.close();
      abort.abort();
    }
  });

  test('`check` reads the file; a missing file is a read error, not a reject', async () => {
    const file = join(dir, 'polled.yaml');
    writeFileSync(file, 'filter: a > 1\n');
    const src = new FileRuleSource(file, 1000);
    const texts: string[] = [];
    const errors: unknown[] = [];
    assert.equal(await src.load(), 'filter: a > 1\n');
    const { ctx, abort } = stageContext(new ManualClock(0));
    src.start(
      { clock: ctx.clock, signal: ctx.signal },
      (t) => texts.push(t),
      (e) => errors.push(e),
    );
    await src.check();
    assert.deepEqual(texts, [], 'unchanged text is not handed over');
    rmSync(file);
    await src.check();
    assert.equal(errors.length, 1);
    src.close();
    abort.abort();
  });
});

describe('HTTP rules', () => {
  let body = 'version: 1\nfilter: risk > 50\n';
  let etag = '"v1"';
  let status = 200;
  const seen: { inm: string | undefined; status: number }[] = [];
  const server: Server = createServer((req, res) => {
    const inm = req.headers['if-none-match'];
    let code = status;
    if (code === 200 && inm === etag) code = 304;
    seen.push({ inm, status: code });
    if (code === 200) res.writeHead(200, { etag, 'content-type': 'application/yaml' }).end(body);
    else res.writeHead(code).end();
  });
  const listening = new Promise<string>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/rules.yaml`),
    ),
  );
  after(() => server.close());

  test('polls with If-None-Match on the run clock; 304 keeps the set, 200 swaps it, errors keep it', async () => {
    const url = await listening;
    const clock = new ManualClock(0);
    const warnings: string[] = [];
    const op = new CelFilter({ rules: { url, pollInterval: 5000 } });
    const { ctx, abort } = stageContext(clock, warnings);
    await op.open(ctx);
    try {
      assert.equal(op.ruleVersion, 1);
      assert.deepEqual(seen.at(-1), { inm: undefined, status: 200 });

      // A poll tick: the server answers 304 to the ETag it gave.
      await op.reload();
      assert.deepEqual(seen.at(-1), { inm: '"v1"', status: 304 });
      assert.equal(op.ruleReloads, 0);

      // New content; the clock-driven poll picks it up.
      body = 'version: 2\nfilter: risk > 10\n';
      etag = '"v2"';
      let changed = op.ruleChange();
      await asleep(clock);
      clock.advance(5000);
      await changed;
      assert.equal(op.ruleReloads, 1);
      assert.equal(seen.at(-1)?.status, 200);

      // A broken set is rejected; the server failing is a read error; neither stops anything.
      body = 'version: 3\nfilter: risk >\n';
      etag = '"v3"';
      await asleep(clock);
      changed = op.ruleChange();
      clock.advance(5000);
      await changed;
      assert.equal(op.ruleRejects, 1);
      status = 500;
      await asleep(clock);
      changed = op.ruleChange();
      clock.advance(5000);
      await changed;
      assert.equal(op.ruleSourceErrors, 1);
      assert.ok(warnings.some((w) => /HTTP 500/.test(w)));
      assert.equal(op.ruleVersion, 1, 'no batch has run yet: the first set still judges');
    } finally {
      op.close();
      abort.abort();
    }
    // After close, ticks fetch nothing.
    const before = seen.length;
    clock.advance(50_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(seen.length, before);
    assert.equal(clock.pendingSleeps, 0);
  });

  test('rejects URLs that are not http(s)', () => {
    assert.throws(() => new HttpRuleSource('file:///etc/passwd', 1000), /http:\/\/ or https:\/\//);
  });
});

describe('rule sources: transport and content checks', () => {
  /** A server answering every request with `body`, streamed in `chunk`-byte writes and no content-length. */
  function serve(
    body: Buffer,
    chunk = 64 * 1024,
  ): { url: Promise<string>; sent: () => number; close: () => void } {
    let sent = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/yaml' });
      let at = 0;
      const pump = () => {
        while (at < body.length) {
          const part = body.subarray(at, at + chunk);
          at += part.length;
          sent += part.length;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => {
        at = body.length; // the client went away: stop sending
      });
      pump();
    });
    const url = new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/rules.yaml`),
      ),
    );
    return { url, sent: () => sent, close: () => server.close() };
  }

  test('plain http:// is refused for a non-loopback host unless `allowInsecure`; loopback is allowed', () => {
    assert.throws(
      () => ruleSource({ url: 'http://rules.example.com/r.yaml' }),
      (err: unknown) =>
        err instanceof SluiceError && err.code === 'SLUICE_CONFIG' && /allowInsecure: true/.test(err.message),
    );
    ruleSource({ url: 'http://rules.example.com/r.yaml', allowInsecure: true }).close();
    ruleSource({ url: 'https://rules.example.com/r.yaml' }).close();
    for (const host of ['localhost', '127.0.0.1', '[::1]'])
      ruleSource({ url: `http://${host}:1/r.yaml` }).close();
  });

  test('a body above `maxBytes` is cut off while it streams, without a content-length', async () => {
    const big = Buffer.alloc(64 * 1024 * 1024, 'a'); // 64 MiB: far more than the limit
    const s = serve(big);
    try {
      const src = ruleSource({ url: await s.url, maxBytes: 1 << 20 });
      await assert.rejects(src.load(), (err: unknown) => {
        assert.ok(err instanceof SluiceError);
        assert.match(err.message, /above the limit of 1048576; shrink it or raise `maxBytes`/);
        return true;
      });
      src.close();
      assert.ok(s.sent() < big.length / 2, `the server sent ${s.sent()} bytes: the body was read to the end`);
    } finally {
      s.close();
    }
  });

  test('`sha256` pins the content, for a URL and for a file', async () => {
    const text = 'version: 1\nfilter: risk > 50\n';
    const digest = createHash('sha256').update(text).digest('hex');
    const s = serve(Buffer.from(text));
    try {
      const url = await s.url;
      const good = ruleSource({ url, sha256: digest.toUpperCase() });
      assert.equal(await good.load(), text);
      good.close();
      const bad = ruleSource({ url, sha256: '0'.repeat(64) });
      await assert.rejects(bad.load(), /has SHA-256 [0-9a-f]{64}, not the `sha256` 0{64}/);
      bad.close();
    } finally {
      s.close();
    }
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-sha-')), 'rules.yaml');
    writeFileSync(file, text);
    assert.equal(await ruleSource({ file, sha256: digest }).load(), text);
    await assert.rejects(ruleSource({ file, sha256: 'f'.repeat(64) }).load(), /update `sha256`/);
    assert.throws(() => ruleSource({ file, sha256: 'xyz' }), /64 hex digits/);
  });
});
