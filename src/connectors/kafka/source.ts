/**
 * The `kafka` source: a consumer-group member that reads one or more topics with
 * `@platformatic/kafka`, decodes each message value (`json`, `text` or `raw` bytes) and emits
 * batches whose `meta` carries the message's origin: `position` = `{ topic, partition, offset }`,
 * `key`, `timestamp` (the Kafka timestamp, epoch ms) and `headers`.
 *
 * Over 700 lines because the read loop's states (fill, revoke, idle, stop) share its local
 * variables; the roles that stand alone live in their own files. Split by role; this file is the
 * read loop and wires the others:
 * - `consumer.ts` — the group member and its stream: join, start offsets, reconnect, waiting.
 * - `assignment.ts` — the partitions owned, one offset tracker each (`offsets.ts`), rebalances,
 *   and the source's `position()`: per partition the tracker's low watermark
 *   (`{ 'topic:0': 42 }`) plus, when records finished out of order, the done records beyond it
 *   (`'topic:0#done'`), the partitioned-position contract of `core/partitions.ts`.
 * - `committer.ts` — the one place that decides which offsets reach the group, and when.
 * - `parallel.ts` — in-partition parallel processing (`parallel`).
 * - `records.ts` — message → record and dead letter.
 *
 * Delivery is at-least-once, and exactly-once into state and sinks under checkpoints: offsets
 * are never committed before the records they cover have reached every sink (`committer.ts`).
 * Records the group re-delivers after a rejoin (the client rewinds every partition to the
 * committed offset) are recognised by offset and skipped. A message whose value is not valid
 * JSON (`format: json`) goes to the `dlq` output with its original bytes and its position; the
 * partition keeps flowing. A broker that cannot be reached at start or mid-run is waited for with
 * backoff, one warning per try.
 */
import {
  cancelledError,
  ErrorCode,
  errorMessage,
  isCancellation,
  SluiceError,
  wrapError,
} from '../../core/errors.ts';
import { INPUT_PARTITIONS, InputPartitions, inputPartitionKey } from '../../core/input-partitions.ts';
import { barrier, type RecordMeta } from '../../core/message.ts';
import { splitPartitionName } from '../../core/partitions.ts';
import type { ProjectableSource } from '../../core/projection.ts';
import type { SourceContext } from '../../core/stage.ts';
import { Assignment } from './assignment.ts';
import { OffsetCommitter } from './committer.ts';
import { isConnectionError } from './connection.ts';
import { GroupConsumer } from './consumer.ts';
import { readCommitted } from './group.ts';
import { kafkaLag } from './lag.ts';
import { decodeDone, parsePosition } from './offsets.ts';
import { OwnUnreadWait, unreadOwned } from './own-unread.ts';
import { describeUnfinished, InPartitionParallel, type KafkaParallelOptions } from './parallel.ts';
import {
  type KafkaMessage,
  type KafkaSchemaOptions,
  type KafkaValueFormat,
  recordMeta,
  undecodableError,
  undecodableRecord,
  ValueDecoder,
} from './records.ts';
import type { KafkaConnection } from './security.ts';
import { offsetsCommittedBySink, registerKafkaSource, stableCommittedOffsets } from './txn.ts';
import { describeUnread, type UnreadPartition, unreadElsewhere } from './unread.ts';

/**
 * Where each partition starts. `earliest` / `latest`: at the group's committed offset, or, for
 * a partition the group never committed, at its first / next new message (Kafka's
 * `auto.offset.reset`). `committed`: only at committed offsets; a partition without one fails
 * the run. A number: the first message with a timestamp at or after that epoch-ms time,
 * ignoring committed offsets (a replay).
 */
export type KafkaStart = 'earliest' | 'latest' | 'committed' | number;

/** Config of {@link kafkaSource} (the parsed YAML config). */
export interface KafkaSourceOptions {
  /** `host:port` of one or more brokers. */
  brokers: string[];
  /** Topics to read. */
  topics: string[];
  /** Consumer group id. */
  group: string;
  /** Where partitions start; see {@link KafkaStart}. */
  start: KafkaStart;
  /** How values are decoded. */
  format: KafkaValueFormat;
  /** With `format: avro | protobuf | json-schema`: the registry, and the reader schema or descriptor set. */
  schema?: KafkaSchemaOptions | undefined;
  /** With `format: json`: fields read as exact decimals (`*`: every number); see `decimalReviver`. */
  decimals?: readonly string[] | undefined;
  /** Most records per emitted batch. */
  batchSize: number;
  /** Longest a partial batch waits for more messages, in ms. */
  maxWait: number;
  /** Least time between two commit barriers, in ms. */
  commitInterval: number;
  /** End the input after this many ms without a message (undefined: never, until stopped). */
  idleTimeout?: number | undefined;
  /** `consumer` (KIP-848, incremental, Kafka ≥ 4.0) or `classic`. */
  groupProtocol: 'consumer' | 'classic';
  /** Client id the broker logs; default `sluice`. */
  clientId?: string | undefined;
  /** TLS: `true` (the system's CAs) or `{ ca, cert, key, servername, rejectUnauthorized }` (PEM files). */
  tls?: KafkaConnection['tls'];
  /** SASL: `{ mechanism, username, password }` or `{ mechanism: 'oauthbearer', token | tokenCommand | tokenUrl }`. */
  sasl?: KafkaConnection['sasl'];
  /** Read only committed transactions (default) or also open and aborted ones. */
  isolation?: 'read_committed' | 'read_uncommitted' | undefined;
  /** Longest wait between two attempts to reach the broker, in ms. */
  maxRetryDelay?: number | undefined;
  /**
   * Give up reaching the brokers after this many ms of failed attempts in a row (at start or
   * after losing them mid-run), failing the run. Default: keep retrying until stopped.
   */
  connectTimeout?: number | undefined;
  /**
   * Classic protocol: how long the group waits for a silent member (a killed process) before its
   * partitions go to the others, ms. Default 10 000; the broker accepts 6 000 – 300 000 by default.
   */
  sessionTimeout?: number | undefined;
  /**
   * In-partition parallel processing: run `parallel.step` on every record, up to
   * `parallel.concurrency` at once as `parallel.mode` allows, and emit the results as they
   * complete; only the contiguous low watermark of finished records is committed (see
   * `parallel.ts`). Default: none (records are emitted in partition order as read).
   */
  parallel?: KafkaParallelOptions | undefined;
}

/** How long a commit may take at the end of a run before it is given up (the next run re-reads). */
const COMMIT_TIMEOUT_MS = 10_000;

/**
 * Longest a cooperative rebalance waits for the commit of what was processed before this member
 * gives partitions up (a barrier through the pipeline and the sinks' acknowledgement); well within
 * the group's rebalance timeout (≥ 20 s). Past it the partitions go without that commit (their
 * new owner reads again from the last one).
 */
const REVOKE_COMMIT_TIMEOUT_MS = 5000;

/**
 * Under checkpoints, longest a cooperative rebalance waits for the checkpoint taken before this
 * member gives partitions up (barrier, sinks' flush, store, commit); within the group's rebalance
 * timeout (≥ 20 s).
 */
const REVOKE_CHECKPOINT_TIMEOUT_MS = 15_000;

/**
 * Longest the idle timeout waits for an open transaction that holds back records of this
 * member's partitions (read_committed): Kafka's default transaction timeout (60 s, after which
 * the broker aborts a dead producer's transaction) and a margin.
 */
const TRANSACTION_HOLD_MS = 70_000;

/**
 * Least time the idle timeout waits, without a record, for records this member can read in its
 * own partitions before it fails the run (a rejoin after a killed member may take the session
 * timeout; the bound is at least that plus 10 s).
 */
const OWN_STALL_MS = 60_000;

/**
 * With `parallel`, longest a cooperative rebalance waits for the records in the step to finish
 * before the commit or checkpoint that hands partitions over; with
 * {@link REVOKE_CHECKPOINT_TIMEOUT_MS} still within the group's rebalance timeout (≥ 20 s).
 */
const REVOKE_STEPS_TIMEOUT_MS = 4000;

/** How often owned partitions not read yet are checked for being at their end (they then stop holding watermarks). */
const CAUGHT_UP_CHECK_MS = 1000;

/** A source reading Kafka that can leave unread fields out of JSON records ({@link ProjectableSource}); see {@link kafkaSource}. */
export interface KafkaSource extends ProjectableSource {
  /** Commits made so far (each covers every partition with progress). */
  readonly commits: number;
}

/**
 * A source that reads `options.topics` as member of consumer group `options.group`.
 *
 * @example
 * const source = kafkaSource({
 *   brokers: ['127.0.0.1:9092'], topics: ['events'], group: 'etl', start: 'earliest',
 *   format: 'json', batchSize: 1024, maxWait: 50, commitInterval: 1000, groupProtocol: 'classic',
 *   parallel: { mode: 'key', concurrency: 16, step: async (r) => ({ ...r, user: await lookup(r) }) },
 * });
 * await new Pipeline('etl').from(source).to(fileSink({ path: 'out.jsonl', format: 'jsonl' })).run().done;
 */
export function kafkaSource(options: KafkaSourceOptions): KafkaSource {
  const { brokers, topics, group, format, batchSize, maxWait, commitInterval } = options;
  const clientId = options.clientId ?? 'sluice';
  const concurrency = options.parallel?.concurrency;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`parallel.concurrency\` must be a whole number ≥ 1, not ${concurrency}`,
    );
  }
  let ctx: SourceContext;
  const context = () => ctx;
  const values = new ValueDecoder(format, options.schema, options.decimals);
  let restored = false;
  let records = 0;
  let skipped = 0;
  /** Records taken into the batch being filled (done in their tracker, so in `position()`) and not emitted yet. */
  let holding = false;
  /** Partition scope: stored state of assigned partitions is being loaded (`loadAssigned`). */
  let loading = 0;
  /** The run's owned partitions, for watermark generators downstream (`core/input-partitions.ts`). */
  let inputs: InputPartitions | undefined;
  let caughtUpCheckAt = Number.NEGATIVE_INFINITY;
  /** Parallel steps: partitions assigned mid-run whose commit metadata was not read yet (`resumeAssignedFromMetadata`). */
  const metadataToRead = new Set<string>();
  /** Cooperative rebalances waiting for the commit before partitions are given up (see `commitBeforeRevoke`). */
  const revokes: (() => void)[] = [];

  const assignment = new Assignment(
    () => ctx?.partitionState,
    (name) => committer.forget(name),
  );
  const connection = new GroupConsumer({ ...options, clientId }, context, {
    assigned: (partitions) => {
      const before = assignment.owned;
      assignment.update(partitions);
      // Parallel steps: a partition that comes mid-run resumes past what its last owner finished.
      if (parallel !== undefined && before !== undefined)
        for (const name of partitions) if (!before.has(name)) metadataToRead.add(name);
      inputs?.assign(
        ctx.name,
        [...partitions].map((name) => inputPartitionKey(ctx.name, splitPartitionName(name).partition)),
        ctx.clock.now(),
      );
    },
    beforeJoin: resumeFromCommitMetadata,
    revoking: () =>
      new Promise<void>((resolve) => {
        revokes.push(resolve);
        connection.wake();
      }),
    resume: () => ({ points: assignment.resume, restored }),
  });
  const committer = new OffsetCommitter({
    group,
    groupProtocol: options.groupProtocol,
    start: options.start,
    assignment,
    consumer: () => connection.consumer,
    committedBySink: () => offsetsCommittedBySink(ctx),
    log: () => ({ log: ctx.log, stage: ctx.name }),
  });
  const parallel =
    options.parallel === undefined
      ? undefined
      : new InPartitionParallel(options.parallel, assignment, context, () => connection.wake());

  /**
   * Parallel steps, first run without a checkpoint: records done beyond a stuck one before the
   * last run stopped are in the group's commit metadata; skip them when read.
   */
  async function resumeFromCommitMetadata(): Promise<void> {
    if (parallel === undefined || restored || assignment.resume.size > 0) return;
    for (const [name, c] of await readCommitted(options, clientId, group, topics)) {
      const done = decodeDone(c.metadata, c.offset);
      if (done.size > 0) assignment.resumeAt(name, c.offset, done);
    }
  }

  /**
   * Parallel steps, partitions assigned mid-run (before their first record): as
   * {@link resumeFromCommitMetadata} at a join — the records their last owner finished beyond a
   * stuck one (it gave them up before that one finished) are in the group's commit metadata; skip
   * them when read. Not under partition scope (the stored state says it). Best effort: a failure
   * is logged, and those records are processed again.
   */
  async function resumeAssignedFromMetadata(): Promise<void> {
    const names = [...metadataToRead];
    metadataToRead.clear();
    if (ctx.partitionState !== undefined) return;
    let commits: Awaited<ReturnType<typeof readCommitted>>;
    try {
      commits = await readCommitted(options, clientId, group, topics);
    } catch (err) {
      ctx.log.warn(
        `Reading the commit metadata of ${names.map((n) => `\`${n}\``).join(', ')} for group \`${group}\` failed (${errorMessage(err)}); records their last owner finished out of order are processed again`,
        { stage: ctx.name },
      );
      return;
    }
    for (const name of names) {
      const c = commits.get(name);
      if (c === undefined || assignment.tracked.has(name)) continue;
      const done = decodeDone(c.metadata, c.offset);
      if (done.size > 0) assignment.resumeAt(name, c.offset, done);
    }
  }

  /**
   * Partition scope: loads the stored state of every assigned partition not loaded yet (and of
   * `name`), and resumes each at its stored offset. Done as soon as partitions are assigned, not
   * at their first message: a partition read to its end still has state to finish. A stop
   * requested meanwhile ends the wait for an open transaction's offsets (see below), leaving those
   * partitions unloaded: nothing of them is read or emitted.
   */
  async function loadAssigned(name?: string): Promise<void> {
    const state = ctx.partitionState;
    const todo = assignment.toLoad(name);
    if (state === undefined || todo.length === 0) return;
    // No idle barrier meanwhile: a checkpoint would cover partitions whose state is not loaded yet.
    loading++;
    let stored: Awaited<ReturnType<typeof state.load>>;
    try {
      // Exactly-once: only as far as the group's committed offsets, which move with the output.
      // They are read once no open transaction holds offsets of these partitions, which may take
      // that transaction's timeout (its producer failed); a stopping member does not wait for it
      // (it waited past the 60 s its stop may take, and did not exit).
      const signal = AbortSignal.any([ctx.signal, ctx.stopSignal]);
      const committed = offsetsCommittedBySink(ctx)
        ? stableCommittedOffsets(
            { connection: options, clientId, group },
            { name: ctx.name, clock: ctx.clock, log: ctx.log, signal },
          )
        : undefined;
      try {
        stored = await state.load(group, todo, committed);
      } catch (err) {
        if (ctx.stopSignal.aborted && !ctx.signal.aborted && isCancellation(err)) return;
        throw err;
      }
      assignment.loadedState(todo, stored);
      await committer.commitStarts(todo);
    } finally {
      loading--;
    }
    if (stored.size > 0) {
      ctx.log.info(
        `Loaded the stored state of ${[...stored.keys()].map((k) => `\`${k}\``).join(', ')} for group \`${group}\``,
        { stage: ctx.name },
      );
    }
  }

  /**
   * At most once per {@link CAUGHT_UP_CHECK_MS}: owned partitions that delivered nothing and are
   * read to their end stop holding the watermarks downstream (an empty partition would hold
   * them until its idle timeout). Best effort: a failure waits for the next check.
   */
  async function reportCaughtUp(now: number): Promise<void> {
    const owned = assignment.owned;
    if (inputs === undefined || owned === undefined || now - caughtUpCheckAt < CAUGHT_UP_CHECK_MS) return;
    caughtUpCheckAt = now;
    const waiting = [...owned].filter((name) => !assignment.tracked.has(name));
    if (waiting.length === 0) return;
    const done = await connection.caughtUp(waiting).catch(() => []);
    for (const name of done)
      inputs.caughtUp(ctx.name, inputPartitionKey(ctx.name, splitPartitionName(name).partition));
  }

  /**
   * Partitions are about to be given up: read nothing more, let the `parallel` step finish what it
   * holds ({@link finishStepsBeforeRevoke}), send a barrier through the pipeline
   * and commit what it covers once every sink acknowledged it (bounded by
   * {@link REVOKE_COMMIT_TIMEOUT_MS}), then let the rebalance go on. Under checkpoints the
   * group's commit must not pass the checkpoints: a checkpoint is taken now instead
   * ({@link checkpointBeforeRevoke}).
   */
  async function commitBeforeRevoke(out: Parameters<KafkaSource['run']>[0]): Promise<void> {
    const waiting = revokes.splice(0);
    try {
      await finishStepsBeforeRevoke(out);
      if (ctx.checkpointing || ctx.partitionState !== undefined || offsetsCommittedBySink(ctx)) {
        await checkpointBeforeRevoke();
        return;
      }
      const id = committer.barrier();
      if (id === undefined) return;
      await out.signal(barrier(id));
      const committed = await committer.whenCommitted(id, REVOKE_COMMIT_TIMEOUT_MS, ctx.clock, ctx.signal);
      if (!committed)
        ctx.log.warn(
          `The sinks did not acknowledge barrier ${id} within ${REVOKE_COMMIT_TIMEOUT_MS} ms; giving partitions of group \`${group}\` up without committing what was processed since the last commit (their next owner reads it again)`,
          { stage: ctx.name },
        );
    } finally {
      for (const resolve of waiting) resolve();
    }
  }

  /**
   * With `parallel`, before the commit or checkpoint that hands partitions over: the records in
   * the step finish and are emitted, so that commit covers every record processed (bounded by
   * {@link REVOKE_STEPS_TIMEOUT_MS}; past it a warning names the records left, whose results
   * are then dropped if their partition goes — the next owner processes them again).
   */
  async function finishStepsBeforeRevoke(out: Parameters<KafkaSource['run']>[0]): Promise<void> {
    if (parallel === undefined || parallel.inFlight === 0) return;
    const { emitted, unfinished } = await parallel.finishInFlight(
      out,
      REVOKE_STEPS_TIMEOUT_MS,
      ctx.clock,
      ctx.signal,
    );
    records += emitted;
    if (unfinished.size > 0 && !ctx.signal.aborted)
      ctx.log.warn(
        `Records still in the \`parallel\` step after ${REVOKE_STEPS_TIMEOUT_MS} ms while partitions of group \`${group}\` are given up: ${describeUnfinished(unfinished)}. Their results are dropped if their partition goes (its next owner processes them again); make the step finish sooner or lower \`parallel.concurrency\``,
        { stage: ctx.name },
      );
  }

  /**
   * Under checkpoints, before partitions are given up: a checkpoint of everything emitted so far,
   * stored and committed (with an exactly-once sink: its transaction, holding these records and
   * offsets, committed) before the rebalance goes on — as Kafka Streams commits its tasks on
   * revoke. Otherwise the next owner would load the partition's older stored state and read
   * again records that this member's open transaction still commits. Bounded by
   * {@link REVOKE_CHECKPOINT_TIMEOUT_MS}; past it the partitions go without it (duplicates).
   */
  async function checkpointBeforeRevoke(): Promise<void> {
    if (ctx.checkpointNow === undefined) return;
    const local = new AbortController();
    const timer = ctx.clock
      .sleep(REVOKE_CHECKPOINT_TIMEOUT_MS, AbortSignal.any([ctx.signal, local.signal]))
      .then(
        () => local.abort(),
        () => {},
      );
    const done = await ctx.checkpointNow(AbortSignal.any([ctx.signal, local.signal])).catch(() => false);
    local.abort();
    await timer;
    if (done)
      ctx.log.info(`Stored and committed a checkpoint before giving partitions of group \`${group}\` up`, {
        stage: ctx.name,
      });
    else if (!ctx.signal.aborted)
      ctx.log.warn(
        `No checkpoint was stored and committed within ${REVOKE_CHECKPOINT_TIMEOUT_MS} ms before partitions of group \`${group}\` were given up; their next owner reads again what was processed since the last checkpoint`,
        { stage: ctx.name },
      );
  }

  return {
    get commits() {
      return committer.commits;
    },
    project(fields) {
      // JSON values then decode only the fields read downstream (`projected-json.ts`); an
      // in-partition step reads whole records inside the source, so not with `parallel`.
      if (options.parallel === undefined) values.project(fields);
    },
    open(c) {
      ctx = c;
      inputs = c.runScoped(INPUT_PARTITIONS, () => new InputPartitions());
      registerKafkaSource(c, {
        stage: c.name,
        group,
        topics,
        brokers,
        clientId,
        connection: options,
        consumer: () => connection.consumer,
        position: () => assignment.position(),
        owns: (name) => assignment.owns(name),
        generations: connection.generations,
      });
    },
    restore(position) {
      let points: ReturnType<typeof parsePosition>;
      try {
        points = parsePosition(position);
      } catch (err) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `restoring the kafka source of group \`${group}\`: ${(err as Error).message}; delete the checkpoint folder to start over`,
          { group },
          { cause: err },
        );
      }
      restored = true;
      for (const p of points) assignment.resumeAt(assignment.nameOf(p.topic, p.partition), p.offset, p.done);
    },
    async run(out, c) {
      ctx = c;
      if (!(await connection.connect())) return;
      const source = ctx.name;
      let lastBarrierAt = ctx.clock.now();
      let lastDataAt = ctx.clock.now();
      /** Messages were taken since the last barrier, so the next one has offsets to commit. */
      let progressed = false;
      /** When the idle timeout first found partitions that other members hold unread. */
      let heldSince: number | undefined;
      // A killed member holds its partitions until its session times out (the broker's 45 s
      // default under the consumer protocol); then a rebalance hands them on.
      const holdLimit =
        (options.sessionTimeout ?? (options.groupProtocol === 'consumer' ? 45_000 : 10_000)) + 10_000;
      /**
       * The idle timeout passed: true when the input may end — the group has read every partition
       * this member does not own (`owned`), or they stayed unread past `holdLimit` (then a warning
       * says what).
       */
      const othersDone = async (now: number, owned: ReadonlySet<string>): Promise<boolean> => {
        const consumer = connection.consumer;
        if (consumer === undefined) return true;
        let unread: UnreadPartition[];
        try {
          unread = await unreadElsewhere(consumer, topics, owned, options.start);
        } catch (err) {
          c.log.warn(
            `Could not ask what group \`${group}\` has not read (${errorMessage(err)}); ending on \`idleTimeout\``,
            { group },
          );
          return true;
        }
        if (unread.length === 0) return true;
        if (heldSince === undefined) {
          heldSince = now;
          c.log.info(
            `Idle for \`idleTimeout\`, but other members of group \`${group}\` hold ${describeUnread(unread)} unread; waiting up to ${holdLimit} ms for them (a killed member keeps its partitions until its session times out)`,
            { group },
          );
        }
        if (now - heldSince < holdLimit) return false;
        c.log.warn(
          `Ending on \`idleTimeout\` with ${describeUnread(unread)} not committed by group \`${group}\`: other members held them for ${holdLimit} ms (\`sessionTimeout\` + 10 s). The member that owns them next reads them, or the next run`,
          { group },
        );
        return true;
      };
      const ownWait = new OwnUnreadWait({
        stalled: Math.max(OWN_STALL_MS, holdLimit),
        transaction: TRANSACTION_HOLD_MS,
      });
      /**
       * The idle timeout passed: true when this member has read its own partitions (`owned`) to
       * their end at the isolation level in use (`own-unread.ts`); false while it waits; throws
       * when records it can read stayed unread past the bound (ending would lose them).
       */
      const ownDone = async (now: number, owned: ReadonlySet<string>): Promise<boolean> => {
        const consumer = connection.consumer;
        const positions = connection.positions();
        if (consumer === undefined || positions === undefined) return false;
        const isolation = options.isolation ?? 'read_committed';
        let verdict: ReturnType<OwnUnreadWait['decide']>;
        try {
          // A partition not read since it was assigned starts at the group's committed offset;
          // until the stream has fetched that offset, its position may be a stale one from an
          // earlier ownership, past records the member that had it since left unread.
          const fresh = [...owned].filter((name) => !assignment.tracked.has(name));
          for (const [name, offset] of await connection.committedStarts(fresh)) positions.set(name, offset);
          verdict = ownWait.decide(await unreadOwned(consumer, owned, positions, isolation), now);
        } catch (err) {
          c.log.warn(
            `Could not ask the end offsets of the partitions group \`${group}\` assigned to this member (${errorMessage(err)}); ending on \`idleTimeout\` without knowing they were read to their end`,
            { group },
          );
          return true;
        }
        if (verdict.action === 'fail') {
          throw new SluiceError(
            ErrorCode.STAGE,
            `reading ${topics.map((t) => `\`${t}\``).join(', ')} as group \`${group}\`: ${verdict.message}`,
            { topics, group },
          );
        }
        if (verdict.action === 'wait' && verdict.info !== undefined) c.log.info(verdict.info, { group });
        if (verdict.warn !== undefined) c.log.warn(verdict.warn, { group });
        return verdict.action === 'end';
      };
      let stopping = false;
      const ready = () => parallel?.ready === true;
      for (;;) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        if (ctx.stopSignal.aborted) stopping = true;
        const busy = parallel?.busy === true;
        // Stopping: read nothing more, but let the steps in flight finish and emit their results.
        if (stopping && !busy) break;
        const failure = connection.error;
        if (!stopping && failure !== undefined) {
          if (!isConnectionError(failure)) {
            throw wrapError(
              `reading ${topics.map((t) => `\`${t}\``).join(', ')} as group \`${group}\``,
              failure,
              {
                topics,
                group,
              },
            );
          }
          assignment.lost();
          if (!(await connection.reconnect(failure))) {
            stopping = true;
            continue;
          }
          // Time without a broker is not idleness: the idle timeout counts from the reconnect.
          lastDataAt = ctx.clock.now();
          continue;
        }
        if (connection.ended && !busy) break;
        if (revokes.length > 0) {
          await commitBeforeRevoke(out);
          lastBarrierAt = ctx.clock.now();
          progressed = false;
          continue;
        }
        if (ctx.partitionState !== undefined) await loadAssigned();
        const batchRecords: unknown[] = [];
        const batchMeta: RecordMeta[] = [];
        let consumed = 0;
        const firstAt = ctx.clock.now();
        // Fill one batch: synchronous reads while data is buffered, a bounded wait when not.
        while (
          !stopping &&
          revokes.length === 0 &&
          !connection.ended &&
          batchRecords.length < batchSize &&
          (parallel === undefined || parallel.hasRoom())
        ) {
          const m: KafkaMessage | null = connection.read();
          if (m === null) {
            const waited = ctx.clock.now() - firstAt;
            if (parallel !== undefined || batchRecords.length === 0 || waited >= maxWait || connection.error)
              break;
            await connection.waitForData(maxWait - waited, true, ready);
            if (ctx.stopSignal.aborted) break;
            continue;
          }
          const name = assignment.nameOf(m.topic, m.partition);
          if (!assignment.owns(name)) continue; // revoked: the new owner reads it
          if (ctx.partitionState !== undefined && assignment.needsLoad(name)) {
            await loadAssigned(name);
            if (assignment.needsLoad(name)) break; // stopped before its state was loaded
          }
          const offset = Number(m.offset);
          if (metadataToRead.has(name)) await resumeAssignedFromMetadata();
          const t = assignment.trackerOf(name, m);
          // Without a step a record is done once emitted (just below, before `position()` is read).
          if (!(parallel === undefined ? t.offsets.pass(offset) : t.offsets.admit(offset))) {
            skipped++; // re-delivered after a rejoin, or done before a restart
            continue;
          }
          consumed++;
          progressed = true;
          if (parallel === undefined) holding = true;
          const meta = recordMeta(source, m, offset);
          let value: unknown;
          const fetching = values.prepare(m.value); // a schema id not seen before
          if (fetching !== undefined) await fetching;
          try {
            value = values.decode(m.value);
          } catch (err) {
            if (parallel !== undefined) t.offsets.complete(offset);
            ctx.deadLetter(
              undecodableRecord(m, format !== 'json' && format !== 'text'),
              undecodableError(m, offset, err),
              meta,
            );
            continue;
          }
          if (parallel !== undefined) {
            parallel.dispatch(name, offset, value, meta);
            continue;
          }
          batchRecords.push(value);
          batchMeta.push(meta);
        }
        const now = ctx.clock.now();
        let emitted = 0;
        if (batchRecords.length > 0) {
          records += batchRecords.length;
          emitted = batchRecords.length;
          await out.emit({ kind: 'batch', records: batchRecords, meta: batchMeta });
        }
        holding = false; // emitted, or only dead letters (sent before any barrier)
        if (parallel !== undefined) {
          const done = await parallel.emitFinished(out);
          records += done.emitted;
          emitted += done.finished;
        }
        if (emitted > 0 || consumed > 0) {
          lastDataAt = now; // dead letters only: the input is not idle either
          heldSince = undefined;
          ownWait.reset();
        }
        await reportCaughtUp(now);
        // Under checkpoints the runtime injects the barriers; own ones would collide with them.
        if (!ctx.checkpointing && progressed && now - lastBarrierAt >= commitInterval) {
          // With steps still running, the barrier's commit points cover what is done; the next covers the rest.
          progressed = (parallel?.inFlight ?? 0) > 0;
          lastBarrierAt = now;
          const id = committer.barrier();
          if (id !== undefined) await out.signal(barrier(id));
        }
        if (emitted === 0 && consumed === 0 && connection.error === undefined) {
          if (stopping && parallel !== undefined && parallel.inFlight > 0) {
            // Not `waitForData`: it listens to the stop signal, so it would return at once, and
            // this loop, never leaving the microtask queue, would starve the steps' own timers.
            await parallel.whenSettled(Math.max(1, commitInterval), ctx.clock, ctx.signal);
            continue;
          }
          if ((parallel?.inFlight ?? 0) > 0 || stopping) {
            // Waiting for steps to finish (or for room to read more).
            await connection.waitForData(
              Math.max(1, commitInterval),
              !stopping && (parallel === undefined || parallel.hasRoom()),
              ready,
            );
            continue;
          }
          if (connection.ended) continue;
          // Waiting for partitions (e.g. held by a killed member until its session times out) is not idleness.
          if (assignment.idle) lastDataAt = now;
          if (options.idleTimeout !== undefined && now - lastDataAt >= options.idleTimeout) {
            // Its own partitions first: the idle timeout counts time without a record, not
            // whether they are read (a stalled fetch, a rejoin, an open transaction).
            // One assignment for both questions, and none changed meanwhile: partitions handed to
            // this member while they are asked (another member left) were in neither answer.
            const changes = assignment.changes;
            const owned = assignment.owned ?? new Set<string>();
            const done = (await ownDone(now, owned)) && (await othersDone(now, owned));
            if (done && assignment.changes === changes) break;
            await connection.waitForData(Math.max(1, Math.min(commitInterval, 1000)), true, ready);
            continue;
          }
          const idleLeft =
            options.idleTimeout === undefined ? commitInterval : options.idleTimeout - (now - lastDataAt);
          await connection.waitForData(Math.max(1, Math.min(commitInterval, idleLeft)), true, ready);
        }
      }
    },
    async onBarrierComplete(id) {
      await committer.barrierComplete(id);
    },
    async commit(position) {
      await committer.checkpointStored(position);
    },
    position() {
      return assignment.position();
    },
    // Under checkpoints a quiet topic still takes checkpoints (an exactly-once sink's transaction
    // must not outlive its timeout), but only while `position()` covers just what was emitted.
    idleBarriers: true,
    idleBarrierReady() {
      // Partition scope: not before the state of every assigned partition is loaded (`loadAssigned`).
      if (loading > 0 || (ctx?.partitionState !== undefined && assignment.toLoad().length > 0)) return false;
      // Not while the group rebalances: the transaction's offsets would carry a stale generation.
      if (connection.rebalancing) return false;
      // Partition scope: members join and leave while others run, so an idle checkpoint may still
      // race a join the member has not seen yet (its offsets then carry the old generation, and the
      // broker answers ILLEGAL_GENERATION; 1 run in 6 of partition-eos.kafka.it when this was
      // first tried). Under the classic protocol the exactly-once sink sends them again with the
      // new generation when the member kept those partitions (`commitAcrossRebalances`), as it does
      // for any checkpoint; under `groupProtocol: consumer` it does not yet, so idle checkpoints
      // stay off there (a quiet job holds its last transaction open until data comes).
      // Per partition an idle checkpoint stores nothing new (`PartitionStates.save` writes only the
      // partitions whose offset moved) and its transaction commits the positions again, which
      // match the stored entries — except a partition loaded behind its group's offset and not
      // read since (see the warning in `PartitionStates.rollBack`), as any checkpoint does.
      if (ctx?.partitionState !== undefined && options.groupProtocol === 'consumer') return false;
      return !holding && parallel?.busy !== true;
    },
    lag() {
      return kafkaLag(connection.consumer, assignment.position(), committer.lastCommitAt);
    },
    metrics() {
      return {
        records,
        commits: committer.commits,
        commitErrors: committer.errors,
        reconnects: connection.reconnects,
        revokedPartitions: assignment.revoked,
        barriers: committer.barriers,
        skipped,
        inFlight: parallel?.inFlight ?? 0,
      };
    },
    async close() {
      try {
        if (ctx !== undefined) await committer.final(ctx, COMMIT_TIMEOUT_MS);
      } finally {
        for (const resolve of revokes.splice(0)) resolve(); // a rebalance never waits for a closed source
        await connection.close();
      }
    },
  };
}
