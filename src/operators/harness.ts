/**
 * A test harness for one operator: pushes batches and signals in, records what comes out,
 * runs timers on an injected {@link ManualClock}, and collects dead letters — no runtime,
 * no wall-clock time (Flink's `OneInputStreamOperatorTestHarness`, Effect's `TestClock`).
 */

import { ManualClock } from '../core/clock.ts';
import type { Batch, RecordMeta, Signal } from '../core/message.ts';
import { type Emitter, type Operator, runScope, type StageContext } from '../core/stage.ts';

/** A dead letter as the harness saw it. */
export interface HarnessDeadLetter {
  readonly record: unknown;
  readonly error: unknown;
  readonly meta: RecordMeta | undefined;
}

/** One thing the operator sent: a batch on a port, or a signal. */
export type HarnessOutput<O> =
  | { readonly port: string; readonly batch: Batch<O> }
  | { readonly signal: Signal };

/**
 * Drives an operator by hand. Every call mirrors what the runtime does: one call at a time,
 * `nextTimer()` asked after each.
 *
 * @example
 * const h = new OperatorHarness(map((x: number) => x * 2));
 * await h.open();
 * await h.process([1, 2]);
 * h.records(); // [2, 4]
 */
export class OperatorHarness<I, O> {
  readonly clock: ManualClock;
  readonly controller = new AbortController();
  readonly outputs: HarnessOutput<O>[] = [];
  readonly deadLetters: HarnessDeadLetter[] = [];
  readonly ctx: StageContext;
  readonly out: Emitter<O>;
  private readonly op: Operator<I, O>;

  /**
   * `stopSignal`: the run's stop (Ctrl-C) as the operator sees it, default never aborted;
   * `checkpointing`: whether the run takes checkpoints (default false).
   */
  constructor(
    op: Operator<I, O>,
    options: { clock?: ManualClock; name?: string; stopSignal?: AbortSignal; checkpointing?: boolean } = {},
  ) {
    this.op = op;
    this.clock = options.clock ?? new ManualClock(0);
    this.ctx = {
      name: options.name ?? 'op',
      signal: this.controller.signal,
      stopSignal: options.stopSignal ?? new AbortController().signal,
      checkpointing: options.checkpointing ?? false,
      runScoped: runScope(),
      clock: this.clock,
      log: { info() {}, warn() {}, error() {} },
      deadLetter: (record, error, meta) => {
        this.deadLetters.push({ record, error, meta });
      },
    };
    this.out = {
      emit: async (batch, port = 'out') => {
        if (batch.records.length > 0) this.outputs.push({ port, batch });
      },
      signal: async (signal) => {
        this.outputs.push({ signal });
      },
    };
  }

  async open(): Promise<void> {
    await this.op.open?.(this.ctx);
  }

  /** Pushes one batch (records, optional aligned meta), on the named `input` when given. */
  async process(
    records: readonly I[],
    meta?: readonly (RecordMeta | undefined)[],
    input?: string,
  ): Promise<void> {
    const batch: Batch<I> =
      meta === undefined ? { kind: 'batch', records } : { kind: 'batch', records, meta };
    await this.op.process(batch, this.out, input);
  }

  /** Says the named `input` ended (as the runtime does when its upstream closes). */
  async endInput(input: string): Promise<void> {
    await this.op.endInput?.(input, this.out);
  }

  /** Pushes a signal; forwards it unchanged when the operator has no `onSignal` (as the runtime does). */
  async signal(s: Signal): Promise<void> {
    if (this.op.onSignal) await this.op.onSignal(s, this.out);
    else await this.out.signal(s);
  }

  /** Runs `onTimer` if `nextTimer()` is due at the clock's time; returns whether it ran. */
  async fireTimerIfDue(): Promise<boolean> {
    const t = this.op.nextTimer?.();
    if (t === undefined || t > this.clock.now()) return false;
    await this.op.onTimer?.(this.clock.now(), this.out);
    return true;
  }

  async finish(): Promise<void> {
    await this.op.finish?.(this.out);
  }

  /** Emitted batches on `port` (default `out`). */
  batches(port = 'out'): Batch<O>[] {
    const r: Batch<O>[] = [];
    for (const o of this.outputs) if ('batch' in o && o.port === port) r.push(o.batch);
    return r;
  }

  /** Every record emitted on `port`, flattened. */
  records(port = 'out'): O[] {
    return this.batches(port).flatMap((b) => b.records);
  }

  /** Every meta entry emitted on `port`, flattened (undefined where a batch had none). */
  metas(port = 'out'): (RecordMeta | undefined)[] {
    return this.batches(port).flatMap((b) => (b.meta ? [...b.meta] : b.records.map(() => undefined)));
  }
}

/** Lets pending promise callbacks run (a few macrotask turns) without moving any clock. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}
