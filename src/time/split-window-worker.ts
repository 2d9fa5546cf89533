/**
 * The worker thread of a split-parallel window (see `split-window.ts`): runs the one byte range
 * it is given ({@link RangeJob}, `workerData` a `SplitTask`) and posts its fired windows to the
 * merging thread packed (`split-merge.ts`), their typed arrays transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type PackedWindows, WindowPacker } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';

/** A message from the worker: windows, and on the last one the range's report. */
export interface WorkerMessage {
  readonly packed: PackedWindows;
  readonly done?: SplitMessage['done'];
}

if (parentPort === null) throw new Error('split-window-worker.ts runs only as a worker thread');
const port = parentPort;
const packer = new WindowPacker();
new RangeJob(workerData as SplitTask, (m) => {
  const packed = packer.pack(m.windows);
  port.postMessage({ packed, done: m.done } satisfies WorkerMessage, WindowPacker.transfers(packed));
}).step();
