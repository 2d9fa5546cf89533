/**
 * `npx node bench/thread-scaling.ts [--rounds R]`: does a step's own work scale across worker
 * threads of one process? Runs the same fixed amount of work on one worker thread alone, then
 * on two at once, and prints each thread's CPU milliseconds (`process.threadCpuUsage`, so the
 * machine's load hardly moves it): `sha` is bench/parallel.ts's SHA-256 step (node:crypto
 * `createHash`, 480,000 hashes), `js` its plain-JavaScript `mix` step (30,000 records). A ratio
 * above 1 is CPU each thread loses to the other one — not something Sluice can hand off.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { numberFlag } from './child.ts';
import { mix, default as sha } from './parallel-step-module.ts';
import { median } from './run.ts';

/** CPU ms this thread spends on 30,000 records of step `kind`. */
function work(kind: string): number {
  const c0 = process.threadCpuUsage();
  const step = kind === 'sha' ? sha : mix;
  for (let n = 0; n < 30_000; n++)
    step({ n, user: `u${(n * 7919) % 1000}`, amount: `${n % 997}.${n % 100}` });
  const c = process.threadCpuUsage(c0);
  return (c.user + c.system) / 1000;
}

/** CPU ms of each of `threads` workers running `kind` at the same time. */
function together(kind: string, threads: number): Promise<number[]> {
  return Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: kind });
          w.once('message', (ms: number) => {
            resolve(ms);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
}

if (!isMainThread) parentPort?.postMessage(work(workerData as string));
else {
  const rounds = numberFlag(process.argv, '--rounds') ?? 5;
  console.log(`CPU ms per thread for the same work, alone and two threads at once, medians of ${rounds}`);
  for (const kind of ['sha', 'js']) {
    const one: number[] = [];
    const two: number[] = [];
    for (let r = 0; r < rounds; r++) {
      one.push(...(await together(kind, 1)));
      two.push(...(await together(kind, 2)));
    }
    const ratio = median(two) / median(one);
    console.log(
      `${kind.padEnd(4)} alone ${median(one).toFixed(0).padStart(5)}  two at once ${median(two).toFixed(0).padStart(5)}  ratio ${ratio.toFixed(2)}`,
    );
  }
}
