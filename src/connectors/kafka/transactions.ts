/**
 * The exactly-once `kafka` sink's two-phase commit (`exactlyOnce: true`), one transaction per
 * checkpoint, as Flink's Kafka sink does (the protocol helpers are in `txn.ts`):
 *
 * 1. Records go into one open transaction, begun by the first send after a commit.
 * 2. At checkpoint barrier n ({@link SinkTransactions.prepare}) the sink has flushed what it
 *    holds; the `kafka` sources' positions of checkpoint n go into the transaction as their
 *    groups' offsets, tagged `sluice-eos:<job>:<n>`: the transaction is *prepared*, and the
 *    checkpoint stores its producer id and epoch ({@link SinkTransactions.snapshot}).
 * 3. {@link SinkTransactions.commitCheckpoint}`(n)`, once checkpoint n is stored, commits it.
 *    Writes after the barrier wait for that ({@link SinkTransactions.awaitPrepared}), at most
 *    `transactionTimeout`.
 * 4. The end of input ({@link SinkTransactions.finish}) commits the rest with the sources' final
 *    offsets, tagged n + 1.
 *
 * A restart from checkpoint n ({@link SinkTransactions.restore}) commits transaction n if the
 * process died between storing and committing it (the groups' offsets tell), and the new
 * producer's `InitProducerId` aborts anything else left open and fences the old process. A failed
 * or cancelled run aborts an open transaction at close, but leaves a prepared one to the restart.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Position } from '../../core/message.ts';
import { DONE_SUFFIX, partitionName } from '../../core/partitions.ts';
import type { CommittedPositions, StageContext } from '../../core/stage.ts';
import { rootMessage } from './connection.ts';
import type { OutMessage } from './encode.ts';
import { readCommitted } from './group.ts';
import type { KafkaProducer } from './producer.ts';
import {
  claimOffsetCommits,
  commitPreparedTransaction,
  decodeTxnMetadata,
  type KafkaTransaction,
  kafkaSourcesOf,
  offsetsOfPosition,
  sendOffsetsToTransaction,
} from './txn.ts';

/** What the exactly-once `kafka` sink keeps in a checkpoint: the transaction it prepared at the barrier. */
interface KafkaSinkState {
  readonly checkpointId: number;
  /** The job, as in the offset metadata. */
  readonly run: string;
  readonly transactionalId: string;
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number | undefined;
}

/**
 * The transactions of one exactly-once `kafka` sink; see the module comment. Made in the sink's
 * `open` (which {@link SinkTransactions.check}s the run first), with the producer once connected.
 */
export class SinkTransactions {
  /** Transactions committed (a metric). */
  committed = 0;
  readonly transactionalId: string;
  private producer: KafkaProducer | undefined;
  /** The open transaction, begun by the first send after a commit. */
  private txn: KafkaTransaction | undefined;
  /** The open transaction has records or offsets (an empty one is not sent to the broker). */
  private used = false;
  /** The last checkpoint id prepared (the end of input commits as the next one). */
  private lastCheckpoint = 0;
  /** Names this job in the offset metadata; kept in the checkpoints. */
  private run = randomUUID().slice(0, 8);
  /** The transaction of a checkpoint barrier, waiting for the checkpoint to be stored. */
  private prepared: { id: number; committed: Promise<void>; settle: () => void } | undefined;
  /** A failed commit of a prepared transaction, thrown by the next call. */
  private commitError: unknown;
  private readonly ctx: StageContext;
  private readonly topic: string;
  private readonly timeoutMs: number;

  constructor(ctx: StageContext, topic: string, transactionalId: string, timeoutMs: number) {
    this.ctx = ctx;
    this.topic = topic;
    this.transactionalId = transactionalId;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Refuses a run the sink cannot be exactly-once in: no checkpoints, or another exactly-once
   * `kafka` sink already committing the sources' offsets (`SLUICE_CONFIG` errors). Claims the
   * offset commits of the run's `kafka` sources otherwise.
   */
  static check(ctx: StageContext, topic: string): void {
    if (!ctx.checkpointing) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`exactlyOnce\` on the kafka sink \`${ctx.name}\` (topic \`${topic}\`) commits one transaction per checkpoint: add \`checkpoint: { interval: 10s }\` to the pipeline, or set \`exactlyOnce: false\``,
        { topic },
      );
    }
    const other = claimOffsetCommits(ctx);
    if (other !== undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `two kafka sinks with \`exactlyOnce\` (\`${other}\` and \`${ctx.name}\`) would both commit the sources' offsets; keep \`exactlyOnce\` on one of them`,
        { topic },
      );
    }
  }

  /** The connected transactional producer. */
  connected(producer: KafkaProducer): void {
    this.producer = producer;
  }

  /** Sends one request of messages inside the open transaction (beginning one if needed). */
  async send(chunk: OutMessage[]): Promise<void> {
    this.used = true;
    await (await this.open()).send({ messages: chunk });
  }

  /**
   * Waits until the prepared transaction is committed (its checkpoint stored), at most
   * `transactionTimeout`; throws when its commit failed or it never came (a checkpoint that
   * could not be stored leaves it open, and the broker aborts it after the timeout anyway).
   */
  async awaitPrepared(): Promise<void> {
    const p = this.prepared;
    if (p !== undefined) {
      const local = new AbortController();
      const timedOut = this.ctx.clock
        .sleep(this.timeoutMs, AbortSignal.any([this.ctx.signal, local.signal]))
        .then(
          () => true,
          () => false,
        );
      const late = await Promise.race([p.committed.then(() => false), timedOut]);
      local.abort();
      if (late) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the transaction of checkpoint ${p.id} on topic \`${this.topic}\` (transactional id \`${this.transactionalId}\`) was not committed within \`transactionTimeout\` (${this.timeoutMs} ms): checkpoint ${p.id} was not stored; a restart resumes from the last stored checkpoint`,
          { topic: this.topic },
        );
      }
    }
    if (this.commitError !== undefined) {
      const err = this.commitError;
      this.commitError = undefined;
      throw err;
    }
  }

  /** At checkpoint barrier `id`, after the flush: adds the sources' offsets; the transaction is prepared. */
  async prepare(id: number): Promise<void> {
    await this.addOffsets(id, this.ctx.checkpointPositions?.(id) ?? {});
    let settle = () => {};
    const committed = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.prepared = { id, committed, settle };
  }

  /** The checkpoint state: the prepared transaction's producer id and epoch, if it reached the broker. */
  snapshot(checkpointId: number): KafkaSinkState {
    const p = this.producer as KafkaProducer;
    return {
      checkpointId,
      run: this.run,
      transactionalId: this.transactionalId,
      producerId: this.used ? p.producerId : undefined,
      producerEpoch: this.used ? p.producerEpoch : undefined,
    };
  }

  /** Resumes from a checkpoint's state; commits its transaction if the previous run could not. */
  async restore(state: unknown): Promise<void> {
    const { ctx, topic } = this;
    const s = state as Partial<KafkaSinkState>;
    if (typeof s.checkpointId !== 'number' || typeof s.run !== 'string') {
      throw new SluiceError(
        ErrorCode.STAGE,
        `the checkpoint's state of the kafka sink \`${ctx.name}\` (topic \`${topic}\`) is damaged; delete the checkpoint folder to resume from the group's committed offsets`,
        { topic },
      );
    }
    this.run = s.run;
    this.lastCheckpoint = Math.max(this.lastCheckpoint, s.checkpointId);
    // The checkpoint's transaction was prepared at its barrier; it is committed unless the
    // process died after storing the checkpoint and before committing it: commit it now.
    const held = await this.heldPositions();
    if ((held?.checkpointId ?? 0) >= s.checkpointId) return;
    if (typeof s.producerId !== 'bigint' || typeof s.producerEpoch !== 'number') return;
    try {
      await commitPreparedTransaction(
        this.producer as KafkaProducer,
        s.transactionalId ?? this.transactionalId,
        s.producerId,
        s.producerEpoch,
        ctx,
      );
    } catch (err) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `the transaction of checkpoint ${s.checkpointId} on topic \`${topic}\` (transactional id \`${s.transactionalId}\`) could not be committed after the restart (${rootMessage(err)}): the broker aborted it (down longer than \`transactionTimeout\`?), so its records are not in the output. Delete the checkpoint folder to resume from the group's committed offsets, which match the output`,
        { topic },
        { cause: err },
      );
    }
    ctx.log.warn(
      `Committed the transaction of checkpoint \`${s.checkpointId}\` that the previous run left prepared (topic \`${topic}\`)`,
      { stage: ctx.name },
    );
  }

  /** Checkpoint `checkpointId` is stored: commits the transaction prepared for it (or an older one). */
  async commitCheckpoint(checkpointId: number): Promise<void> {
    const p = this.prepared;
    if (p === undefined || p.id > checkpointId) return;
    try {
      await this.commitOpen(`checkpoint ${p.id}`);
    } catch (err) {
      this.commitError = err;
      throw err;
    } finally {
      this.prepared = undefined;
      p.settle();
    }
  }

  /** The positions Kafka holds for the run's sources, and the checkpoint that wrote them. */
  async committedPositions(): Promise<CommittedPositions | undefined> {
    const held = await this.heldPositions();
    if (held !== undefined) this.lastCheckpoint = Math.max(this.lastCheckpoint, held.checkpointId);
    return held;
  }

  /** The end of input, after the flush: commits the rest with the sources' final offsets. */
  async finish(): Promise<void> {
    // Tagged as one checkpoint past the last, so a restart before the checkpoints are deleted resumes here.
    const positions: Record<string, Position | undefined> = {};
    for (const source of kafkaSourcesOf(this.ctx)) positions[source.stage] = source.position();
    await this.addOffsets(this.lastCheckpoint + 1, positions);
    await this.commitOpen('the end of input');
  }

  /**
   * A failed or cancelled run: aborts the open transaction, so read_committed consumers need not
   * wait for the timeout — unless it is prepared: its checkpoint may be stored, and then the
   * restart commits it.
   */
  async close(): Promise<void> {
    if (this.prepared === undefined) await this.abortOpen();
  }

  private async open(): Promise<KafkaTransaction> {
    if (this.txn === undefined) {
      try {
        this.txn = await (this.producer as KafkaProducer).beginTransaction();
      } catch (err) {
        throw wrapError(
          `beginning a transaction (transactional id \`${this.transactionalId}\`) on topic \`${this.topic}\``,
          new Error(rootMessage(err), { cause: err }),
          { topic: this.topic },
        );
      }
    }
    return this.txn;
  }

  /**
   * Adds the `kafka` sources' offsets at `positions` (by source stage) to the open transaction,
   * tagged with this job and `checkpointId`. On failure the transaction is aborted and the error
   * thrown.
   */
  private async addOffsets(
    checkpointId: number,
    positions: Readonly<Record<string, Position | undefined>>,
  ): Promise<void> {
    const p = this.producer as KafkaProducer;
    try {
      const t = await this.open();
      for (const source of kafkaSourcesOf(this.ctx)) {
        const pos = positions[source.stage];
        const offsets = (pos === undefined ? [] : offsetsOfPosition(pos, this.run, checkpointId)).filter(
          (o) => source.owns(partitionName(o.topic, o.partition)),
        );
        if (offsets.length === 0) continue;
        this.used = true;
        await sendOffsetsToTransaction(p, t, source, offsets, this.ctx);
      }
      this.lastCheckpoint = checkpointId;
    } catch (err) {
      await this.abortOpen();
      throw wrapError(
        `adding the consumed offsets of checkpoint ${checkpointId} to the transaction (transactional id \`${this.transactionalId}\`) on topic \`${this.topic}\`; it was aborted, and a restart resumes from the last committed checkpoint`,
        new Error(rootMessage(err), { cause: err }),
        { topic: this.topic },
      );
    }
  }

  private async abortOpen(): Promise<void> {
    const open = this.txn;
    const used = this.used;
    this.txn = undefined;
    this.used = false;
    await (used ? open?.abort() : open?.cancel())?.catch(() => {});
  }

  /** Commits the open transaction (`EndTxn`). */
  private async commitOpen(what: string): Promise<void> {
    const t = this.txn;
    if (t === undefined) return;
    try {
      if (this.used) {
        await t.commit();
        this.committed++;
      } else await t.cancel();
      this.txn = undefined;
      this.used = false;
    } catch (err) {
      await this.abortOpen();
      throw wrapError(
        `committing the transaction of ${what} (transactional id \`${this.transactionalId}\`) on topic \`${this.topic}\`; it was aborted, and a restart resumes from the last committed checkpoint`,
        new Error(rootMessage(err), { cause: err }),
        { topic: this.topic },
      );
    }
  }

  /** The positions Kafka holds for the run's sources (offsets this job committed), and the checkpoint that wrote them. */
  private async heldPositions(): Promise<CommittedPositions | undefined> {
    const { ctx, topic } = this;
    const sources = kafkaSourcesOf(ctx);
    if (sources.length === 0) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`exactlyOnce\` on the kafka sink \`${ctx.name}\` (topic \`${topic}\`) commits the consumed offsets of a \`kafka\` source in its transactions, but the pipeline has no \`kafka\` input; read from Kafka, or set \`exactlyOnce: false\``,
        { topic },
      );
    }
    let checkpointId = 0;
    const out: Record<string, Position | undefined> = {};
    for (const source of sources) {
      const committed = await readCommitted(source.connection, source.clientId, source.group, source.topics);
      const pos: Record<string, number | string> = {};
      for (const [key, c] of committed) {
        const meta = decodeTxnMetadata(c.metadata);
        if (meta === undefined || meta.run !== this.run) continue;
        checkpointId = Math.max(checkpointId, meta.checkpointId);
        pos[key] = c.offset;
        if (meta.done !== undefined) pos[`${key}${DONE_SUFFIX}`] = meta.done;
      }
      if (Object.keys(pos).length > 0) out[source.stage] = pos;
    }
    return checkpointId === 0 ? undefined : { checkpointId, sources: out };
  }
}
