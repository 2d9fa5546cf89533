/**
 * Starting Sluice's worker threads. A `Worker` does not inherit its parent's compile cache
 * (`module.enableCompileCache()` in `bin/sluice.js` covers the main thread only), so a worker
 * started on the module directly loads Node's TypeScript stripper and compiles its whole module
 * graph again, every run. {@link startWorker} starts it on a two-line entry instead that turns on
 * the compile cache in the directory the starting thread uses (none when the starting thread has
 * none: a library user's choice, or `NODE_DISABLE_COMPILE_CACHE=1`, holds for workers too), then
 * imports the module. Measured on a 1 MB split-window run with two ranges through the CLI:
 * see bench/README.md, split-window.
 */
import * as nodeModule from 'node:module';
import { dirname } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The compile-cache directory to hand a worker: the one `enableCompileCache(dir)` takes, i.e. the
 * parent of the versioned folder `getCompileCacheDir()` reports; undefined when this thread has
 * no compile cache.
 */
export function compileCacheRoot(): string | undefined {
  const dir = nodeModule.getCompileCacheDir?.();
  return dir === undefined || dir === '' ? undefined : dirname(dir);
}

/**
 * The source of the entry a worker runs: it enables the compile cache in `cacheRoot` (if any),
 * then imports `moduleUrl`. Neither `require` nor a static `import`: Node evaluates the entry as
 * CommonJS or as a module depending on the starting process's flags (`--input-type`), and
 * `process.getBuiltinModule` and `import()` work in both. A module that fails to load rejects the
 * import, which the worker reports as its `error` event, as if it had been started on the module.
 */
export function workerEntry(moduleUrl: URL, cacheRoot: string | undefined): string {
  const enable =
    cacheRoot === undefined
      ? ''
      : `process.getBuiltinModule('node:module').enableCompileCache?.(${JSON.stringify(cacheRoot)});\n`;
  return `${enable}import(${JSON.stringify(moduleUrl.href)});\n`;
}

/**
 * Starts a worker thread running the module at `moduleUrl` (a `.ts` module from a checkout, `.js`
 * from dist/) with this thread's compile cache (see the module comment). `options` are passed on
 * as they are (`workerData`, `resourceLimits`…), except `eval`.
 *
 * @example
 * ```ts
 * const worker = startWorker(new URL('./my-worker.ts', import.meta.url), { workerData: task });
 * worker.on('message', (m) => console.log(m));
 * ```
 */
export function startWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  return new Worker(workerEntry(moduleUrl, compileCacheRoot()), { ...options, eval: true });
}
