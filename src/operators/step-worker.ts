/**
 * The worker-thread side of a parallel `module:` step ({@link parallelStep}): imports the
 * module once, says `ready` (or why it cannot load), then answers each posted batch of records
 * with the function's raw results and failures, in the order the batches came.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../core/errors.ts';
import { reviveCloned } from '../core/thread-values.ts';
import { applyRecordFunction, type RecordFunction } from './record-function.ts';
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
  const { results, failures } = await applyRecordFunction(f, records);
  try {
    port.postMessage({ id: task.id, results, failures } satisfies StepWorkerReply);
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
