/**
 * The worker thread of a split-parallel window (see `split-window.ts`): takes ranges of the file
 * from the job's shared {@link RangeTable} (`split-steal.ts`) until none is worth taking, runs
 * each ({@link RangeJob}) and posts its fired windows to the merging thread packed
 * (`split-merge.ts`), their typed arrays transferred, tagged with the range they belong to.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type PackedWindows, WindowPacker } from './split-merge.ts';
import { RangeJob, type SplitMessage, type SplitTask } from './split-range.ts';
import { lineEndIn, OwnedRange, RangeTable } from './split-steal.ts';

/** What the merging thread starts a worker with (its `workerData`). */
export interface SplitWork {
  /** The task of any range but the first (its `from`, `to` and `last` are the range's own). */
  readonly task: SplitTask;
  /** The shared memory of the job's {@link RangeTable}. */
  readonly table: SharedArrayBuffer;
  /** Bytes a range must have left for the first take, and for each later one. */
  readonly first: number;
  readonly least: number;
  /** Bytes reserved at a time. */
  readonly slice: number;
}

/**
 * A message from the worker: range `range` starts at `from` (its first message), or windows of
 * it, and on its last one the range's report.
 */
export type WorkerMessage =
  | { readonly range: number; readonly from: number }
  | { readonly range: number; readonly packed: PackedWindows; readonly done?: SplitMessage['done'] };

if (parentPort === null) throw new Error('split-window-worker.ts runs only as a worker thread');
const port = parentPort;
const work = workerData as SplitWork;
const table = new RangeTable(work.table);
const lineEnd = lineEndIn(work.task.path);
for (
  let s = table.steal(work.first, lineEnd);
  s !== undefined;
  s = table.stopped() ? undefined : table.steal(work.least, lineEnd)
) {
  const { range, from, to, last } = s;
  port.postMessage({ range, from } satisfies WorkerMessage);
  // One packer a range: the merging thread keeps each range's key table apart.
  const packer = new WindowPacker();
  const job = new RangeJob({ ...work.task, from, to, last }, (m) => {
    const packed = packer.pack(m.windows);
    port.postMessage({ range, packed, done: m.done } satisfies WorkerMessage, WindowPacker.transfers(packed));
  });
  const owned = new OwnedRange(table, range, job, from, to);
  try {
    while (!owned.step(work.slice) && !table.stopped());
  } finally {
    job.close();
  }
}
