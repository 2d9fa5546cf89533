/**
 * A fixed, I/O-free workload for the window operator's hot path, for instruction counts that do
 * not depend on the machine's load (`valgrind --tool=callgrind` counts instructions, so two
 * builds compare exactly even on a busy machine):
 *
 *   valgrind --tool=callgrind node_modules/node/bin/node bench/window-instructions.ts . 300000
 *   valgrind --tool=callgrind node_modules/node/bin/node bench/window-instructions.ts . 1024   # start-up only
 *
 * The first argument is the repository to load Sluice from (another checkout compares builds);
 * the second the number of events (tumbling 1-minute windows, 5,000 keys, count + sum). Subtract
 * the start-up run's count. Prints the number of results, which must match between builds.
 */
const [repo = '.', eventsArg] = process.argv.slice(2);
const events = Number(eventsArg ?? 200_000);
const { pathToFileURL } = await import('node:url');
const { resolve } = await import('node:path');
const win = await import(pathToFileURL(resolve(repo, 'src/time/window.ts')).href);
const op = win.windowOperator({
  key: 'k',
  time: 't',
  tumbling: '1m',
  aggregate: { n: 'count()', s: 'sum(v)' },
});
let out = 0;
const emitter = {
  emit: async (b: { records: unknown[] }) => {
    out += b.records.length;
  },
  signal: async () => {},
};
const never = new AbortController().signal;
op.open?.({
  name: 'w',
  signal: never,
  stopSignal: never,
  clock: { now: () => 0, sleep: async () => {} },
  log: { info() {}, warn() {}, error() {} },
  checkpointing: false,
  deadLetter() {},
  runScoped: (_key: symbol, init: () => unknown) => init(),
});
const BATCH = 1024;
let t = 0;
for (let i = 0; i < events; i += BATCH) {
  const records = [];
  for (let j = 0; j < BATCH; j++) {
    records.push({ k: `key${(i + j) % 5000}`, t, v: (i + j) % 100 });
    t += 5;
  }
  await op.process({ kind: 'batch', records }, emitter);
  await op.onSignal?.({ kind: 'watermark', time: t - 1000 }, emitter);
}
await op.finish?.(emitter);
console.log(`results ${out}`);
