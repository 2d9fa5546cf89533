/**
 * A fixed set of worker threads running one module's per-record function: {@link StepWorkers}
 * starts them, hands each a sub-batch and resolves with what it sent back. Records cross
 * threads by structured clone of the record array (bench/parallel-transfer.ts: cheaper than
 * `v8.serialize` or JSON in a transferred buffer for object records); metadata never leaves
 * the calling thread.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { reviveCloned } from '../core/thread-values.ts';
import { startWorker } from '../core/worker-start.ts';
import type { AppliedBatch } from './record-function.ts';

/** What a step worker is started with. */
export interface StepWorkerData {
  /** `file:` URL of the user module. */
  readonly moduleUrl: string;
  readonly exportName: string;
}

/** One batch posted to a step worker. */
export interface StepWorkerTask {
  readonly id: number;
  readonly records: readonly unknown[];
}

/** A message from a step worker: `ready` once, then one reply per task (or `fatal`). */
export interface StepWorkerReply {
  readonly ready?: true;
  readonly id?: number;
  readonly results?: AppliedBatch['results'];
  readonly failures?: AppliedBatch['failures'];
  /** The worker cannot go on (module did not load, a result cannot be cloned): fails the run. */
  readonly fatal?: string;
}

/** The worker module: `.ts` from the sources, `.js` from a build. */
const WORKER = new URL(`./step-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Pending {
  readonly resolve: (r: AppliedBatch) => void;
  readonly reject: (e: Error) => void;
}

/**
 * `threads` workers, each with its own copy of the module. Call {@link start} once, then
 * {@link run} any number of times (tasks to one worker are answered in the order posted),
 * then {@link close}. A worker that dies or reports a fatal problem rejects every task still
 * waiting, with a `SLUICE_STAGE` error that fails the run.
 */
export class StepWorkers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;
  private readonly label: string;
  private readonly data: StepWorkerData;
  private readonly threads: number;

  constructor(threads: number, data: StepWorkerData, label: string) {
    this.threads = threads;
    this.data = data;
    this.label = label;
  }

  /** Starts the workers and resolves once each has loaded the module; rejects with why one could not. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.threads; i++) {
      const w = startWorker(WORKER, { workerData: this.data });
      this.workers.push(w);
      ready.push(
        new Promise<void>((resolve, reject) => {
          w.on('message', (m: StepWorkerReply) => {
            if (m.ready === true) resolve();
            else if (m.fatal !== undefined) {
              const e = this.fail(`module \`${this.label}\` on worker thread ${i + 1}: ${m.fatal}`);
              reject(e);
            } else this.settle(m);
          });
          w.on('error', (err) =>
            reject(this.fail(`worker thread ${i + 1} of \`${this.label}\` failed: ${err.message}`)),
          );
          w.on('exit', (code) =>
            reject(this.fail(`worker thread ${i + 1} of \`${this.label}\` exited (code ${code})`)),
          );
        }),
      );
    }
    await Promise.all(ready);
  }

  /** Runs `records` on worker `worker` (0-based); resolves with one raw result per record. */
  run(worker: number, records: readonly unknown[]): Promise<AppliedBatch> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<AppliedBatch>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.workers[worker] as Worker).postMessage({ id, records } satisfies StepWorkerTask);
    });
  }

  /** Stops every worker; tasks still waiting reject. Idempotent. */
  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    this.fail(`the step \`${this.label}\` closed`);
    await Promise.all(ws.map((w) => w.terminate()));
  }

  private settle(m: StepWorkerReply): void {
    const p = this.pending.get(m.id as number);
    if (p === undefined) return;
    this.pending.delete(m.id as number);
    if (m.fatal !== undefined) p.reject(this.fail(`module \`${this.label}\`: ${m.fatal}`));
    // Results crossed threads as data: decimals the function returned get their class back.
    else p.resolve({ results: reviveCloned(m.results ?? []) as unknown[], failures: m.failures ?? [] });
  }

  /** Records the first failure, rejects every waiting task with it and returns it. */
  private fail(message: string): Error {
    this.failure ??= new SluiceError(ErrorCode.STAGE, message);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    return this.failure;
  }
}
