/**
 * The worker thread of a split-parallel window (see `split-window.ts`): runs the byte range it is
 * given ({@link RangeJob}) up to the end its {@link RangeBounds} say (the merging thread may take
 * the range's tail meanwhile) and posts the range's fired windows to the merging thread packed
 * (`split-merge.ts`), their typed arrays transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RangeBounds } from './range-bounds.ts';
import { type PackedWindows, WindowPacker } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';

/** What a worker is started with. */
export interface WorkerData {
  readonly task: SplitTask;
  /** The range's id, to put on its messages. */
  readonly range: number;
  /** The range's shared {@link RangeBounds}. */
  readonly bounds: SharedArrayBuffer;
}

/** A message from the worker: windows of its range, and on the last one the range's report. */
export interface WorkerMessage {
  readonly range: number;
  readonly packed: PackedWindows;
  readonly done?: SplitMessage['done'];
}

if (parentPort === null) throw new Error('split-window-worker.ts runs only as a worker thread');
const port = parentPort;
const { task, range, bounds } = workerData as WorkerData;
const packer = new WindowPacker();
const job = new RangeJob(
  task,
  (m) => {
    const packed = packer.pack(m.windows);
    port.postMessage({ range, packed, done: m.done } satisfies WorkerMessage, WindowPacker.transfers(packed));
  },
  new RangeBounds(bounds),
);
job.step();
