/**
 * The input loop of an operator or a sink: takes messages from its input channels one at a time
 * (round robin), hands batches to the stage, merges watermarks by minimum over the inputs, aligns
 * checkpoint barriers (an input that delivered barrier n waits until every open input has), and
 * runs the stage's timers between messages. Ends when every input is closed, then calls the
 * stage's `finish` (a sink with `prepare`: `prepare`, then `finish` once every such sink prepared).
 */

import { offAbort, onAbort } from './abort-waiters.ts';
import { type Channel, CLOSED, EMPTY } from './channel.ts';
import type { Clock } from './clock.ts';
import { ErrorCode, SluiceError } from './errors.ts';
import type { GraphNode } from './graph.ts';
import { type Barrier, type Batch, type Message, type Signal, watermark } from './message.ts';
import type { StageMetrics } from './metrics.ts';
import { untilAborted } from './sending.ts';
import type { Emitter, Operator, Sink } from './stage.ts';

/** What the loop needs from the run. */
export interface InputLoopDeps {
  readonly inputs: readonly Channel<Message>[];
  /** The name of each input (by index of `inputs`), for stages that tell their inputs apart; see `GraphEdge.input`. */
  readonly inputNames?: readonly (string | undefined)[] | undefined;
  readonly metrics: StageMetrics;
  /** Where the stage emits (operators). */
  readonly out: Emitter<unknown>;
  readonly clock: Clock;
  /** The run's cancellation. */
  readonly signal: AbortSignal;
  /** Delivers a merged watermark or an aligned barrier to the stage (and onwards). */
  deliverSignal(s: Signal): Promise<void>;
  /** Called after every call into the stage: sends the dead letters it produced. */
  afterCall(): Promise<void>;
  /**
   * Sinks with `prepare`: called once it prepared; resolves when every preparing sink of the run
   * has (see `Sink.prepare`).
   */
  readonly prepared?: (() => Promise<void>) | undefined;
  /** Sinks: writes a batch in place of `sink.write` (the dlq sink's guard); default `sink.write`. */
  readonly write?: ((batch: Batch<unknown>) => void | Promise<void>) | undefined;
}

/** Runs the input loop of `node` until all its inputs are closed; see the module comment. */
export async function consumeInputs(
  node: Exclude<GraphNode, { kind: 'source' }>,
  deps: InputLoopDeps,
): Promise<void> {
  const { inputs, metrics, out, clock, signal } = deps;
  const isSink = node.kind === 'sink';
  const op = node.stage as Operator;
  const sink = node.stage as Sink;
  const write = deps.write ?? ((batch: Batch<unknown>) => sink.write(batch));
  const n = inputs.length;
  const open: boolean[] = inputs.map(() => true);
  let openCount = n;
  const marks: number[] = inputs.map(() => Number.NEGATIVE_INFINITY);
  let lastMark = Number.NEGATIVE_INFINITY;
  // Barrier alignment: inputs that delivered the pending barrier wait for the others.
  const held: boolean[] = inputs.map(() => false);
  let pendingBarrier: Barrier | undefined;
  let heldCount = 0;
  let next = 0;

  const mergedWatermark = async (): Promise<void> => {
    let min = Number.POSITIVE_INFINITY;
    for (const m of marks) if (m < min) min = m;
    if (min > lastMark && min !== Number.POSITIVE_INFINITY) {
      lastMark = min;
      if (isSink) metrics.watermark = min;
      await deps.deliverSignal(watermark(min));
    }
  };
  const releaseBarrierIfAligned = async (): Promise<void> => {
    if (pendingBarrier === undefined || heldCount < openCount) return;
    const b = pendingBarrier;
    pendingBarrier = undefined;
    heldCount = 0;
    held.fill(false);
    await deps.deliverSignal(b);
  };

  while (openCount > 0) {
    // A due timer runs before more input, so a stage under steady load still gets its timers.
    if (!isSink && op.nextTimer !== undefined) {
      const due = op.nextTimer();
      if (due !== undefined && due <= clock.now()) {
        const r = op.onTimer?.(clock.now(), out);
        if (r !== undefined) await untilAborted(r, signal);
        await deps.afterCall();
      }
    }
    let progressed = false;
    for (let k = 0; k < n; k++) {
      const i = (next + k) % n;
      if (!open[i] || held[i]) continue;
      const item = (inputs[i] as Channel<Message>).tryRecv();
      if (item === EMPTY) continue;
      progressed = true;
      next = i + 1;
      if (item === CLOSED) {
        open[i] = false;
        openCount--;
        marks[i] = Number.POSITIVE_INFINITY;
        const name = deps.inputNames?.[i];
        if (!isSink && name !== undefined && op.endInput !== undefined) {
          const r = op.endInput(name, out);
          if (r !== undefined) await untilAborted(r, signal);
          await deps.afterCall();
        }
        if (openCount > 0) {
          await mergedWatermark();
          await releaseBarrierIfAligned();
        }
      } else if (item.kind === 'batch') {
        metrics.recordsIn += item.records.length;
        metrics.batchesIn++;
        // Per batch, not per record: two clock reads around the call (its emits included).
        const began = performance.now();
        const r = isSink ? write(item) : op.process(item, out, deps.inputNames?.[i]);
        if (r !== undefined) await untilAborted(r, signal);
        metrics.batchLatency.observe(performance.now() - began);
        if (isSink) metrics.recordsOut += item.records.length;
        await deps.afterCall();
      } else if (item.kind === 'watermark') {
        if (item.time > (marks[i] as number)) marks[i] = item.time;
        await mergedWatermark();
      } else if (n === 1) {
        await deps.deliverSignal(item);
      } else {
        if (pendingBarrier !== undefined && pendingBarrier.id !== item.id) {
          throw new SluiceError(
            ErrorCode.STAGE,
            `stage \`${node.id}\` got barrier ${item.id} while aligning barrier ${pendingBarrier.id}`,
            { stage: node.id },
          );
        }
        pendingBarrier = item;
        held[i] = true;
        heldCount++;
        await releaseBarrierIfAligned();
      }
      break;
    }
    if (progressed || openCount === 0) continue;
    // Nothing queued: wait for input or the next timer (run at the top of the loop).
    const deadline = isSink ? undefined : op.nextTimer?.();
    if (deadline !== undefined && deadline <= clock.now()) continue;
    await waitForInput(inputs, open, held, deadline, clock, signal);
  }
  if (isSink && sink.prepare !== undefined) {
    // Two-phase end (see `Sink.prepare`): prepare, hand on its dead letters, then wait for
    // every other preparing sink before publishing.
    const p = sink.prepare();
    if (p !== undefined) await untilAborted(p, signal);
    await deps.afterCall();
    await deps.prepared?.();
  }
  const r = isSink ? sink.finish?.() : op.finish?.(out);
  if (r !== undefined) await untilAborted(r, signal);
  // Sinks: rows the destination rejected while committing the last of them.
  await deps.afterCall();
}

/** Waits until an open, unheld input has a message, or until `deadline` on `clock`. */
async function waitForInput(
  inputs: readonly Channel<Message>[],
  open: boolean[],
  held: boolean[],
  deadline: number | undefined,
  clock: Clock,
  signal: AbortSignal,
): Promise<void> {
  const waitable = inputs.filter((_, i) => open[i] && !held[i]);
  if (deadline === undefined && waitable.length === 1) {
    await (waitable[0] as Channel<Message>).readable(signal);
    return;
  }
  // Several waits race; abort the losers so no listener or timer is left behind. The run's
  // signal is forwarded by hand, not combined with `AbortSignal.any`, whose composite signal
  // ties itself to the run's signal with weak references and a finalizer (a batch stage idling
  // with a partial batch, e.g. during a busy source's loop turn, comes here).
  const local = new AbortController();
  if (signal.aborted) local.abort(signal.reason);
  // One listener on the run's signal for all waits (abort-waiters.ts says why).
  const forwarding = onAbort(signal, () => local.abort(signal.reason));
  const waits: Promise<void>[] = waitable.map((ch) => ch.readable(local.signal));
  if (deadline !== undefined) waits.push(clock.sleep(deadline - clock.now(), local.signal));
  try {
    await Promise.race(waits);
  } finally {
    offAbort(forwarding);
    local.abort();
    for (const w of waits) w.catch(() => {});
  }
}
