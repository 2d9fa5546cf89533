/**
 * The worker-thread side of a parallel `module:` step ({@link parallelStep}): imports the
 * module once, says `ready` (or why it cannot load), then answers each posted batch of records
 * with the function's raw results and failures, in the order the batches came. A task with
 * `claims` is run a chunk at a time from the front, and stops at the first chunk the calling
 * thread has taken from the back ({@link ChunkClaims}); the reply says how many records it did.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../core/errors.ts';
import { reviveCloned } from '../core/thread-values.ts';
import { ChunkClaims } from './chunk-claims.ts';
import { type AppliedBatch, applyRecordRange, type RecordFunction } from './record-function.ts';
import type { StepWorkerData, StepWorkerReply, StepWorkerTask } from './step-workers.ts';

const data = workerData as StepWorkerData;
if (parentPort === null) throw new Error('step-worker.ts runs only as a worker thread');
const port = parentPort;

let fn: RecordFunction | undefined;
try {
  const mod = (await import(data.moduleUrl)) as Record<string, unknown>;
  const exported = mod[data.exportName];
  if (typeof exported !== 'function') throw new Error(`export \`${data.exportName}\` is not a function`);
  fn = exported as RecordFunction;
  port.postMessage({ ready: true } satisfies StepWorkerReply);
} catch (err) {
  port.postMessage({ fatal: `loading the module: ${errorMessage(err)}` } satisfies StepWorkerReply);
}

/** Answers `task`; batches are handled one after the other, so an async function sees records in order. */
async function handle(task: StepWorkerTask, f: RecordFunction): Promise<void> {
  // The records crossed threads as data: decimals get their class back before the function sees them.
  const records = reviveCloned(task.records) as unknown[];
  const into: AppliedBatch = { results: new Array(records.length), failures: [] };
  let done = records.length;
  if (task.slot === undefined || data.claims === undefined) await applyRecordRange(f, records, 0, done, into);
  else {
    const claims = new ChunkClaims(data.claims, task.slot, records.length);
    done = 0;
    for (let c = 0; c < claims.chunks && claims.claimFront(c); c++) {
      done = claims.recordsBefore(c + 1);
      await applyRecordRange(f, records, claims.recordsBefore(c), done, into);
    }
    into.results.length = done;
  }
  try {
    port.postMessage({
      id: task.id,
      results: into.results,
      failures: into.failures,
      done,
    } satisfies StepWorkerReply);
  } catch (err) {
    port.postMessage({
      id: task.id,
      fatal: `a result cannot be sent between threads (return plain data: objects, arrays, strings, numbers, bigint, Date…): ${errorMessage(err)}`,
    } satisfies StepWorkerReply);
  }
}

let chain: Promise<void> = Promise.resolve();
port.on('message', (task: StepWorkerTask) => {
  const f = fn;
  if (f !== undefined) chain = chain.then(() => handle(task, f));
});
