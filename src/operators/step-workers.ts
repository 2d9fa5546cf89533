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
import { ChunkClaims } from './chunk-claims.ts';
import type { AppliedBatch } from './record-function.ts';

/** What a step worker is started with. */
export interface StepWorkerData {
  /** `file:` URL of the user module. */
  readonly moduleUrl: string;
  readonly exportName: string;
  /** This worker's ring of chunk claims ({@link ChunkClaims.ring}). */
  readonly claims?: SharedArrayBuffer;
}

/** One batch posted to a step worker. */
export interface StepWorkerTask {
  readonly id: number;
  readonly records: readonly unknown[];
  /** The slot of the worker's claim ring shared with the calling thread ({@link ChunkClaims}); without it, every record is run. */
  readonly slot?: number;
}

/** A message from a step worker: `ready` once, then one reply per task (or `fatal`). */
export interface StepWorkerReply {
  readonly ready?: true;
  readonly id?: number;
  readonly results?: AppliedBatch['results'];
  readonly failures?: AppliedBatch['failures'];
  /** Records run, from the first (all but those the calling thread claimed). */
  readonly done?: number;
  /** The worker cannot go on (module did not load, a result cannot be cloned): fails the run. */
  readonly fatal?: string;
}

/** A worker's answer to one task: results and failures of the first `done` records. */
export interface StepResult extends AppliedBatch {
  readonly done: number;
}

/** The worker module: `.ts` from the sources, `.js` from a build. */
const WORKER = new URL(`./step-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Pending {
  readonly resolve: (r: StepResult) => void;
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

  /** Per worker: its claim ring and the next slot to use. */
  private readonly rings: { readonly buffer: SharedArrayBuffer; next: number }[] = [];
  private readonly slots: number;

  /**
   * `claimSlots`: claim sets per worker, more than the tasks a worker ever has unanswered
   * (a slot is reused only once the task that used it last was answered); 0 for none.
   */
  constructor(threads: number, data: StepWorkerData, label: string, claimSlots = 0) {
    this.threads = threads;
    this.data = data;
    this.label = label;
    this.slots = claimSlots;
  }

  /** The next free claim set of worker `worker` for a share of `length` records, reset. */
  claims(worker: number, length: number): ChunkClaims {
    const ring = this.rings[worker];
    if (ring === undefined) throw new Error(`worker ${worker} has no claim ring (claimSlots 0)`);
    const slot = ring.next;
    ring.next = (slot + 1) % this.slots;
    return new ChunkClaims(ring.buffer, slot, length).reset();
  }

  /** Starts the workers and resolves once each has loaded the module; rejects with why one could not. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.threads; i++) {
      const claims = this.slots > 0 ? ChunkClaims.ring(this.slots) : undefined;
      if (claims !== undefined) this.rings.push({ buffer: claims, next: 0 });
      const w = startWorker(WORKER, { workerData: { ...this.data, claims } satisfies StepWorkerData });
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

  /**
   * Runs `records` on worker `worker` (0-based); resolves with one raw result per record run.
   * With `claims` the worker runs a prefix of them (see {@link ChunkClaims}) and `done` says
   * how long it is.
   */
  run(worker: number, records: readonly unknown[], claims?: ChunkClaims): Promise<StepResult> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<StepResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const task: StepWorkerTask =
        claims === undefined ? { id, records } : { id, records, slot: claims.slot };
      (this.workers[worker] as Worker).postMessage(task);
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
    else {
      // Results crossed threads as data: decimals the function returned get their class back.
      const results = reviveCloned(m.results ?? []) as unknown[];
      p.resolve({ results, failures: m.failures ?? [], done: m.done ?? results.length });
    }
  }

  /** Records the first failure, rejects every waiting task with it and returns it. */
  private fail(message: string): Error {
    this.failure ??= new SluiceError(ErrorCode.STAGE, message);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    return this.failure;
  }
}
