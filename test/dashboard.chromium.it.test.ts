/**
 * The dashboard of `sluice run --http` in a real browser: Debian's Chromium (installed by
 * `npm run services -- up chromium`, which `npm test` runs for this file), driven headless by
 * `playwright-core` — no browser is downloaded. A throttled `generate` run whose `map` step
 * dead-letters some records is served in-process; the page must draw every stage of the graph,
 * show a rate that moves, and list a dead letter; a windowed run with checkpoints must show the
 * window's watermark and completed checkpoints. Screenshots are kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { main } from '../src/cli/main.ts';
import { Capture, tempFiles } from './support/capture.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
/** Without the background-networking flags Chromium keeps dialling out of this closed network. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const file = tempFiles('sluice-dashboard-');
const profiles: string[] = [];
after(() => {
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

/** A fresh headless Chromium with an empty profile. */
async function browser(): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  profiles.push(profile);
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** Starts `sluice run FILE --http 127.0.0.1:0` in-process; resolves with its URL and a stop. */
async function serve(pipeline: string): Promise<{ url: string; stop(): Promise<number>; stderr: Capture }> {
  const stderr = new Capture();
  const signals = new EventEmitter();
  const run = main(['run', pipeline, '--http', '127.0.0.1:0'], { stdout: new Capture(), stderr, signals });
  let url: string | undefined;
  for (let i = 0; i < 2000 && url === undefined; i++) {
    url = /Serving metrics and the dashboard at (\S+)/.exec(stderr.text)?.[1];
    if (url === undefined) await sleep(10);
  }
  assert.ok(url, `the run did not serve: ${stderr.text}`);
  return {
    url,
    stderr,
    stop: () => {
      signals.emit('SIGINT');
      return run;
    },
  };
}

describe('the dashboard in Chromium', () => {
  it('shows watermarks and checkpoints of a windowed run', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-dashboard-cp-'));
    profiles.push(dir);
    const pipeline = file(
      'window.yaml',
      `name: dashboard-window
input:
  generate: { rate: 500, seed: 3 }
pipeline:
  - window:
      key: country
      time: ts
      tumbling: 1s
      watermark: { maxOutOfOrder: 100ms }
      aggregate: { n: count() }
output:
  blackhole: {}
checkpoint: { interval: 500ms, dir: ${JSON.stringify(join(dir, 'checkpoints'))} }
`,
    );
    const run = await serve(pipeline);
    const context = await browser();
    try {
      const page = await context.newPage();
      await page.goto(run.url);
      await page.waitForSelector('svg#graph g.node[data-stage="window"]');
      await page.waitForFunction(
        `(document.querySelector('[data-watermark="window"]')?.textContent ?? '–') !== '–'`,
        undefined,
        { timeout: 30_000 },
      );
      assert.match((await page.locator('[data-watermark="window"]').textContent()) ?? '', /^2026-01-01 /);
      await page.waitForFunction(
        `Number(document.querySelector('[data-checkpoint="completed"]')?.textContent ?? '0') > 0`,
        undefined,
        { timeout: 30_000 },
      );
      assert.notEqual(await page.locator('[data-checkpoint="last state size"]').textContent(), '–');
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-window.png'), fullPage: true });
    } finally {
      await context.close();
      assert.equal(await run.stop(), 130, run.stderr.text);
    }
  });

  it('draws every stage, moves the rates and lists a dead letter', { timeout: 120_000 }, async () => {
    const dlq = join(mkdtempSync(join(tmpdir(), 'sluice-dashboard-out-')), 'dead.jsonl');
    profiles.push(join(dlq, '..'));
    const pipeline = file(
      'demo.yaml',
      `name: dashboard-demo
input:
  generate: { rate: 300, seed: 7 }
pipeline:
  - map:
      fields:
        bad: 'risk > 90 ? int(country) : 0'
  - route:
      cases:
        - when: 'risk > 70'
          to: risky
      default: out
output:
  blackhole: {}
outputs:
  risky: { blackhole: {} }
dlq:
  file: { path: ${JSON.stringify(dlq)}, format: jsonl }
maxErrorRate: 1
`,
    );
    const { url, stop, stderr } = await serve(pipeline);
    const topology = (await (await fetch(`${url}api/topology`)).json()) as { stages: { name: string }[] };
    const stages = topology.stages.map((s) => s.name);
    assert.ok(stages.length >= 6, `expected source, map, route, two sinks and the dlq: ${stages}`);

    const context = await browser();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);

      // The graph: one node per stage, with edges, a side output and the dlq among them.
      await page.waitForSelector('svg#graph g.node');
      const drawn = await page.$$eval('svg#graph g.node', (nodes) =>
        nodes.map((n) => n.getAttribute('data-stage')),
      );
      assert.deepEqual([...drawn].sort(), [...stages].sort());
      assert.ok((await page.locator('svg#graph path.edge.side').count()) >= 1, 'no side-output edge drawn');
      assert.ok((await page.locator('svg#graph path.edge.dlq').count()) >= 1, 'no dead-letter edge drawn');

      // The rate moves: the source's in-rate becomes non-zero and the read total grows.
      // Page-side checks are strings: this file is type-checked without the DOM's types.
      await page.waitForFunction(
        `(document.querySelector('[data-in-rate="input"]')?.textContent ?? '0/s') !== '0/s'`,
        undefined,
        { timeout: 30_000 },
      );
      const readAt = async () =>
        Number((await page.locator('[data-total="read"]').textContent())?.replace(/,/g, ''));
      const first = await readAt();
      await page.waitForFunction(
        `Number(document.querySelector('[data-total="read"]')?.textContent?.replace(/,/g, '')) > ${first}`,
        undefined,
        { timeout: 30_000 },
      );
      assert.ok((await readAt()) > first);

      // A record the map step failed appears among the latest dead letters.
      await page.waitForSelector('#dead-letters tr.dead-letter', { timeout: 30_000 });
      const letter = (await page.locator('#dead-letters tr.dead-letter').first().textContent()) ?? '';
      assert.match(letter, /map/);
      assert.match(letter, /SLUICE_RECORD/);
      assert.notEqual(await page.locator('[data-dlq="map"]').textContent(), '0');

      // Let the sparklines draw a few points before the picture.
      await sleep(3000);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
      assert.deepEqual(errors, [], 'the page threw');
    } finally {
      await context.close();
      assert.equal(await stop(), 130, stderr.text);
    }
  });
});
