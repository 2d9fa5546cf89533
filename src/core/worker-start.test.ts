import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startWorker, workerEntry } from './worker-start.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-worker-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');

/** A worker module (TypeScript or, as in dist/, JavaScript) answering with its workerData and compile cache. */
const ANSWER = `import { getCompileCacheDir } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
parentPort?.postMessage({ data: workerData, cache: getCompileCacheDir() ?? null });
`;
writeFileSync(join(dir, 'answer.ts'), `${ANSWER}export const typed: number = 1;\n`);
writeFileSync(join(dir, 'answer.js'), ANSWER);
writeFileSync(join(dir, 'broken.js'), 'throw new Error("cannot load");\n');

/** The first message of `w`, or its error. */
function firstMessage(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

describe('startWorker', () => {
  it('runs a TypeScript module and a JavaScript one (as from dist/) with their workerData', async () => {
    for (const name of ['answer.ts', 'answer.js']) {
      const m = (await firstMessage(
        startWorker(pathToFileURL(join(dir, name)), { workerData: { n: 7 } }),
      )) as { data: unknown };
      assert.deepEqual(m.data, { n: 7 }, name);
    }
  });

  it('reports a module that cannot load as the worker’s error', async () => {
    await assert.rejects(firstMessage(startWorker(pathToFileURL(join(dir, 'broken.js')))), /cannot load/);
  });

  it('enables the compile cache only with a directory', () => {
    const url = pathToFileURL(join(dir, 'answer.js'));
    assert.doesNotMatch(workerEntry(url, undefined), /enableCompileCache/);
    assert.match(workerEntry(url, '/tmp/c"x'), /enableCompileCache\?\.\("\/tmp\/c\\"x"\)/);
  });

  /**
   * In a fresh process (the cache is a process setting): the worker's compile-cache directory
   * when the main thread enables one in `cacheDir`, with `env` added to the environment.
   */
  function workerCacheIn(env: Record<string, string>, cacheDir: string): string | null {
    const script = `
      import * as m from 'node:module';
      m.enableCompileCache(${JSON.stringify(cacheDir)});
      const { startWorker } = await import(${JSON.stringify(new URL('./worker-start.ts', import.meta.url).href)});
      const w = startWorker(new URL(${JSON.stringify(pathToFileURL(join(dir, 'answer.js')).href)}));
      w.on('message', (x) => { console.log(JSON.stringify(x.cache)); void w.terminate(); });
    `;
    const { NODE_DISABLE_COMPILE_CACHE: _, NODE_COMPILE_CACHE: __, ...inherited } = process.env;
    const r = spawnSync(process.execPath, ['--input-type=module', '--eval', script], {
      encoding: 'utf8',
      env: { ...inherited, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as string | null;
  }

  it('gives the worker the compile cache of the thread that starts it, and none when disabled', () => {
    const cacheDir = join(dir, 'cache');
    const got = workerCacheIn({}, cacheDir);
    assert.ok(got?.startsWith(`${cacheDir}/`), `the worker's cache is ${got}`);
    assert.equal(workerCacheIn({ NODE_DISABLE_COMPILE_CACHE: '1' }, cacheDir), null);
  });
});
