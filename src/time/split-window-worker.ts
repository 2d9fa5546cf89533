/**
 * The worker thread of a split-parallel window (see `split-window.ts`): runs the one byte range
 * it is given ({@link RangeJob}, `workerData` a `SplitTask`) and posts its messages to the
 * merging thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RangeJob, type SplitTask } from './split-range.ts';

if (parentPort === null) throw new Error('split-window-worker.ts runs only as a worker thread');
const port = parentPort;
new RangeJob(workerData as SplitTask, (m) => port.postMessage(m)).step();
