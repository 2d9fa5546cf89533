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
 *   retried with exponential backoff until `retryTimeout` (at `open`: `connectTimeout`), each
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
 */
import { Readable } from 'node:stream';
import { pipeline as pipeStreams } from 'node:stream/promises';
import type pg from 'pg';
import { isTransientPgError, type PgError, pgCopyLib, pgLib, serverOf } from '../../clients/postgres.ts';
import { ErrorCode, errorMessage, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch, Position, RecordMeta, Signal } from '../../core/message.ts';
import type { CommittedPositions, Sink, StageContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { toJsonLine } from '../../formats/jsonl.ts';
import {
  type ColumnInfo,
  columnInfo,
  copyLine,
  copyRecord,
  paramValues,
  positionFromJson,
  positionJson,
} from './encode.ts';
import { type HeldChunk, HeldChunks } from './held.ts';

/** How records are written. */
export type PostgresMode = 'insert' | 'upsert';

/** Options of {@link postgresSink} (the parsed YAML config plus the pipeline's name). */
export interface PostgresSinkOptions {
  /** Connection URL, `postgres://user:password@host:port/database`. */
  url: string;
  /** Target table, optionally schema-qualified (`public.transactions`). */
  table: string;
  /** `insert` (COPY) or `upsert` (INSERT … ON CONFLICT on `key`). */
  mode: PostgresMode;
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

/** Rejections in one chunk after which the rest of it is written row by row. */
const MANY_FAILURES = 16;

/** Default of {@link PostgresSinkOptions.holdInMemory}. */
const HOLD_IN_MEMORY = 64 << 20;

/** Default of {@link PostgresSinkOptions.connectTimeout}. */
const CONNECT_TIMEOUT = 30_000;

/** Longest single connection attempt: a server that does not answer is tried again sooner. */
const ATTEMPT_TIMEOUT = 10_000;

/**
 * The id in the gid of the last transaction of an exactly-once run (`finish`): prepared, then
 * committed, so a lost answer to its commit is told apart from a lost commit. A restart from any
 * checkpoint rolls it back if it is still prepared, like every transaction past that checkpoint.
 */
const FINAL_ID = Number.MAX_SAFE_INTEGER;

/**
 * Name of the table holding the source positions of exactly-once sinks: one row per pipeline,
 * sink, checkpoint and source. Each checkpoint's transaction only inserts its own rows, so two
 * prepared checkpoints never wait on each other's row locks (with one row per source updated in
 * place, checkpoint n + 1 would wait for the commit of n, forever if that never comes); older
 * rows are deleted once a later checkpoint is committed.
 */
export const OFFSETS_TABLE = 'sluice_sink_offsets';

/** A {@link Sink} writing PostgreSQL; see {@link postgresSink}. */
export interface PostgresSink extends Sink<unknown> {
  /** Rows the database accepted (committed or in the open transaction). */
  readonly rowsWritten: number;
  /** Rows sent to the `dlq` output because the database rejected them. */
  readonly rowsRejected: number;
}

interface Row {
  readonly record: unknown;
  readonly meta: RecordMeta | undefined;
  /** COPY line (`insert`) … */
  readonly line?: string;
  /** … or INSERT parameters (`upsert`). */
  readonly params?: (string | null)[];
  /** `upsert`: the key values as one string, to keep the last row of a key per chunk. */
  readonly key?: string;
}

type TxChunk = HeldChunk<Row>;

/**
 * `insert`: one written batch, encoded at once into COPY text. The records are kept (as the
 * batch's own arrays, no copy) only to isolate a row the database rejects; no per-row object is
 * made on the way.
 */
interface Segment {
  /**
   * The meta of the written batch's records. The records themselves are not kept: held until their
   * COPY is acknowledged, they would outlive young-generation collections (measured on a 5M-row
   * load: 6.1 s and 5.0 s of CPU with them, 5.4 s and 3.5 s without); a rejected row's dead letter
   * holds its COPY line as an object instead (`copyRecord`).
   */
  readonly meta: readonly (RecordMeta | undefined)[] | undefined;
  /** Indices in the batch of the encoded rows; undefined: all of them. */
  readonly indices: number[] | undefined;
  /** The rows' COPY text, as UTF-8 (each row's string dies young; the bytes are off the heap). */
  readonly bytes: Buffer;
  readonly count: number;
}

/** SQLSTATE classes that blame one row: data exceptions (22) and integrity violations (23). */
function isRowError(err: unknown): boolean {
  const code = (err as PgError | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** Seconds or milliseconds, for messages: `2 m`, `30 s`, `400 ms`. */
function human(ms: number): string {
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000} m`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/** `column amount` from an error's context line (`COPY t, line 2, column amount: "abc"`). */
function columnOf(err: PgError): string | undefined {
  if (err.column !== undefined) return err.column;
  const w = err.where ?? '';
  const at = w.indexOf(', column ');
  if (at < 0) return undefined;
  const rest = w.slice(at + 9);
  const end = rest.indexOf(':');
  return end < 0 ? rest : rest.slice(0, end);
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
  let ctx: StageContext;
  let client: pg.Client | undefined;
  /** Separate connection for COMMIT/ROLLBACK PREPARED, which may run while a write is pending. */
  let admin: pg.Client | undefined;
  let columns: ColumnInfo[] = [];
  let quotedTable = '';
  let copySql = '';
  /** `upsert`: the statement's start, up to its first row of parameters, and its end. */
  let insertHead = '';
  let upsertTail = '';
  /** `upsert`: rows not yet sent. */
  let buffer: Row[] = [];
  /** `insert`: batches not yet sent, and their row count. */
  let segments: Segment[] = [];
  let segmentRows = 0;
  /** Bytes reserved per row when a batch is encoded; learnt from the batches so far. */
  let bytesPerRow = 64;
  const buffered = () => buffer.length + segmentRows;
  /** Rows the database rejected in the current attempt: dead letters once it succeeds. */
  let rejections: { row: Row; err: PgError }[] = [];
  let inTx = false;
  /** What the open transaction holds: sent again after a reconnect (spilled to disk when large). */
  const txRows = new HeldChunks<Row>(options.holdInMemory ?? HOLD_IN_MEMORY);
  /**
   * `write`'s last chunk, still being written (COPY) while the next records are read and
   * encoded; everything else that uses the connection waits for it first ({@link drainInflight}).
   */
  let inflight: Promise<void> | undefined;
  /** Exactly-once: ids of prepared transactions not yet committed, ascending. */
  const prepared: number[] = [];
  // The checkpoint this run restored (undefined: a fresh run), and whether the table already
  // holds everything of the input: a restart after the final commit but before the checkpoint
  // store was deleted replays from that checkpoint, and the sink then drops what it gets.
  let restoredFrom: number | undefined;
  let completed = false;
  /** Exactly-once: prepared transactions left by an earlier run are settled before writing. */
  let settled = false;
  let written = 0;
  let rejected = 0;
  let transactions = 0;
  let retries = 0;
  let lingerTimer: ReturnType<typeof setTimeout> | undefined;
  let background: Promise<void> | undefined;
  let backgroundError: unknown;
  let adminLane: Promise<unknown> = Promise.resolve();

  const gidPrefix = `sluice:${options.pipeline}:`;
  const gidOf = (id: number) => `${gidPrefix}${ctxName()}:${id}`;
  const ctxName = () => ctx?.name ?? 'sink';

  const stageError = (doing: string, err: unknown) =>
    wrapError(`${doing} ${where}`, err, { table: options.table, sqlState: (err as PgError)?.code });

  const server = serverOf(url);
  const pgAt = `PostgreSQL at \`${server.address}\` (database \`${server.database}\`)`;
  const connectTimeout = options.connectTimeout ?? CONNECT_TIMEOUT;

  async function connect(): Promise<pg.Client> {
    const c = new (pgLib().Client)({
      connectionString: url,
      application_name: `sluice ${options.pipeline}`,
      connectionTimeoutMillis: Math.min(connectTimeout, ATTEMPT_TIMEOUT),
      keepAlive: true,
    });
    // An idle connection that breaks emits `error`; the next query fails and is retried.
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    return c;
  }

  async function drop(c: pg.Client | undefined): Promise<void> {
    if (c !== undefined) await c.end().catch(() => {});
  }

  /** What a retry waits for, for its log line: the rows that will be sent again. */
  function pendingWork(): string {
    let rows = buffered();
    rows += txRows.rows;
    return rows === 0 ? '' : `; ${rows} rows of the open transaction are sent again then`;
  }

  /**
   * Runs `op` until it succeeds, retrying transient failures (connection refused or lost, server
   * shutting down or starting up, deadlock…) with backoff (100 ms doubling to 5 s) for at most
   * `limit` ms (`limitName` in messages). Each retry is logged with the server, what was being
   * done and what is waited for; the first success after failures is logged too.
   */
  async function withRetry<T>(
    doing: string,
    op: () => Promise<T>,
    onRetry: () => Promise<void>,
    limit: readonly [ms: number, name: string] = [options.retryTimeout, 'retryTimeout'],
  ): Promise<T> {
    const started = ctx.clock.now();
    const deadline = started + limit[0];
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await op();
        if (attempt > 1) {
          // A warning too, so that the end of the incident shows wherever its start did.
          ctx.log.warn(
            `Reconnected to ${pgAt}: ${doing} \`${options.table}\` succeeded at attempt ${attempt} after ${human(ctx.clock.now() - started)}`,
          );
        }
        return result;
      } catch (err) {
        if (!isTransientPgError(err) || ctx.signal.aborted) throw err;
        if (ctx.clock.now() + delay > deadline) {
          throw new SluiceError(
            ErrorCode.STAGE,
            `${doing} ${where}: ${pgAt} still failed after ${attempt} attempts in ${human(ctx.clock.now() - started)} (\`${limit[1]}\` is ${human(limit[0])}): ${errorMessage(err)}; check that the server is running and reachable at that address, or raise \`${limit[1]}\``,
            {
              table: options.table,
              server: server.address,
              database: server.database,
              sqlState: (err as PgError).code,
            },
            { cause: err },
          );
        }
        retries++;
        ctx.log.warn(
          `Waiting for ${pgAt}: ${doing} \`${options.table}\` failed (${errorMessage(err)}); retrying in ${human(delay)} (attempt ${attempt + 1}, giving up after ${human(limit[0])}, \`${limit[1]}\`)${pendingWork()}`,
          { server: server.address, table: options.table, attempt, sqlState: (err as PgError).code },
        );
        await ctx.clock.sleep(delay, ctx.signal);
        delay = Math.min(delay * 2, 5000);
        await onRetry().catch(() => {});
      }
    }
  }

  async function q(sql: string, values?: unknown[]): Promise<pg.QueryResult> {
    if (client === undefined) client = await connect();
    return values === undefined ? client.query(sql) : client.query(sql, values);
  }

  /** Forgets the broken connection and the open transaction (the server rolled it back). */
  async function reset(): Promise<void> {
    const c = client;
    client = undefined;
    inTx = false;
    await drop(c);
  }

  /** Begins the transaction if none is open, resending what it held before a reconnect. */
  async function ensureTx(): Promise<void> {
    if (inTx) return;
    await settlePrepared(0);
    await q('BEGIN');
    inTx = true;
    transactions++;
    const again = txRows.take();
    try {
      for (const entry of again) await txRows.add(await resendChunk(await txRows.load(entry)));
    } catch (err) {
      // Broken again half-way: the next attempt must find every chunk, not only those sent.
      txRows.restore(again);
      throw err;
    }
  }

  /** The COPY text of `rows`. */
  function payloadOf(rows: readonly Row[]): Buffer {
    let text = '';
    for (const r of rows) text += r.line as string;
    return Buffer.from(text, 'utf8');
  }

  async function copyPayload(payload: Buffer): Promise<void> {
    if (client === undefined) client = await connect();
    await pipeStreams(Readable.from([payload]), client.query(pgCopyLib().from(copySql)));
  }

  /** Writes a chunk of new rows, isolating rejected ones; returns what the transaction now holds. */
  async function writeChunk(rows: Row[]): Promise<TxChunk> {
    if (mode !== 'insert') {
      const ok = await writeIsolating(rows);
      return { rows: ok, count: ok.length };
    }
    const payload = payloadOf(rows);
    const ok = await writeIsolating(rows, { failures: 0 }, payload);
    return { payload: ok === rows ? payload : payloadOf(ok), count: ok.length };
  }

  /**
   * Sends a chunk the lost transaction held again. A row the database rejects now (a unique key
   * another writer took meanwhile) is isolated as usual; for `insert` its dead letter then holds
   * the row as sent ({@link copyRecord}: the record itself is not kept, to keep the open
   * transaction compact).
   */
  async function resendChunk(chunk: TxChunk): Promise<TxChunk> {
    if (chunk.payload === undefined) return writeChunk(chunk.rows ?? []);
    await q('SAVEPOINT sluice_rows');
    try {
      await copyPayload(chunk.payload);
      await q('RELEASE SAVEPOINT sluice_rows');
      return chunk;
    } catch (err) {
      if (!isRowError(err)) throw err;
      await q('ROLLBACK TO SAVEPOINT sluice_rows; RELEASE SAVEPOINT sluice_rows');
      const rows: Row[] = [];
      for (const line of chunk.payload.toString('utf8').split('\n')) {
        if (line !== '') rows.push({ record: copyRecord(line, columns), meta: undefined, line: `${line}\n` });
      }
      return writeChunk(rows);
    }
  }

  /** Waits for `write`'s chunk in flight; its failure is thrown here. */
  async function drainInflight(): Promise<void> {
    const p = inflight;
    if (p === undefined) return;
    inflight = undefined;
    await p;
  }

  /** Inside the open transaction: writes `rows` in one COPY or INSERT, no isolation. */
  async function writeRaw(rows: readonly Row[], payload?: Buffer): Promise<void> {
    if (mode === 'insert') {
      await copyPayload(payload ?? payloadOf(rows));
      return;
    }
    const n = columns.length;
    const values: (string | null)[] = [];
    let sql = insertHead;
    for (let i = 0; i < rows.length; i++) {
      sql += i === 0 ? '(' : ', (';
      for (let j = 0; j < n; j++) sql += j === 0 ? `$${i * n + j + 1}` : `, $${i * n + j + 1}`;
      sql += ')';
      for (const v of (rows[i] as Row).params as (string | null)[]) values.push(v);
    }
    await q(sql + upsertTail, values);
  }

  /** The index in `rows` of the row an error names (COPY line or INSERT parameter), if it names one. */
  function culprit(err: PgError, count: number): number | undefined {
    const w = err.where ?? '';
    let m = /COPY [^,]+, line (\d+)/.exec(w);
    if (m !== null) {
      const i = Number(m[1]) - 1;
      return i >= 0 && i < count ? i : undefined;
    }
    m = /parameter \$(\d+)/.exec(w);
    if (m !== null) {
      const i = Math.floor((Number(m[1]) - 1) / columns.length);
      return i >= 0 && i < count ? i : undefined;
    }
    return undefined;
  }

  /**
   * Notes a row the database rejected. The dead letter is sent only when the attempt that found
   * it succeeds ({@link txAttempt}): an attempt that fails (connection lost) is done again from
   * the start and finds the same row again, which must reach the dlq output once.
   */
  function reject(row: Row, err: PgError): void {
    rejections.push({ row, err });
  }

  function sendRejections(): void {
    const list = rejections;
    rejections = [];
    for (const { row, err } of list) deadLetter(row, err);
  }

  function deadLetter(row: Row, err: PgError): void {
    rejected++;
    const column = columnOf(err);
    const pos = row.meta?.position !== undefined ? ` (from ${toJsonLine(row.meta.position)})` : '';
    const detail = [err.detail, err.where].filter((x) => x !== undefined && x !== '').join('; ');
    ctx.deadLetter(
      row.record,
      new SluiceError(
        ErrorCode.RECORD,
        `${where} rejected a row${pos}${column !== undefined ? `, column \`${column}\`` : ''}: ${err.message}${detail !== '' ? ` (${detail})` : ''}; fix the record upstream or the table's constraint — the other rows were written`,
        {
          table: options.table,
          ...(column !== undefined ? { field: column } : {}),
          ...(err.constraint !== undefined ? { constraint: err.constraint } : {}),
          sqlState: err.code,
        },
      ),
      row.meta,
    );
  }

  /**
   * One step on the open transaction, retried on a new connection (which begins the
   * transaction again and resends its rows) until it succeeds; the rows it rejected go to the
   * dlq output once, when it succeeds.
   */
  function txAttempt<T>(doing: string, op: () => Promise<T>): Promise<T> {
    return withRetry(
      doing,
      async () => {
        rejections = [];
        const result = await op();
        sendRejections();
        return result;
      },
      async () => {
        rejections = [];
        await reset();
      },
    );
  }

  /**
   * Writes `rows` inside a savepoint; a row the database rejects goes to the dlq output and the
   * others are written again. Returns the rows accepted.
   */
  async function writeIsolating(rows: Row[], state = { failures: 0 }, payload?: Buffer): Promise<Row[]> {
    if (rows.length === 0) return rows;
    if (state.failures >= MANY_FAILURES && rows.length > 1) {
      // Many bad rows in one chunk: one savepoint per row costs less than re-sending the rest each time.
      const ok: Row[] = [];
      for (const row of rows) for (const r of await writeIsolating([row], state)) ok.push(r);
      return ok;
    }
    await q('SAVEPOINT sluice_rows');
    try {
      await writeRaw(rows, payload);
      await q('RELEASE SAVEPOINT sluice_rows');
      return rows;
    } catch (err) {
      if (!isRowError(err)) throw err;
      state.failures++;
      await q('ROLLBACK TO SAVEPOINT sluice_rows; RELEASE SAVEPOINT sluice_rows');
      return isolate(rows, err as PgError, state);
    }
  }

  /**
   * After `rows` were rejected together with `err` (rolled back): the row `err` names goes to the
   * dlq output and the others are written again; when it names none, each half is tried alone.
   * Returns the rows accepted.
   */
  async function isolate(rows: Row[], err: PgError, state: { failures: number }): Promise<Row[]> {
    const bad = rows.length === 1 ? 0 : culprit(err, rows.length);
    if (bad !== undefined) {
      reject(rows[bad] as Row, err);
      const before = await writeIsolating(rows.slice(0, bad), state);
      const after = await writeIsolating(rows.slice(bad + 1), state);
      return before.concat(after);
    }
    const mid = rows.length >> 1;
    const left = await writeIsolating(rows.slice(0, mid), state);
    return left.concat(await writeIsolating(rows.slice(mid), state));
  }

  /** `upsert`: the last row of each key in `rows` (ON CONFLICT cannot touch a row twice). */
  function lastPerKey(rows: Row[]): Row[] {
    const seen = new Map<string, number>();
    for (let i = 0; i < rows.length; i++) seen.set((rows[i] as Row).key as string, i);
    if (seen.size === rows.length) return rows;
    const out: Row[] = [];
    for (let i = 0; i < rows.length; i++)
      if (seen.get((rows[i] as Row).key as string) === i) out.push(rows[i] as Row);
    return out;
  }

  /** Sends the buffered rows into the open transaction (beginning it), in chunks. */
  async function sendBuffer(pipelined = false): Promise<void> {
    await drainInflight();
    if (mode === 'insert') return sendSegments(pipelined);
    if (buffer.length === 0) return;
    const rows = buffer;
    buffer = [];
    // Parameters per statement are limited to 65535.
    const per = Math.max(1, Math.min(batchSize, Math.floor(65_535 / columns.length)));
    for (let i = 0; i < rows.length; i += per) {
      const chunk = lastPerKey(rows.length <= per ? rows : rows.slice(i, i + per));
      await sendChunk(pipelined && i + per >= rows.length, () => writeChunk(chunk));
    }
  }

  /**
   * Writes one chunk into the open transaction (beginning it) and holds it for a resend. With
   * `inBackground` the chunk is left in flight and `write` returns for the next records
   * (exactly-once only: each later step waits for it, and PREPARE comes after it on the same
   * connection).
   */
  async function sendChunk(inBackground: boolean, writeIt: () => Promise<TxChunk>): Promise<void> {
    const sent = txAttempt('writing to', async () => {
      await ensureTx();
      const held = await writeIt();
      await txRows.add(held);
      written += held.count;
    });
    if (inBackground) {
      sent.catch(() => {});
      inflight = sent;
    } else await sent;
  }

  /** `insert`: sends the buffered batches in COPYs of about `batchSize` rows (whole batches). */
  async function sendSegments(pipelined: boolean): Promise<void> {
    if (segmentRows === 0) return;
    const all = segments;
    segments = [];
    segmentRows = 0;
    let i = 0;
    while (i < all.length) {
      const chunk: Segment[] = [];
      let n = 0;
      while (i < all.length && n < batchSize) {
        const seg = all[i++] as Segment;
        chunk.push(seg);
        n += seg.count;
      }
      await sendChunk(pipelined && i >= all.length, () => writeSegments(chunk, n));
    }
  }

  /**
   * One COPY of `segs` inside a savepoint. On a rejected row, the rows are made (encoded again)
   * and isolated: the one the error names goes to the dlq output, the others are written again.
   */
  async function writeSegments(segs: readonly Segment[], count: number): Promise<TxChunk> {
    const payload = segs.length === 1 ? (segs[0] as Segment).bytes : Buffer.concat(segs.map((x) => x.bytes));
    await q('SAVEPOINT sluice_rows');
    try {
      await copyPayload(payload);
      await q('RELEASE SAVEPOINT sluice_rows');
      return { payload, count };
    } catch (err) {
      if (!isRowError(err)) throw err;
      await q('ROLLBACK TO SAVEPOINT sluice_rows; RELEASE SAVEPOINT sluice_rows');
      const rows: Row[] = [];
      for (const seg of segs) {
        // COPY text escapes newlines inside values, so every newline ends a row.
        const text = seg.bytes.toString('utf8');
        let k = 0;
        for (let start = 0; start < text.length; k++) {
          const end = text.indexOf('\n', start) + 1 || text.length;
          const line = text.slice(start, end);
          start = end;
          const i = seg.indices === undefined ? k : (seg.indices[k] as number);
          rows.push({ record: copyRecord(line, columns), meta: seg.meta?.[i], line });
        }
      }
      const ok = await isolate(rows, err as PgError, { failures: 1 });
      return { payload: payloadOf(ok), count: ok.length };
    }
  }

  /** At-least-once: sends the buffer and commits it. */
  async function flushCommit(): Promise<void> {
    await sendBuffer();
    if (!inTx) return;
    // At-least-once: when the answer to COMMIT is lost, the rows are sent again (duplicates, or
    // rejections on a unique key), which this mode allows.
    await txAttempt('committing to', async () => {
      await ensureTx();
      await q('COMMIT');
      inTx = false;
      txRows.clear();
    });
  }

  /** Exactly-once, at barrier `id`: the buffer, the positions, then PREPARE TRANSACTION. */
  async function prepareCheckpoint(id: number): Promise<void> {
    await sendBuffer();
    const positions = ctx.checkpointPositions?.(id) ?? {};
    await prepareTx(`preparing the transaction of checkpoint ${id} on`, id, () =>
      writeOffsets(positions, id),
    );
    prepared.push(id);
  }

  /**
   * Ends the open transaction (begun if none is open) with `last` then `PREPARE TRANSACTION` as
   * `gidOf(id)`. When the connection breaks after the PREPARE was sent, its outcome is read from
   * `pg_prepared_xacts` on the new connection: prepared (the answer was lost) or not (the server
   * lost the whole transaction, which is then begun again with its rows).
   */
  async function prepareTx(doing: string, id: number, last: () => Promise<unknown>): Promise<void> {
    const gid = gidOf(id);
    let sent = false;
    await txAttempt(doing, async () => {
      if (sent && !inTx && (await isPrepared(gid))) {
        txRows.clear();
        return;
      }
      await ensureTx();
      await last();
      sent = true;
      await q(`PREPARE TRANSACTION ${pgLib().escapeLiteral(gid)}`);
      inTx = false;
      txRows.clear();
    });
  }

  /** Deletes the positions of checkpoints before `id` (committed, so no prepared one holds them). */
  async function forgetBefore(c: pg.Client, id: number): Promise<void> {
    await c.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2 AND checkpoint_id < $3`, [
      options.pipeline,
      ctxName(),
      id,
    ]);
  }

  /** Exactly-once: `COMMIT PREPARED` checkpoint `id`'s transaction on the admin connection. */
  function commitPrepared(id: number): Promise<void> {
    return onAdmin(
      `committing the transaction of checkpoint ${id === FINAL_ID ? '(final)' : id} on`,
      async (c) => {
        try {
          await c.query(`COMMIT PREPARED ${pgLib().escapeLiteral(gidOf(id))}`);
        } catch (err) {
          // 42704: no such prepared transaction — an attempt whose answer was lost committed it
          // (only this sink, under its own gids, commits or rolls back its transactions).
          if ((err as PgError).code !== '42704') throw err;
        }
      },
    );
  }

  async function writeOffsets(
    positions: Readonly<Record<string, Position | undefined>>,
    id: number,
  ): Promise<void> {
    const json: Record<string, unknown> = {};
    for (const [source, pos] of Object.entries(positions)) json[source] = positionJson(pos);
    if (Object.keys(json).length === 0) json['*'] = null;
    await q(
      `INSERT INTO ${OFFSETS_TABLE} (pipeline, sink, checkpoint_id, source, position)
       SELECT $1, $2, $3, key, value FROM jsonb_each($4::jsonb)
       ON CONFLICT (pipeline, sink, checkpoint_id, source) DO UPDATE
         SET position = EXCLUDED.position, updated_at = now()`,
      [options.pipeline, ctxName(), id, JSON.stringify(json)],
    );
  }

  async function isPrepared(gid: string): Promise<boolean> {
    const r = await q('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()', [
      gid,
    ]);
    return r.rowCount === 1;
  }

  /** Runs `op` on the admin connection, one at a time, retrying transient failures. */
  function onAdmin<T>(doing: string, op: (c: pg.Client) => Promise<T>): Promise<T> {
    const run = adminLane.then(() =>
      withRetry(
        doing,
        async () => {
          if (admin === undefined) admin = await connect();
          return op(admin);
        },
        async () => {
          const a = admin;
          admin = undefined;
          await drop(a);
        },
      ),
    );
    adminLane = run.catch(() => {});
    return run;
  }

  /**
   * Commits this sink's prepared transactions up to checkpoint `upTo` and rolls back later
   * ones: what a restart from checkpoint `upTo` (0: none) must find.
   */
  async function settlePrepared(upTo: number): Promise<void> {
    if (!exactlyOnce || settled) return;
    settled = true;
    const prefix = `${gidPrefix}${ctxName()}:`;
    await onAdmin('settling prepared transactions on', async (c) => {
      const r = await c.query<{ gid: string }>(
        'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)',
        [prefix],
      );
      const ids = r.rows.map((x) => Number(x.gid.slice(prefix.length))).sort((a, b) => a - b);
      for (const id of ids) {
        const commit = id <= upTo;
        await c.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${pgLib().escapeLiteral(prefix + id)}`);
        const which = id === FINAL_ID ? 'the final transaction' : `the transaction of checkpoint ${id}`;
        if (commit) {
          await forgetBefore(c, id);
          ctx.log.info(`Committed ${which} on ${where}, prepared by an earlier run`);
        } else
          ctx.log.warn(
            `Rolled back ${which} on ${where}, prepared by an earlier run: the run resumes from checkpoint ${upTo}, before it`,
          );
      }
    });
  }

  async function settleBackground(): Promise<void> {
    if (background !== undefined) await background;
    if (backgroundError !== undefined) {
      const err = backgroundError;
      backgroundError = undefined;
      throw err;
    }
  }

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

  async function loadColumns(c: pg.Client): Promise<void> {
    let r: pg.QueryResult<{ name: string; type: string; generated: boolean; qualified: string }>;
    try {
      r = await c.query(
        `SELECT a.attname AS name, t.typname AS type, (a.attgenerated <> '' OR a.attidentity = 'a') AS generated,
                $1::regclass::text AS qualified
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [options.table],
      );
    } catch (err) {
      if ((err as PgError).code === '42P01') {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `${where} does not exist; create it first (CREATE TABLE ${options.table} (…) with one column per record field)`,
          { table: options.table },
          { cause: err },
        );
      }
      throw err;
    }
    quotedTable = r.rows[0]?.qualified ?? options.table;
    const all = r.rows;
    let chosen = all.filter((x) => !x.generated);
    if (options.columns !== undefined) {
      const missing = options.columns.filter((name) => !all.some((x) => x.name === name));
      if (missing.length > 0) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `${where} has no column ${missing.map((m) => `\`${m}\``).join(', ')}; its columns are ${all.map((x) => `\`${x.name}\``).join(', ')}`,
          { table: options.table },
        );
      }
      chosen = options.columns.map((name) => all.find((x) => x.name === name) as (typeof all)[number]);
    }
    columns = chosen.map((x) => columnInfo(x.name, x.type));
    const list = columns.map((x) => pgLib().escapeIdentifier(x.name)).join(', ');
    copySql = `COPY ${quotedTable} (${list}) FROM STDIN`;
    insertHead = `INSERT INTO ${quotedTable} (${list}) VALUES `;
    if (mode === 'upsert') {
      const key = options.key ?? [];
      const notFilled = key.filter((k) => !columns.some((x) => x.name === k));
      if (key.length === 0 || notFilled.length > 0) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          key.length === 0
            ? `upsert into ${where} needs \`key\`: the columns of a unique index (e.g. key: [id])`
            : `upsert key ${notFilled.map((k) => `\`${k}\``).join(', ')} is not among the columns written to ${where}`,
          { table: options.table },
        );
      }
      const idx = await c.query(
        `SELECT 1 FROM pg_index i
          WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
            AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
                  WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = $2::text[]`,
        [options.table, [...key].sort()],
      );
      if (idx.rowCount === 0) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `upsert into ${where} needs a unique index on exactly (${key.join(', ')}); create one (CREATE UNIQUE INDEX ON ${options.table} (${key.join(', ')})) or fix \`key\``,
          { table: options.table },
        );
      }
      const others = columns.filter((x) => !key.includes(x.name));
      const conflict = key.map((k) => pgLib().escapeIdentifier(k)).join(', ');
      upsertTail =
        others.length === 0
          ? ` ON CONFLICT (${conflict}) DO NOTHING`
          : ` ON CONFLICT (${conflict}) DO UPDATE SET ${others.map((x) => `${pgLib().escapeIdentifier(x.name)} = EXCLUDED.${pgLib().escapeIdentifier(x.name)}`).join(', ')}`;
    }
  }

  async function checkExactlyOnce(c: pg.Client): Promise<void> {
    if (!ctx.checkpointing) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`exactlyOnce\` on ${where} needs checkpoints: add \`checkpoint: { interval: 10s }\` to the pipeline, or set \`exactlyOnce: false\``,
        { table: options.table },
      );
    }
    const r = await c.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions');
    if (Number(r.rows[0]?.max_prepared_transactions ?? 0) < 2) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`exactlyOnce\` on ${where} commits in two phases, but the server has max_prepared_transactions = ${r.rows[0]?.max_prepared_transactions}; set it to at least 2 (e.g. 64) in postgresql.conf and restart the server`,
        { table: options.table },
      );
    }
    await c.query(`CREATE TABLE IF NOT EXISTS ${OFFSETS_TABLE} (
      pipeline text NOT NULL, sink text NOT NULL, checkpoint_id bigint NOT NULL, source text NOT NULL,
      position jsonb, updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (pipeline, sink, checkpoint_id, source))`);
  }

  /** `insert`: encodes a written batch into one segment of COPY text. */
  function encodeBatch(
    records: readonly unknown[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
  ): void {
    let bytes = Buffer.allocUnsafe(Math.max(4096, records.length * bytesPerRow));
    let used = 0;
    let indices: number[] | undefined;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        rejected++;
        ctx.deadLetter(record, notObject(record), meta?.[i]);
        if (indices === undefined) {
          indices = [];
          for (let j = 0; j < i; j++) indices.push(j);
        }
        continue;
      }
      const line = copyLine(record as Record<string, unknown>, columns);
      if (used + line.length * 3 > bytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(bytes.length * 2, used + line.length * 3));
        bytes.copy(grown, 0, 0, used);
        bytes = grown;
      }
      used += bytes.write(line, used, 'utf8');
      indices?.push(i);
    }
    const count = indices === undefined ? records.length : indices.length;
    if (count === 0) return;
    // Next time, start with room for rows this long (a little more, so growing is rare).
    bytesPerRow = Math.max(bytesPerRow, Math.ceil((used / count) * 1.25));
    segments.push({ meta, indices, bytes: bytes.subarray(0, used), count });
    segmentRows += count;
  }

  /** Deletes this sink's positions (and `final` marker): the next run starts over. */
  async function forgetPositions(): Promise<void> {
    await onAdmin('forgetting the positions of the finished run in', (c) =>
      c.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2`, [
        options.pipeline,
        ctxName(),
      ]),
    );
  }

  const notObject = (record: unknown) =>
    new SluiceError(
      ErrorCode.RECORD,
      `${where}: a record must be an object whose fields name columns, not ${record === null ? 'null' : Array.isArray(record) ? 'an array' : typeof record}`,
      { table: options.table },
    );

  return {
    get rowsWritten() {
      return written;
    },
    get rowsRejected() {
      return rejected;
    },

    async open(c) {
      ctx = c;
      await withRetry(
        'connecting for',
        async () => {
          const conn = await connect();
          try {
            await loadColumns(conn);
            if (exactlyOnce) await checkExactlyOnce(conn);
          } catch (err) {
            await drop(conn);
            throw err;
          }
          client = conn;
        },
        async () => {},
        [connectTimeout, 'connectTimeout'],
      ).catch((err: unknown) => {
        if (err instanceof SluiceError) throw err;
        throw stageError('opening', err);
      });
    },

    async write(batch: Batch<unknown>) {
      if (completed) return;
      await settleBackground();
      const { records, meta } = batch;
      const key = options.key;
      if (mode === 'insert') encodeBatch(records, meta);
      else
        for (let i = 0; i < records.length; i++) {
          const record = records[i];
          const m = meta?.[i];
          if (record === null || typeof record !== 'object' || Array.isArray(record)) {
            rejected++;
            ctx.deadLetter(record, notObject(record), m);
            continue;
          }
          const rec = record as Record<string, unknown>;
          const params = paramValues(rec, columns);
          let k = '';
          for (const name of key as readonly string[]) k += `${String(rec[name])}\u0000`;
          buffer.push({ record, meta: m, params, key: k });
        }
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
        if (exactlyOnce) await prepareCheckpoint(signal.id);
        else await flushCommit();
      } catch (err) {
        throw err instanceof SluiceError ? err : stageError(`flushing at barrier ${signal.id} to`, err);
      }
    },

    snapshot(checkpointId: number) {
      return { checkpointId } satisfies PostgresSinkState;
    },

    async restore(state: unknown) {
      if (!exactlyOnce) return;
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
      await settlePrepared(id ?? 0);
      restoredFrom = id;
    },

    async commitCheckpoint(checkpointId: number) {
      if (!exactlyOnce) return;
      while (prepared.length > 0 && (prepared[0] as number) <= checkpointId) {
        await commitPrepared(prepared[0] as number);
        prepared.shift();
      }
    },

    async committedPositions(): Promise<CommittedPositions | undefined> {
      if (!exactlyOnce) return undefined;
      await settlePrepared(0);
      const r = await onAdmin('reading offsets from', (c) =>
        c.query<{ source: string; position: unknown; checkpoint_id: string }>(
          `SELECT source, position, checkpoint_id FROM ${OFFSETS_TABLE}
            WHERE pipeline = $1 AND sink = $2
              AND checkpoint_id = (SELECT max(checkpoint_id) FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2)`,
          [options.pipeline, ctxName()],
        ),
      );
      if (r.rows.length === 0) return undefined;
      if (Number(r.rows[0]?.checkpoint_id) === FINAL_ID) {
        // The last run finished (see `finish`). Restored from one of its checkpoints: it was
        // killed before its store was deleted, so every row is in already. Else: a new run.
        if (restoredFrom !== undefined) {
          completed = true;
          ctx.log.warn(
            `${where} already holds every row of this input (the last run committed its final transaction, then stopped before deleting checkpoint ${restoredFrom}); the input is read again from that checkpoint and nothing more is written`,
            { stage: ctxName() },
          );
        } else await forgetPositions();
        return undefined;
      }
      const sources: Record<string, Position | undefined> = {};
      let checkpointId = 0;
      for (const row of r.rows) {
        checkpointId = Math.max(checkpointId, Number(row.checkpoint_id));
        if (row.source !== '*') sources[row.source] = positionFromJson(row.position);
      }
      return { checkpointId, sources };
    },

    async finish() {
      stopLinger();
      await settleBackground();
      try {
        if (!exactlyOnce) {
          await flushCommit();
          return;
        }
        if (completed) {
          await forgetPositions();
          return;
        }
        // The job is done (its checkpoints are deleted next): commit the prepared checkpoints
        // first (they hold the locks of their offsets rows), then the rest, and forget the
        // positions, so a new run of the pipeline starts over like the checkpoint store does.
        await this.commitCheckpoint?.(FINAL_ID - 1);
        await sendBuffer();
        // In two phases too, so that a lost answer to the commit is not taken for a lost commit
        // (which would send the rows again).
        // The positions are replaced by a `final` marker: a run restored from one of this run's
        // checkpoints (killed before they were deleted) then knows the rows are all in.
        await prepareTx('committing the last rows to', FINAL_ID, async () => {
          await q(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2`, [
            options.pipeline,
            ctxName(),
          ]);
          await q(
            `INSERT INTO ${OFFSETS_TABLE} (pipeline, sink, checkpoint_id, source, position) VALUES ($1, $2, $3, '*', '{"final": true}')`,
            [options.pipeline, ctxName(), FINAL_ID],
          );
        });
        await commitPrepared(FINAL_ID);
      } catch (err) {
        throw err instanceof SluiceError ? err : stageError('committing to', err);
      }
    },

    metrics() {
      return { rowsWritten: written, rowsRejected: rejected, transactions, retries, buffered: buffered() };
    },

    async close() {
      stopLinger();
      await background?.catch(() => {});
      await inflight?.catch(() => {});
      const c = client;
      client = undefined;
      // An open transaction is rolled back by the server when its connection ends.
      await drop(c);
      await txRows.close();
      await adminLane.catch(() => {});
      const a = admin;
      admin = undefined;
      await drop(a);
    },
  };
}

/** What the `postgres` sink keeps in a checkpoint: the id its prepared transaction carries. */
export interface PostgresSinkState {
  readonly checkpointId: number;
}
