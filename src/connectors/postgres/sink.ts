/**
 * The `postgres` sink: writes records into a table, batched, with exact types, at-least-once by
 * default and exactly-once under checkpoints.
 *
 * - Columns are read from the table at `open` (or taken from `columns`); each record field of
 *   the same name fills its column, a missing field is NULL. `insert` streams rows with
 *   `COPY … FROM STDIN` (text format); `upsert` sends multi-row `INSERT … ON CONFLICT (key) DO
 *   UPDATE`, with later records of one batch winning over earlier ones of the same key.
 * - A row the database rejects (a class 22 data exception or class 23 constraint violation) is
 *   found without losing the rest: each write runs inside a savepoint; on a rejection the sink
 *   rolls back to it, takes the culprit from the error (COPY names the line, INSERT the
 *   parameter) or else bisects, sends it to the `dlq` output with the database's message, and
 *   writes the others again.
 * - Any other failure (connection lost, server restart, serialization failure, deadlock) is
 *   retried through the one retry policy until `retryTimeout` (at `open`: `connectTimeout`), each
 *   retry logged with the server's address and what is waited for: the sink reconnects, begins
 *   again and resends what the open transaction held (`insert`: its COPY bytes, past 64 MiB in a
 *   temporary file — `held.ts`). Dead letters of an attempt are sent only when it succeeds.
 * - `insert` encodes each written batch at once into COPY bytes and, with exactly-once, lets the
 *   last COPY run while the next records are read and encoded.
 * - At-least-once (default): every `batchSize` rows, after `linger`, at a barrier and at the
 *   end, the buffered rows are committed in one transaction.
 * - Exactly-once (`exactlyOnce: true`, needs checkpoints and `max_prepared_transactions` > 0 on
 *   the server): one transaction spans a checkpoint. Rows go into it as they come (in chunks of
 *   `batchSize`); at barrier n the sink writes every source position of checkpoint n into
 *   `sluice_sink_offsets` (rows of its own, so prepared checkpoints never wait on each other) in
 *   the same transaction and prepares it (`PREPARE TRANSACTION 'sluice:<pipeline>:<stage>:<n>'`),
 *   which makes it durable, then acknowledges. When checkpoint n is stored,
 *   `commitCheckpoint(n)` runs `COMMIT PREPARED` (a lost answer is told apart from a lost commit
 *   by `pg_prepared_xacts`); the last transaction, at the end of input, is two-phase too. On restart from checkpoint m,
 *   `restore` commits the prepared transactions up to m and rolls back the later ones, so the
 *   table holds exactly the rows of the checkpoints that completed and the sources resume right
 *   after them (Flink's two-phase commit sink).
 *
 * The roles live in their own modules (Vector's `src/sinks/kafka/{config,sink,request_builder,
 * service}.rs` split): `table.ts` (what `open` learns about the table), `copy-writer.ts` and
 * `upsert-writer.ts` (records → chunks of statements), `isolate.ts` (rejected-row isolation),
 * `transaction.ts` (the open transaction, retried and resent), `two-phase.ts` (exactly-once),
 * `connection.ts` (connections and retry), `held.ts` (the spill file). This module ties them
 * together: batching (`batchSize`, `linger`) and the {@link Sink} contract.
 */
import type { TlsConfig } from '../../clients/tls.ts';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch, RecordMeta, Signal } from '../../core/message.ts';
import type { CommittedPositions, Sink, StageContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { AdminLane, dropClient, openSinkClient, SinkConnection, sinkRetry } from './connection.ts';
import { CopyWriter } from './copy-writer.ts';
import { rejectedRowError } from './isolate.ts';
import type { TableWriter, TxChunk } from './rows.ts';
import { StatementWriter } from './statement-writer.ts';
import { checkExactlyOnce, describeTable, OFFSETS_TABLE } from './table.ts';
import { OpenTransaction } from './transaction.ts';
import { TwoPhaseCommit } from './two-phase.ts';
import { UpsertWriter } from './upsert-writer.ts';

export { OFFSETS_TABLE };

/** How records are written. */
export type PostgresMode = 'insert' | 'upsert' | 'statement';

/** Options of {@link postgresSink} (the parsed YAML config plus the pipeline's name). */
export interface PostgresSinkOptions {
  /** Connection URL, `postgres://user:password@host:port/database` (`?sslmode=…` honoured). */
  url: string;
  /** TLS settings (`true`: the system's CAs); see `clients/postgres-tls.ts`. */
  tls?: TlsConfig | true | undefined;
  /** Target table, optionally schema-qualified (`public.transactions`). */
  table: string;
  /** `insert` (COPY) or `upsert` (INSERT … ON CONFLICT on `key`). */
  mode: PostgresMode;
  /** `statement` mode: the SQL run once per record, `$1`… filled from the fields of `params`. */
  statement?: string | undefined;
  /** `statement` mode: the record fields of `$1`, `$2`, … in order. */
  params?: readonly string[] | undefined;
  /** Columns of the conflict target in `upsert` mode (a unique index must cover exactly them). */
  key?: readonly string[] | undefined;
  /** Columns to fill; default every column of the table that is not generated. */
  columns?: readonly string[] | undefined;
  /** Rows per COPY / INSERT chunk (and per transaction without exactly-once). */
  batchSize: number;
  /** How long (ms) fewer than `batchSize` rows may wait before they are written; 0: at once. */
  linger: number;
  /** Two-phase commit with the source positions in `sluice_sink_offsets` (needs checkpoints). */
  exactlyOnce: boolean;
  /** The pipeline's name: keys `sluice_sink_offsets` rows and prepared transactions. */
  pipeline: string;
  /** How long (ms) a failing transaction is retried before the run fails. */
  retryTimeout: number;
  /**
   * How long (ms) `open` waits for the server to accept connections (not running yet, starting
   * up, unreachable) before the run fails; also the limit of one connection attempt. Default 30 s.
   */
  connectTimeout?: number | undefined;
  /**
   * Bytes of the open transaction's COPY data kept in memory (to send it again after a
   * reconnect); more goes to a temporary file. Default 64 MiB.
   */
  holdInMemory?: number | undefined;
}

/** Default of {@link PostgresSinkOptions.holdInMemory}. */
const HOLD_IN_MEMORY = 64 << 20;

/** Default of {@link PostgresSinkOptions.connectTimeout}. */
const CONNECT_TIMEOUT = 30_000;

/** A {@link Sink} writing PostgreSQL; see {@link postgresSink}. */
export interface PostgresSink extends Sink<unknown> {
  /** Rows the database accepted (committed or in the open transaction). */
  readonly rowsWritten: number;
  /** Rows sent to the `dlq` output because the database rejected them. */
  readonly rowsRejected: number;
}

/**
 * A sink writing records into `options.table`. See the module comment for the protocol.
 *
 * @example
 * const sink = postgresSink({
 *   url: 'postgres://sluice:sluice@127.0.0.1:5432/sluice', table: 'transactions', mode: 'insert',
 *   batchSize: 5000, linger: 200, exactlyOnce: false, pipeline: 'etl', retryTimeout: 120_000,
 * });
 */
export function postgresSink(options: PostgresSinkOptions): PostgresSink {
  const { url, mode, batchSize, exactlyOnce } = options;
  const where = `table \`${options.table}\` at ${redactUrl(url)}`;
  const connectTimeout = options.connectTimeout ?? CONNECT_TIMEOUT;
  let ctx: StageContext;
  const stage = () => ctx?.name ?? 'sink';
  const open = () => openSinkClient(url, options.tls, options.pipeline, connectTimeout);
  let rejected = 0;
  let retries = 0;
  /** Set at `open`, once the table's columns are known. */
  let writer: TableWriter | undefined;
  const buffered = () => writer?.buffered ?? 0;

  const conn = new SinkConnection(open);
  const retry = sinkRetry({
    url,
    table: options.table,
    where,
    retryTimeout: options.retryTimeout,
    ctx: () => ctx,
    pendingRows: () => buffered() + tx.heldRows,
    onRetry: () => void retries++,
  });
  const admin = new AdminLane(open, retry);
  const tx: OpenTransaction = new OpenTransaction({
    conn,
    retry,
    holdInMemory: options.holdInMemory ?? HOLD_IN_MEMORY,
    beforeBegin: (): Promise<void> => twoPhase?.settle(0) ?? Promise.resolve(),
    resend: (chunk) => (writer as TableWriter).resend(chunk),
    deadLetter: (row, err) => {
      rejected++;
      ctx.deadLetter(row.record, rejectedRowError(where, options.table, err, row.meta), row.meta);
    },
  });
  const twoPhase: TwoPhaseCommit | undefined = exactlyOnce
    ? new TwoPhaseCommit({ pipeline: options.pipeline, stage, where, log: () => ctx.log, tx, admin })
    : undefined;
  // The checkpoint this run restored (undefined: a fresh run), and whether the table already
  // holds everything of the input: a restart after the final commit but before the checkpoint
  // store was deleted replays from that checkpoint, and the sink then drops what it gets.
  let restoredFrom: number | undefined;
  let completed = false;
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;
  let background: Promise<void> | undefined;
  let backgroundError: unknown;

  const stageError = (doing: string, err: unknown) =>
    wrapError(`${doing} ${where}`, err, { table: options.table, sqlState: (err as { code?: string })?.code });

  const notObject = (record: unknown, meta: RecordMeta | undefined) => {
    rejected++;
    ctx.deadLetter(
      record,
      new SluiceError(
        ErrorCode.RECORD,
        `${where}: a record must be an object whose fields name columns, not ${record === null ? 'null' : Array.isArray(record) ? 'an array' : typeof record}`,
        { table: options.table },
      ),
      meta,
    );
  };

  /** Sends the buffered rows into the open transaction (beginning it), in chunks; with `pipelined` the last stays in flight. */
  async function sendBuffer(pipelined = false): Promise<void> {
    await tx.drain();
    if (writer === undefined || writer.buffered === 0) return;
    const chunks = writer.takeChunks();
    for (let i = 0; i < chunks.length; i++)
      await tx.send(pipelined && i === chunks.length - 1, chunks[i] as () => Promise<TxChunk>);
  }

  /** At-least-once: sends the buffer and commits it. */
  async function flushCommit(): Promise<void> {
    await sendBuffer();
    await tx.commit();
  }

  async function settleBackground(): Promise<void> {
    if (background !== undefined) await background;
    if (backgroundError !== undefined) {
      const err = backgroundError;
      backgroundError = undefined;
      throw err;
    }
  }

  /** At-least-once: commits what is buffered after `linger`, in the background (its failure is thrown by the next step). */
  function armLinger(): void {
    if (lingerTimer !== undefined || buffered() === 0 || exactlyOnce) return;
    lingerTimer = setTimeout(() => {
      lingerTimer = undefined;
      background = flushCommit().then(
        () => {
          background = undefined;
        },
        (err) => {
          background = undefined;
          backgroundError = err;
        },
      );
    }, options.linger);
  }

  function stopLinger(): void {
    if (lingerTimer !== undefined) clearTimeout(lingerTimer);
    lingerTimer = undefined;
  }

  return {
    get rowsWritten() {
      return tx.written;
    },
    get rowsRejected() {
      return rejected;
    },

    async open(c) {
      ctx = c;
      const shape = await retry(
        'connecting for',
        async () => {
          const client = await open();
          try {
            const found = await describeTable(client, { ...options, where });
            if (exactlyOnce) await checkExactlyOnce(client, ctx.checkpointing, options.table, where);
            conn.adopt(client);
            return found;
          } catch (err) {
            await dropClient(client);
            throw err;
          }
        },
        async () => {},
        [connectTimeout, 'connectTimeout'],
      ).catch((err: unknown) => {
        if (err instanceof SluiceError) throw err;
        throw stageError('opening', err);
      });
      const target = { conn, shape, reject: tx.reject.bind(tx) };
      writer =
        mode === 'insert'
          ? new CopyWriter(target, batchSize)
          : mode === 'upsert'
            ? new UpsertWriter(target, options.key as readonly string[], batchSize)
            : new StatementWriter(target, options.statement ?? '', options.params ?? [], batchSize);
    },

    async write(batch: Batch<unknown>) {
      if (completed) return;
      await settleBackground();
      (writer as TableWriter).add(batch.records, batch.meta, notObject);
      try {
        if (buffered() >= batchSize) {
          stopLinger();
          if (exactlyOnce) await sendBuffer(true);
          else await flushCommit();
        } else if (options.linger <= 0 && !exactlyOnce) await flushCommit();
        else armLinger();
      } catch (err) {
        throw err instanceof SluiceError ? err : stageError('writing to', err);
      }
    },

    async onSignal(signal: Signal) {
      if (signal.kind !== 'barrier' || completed) return;
      stopLinger();
      await settleBackground();
      try {
        if (twoPhase !== undefined) {
          await sendBuffer();
          await twoPhase.prepareCheckpoint(signal.id, ctx.checkpointPositions?.(signal.id) ?? {});
        } else await flushCommit();
      } catch (err) {
        throw err instanceof SluiceError ? err : stageError(`flushing at barrier ${signal.id} to`, err);
      }
    },

    snapshot(checkpointId: number) {
      return { checkpointId } satisfies PostgresSinkState;
    },

    async restore(state: unknown) {
      if (twoPhase === undefined) return;
      const id = (state as Partial<PostgresSinkState> | undefined)?.checkpointId;
      if (state !== undefined && typeof id !== 'number') {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the checkpoint's state of the sink into ${where} is damaged`,
          {
            table: options.table,
          },
        );
      }
      await twoPhase.settle(id ?? 0);
      restoredFrom = id;
    },

    async commitCheckpoint(checkpointId: number) {
      await twoPhase?.commitThrough(checkpointId);
    },

    async committedPositions(): Promise<CommittedPositions | undefined> {
      if (twoPhase === undefined) return undefined;
      const found = await twoPhase.committed();
      if (found.final === true) {
        // The last run finished (see `finish`). Restored from one of its checkpoints: it was
        // killed before its store was deleted, so every row is in already. Else: a new run.
        if (restoredFrom !== undefined) {
          completed = true;
          ctx.log.warn(
            `${where} already holds every row of this input (the last run committed its final transaction, then stopped before deleting checkpoint ${restoredFrom}); the input is read again from that checkpoint and nothing more is written`,
            { stage: stage() },
          );
        } else await twoPhase.forgetPositions();
        return undefined;
      }
      return found.positions;
    },

    async finish() {
      stopLinger();
      await settleBackground();
      try {
        if (twoPhase === undefined) await flushCommit();
        // A draining stop ended the input early: the rows after the last checkpoint are not
        // covered by stored positions, so they stay uncommitted (`close` rolls them back) and the
        // next run, resuming from that checkpoint, writes them again. The `final` marker would
        // tell it the input was complete and lose them.
        else if (ctx.stopSignal.aborted) return;
        else if (completed) await twoPhase.forgetPositions();
        // The job is done (its checkpoints are deleted next): forget the positions in the last
        // transaction, so a new run of the pipeline starts over like the checkpoint store does.
        else await twoPhase.finish(() => sendBuffer());
      } catch (err) {
        throw err instanceof SluiceError ? err : stageError('committing to', err);
      }
    },

    metrics() {
      return {
        rowsWritten: tx.written,
        rowsRejected: rejected,
        transactions: tx.transactions,
        retries,
        buffered: buffered(),
      };
    },

    async close() {
      stopLinger();
      await background?.catch(() => {});
      await tx.close();
      await admin.close();
    },
  };
}

/** What the `postgres` sink keeps in a checkpoint: the id its prepared transaction carries. */
export interface PostgresSinkState {
  readonly checkpointId: number;
}
