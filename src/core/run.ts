/**
 * The runtime: turns a {@link Graph} into running stages joined by bounded channels, and
 * hands back a {@link RunHandle}.
 *
 * - Each edge is one {@link Channel}; each stage is one async task that takes messages from
 *   its input channels one at a time and awaits per batch, never per record.
 * - Watermarks are merged by minimum over a stage's inputs; checkpoint barriers are aligned
 *   (an input that delivered barrier n waits until every input has delivered it).
 * - An error in any stage cancels every other stage and channel, then every stage's
 *   `close()` runs exactly once, so files, sockets and timers are released.
 */

import { Channel, CLOSED, EMPTY } from './channel.ts';
import type { CheckpointDriver } from './checkpointing.ts';
import { type Clock, systemClock } from './clock.ts';
import { cancelledError, ErrorCode, errorMessage, isCancellation, SluiceError, wrapError } from './errors.ts';
import { DLQ_PORT, type Graph, type GraphNode, MAIN_PORT } from './graph.ts';
import type { Barrier, Batch, Message, Position, RecordMeta, Signal } from './message.ts';
import { barrier, watermark } from './message.ts';
import { type MetricsSnapshot, type RunState, StageMetrics, type StageSnapshot } from './metrics.ts';
import {
  type DeadLetter,
  type Emitter,
  type Logger,
  type Operator,
  runScope,
  type Sink,
  type Source,
  type SourceContext,
  type StageContext,
} from './stage.ts';

/** Options of {@link runGraph}. */
export interface RunOptions {
  /** Aborting it cancels the run (like `stop({ drain: false })`). */
  signal?: AbortSignal;
  /** Clock for every stage; inject a {@link ManualClock} in tests. Default: the system clock. */
  clock?: Clock;
  /**
   * Messages (batches or signals) each channel queues unless its edge says otherwise.
   * Default 2: with the sender's parked batch that is triple buffering per edge, and a batch
   * crosses the stages while still in the CPU cache (`npm run bench -- core` ran fastest at
   * 1–2, 20–30 % slower at 4–8).
   */
  channelCapacity?: number;
  /**
   * Maximum fraction (0–1) of records read that may become dead letters; above it the run
   * stops with an error. Checked once `errorRateMinRecords` records were read. Default: none.
   */
  maxErrorRate?: number;
  /** Records to read before `maxErrorRate` is enforced. Default 100. */
  errorRateMinRecords?: number;
  /** Logger for stages. Default: warnings and errors to stderr. */
  log?: Logger;
  /**
   * Checkpoints: the coordinator that decides when they happen and stores them (see
   * `src/checkpoint/coordinator.ts`). With it the run restores the newest intact checkpoint
   * before any data, injects barriers into the sources' outputs, snapshots operators at aligned
   * barriers and collects sink acknowledgements. Default: no checkpoints.
   */
  checkpoint?: CheckpointDriver;
}

/** What a finished run reports. */
export type RunSummary = MetricsSnapshot;

/** A running pipeline. */
export interface RunHandle {
  /**
   * Settles when every stage has ended and every resource is closed: resolves with the final
   * metrics on success or user stop (`state` says which), rejects with the first error.
   */
  readonly done: Promise<RunSummary>;
  /**
   * Stops the run. `drain: true` (default): sources stop reading, what is in flight flows to
   * the sinks, which flush and commit. `drain: false`: everything is cancelled at once and
   * uncommitted output is discarded. Returns `done`.
   */
  stop(options?: { drain?: boolean }): Promise<RunSummary>;
  /** A snapshot of the run's metrics, cheap enough to call a few times a second. */
  metrics(): MetricsSnapshot;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Settles like `work`, or rejects with a cancellation as soon as `signal` aborts, so a stage
 * stuck in a call that ignores its signal cannot hold a cancelled run open. The abandoned
 * call is left to the stage's `close()`.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (work === (RESOLVED as unknown)) return work;
  if (signal.aborted) return Promise.reject(cancelledError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelledError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

const stderrLogger: Logger = {
  info: () => {},
  warn: (msg, fields) => process.stderr.write(`WARN ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
  error: (msg, fields) => process.stderr.write(`ERROR ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
};

/**
 * Sends `msg` to every channel: synchronously where there is room, waiting (with
 * backpressure, cancellable by `signal`) where there is not. Returns `RESOLVED` when nothing
 * had to wait, so the caller's `await` is cheap on the fast path.
 */
function sendAll(chans: readonly Channel<Message>[], msg: Message, signal: AbortSignal): Promise<void> {
  let waits: Promise<void>[] | undefined;
  for (const ch of chans) {
    if (ch.trySend(msg)) continue;
    if (waits === undefined) waits = [];
    waits.push(ch.send(msg, signal));
  }
  if (waits === undefined) return RESOLVED;
  return waits.length === 1 ? (waits[0] as Promise<void>) : Promise.all(waits).then(() => {});
}

/** A stage's own metrics, if it reports any; a hook that throws is reported as missing. */
function customMetrics(node: GraphNode): { custom?: Readonly<Record<string, number>> } {
  const hook = node.stage.metrics;
  if (hook === undefined) return {};
  try {
    return { custom: hook.call(node.stage) };
  } catch {
    return {};
  }
}

function isBatchMessage(m: Message): boolean {
  return m.kind === 'batch';
}

function weighMessage(m: Message): number {
  return m.kind === 'batch' ? m.records.length : 0;
}

/**
 * Runs `graph` and returns its handle at once. The graph is validated first; a graph that
 * cannot run rejects `done` with a `SLUICE_CONFIG` error.
 *
 * @example
 * const handle = runGraph(graph);
 * const summary = await handle.done;
 * console.log(summary.recordsWritten);
 */
export function runGraph(graph: Graph, options: RunOptions = {}): RunHandle {
  return new Run(graph, options).start();
}

class Run {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly cancel = new AbortController();
  private readonly stopRequest = new AbortController();
  /** Values the stages of this run share (`StageContext.runScoped`). */
  private readonly runScoped = runScope();
  private readonly inputs = new Map<string, Channel<Message>[]>();
  private readonly outputs = new Map<string, Map<string, Channel<Message>[]>>();
  private readonly channels: Channel<Message>[] = [];
  private readonly stageMetrics = new Map<string, StageMetrics>();
  private readonly pendingDead = new Map<string, DeadLetter[]>();
  /** The original meta of each pending dead letter (key, headers…), sent with them to the dlq. */
  private readonly pendingDeadMeta = new Map<string, RecordMeta[]>();
  /**
   * Each stage's one context, made before it opens: `open` and a source's `run` get the same
   * one, so dead letters sent through either reach the collection that is flushed.
   */
  private readonly contexts = new Map<string, StageContext | SourceContext>();
  /** Per source: batches from the write-ahead log to send before its `run`. */
  private readonly replay = new Map<string, Batch<unknown>[]>();
  private readonly replaying = new Set<string>();
  private state: RunState = 'starting';
  private firstError: unknown;
  private readonly startedAt: number;
  private peakQueued = 0;
  private deadTotal = 0;
  /** Barrier id → sinks that handled it (only without checkpoints; see `sinkHandledBarrier`). */
  private readonly barrierAcks = new Map<number, number>();
  private ackChain: Promise<void> = RESOLVED;
  private sinkCount = 0;
  private ackAllowed = false;
  private done!: Promise<RunSummary>;

  private readonly graph: Graph;
  private readonly options: RunOptions;

  constructor(graph: Graph, options: RunOptions) {
    this.graph = graph;
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? stderrLogger;
    this.startedAt = performance.now();
  }

  start(): RunHandle {
    this.done = this.execute();
    // The caller may only look at `done` later; never let an early failure count as unhandled.
    this.done.catch(() => {});
    const external = this.options.signal;
    if (external) {
      if (external.aborted) this.abort(cancelledError(external.reason), 'cancelled');
      else
        external.addEventListener('abort', () => this.abort(cancelledError(external.reason), 'cancelled'), {
          once: true,
        });
    }
    return {
      done: this.done,
      stop: (opts) => {
        if (opts?.drain === false) this.abort(cancelledError('stopped without draining'), 'cancelled');
        else if (this.state === 'running' || this.state === 'starting') {
          this.state = 'draining';
          this.stopRequest.abort();
        }
        return this.done;
      },
      metrics: () => this.snapshot(),
    };
  }

  private async execute(): Promise<RunSummary> {
    const graph = this.graph;
    graph.validate();
    this.wire();
    const order = graph.topologicalOrder();
    const opened: GraphNode[] = [];
    try {
      // Sinks first, so a bad destination fails before any source starts reading.
      for (const id of [...order].reverse()) {
        const node = graph.nodes.get(id) as GraphNode;
        opened.push(node);
        try {
          const ctx = this.contextFor(node);
          this.contexts.set(id, ctx);
          await node.stage.open?.(ctx as SourceContext);
        } catch (err) {
          throw wrapError(`opening stage \`${id}\``, err, { stage: id, component: node.component });
        }
      }
      if (this.options.checkpoint !== undefined) await this.restoreCheckpoint(this.options.checkpoint);
      if (this.state === 'starting') this.state = 'running';
      const tasks = order.map((id) => this.runNode(graph.nodes.get(id) as GraphNode));
      await Promise.allSettled(tasks);
      // Acknowledgements already due are delivered before the sources close.
      await this.ackChain;
    } catch (err) {
      this.fail(err);
    } finally {
      await this.closeAll(opened.length > 0 ? [...graph.nodes.values()] : []);
      await this.finishCheckpoints();
    }
    if (this.firstError !== undefined && this.state === 'failed') throw this.firstError;
    if (this.state !== 'cancelled') this.state = 'succeeded';
    return this.snapshot();
  }

  private wire(): void {
    const capacity = this.options.channelCapacity ?? 2;
    const nodes = [...this.graph.nodes.values()];
    this.sinkCount = nodes.filter((n) => n.kind === 'sink').length;
    // Without checkpoints a barrier may be acknowledged upstream only if nothing it covers can
    // be lost in a crash: no operator state, and every sink durable at the barrier.
    this.ackAllowed =
      !nodes.some((n) => n.kind === 'operator' && n.stage.snapshot !== undefined) &&
      nodes.every((n) => n.kind !== 'sink' || n.stage.durableOnBarrier === true);
    const edges = [...this.graph.edges];
    const dlq = this.graph.dlqNode;
    if (dlq !== undefined) {
      for (const node of this.graph.nodes.values()) {
        if (node.id !== dlq) edges.push({ from: node.id, port: DLQ_PORT, to: dlq });
      }
    }
    for (const node of this.graph.nodes.values()) {
      this.inputs.set(node.id, []);
      this.outputs.set(node.id, new Map());
      this.stageMetrics.set(node.id, new StageMetrics(node.id, node.kind, node.component));
    }
    for (const edge of edges) {
      const ch = new Channel<Message>({
        capacity: edge.buffer?.size ?? capacity,
        overflow: edge.buffer?.overflow ?? 'block',
        name: `${edge.from}.${edge.port}→${edge.to}`,
        weigh: weighMessage,
        droppable: isBatchMessage,
      });
      this.channels.push(ch);
      this.inputs.get(edge.to)?.push(ch);
      const ports = this.outputs.get(edge.from) as Map<string, Channel<Message>[]>;
      const list = ports.get(edge.port) ?? [];
      list.push(ch);
      ports.set(edge.port, list);
    }
  }

  private contextFor(node: GraphNode): StageContext | SourceContext {
    const pending: DeadLetter[] = [];
    this.pendingDead.set(node.id, pending);
    const pendingMeta: RecordMeta[] = [];
    this.pendingDeadMeta.set(node.id, pendingMeta);
    const metrics = this.stageMetrics.get(node.id) as StageMetrics;
    const hasDlq = (this.outputs.get(node.id)?.get(DLQ_PORT)?.length ?? 0) > 0;
    return {
      name: node.id,
      signal: this.cancel.signal,
      stopSignal: this.stopRequest.signal,
      checkpointing: this.options.checkpoint !== undefined,
      ...(this.options.checkpoint?.positionsOf !== undefined
        ? { checkpointPositions: (id: number) => this.options.checkpoint?.positionsOf?.(id) }
        : {}),
      ...(this.options.checkpoint?.partitionState !== undefined
        ? { partitionState: this.options.checkpoint.partitionState }
        : {}),
      clock: this.clock,
      log: this.log,
      runScoped: this.runScoped,
      deadLetter: (record: unknown, error: unknown, meta?: RecordMeta) => {
        const errJson =
          error instanceof SluiceError
            ? (error.toJSON() as DeadLetter['error'])
            : { code: ErrorCode.RECORD, message: errorMessage(error) };
        if (!hasDlq) {
          const where = meta?.position ? ` at ${JSON.stringify(meta.position)}` : '';
          throw new SluiceError(
            ErrorCode.NO_DLQ,
            `stage \`${node.id}\` rejected a record${where}: ${errJson.message}. Configure a \`dlq\` output to keep rejected records and let the run go on`,
            { stage: node.id, ...(meta?.position ?? {}) },
            { cause: error },
          );
        }
        const letter: DeadLetter = {
          error: errJson,
          stage: node.id,
          ...(meta?.source !== undefined ? { source: meta.source } : {}),
          ...(meta?.position !== undefined ? { position: meta.position } : {}),
          record,
          time: new Date(this.clock.now()).toISOString(),
        };
        pending.push(letter);
        pendingMeta.push(meta ?? { source: node.id });
        metrics.deadLetters++;
        this.deadTotal++;
        this.checkErrorRate(errJson.message);
      },
    };
  }

  private checkErrorRate(lastMessage: string): void {
    const max = this.options.maxErrorRate;
    if (max === undefined) return;
    const read = this.recordsRead();
    if (read < (this.options.errorRateMinRecords ?? 100)) return;
    const rate = this.deadTotal / read;
    if (rate > max) {
      throw new SluiceError(
        ErrorCode.ERROR_RATE,
        `${this.deadTotal} of ${read} records failed (${(rate * 100).toFixed(2)}%), above maxErrorRate ${(max * 100).toFixed(2)}%; the last error: ${lastMessage}. Fix the input or raise \`maxErrorRate\``,
        { deadLetters: this.deadTotal, recordsRead: read },
      );
    }
  }

  private emitterFor(node: GraphNode): Emitter<unknown> {
    const ports = this.outputs.get(node.id) as Map<string, Channel<Message>[]>;
    const metrics = this.stageMetrics.get(node.id) as StageMetrics;
    const main = ports.get(MAIN_PORT) ?? [];
    const signal = this.cancel.signal;
    const pending = this.pendingDead.get(node.id) as DeadLetter[];
    const checkpoint = this.options.checkpoint;
    const send = (chans: Channel<Message>[], msg: Message): Promise<void> => {
      const sent = sendAll(chans, msg, signal);
      this.samplePeak();
      return sent;
    };
    const sendSignal = (s: Signal): Promise<void> => {
      const waits: Promise<void>[] = [];
      for (const [port, chans] of ports) {
        // The dlq sink needs barriers (to acknowledge them), not watermarks.
        if (port === DLQ_PORT && s.kind !== 'barrier') continue;
        const p = send(chans, s);
        if (p !== RESOLVED) waits.push(p);
      }
      return waits.length === 0 ? RESOLVED : Promise.all(waits).then(() => {});
    };
    const emitter: Emitter<unknown> = {
      emit: (batch: Batch<unknown>, port: string = MAIN_PORT): Promise<void> => {
        const n = batch.records.length;
        if (n === 0) return RESOLVED;
        const chans = port === MAIN_PORT ? main : ports.get(port);
        if (chans === undefined || chans.length === 0) {
          return Promise.reject(
            new SluiceError(
              ErrorCode.CONFIG,
              `stage \`${node.id}\` emitted ${n} records on its output \`${port}\`, which is not connected; connect it (e.g. under \`outputs:\`) so no record is lost`,
              { stage: node.id, port },
            ),
          );
        }
        metrics.recordsOut += n;
        metrics.batchesOut++;
        if (checkpoint !== undefined && node.kind === 'source') {
          return this.emitFromSource(node.id, node.stage, checkpoint, emitter, chans, batch, send);
        }
        const sent = send(chans, batch);
        if (node.kind === 'source' && pending.length > 0) return sent.then(() => this.flushDead(node.id));
        return sent;
      },
      signal: (s: Signal): Promise<void> => {
        // A source's dead letters go out before its barrier: the barrier's position covers them
        // (a source that commits at the barrier must not commit a letter the dlq never got).
        if (node.kind === 'source' && s.kind === 'barrier' && pending.length > 0) {
          return this.flushDead(node.id).then(() => sendSignal(s));
        }
        return sendSignal(s);
      },
    };
    return emitter;
  }

  /**
   * A source's batch under checkpointing: logged ahead when the write-ahead log is on, sent,
   * then followed by a barrier when the coordinator says one is due. The position recorded
   * with the barrier is read while the source still awaits this emit, so it covers exactly the
   * records sent before the barrier.
   */
  private async emitFromSource(
    id: string,
    source: Source,
    checkpoint: CheckpointDriver,
    emitter: Emitter<unknown>,
    chans: Channel<Message>[],
    batch: Batch<unknown>,
    send: (chans: Channel<Message>[], msg: Message) => Promise<void>,
  ): Promise<void> {
    if (checkpoint.walAppend !== undefined && !this.replaying.has(id)) {
      await checkpoint.walAppend(id, batch, source.position?.());
    }
    await send(chans, batch);
    await this.flushDead(id);
    const due = checkpoint.barrierDue(id, batch.records.length);
    if (due === undefined) return;
    checkpoint.sourceBarrier(due, id, source.position?.());
    await emitter.signal(barrier(due));
  }

  /**
   * Loads the newest intact checkpoint and hands each stage its part (sources their position,
   * operators and sinks their state), collects the write-ahead log's entries to replay, then
   * starts the coordinator. Runs after every stage is open and before any data.
   */
  private async restoreCheckpoint(checkpoint: CheckpointDriver): Promise<void> {
    const restored = await checkpoint.restore();
    const positions = new Map<string, Position | undefined>();
    if (restored !== undefined) for (const [k, v] of Object.entries(restored.sources)) positions.set(k, v);
    if (checkpoint.walReplay !== undefined) {
      for await (const entry of checkpoint.walReplay(restored?.id)) {
        const list = this.replay.get(entry.stage) ?? [];
        list.push(entry.batch);
        this.replay.set(entry.stage, list);
        positions.set(entry.stage, entry.position);
      }
    }
    const sources: string[] = [];
    const sinks: string[] = [];
    // Sinks first: an exactly-once sink settles its transactions in `restore`, then may hold
    // positions newer than the checkpoint's (e.g. the checkpoint folder was lost).
    for (const node of this.graph.nodes.values()) {
      if (node.kind !== 'sink') continue;
      const where = `restoring stage \`${node.id}\` from checkpoint ${restored?.id}`;
      try {
        sinks.push(node.id);
        if (restored !== undefined) await node.stage.restore?.(restored.sinks[node.id]);
        const held = await node.stage.committedPositions?.();
        if (held !== undefined && held.checkpointId > (restored?.id ?? 0)) {
          for (const [src, pos] of Object.entries(held.sources))
            if (pos !== undefined) positions.set(src, pos);
          this.log.warn(
            `Resuming from the positions sink \`${node.id}\` committed with checkpoint ${held.checkpointId}, newer than the checkpoint store's ${restored?.id ?? 'none'}`,
          );
        }
      } catch (err) {
        throw wrapError(where, err, { stage: node.id, component: node.component });
      }
    }
    for (const node of this.graph.nodes.values()) {
      const where = `restoring stage \`${node.id}\` from checkpoint ${restored?.id}`;
      try {
        if (node.kind === 'source') {
          sources.push(node.id);
          const pos = positions.get(node.id);
          if (pos !== undefined) {
            if (node.stage.restore === undefined) {
              throw new SluiceError(
                ErrorCode.STAGE,
                `source \`${node.id}\` (${node.component}) cannot resume from a position; delete the checkpoint folder to start over`,
                { stage: node.id },
              );
            }
            await node.stage.restore(pos);
          }
        } else if (node.kind === 'operator') {
          const state = restored?.operators.get(node.id);
          if (state === undefined) continue;
          if (node.stage.restore === undefined) {
            this.log.warn(
              `Stage \`${node.id}\` has state in checkpoint ${restored?.id} but cannot restore it; it starts empty`,
            );
          } else await node.stage.restore(state);
        }
      } catch (err) {
        throw wrapError(where, err, { stage: node.id, component: node.component });
      }
    }
    if (restored !== undefined)
      this.log.info(`Restored checkpoint \`${restored.id}\``, { checkpoint: restored.id });
    checkpoint.begin({
      sources,
      sinks,
      commit: async (data) => {
        for (const id of sources) {
          const stage = (this.graph.nodes.get(id) as GraphNode).stage as Source;
          const pos = data.sources[id];
          if (pos !== undefined) await stage.commit?.(pos);
        }
        for (const id of sinks)
          await ((this.graph.nodes.get(id) as GraphNode).stage as Sink).commitCheckpoint?.(data.id);
      },
    });
  }

  /** Tells the coordinator how the run ended (a finished job's checkpoints are deleted). */
  private async finishCheckpoints(): Promise<void> {
    const checkpoint = this.options.checkpoint;
    if (checkpoint === undefined) return;
    const outcome =
      this.firstError !== undefined || this.cancel.signal.aborted
        ? 'failed'
        : this.stopRequest.signal.aborted
          ? 'stopped'
          : 'succeeded';
    try {
      await checkpoint.finish(outcome);
    } catch (err) {
      const wrapped = wrapError('finishing checkpoints', err);
      if (this.firstError === undefined) {
        this.firstError = wrapped;
        this.state = 'failed';
      } else this.log.warn(wrapped.message);
    }
  }

  /**
   * Without checkpoints: counts sinks (the dlq sink included) that handled barrier `id`; when
   * all have, tells the sources (`onBarrierComplete`) so they may commit the positions they had
   * when they emitted it. Skipped when an operator holds state, which only a checkpoint covers.
   * Calls are chained in barrier order; a rejection fails the run.
   */
  private sinkHandledBarrier(id: number): void {
    if (this.options.checkpoint !== undefined || !this.ackAllowed) return;
    const done = (this.barrierAcks.get(id) ?? 0) + 1;
    if (done < this.sinkCount) {
      this.barrierAcks.set(id, done);
      return;
    }
    this.barrierAcks.delete(id);
    this.ackChain = this.ackChain
      .then(async () => {
        if (this.cancel.signal.aborted) return;
        for (const node of this.graph.nodes.values()) {
          if (node.kind === 'source' && node.stage.onBarrierComplete !== undefined) {
            await node.stage.onBarrierComplete(id);
          }
        }
      })
      .catch((err: unknown) => this.fail(wrapError(`acknowledging barrier ${id}`, err)));
  }

  /** Sends the dead letters a stage collected during its last call. */
  private flushDead(id: string): Promise<void> {
    const pending = this.pendingDead.get(id);
    if (pending === undefined || pending.length === 0) return RESOLVED;
    const records = pending.splice(0, pending.length);
    const meta = (this.pendingDeadMeta.get(id) as RecordMeta[]).splice(0, records.length);
    const chans = this.outputs.get(id)?.get(DLQ_PORT) ?? [];
    return sendAll(chans, { kind: 'batch', records, meta }, this.cancel.signal);
  }

  private samplePeak(): void {
    let queued = 0;
    for (const ch of this.channels) queued += ch.queuedWeight;
    if (queued > this.peakQueued) this.peakQueued = queued;
  }

  private async runNode(node: GraphNode): Promise<void> {
    try {
      if (node.kind === 'source') {
        const ctx = this.contexts.get(node.id) as SourceContext;
        const out = this.emitterFor(node);
        const replay = this.replay.get(node.id);
        if (replay !== undefined) {
          // Batches from the write-ahead log go first, and are not logged again.
          this.replaying.add(node.id);
          for (const b of replay.splice(0)) await out.emit(b);
          this.replaying.delete(node.id);
        }
        await untilAborted(node.stage.run(out, ctx), this.cancel.signal);
        await this.flushDead(node.id);
        this.options.checkpoint?.sourceEnded(node.id, node.stage.position?.());
      } else {
        await this.consume(node);
      }
      this.closeOutputs(node.id);
    } catch (err) {
      if (!(isCancellation(err) && this.cancel.signal.aborted)) {
        (this.stageMetrics.get(node.id) as StageMetrics).errors++;
        this.fail(
          wrapError(`stage \`${node.id}\` (${node.component})`, err, {
            stage: node.id,
            component: node.component,
          }),
        );
      }
    }
  }

  private closeOutputs(id: string): void {
    for (const chans of (this.outputs.get(id) as Map<string, Channel<Message>[]>).values()) {
      for (const ch of chans) ch.close();
    }
  }

  /** The input loop of an operator or sink. */
  private async consume(node: Exclude<GraphNode, { kind: 'source' }>): Promise<void> {
    const inputs = this.inputs.get(node.id) as Channel<Message>[];
    const metrics = this.stageMetrics.get(node.id) as StageMetrics;
    const signal = this.cancel.signal;
    const isSink = node.kind === 'sink';
    const op = node.stage as Operator;
    const sink = node.stage as Sink;
    const out = this.emitterFor(node);
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

    const checkpoint = this.options.checkpoint;
    const deliverSignal = async (s: Signal): Promise<void> => {
      if (s.kind === 'barrier' && checkpoint !== undefined) {
        await this.deliverBarrier(node, s, out, checkpoint);
        return;
      }
      let r: void | Promise<void>;
      if (isSink) r = sink.onSignal?.(s);
      else if (op.onSignal) r = op.onSignal(s, out);
      else r = out.signal(s);
      if (r !== undefined) await untilAborted(r, signal);
      await this.flushDead(node.id);
      if (isSink && s.kind === 'barrier') {
        // Dead letters the sink wrote before the barrier are covered by it too.
        await out.signal(s);
        this.sinkHandledBarrier(s.id);
      }
    };
    const mergedWatermark = async (): Promise<void> => {
      let min = Number.POSITIVE_INFINITY;
      for (const m of marks) if (m < min) min = m;
      if (min > lastMark && min !== Number.POSITIVE_INFINITY) {
        lastMark = min;
        await deliverSignal(watermark(min));
      }
    };
    const releaseBarrierIfAligned = async (): Promise<void> => {
      if (pendingBarrier === undefined || heldCount < openCount) return;
      const b = pendingBarrier;
      pendingBarrier = undefined;
      heldCount = 0;
      held.fill(false);
      await deliverSignal(b);
    };

    while (openCount > 0) {
      // A due timer runs before more input, so a stage under steady load still gets its timers.
      if (!isSink && op.nextTimer !== undefined) {
        const due = op.nextTimer();
        if (due !== undefined && due <= this.clock.now()) {
          const r = op.onTimer?.(this.clock.now(), out);
          if (r !== undefined) await untilAborted(r, signal);
          await this.flushDead(node.id);
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
          if (openCount > 0) {
            await mergedWatermark();
            await releaseBarrierIfAligned();
          }
        } else if (item.kind === 'batch') {
          metrics.recordsIn += item.records.length;
          metrics.batchesIn++;
          const r = isSink ? sink.write(item) : op.process(item, out);
          if (r !== undefined) await untilAborted(r, signal);
          if (isSink) metrics.recordsOut += item.records.length;
          await this.flushDead(node.id);
        } else if (item.kind === 'watermark') {
          if (item.time > (marks[i] as number)) marks[i] = item.time;
          await mergedWatermark();
        } else if (n === 1) {
          await deliverSignal(item);
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
      if (deadline !== undefined && deadline <= this.clock.now()) continue;
      await this.waitForInput(inputs, open, held, deadline, signal);
    }
    if (isSink) {
      const r = sink.finish?.();
      if (r !== undefined) await untilAborted(r, signal);
      // Rows the destination rejected while committing the last of them.
      await this.flushDead(node.id);
    } else {
      const r = op.finish?.(out);
      if (r !== undefined) await untilAborted(r, signal);
      await this.flushDead(node.id);
    }
  }

  /**
   * Barrier `b` has arrived on every input of `node`. Operator: its `onSignal` handles (and
   * forwards) the barrier, then it snapshots; without `onSignal` it snapshots and the runtime
   * forwards. Sink: flushes in `onSignal`, then its `snapshot` and the acknowledgement go to
   * the coordinator.
   */
  private async deliverBarrier(
    node: Exclude<GraphNode, { kind: 'source' }>,
    b: Barrier,
    out: Emitter<unknown>,
    checkpoint: CheckpointDriver,
  ): Promise<void> {
    const signal = this.cancel.signal;
    if (node.kind === 'sink') {
      const sink = node.stage;
      const r = sink.onSignal?.(b);
      if (r !== undefined) await untilAborted(r, signal);
      let state: unknown;
      if (sink.snapshot !== undefined)
        state = await untilAborted(Promise.resolve(sink.snapshot(b.id)), signal);
      // Dead letters the sink produced while flushing belong to this checkpoint.
      await this.flushDead(node.id);
      checkpoint.sinkAcked(b.id, node.id, state);
      await out.signal(b);
      return;
    }
    const op = node.stage;
    if (op.onSignal !== undefined) {
      const r = op.onSignal(b, out);
      if (r !== undefined) await untilAborted(r, signal);
      if (op.snapshot !== undefined) checkpoint.operatorSnapshot(b.id, node.id, op.snapshot(b.id));
    } else {
      if (op.snapshot !== undefined) checkpoint.operatorSnapshot(b.id, node.id, op.snapshot(b.id));
      await out.signal(b);
    }
    await this.flushDead(node.id);
  }

  private async waitForInput(
    inputs: Channel<Message>[],
    open: boolean[],
    held: boolean[],
    deadline: number | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const waitable = inputs.filter((_, i) => open[i] && !held[i]);
    if (deadline === undefined && waitable.length === 1) {
      await (waitable[0] as Channel<Message>).readable(signal);
      return;
    }
    // Several waits race; abort the losers so no listener or timer is left behind.
    const local = new AbortController();
    const both = AbortSignal.any([signal, local.signal]);
    const waits: Promise<void>[] = waitable.map((ch) => ch.readable(both));
    if (deadline !== undefined) waits.push(this.clock.sleep(deadline - this.clock.now(), both));
    try {
      await Promise.race(waits);
    } finally {
      local.abort();
      for (const w of waits) w.catch(() => {});
    }
  }

  private fail(err: unknown): void {
    if (this.firstError === undefined) {
      this.firstError = err;
      if (this.state !== 'cancelled') this.state = 'failed';
    }
    this.abort(err, this.state === 'cancelled' ? 'cancelled' : 'failed');
  }

  private abort(reason: unknown, state: 'failed' | 'cancelled'): void {
    if (this.cancel.signal.aborted) return;
    if (this.state !== 'failed' && this.state !== 'succeeded') this.state = state;
    this.cancel.abort(reason);
    for (const ch of this.channels) ch.cancel(reason);
  }

  private async closeAll(nodes: GraphNode[]): Promise<void> {
    for (const node of nodes) {
      try {
        await node.stage.close?.();
      } catch (err) {
        const wrapped = wrapError(`closing stage \`${node.id}\``, err, { stage: node.id });
        if (this.firstError === undefined) {
          this.firstError = wrapped;
          this.state = 'failed';
        } else this.log.warn(wrapped.message);
      }
    }
  }

  private recordsRead(): number {
    let read = 0;
    for (const m of this.stageMetrics.values()) if (m.kind === 'source') read += m.recordsOut;
    return read;
  }

  private snapshot(): MetricsSnapshot {
    const stages: StageSnapshot[] = [];
    let written = 0;
    let queuedRecords = 0;
    let droppedRecords = 0;
    for (const [id, m] of this.stageMetrics) {
      const ins = this.inputs.get(id) ?? [];
      const outs = [...(this.outputs.get(id)?.values() ?? [])].flat();
      let queued = 0;
      let capacity = 0;
      let qRecords = 0;
      let dropped = 0;
      for (const ch of ins) {
        queued += ch.size;
        capacity += ch.capacity;
        qRecords += ch.queuedWeight;
        dropped += ch.droppedWeight;
      }
      queuedRecords += qRecords;
      droppedRecords += dropped;
      if (m.kind === 'sink' && id !== this.graph.dlqNode) written += m.recordsOut;
      stages.push({
        name: id,
        kind: m.kind,
        component: m.component,
        recordsIn: m.recordsIn,
        recordsOut: m.recordsOut,
        batchesIn: m.batchesIn,
        batchesOut: m.batchesOut,
        deadLetters: m.deadLetters,
        errors: m.errors,
        blockedMs: outs.reduce((s, ch) => s + ch.blockedMs, 0),
        queued,
        queueCapacity: capacity,
        queuedRecords: qRecords,
        droppedRecords: dropped,
        ...customMetrics(this.graph.nodes.get(id) as GraphNode),
      });
    }
    let progress: MetricsSnapshot['progress'];
    for (const node of this.graph.nodes.values()) {
      if (node.kind === 'source' && node.stage.progress) {
        progress = node.stage.progress();
        break;
      }
    }
    return {
      pipeline: this.graph.name,
      state: this.state,
      elapsedMs: performance.now() - this.startedAt,
      recordsRead: this.recordsRead(),
      recordsWritten: written,
      deadLetters: this.deadTotal,
      droppedRecords,
      queuedRecords,
      peakQueuedRecords: this.peakQueued,
      progress,
      stages,
    };
  }
}
