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
 *
 * A little over 700 lines because the `Run` class's stage loop, barrier alignment and dead-letter
 * flushing share its private maps; the parts that stand alone already live beside it
 * (`run-types.ts`, `dead-letter-sample.ts`, `whole-letters.ts`, `dlq-sink.ts`). The next split
 * is the dead-letter collection (`flushDead`/`sendDead` and the `dead` map) into its own module.
 */

import { Channel } from './channel.ts';
import type { CheckpointDriver } from './checkpointing.ts';
import { type Clock, systemClock } from './clock.ts';
import { DEAD_LETTER_SAMPLE_SIZE, sampleLetter } from './dead-letter-sample.ts';
import { StageDeadLetters } from './dead-letters.ts';
import { DlqSinkGuard } from './dlq-sink.ts';
import { cancelledError, ErrorCode, errorMessage, isCancellation, SluiceError, wrapError } from './errors.ts';
import { DLQ_PORT, type Graph, type GraphNode, MAIN_PORT } from './graph.ts';
import { consumeInputs } from './input-loop.ts';
import { LoopTurns, nextTurn } from './loop-turns.ts';
import type { Batch, Message, RecordMeta, Signal } from './message.ts';
import { barrier, isBatchMessage, weighMessage } from './message.ts';
import { type MetricsSnapshot, type RunState, type SourceLag, StageMetrics } from './metrics.ts';
import {
  BarrierAcks,
  deliverAlignedBarrier,
  restoreCheckpoint,
  type SourceTurn,
  sendIdleBarriers,
} from './run-checkpoint.ts';
import { recordsTaken, runSnapshot } from './run-snapshot.ts';
import type { RunHandle, RunOptions, RunSummary } from './run-types.ts';
import { redactSecrets } from './secrets.ts';
import { RESOLVED, sendAll, untilAborted } from './sending.ts';
import {
  type DeadLetter,
  type Emitter,
  type Logger,
  runScope,
  type Source,
  type SourceContext,
  type StageContext,
} from './stage.ts';
import { stateBudgetOf } from './state-budget.ts';
import { WholeLetters } from './whole-letters.ts';

export { DEAD_LETTER_SAMPLE_SIZE } from './dead-letter-sample.ts';
export type { RunHandle, RunOptions, RunSummary, RunTopology } from './run-types.ts';

const stderrLogger: Logger = {
  info: () => {},
  warn: (msg, fields) =>
    process.stderr.write(redactSecrets(`WARN ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`)),
  error: (msg, fields) =>
    process.stderr.write(redactSecrets(`ERROR ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`)),
};

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
  /** Per stage, the name of each of its inputs (`GraphEdge.input`), by the index in `inputs`. */
  private readonly inputNames = new Map<string, (string | undefined)[]>();
  private readonly outputs = new Map<string, Map<string, Channel<Message>[]>>();
  private readonly channels: Channel<Message>[] = [];
  /** Each channel with the edge it serves, for metrics. */
  private readonly edgeChannels: { from: string; port: string; to: string; ch: Channel<Message> }[] = [];
  /** The latest dead letters, newest last (see `RunHandle.deadLetterSample`). */
  private recentDead: DeadLetter[] = [];
  private readonly stageMetrics = new Map<string, StageMetrics>();
  /** Each stage's dead letters, collected during a call and sent after it. */
  private readonly dead = new Map<string, StageDeadLetters>();
  /** Writes what the dlq sink rejects again, reduced (see `dlq-sink.ts`); absent without a dlq. */
  private dlqGuard: DlqSinkGuard | undefined;
  /** Rebuilds the records of letters from projected sources (see `whole-letters.ts`); undefined without a dlq. */
  private wholeLetters: WholeLetters | undefined;
  /**
   * Each stage's one context, made before it opens: `open` and a source's `run` get the same
   * one, so dead letters sent through either reach the collection that is flushed.
   */
  private readonly contexts = new Map<string, StageContext | SourceContext>();
  /** Per source: batches from the write-ahead log to send before its `run`. */
  private replay = new Map<string, Batch<unknown>[]>();
  private readonly replaying = new Set<string>();
  private state: RunState = 'starting';
  private firstError: unknown;
  private readonly startedAt: number;
  private peakQueued = 0;
  private deadTotal = 0;
  /** Sinks that handled each barrier (only without checkpoints; see `sinkHandledBarrier`). */
  private barrierAcks: BarrierAcks | undefined;
  private ackChain: Promise<void> = RESOLVED;
  /** The two-phase end: sinks with `prepare` still to prepare, and who waits for them. */
  private preparing = 0;
  private readonly allPrepared = Promise.withResolvers<void>();
  /** Checkpointing: per source, whether it is inside `emit`, a barrier sent while it idles, its end. */
  private readonly sourceTurns = new Map<string, SourceTurn>();
  private readonly loopTurns = new LoopTurns();
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
      topology: () => ({
        pipeline: this.graph.name,
        stages: [...this.graph.nodes.values()].map((n) => ({
          name: n.id,
          kind: n.kind,
          component: n.component,
        })),
        edges: this.edgeChannels.map(({ from, port, to }) => ({ from, port, to })),
        dlq: this.graph.dlqNode,
      }),
      lag: () => this.sourceLag(),
      deadLetterSample: () => this.recentDead.map(sampleLetter),
    };
  }

  private async execute(): Promise<RunSummary> {
    const graph = this.graph;
    graph.validate();
    stateBudgetOf({ runScoped: this.runScoped }, this.options.maxStateBytes);
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
      const checkpoint = this.options.checkpoint;
      if (checkpoint !== undefined) this.replay = await restoreCheckpoint(graph, checkpoint, this.log);
      if (this.state === 'starting') this.state = 'running';
      const tasks = order.map((id) => this.runNode(graph.nodes.get(id) as GraphNode));
      const timer = new AbortController();
      const idle = checkpoint === undefined ? RESOLVED : this.idleBarriers(checkpoint, timer.signal);
      await Promise.allSettled(tasks);
      timer.abort();
      await idle;
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
    // Without checkpoints a barrier may be acknowledged upstream only if nothing it covers can
    // be lost in a crash: no operator state, and every sink durable at the barrier.
    const ackAllowed =
      !nodes.some((n) => n.kind === 'operator' && n.stage.snapshot !== undefined) &&
      nodes.every((n) => n.kind !== 'sink' || n.stage.durableOnBarrier === true);
    if (this.options.checkpoint === undefined && ackAllowed)
      this.barrierAcks = new BarrierAcks(nodes.filter((n) => n.kind === 'sink').length);
    this.preparing = nodes.filter((n) => n.kind === 'sink' && n.stage.prepare !== undefined).length;
    const edges = [...this.graph.edges];
    const dlq = this.graph.dlqNode;
    if (dlq !== undefined) {
      this.wholeLetters = WholeLetters.of(
        nodes.filter((n) => n.kind === 'source').map((n) => [n.id, n.stage] as const),
      );
      for (const node of this.graph.nodes.values()) {
        if (node.id !== dlq) edges.push({ from: node.id, port: DLQ_PORT, to: dlq });
      }
    }
    for (const node of this.graph.nodes.values()) {
      this.inputs.set(node.id, []);
      this.inputNames.set(node.id, []);
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
      this.edgeChannels.push({ from: edge.from, port: edge.port, to: edge.to, ch });
      this.inputs.get(edge.to)?.push(ch);
      this.inputNames.get(edge.to)?.push(edge.input);
      const ports = this.outputs.get(edge.from) as Map<string, Channel<Message>[]>;
      const list = ports.get(edge.port) ?? [];
      list.push(ch);
      ports.set(edge.port, list);
    }
  }

  private contextFor(node: GraphNode): StageContext | SourceContext {
    const metrics = this.stageMetrics.get(node.id) as StageMetrics;
    const hasDlq = (this.outputs.get(node.id)?.get(DLQ_PORT)?.length ?? 0) > 0;
    const dead = new StageDeadLetters(node.id, hasDlq, this.clock, (message, code) => {
      metrics.deadLetters++;
      metrics.deadLettersByCode.set(code, (metrics.deadLettersByCode.get(code) ?? 0) + 1);
      this.deadTotal++;
      this.checkErrorRate(message);
    });
    this.dead.set(node.id, dead);
    let deadLetter = (record: unknown, error: unknown, meta?: RecordMeta) => {
      dead.add(record, error, meta);
      if (meta !== undefined && meta.source !== node.id) this.tellSource(meta, error);
    };
    if (node.id === this.graph.dlqNode && node.kind === 'sink') {
      // The dlq has no dlq: what it rejects is written to it again, reduced.
      const guard = new DlqSinkGuard(node.stage, node.id, this.log, () => this.clock.now());
      this.dlqGuard = guard;
      deadLetter = (record, error, meta) => guard.reject(record, error, meta);
    }
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
      ...(node.kind === 'source' && this.options.checkpoint?.requestCheckpoint !== undefined
        ? { checkpointNow: (signal: AbortSignal) => this.checkpointNow(node, signal) }
        : {}),
      clock: this.clock,
      log: this.log,
      runScoped: this.runScoped,
      deadLetter,
    };
  }

  /** Tells the source a dead-lettered record came from that it failed (`Source.recordFailed`). */
  private tellSource(meta: RecordMeta, error: unknown): void {
    const node = this.graph.nodes.get(meta.source);
    if (node?.kind !== 'source' || node.stage.recordFailed === undefined) return;
    try {
      node.stage.recordFailed(meta, error);
    } catch (err) {
      this.log.warn(`Source \`${node.id}\` failed to take note of a failed record: ${errorMessage(err)}`, {
        stage: node.id,
      });
    }
  }

  private checkErrorRate(lastMessage: string): void {
    const max = this.options.maxErrorRate;
    if (max === undefined) return;
    const read = recordsTaken(this.stageMetrics, this.graph.nodes);
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
    const dead = this.dead.get(node.id) as StageDeadLetters;
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
          const turn = this.turnOf(node.id);
          turn.emitting = true;
          const go = () =>
            this.emitFromSource(node.id, node.stage, checkpoint, emitter, chans, batch, send).finally(() => {
              turn.emitting = false;
            });
          // A barrier sent while the source was idle goes out first.
          return turn.idleBarrier === undefined ? go() : turn.idleBarrier.then(go);
        }
        const sent = send(chans, batch);
        if (node.kind === 'source' && dead.pending) return sent.then(() => this.flushDead(node.id));
        return sent;
      },
      signal: (s: Signal): Promise<void> => {
        if (s.kind === 'watermark') metrics.watermark = s.time;
        // A source's dead letters go out before its barrier: the barrier's position covers them
        // (a source that commits at the barrier must not commit a letter the dlq never got).
        if (node.kind === 'source' && s.kind === 'barrier' && dead.pending) {
          return this.flushDead(node.id).then(() => sendSignal(s));
        }
        return sendSignal(s);
      },
    };
    return node.kind === 'source' ? this.withLoopTurns(emitter) : emitter;
  }

  /** A source's emitter that, once a batch is out, gives the event loop a turn when due (loop-turns.ts). */
  private withLoopTurns(emitter: Emitter<unknown>): Emitter<unknown> {
    return {
      emit: (batch, port) => {
        const sent = emitter.emit(batch, port);
        return this.loopTurns.due() ? sent.then(nextTurn) : sent;
      },
      signal: (s) => emitter.signal(s),
    };
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

  /** See `StageContext.checkpointNow`. */
  private async checkpointNow(
    node: Extract<GraphNode, { kind: 'source' }>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const checkpoint = this.options.checkpoint;
    if (checkpoint?.requestCheckpoint === undefined || checkpoint.whenCommitted === undefined) return false;
    const stop = AbortSignal.any([signal, this.cancel.signal]);
    // A checkpoint in flight that this source already sent its barrier for must be stored first.
    while (!stop.aborted) {
      checkpoint.requestCheckpoint();
      const due = checkpoint.barrierDue(node.id, 0);
      if (due !== undefined) {
        checkpoint.sourceBarrier(due, node.id, node.stage.position?.());
        await this.emitterFor(node).signal(barrier(due));
        const aborted = new Promise<boolean>((resolve) => {
          if (stop.aborted) resolve(false);
          stop.addEventListener('abort', () => resolve(false), { once: true });
        });
        return Promise.race([checkpoint.whenCommitted(due), aborted]);
      }
      await this.clock.sleep(50, stop).catch(() => {});
    }
    return false;
  }

  private turnOf(id: string): SourceTurn {
    let turn = this.sourceTurns.get(id);
    if (turn === undefined) {
      turn = { emitting: false, idleBarrier: undefined, ended: false };
      this.sourceTurns.set(id, turn);
    }
    return turn;
  }

  /** The coordinator's timer path for idle sources; see {@link sendIdleBarriers}. */
  private idleBarriers(checkpoint: CheckpointDriver, stop: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([stop, this.cancel.signal]);
    return sendIdleBarriers(this.graph, checkpoint, {
      clock: this.clock,
      signal,
      emitterFor: (node) => this.emitterFor(node),
      turnOf: (id) => this.turnOf(id),
      replaying: (id) => this.replaying.has(id),
    }).catch((err: unknown) => {
      if (!signal.aborted) this.fail(wrapError('sending a checkpoint barrier for an idle source', err));
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
    if (this.barrierAcks === undefined || !this.barrierAcks.handled(id)) return;
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

  /**
   * Sink `id` prepared (see `Sink.prepare`): its output to the dlq ends (so the dlq sink's input
   * can end and it can prepare too); resolves once every preparing sink has, or rejects when the
   * run is cancelled or failed first — then no sink publishes.
   */
  private sinkPrepared(id: string): Promise<void> {
    this.closeOutputs(id);
    if (--this.preparing === 0) this.allPrepared.resolve();
    return untilAborted(this.allPrepared.promise, this.cancel.signal);
  }

  /**
   * Sends the dead letters a stage collected during its last call; for the dlq sink, writes
   * the letters it rejected again, reduced.
   */
  private flushDead(id: string): Promise<void> {
    if (id === this.graph.dlqNode && this.dlqGuard !== undefined) return this.dlqGuard.retry();
    const batch = this.dead.get(id)?.take();
    if (batch === undefined) return RESOLVED;
    const whole = this.wholeLetters;
    if (whole?.concerns(batch) === true) return whole.restore(batch).then((b) => this.sendDead(id, b));
    return this.sendDead(id, batch);
  }

  /** Samples `batch`'s letters and sends them to the dlq. */
  private sendDead(id: string, batch: Batch<DeadLetter>): Promise<void> {
    // Sampled per batch: the last few letters are kept by reference, redacted when read.
    const letters = batch.records as DeadLetter[];
    this.recentDead = [...this.recentDead, ...letters.slice(-DEAD_LETTER_SAMPLE_SIZE)].slice(
      -DEAD_LETTER_SAMPLE_SIZE,
    );
    const chans = this.outputs.get(id)?.get(DLQ_PORT) ?? [];
    return sendAll(chans, batch, this.cancel.signal);
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
        const turn = this.turnOf(node.id);
        turn.ended = true;
        // A barrier sent while the source idled is out before its end is.
        await turn.idleBarrier;
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

  /** The input loop of an operator or sink (`input-loop.ts`), with the run's signal delivery. */
  private consume(node: Exclude<GraphNode, { kind: 'source' }>): Promise<void> {
    const signal = this.cancel.signal;
    const out = this.emitterFor(node);
    const checkpoint = this.options.checkpoint;
    const afterCall = () => this.flushDead(node.id);
    const flushLatency = (this.stageMetrics.get(node.id) as StageMetrics).flushLatency;
    const deliverSignal = async (s: Signal): Promise<void> => {
      if (node.kind !== 'sink' || s.kind !== 'barrier') return deliverOne(s);
      const began = performance.now();
      await deliverOne(s);
      flushLatency.observe(performance.now() - began);
    };
    const deliverOne = async (s: Signal): Promise<void> => {
      if (s.kind === 'barrier' && checkpoint !== undefined) {
        await deliverAlignedBarrier(node, s, { out, checkpoint, signal, afterCall });
        return;
      }
      let r: void | Promise<void>;
      if (node.kind === 'sink') r = node.stage.onSignal?.(s);
      else if (node.stage.onSignal) r = node.stage.onSignal(s, out);
      else r = out.signal(s);
      if (r !== undefined) await untilAborted(r, signal);
      await this.flushDead(node.id);
      if (node.kind === 'sink' && s.kind === 'barrier') {
        // Dead letters the sink wrote before the barrier are covered by it too.
        await out.signal(s);
        this.sinkHandledBarrier(s.id);
      }
    };
    const guard = node.id === this.graph.dlqNode ? this.dlqGuard : undefined;
    return consumeInputs(node, {
      prepared: () => this.sinkPrepared(node.id),
      write: guard === undefined ? undefined : (batch) => guard.write(batch),
      inputs: this.inputs.get(node.id) as Channel<Message>[],
      inputNames: this.inputNames.get(node.id),
      metrics: this.stageMetrics.get(node.id) as StageMetrics,
      out,
      clock: this.clock,
      signal,
      deliverSignal,
      afterCall,
    });
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

  private snapshot(): MetricsSnapshot {
    return runSnapshot({
      graph: this.graph,
      state: this.state,
      elapsedMs: performance.now() - this.startedAt,
      stageMetrics: this.stageMetrics,
      inputs: this.inputs,
      outputs: this.outputs,
      deadLetters: this.deadTotal,
      peakQueuedRecords: this.peakQueued,
      channels: this.edgeChannels,
      checkpoint: this.options.checkpoint?.stats,
      now: this.clock.now(),
    });
  }

  /** See `RunHandle.lag`: asks every source with a `lag` hook; one that fails is left out. */
  private async sourceLag(): Promise<Record<string, SourceLag>> {
    const out: Record<string, SourceLag> = {};
    await Promise.all(
      [...this.graph.nodes.values()].map(async (node) => {
        if (node.kind !== 'source' || node.stage.lag === undefined) return;
        try {
          const lag = await node.stage.lag();
          if (lag !== undefined) out[node.id] = lag;
        } catch {
          // Lag is advisory: a broker that does not answer now leaves it out of this read.
        }
      }),
    );
    return out;
  }
}
