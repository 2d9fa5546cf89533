/**
 * The `postgres` sink's open transaction (Vector's `service.rs` role: sending what the writers
 * built, and retrying it). Each step on it — write a chunk, commit, prepare — is one attempt that
 * is retried on a new connection after a transient failure; a new connection begins the
 * transaction again and first sends what the lost one held (kept in `held.ts`, spilled to a
 * temporary file past its memory limit). Rows the database rejected during an attempt reach the
 * `dlq` output once, when that attempt succeeds. With exactly-once, `write`'s last chunk may stay
 * in flight while the next records are read; every later step waits for it first.
 */
import type { PgError } from '../../clients/postgres.ts';
import { pgLib } from '../../clients/postgres.ts';
import type { SinkConnection, SinkRetry } from './connection.ts';
import { HeldChunks } from './held.ts';
import type { Row, TxChunk } from './rows.ts';

/** What {@link OpenTransaction} needs from the sink. */
export interface OpenTransactionOptions {
  readonly conn: SinkConnection;
  readonly retry: SinkRetry;
  /** Bytes of held COPY data kept in memory; more goes to a temporary file. */
  readonly holdInMemory: number;
  /** Runs before each `BEGIN` (exactly-once: settle what an earlier run prepared). */
  readonly beforeBegin: () => Promise<void>;
  /** Writes again a chunk the lost transaction held, resolving with what it holds now. */
  readonly resend: (chunk: TxChunk) => Promise<TxChunk>;
  /** Sends a rejected row's dead letter. */
  readonly deadLetter: (row: Row, err: PgError) => void;
}

/** See the module comment. One step at a time: the sink never runs two steps at once. */
export class OpenTransaction {
  /** Rows the database accepted (committed or in the open transaction). */
  written = 0;
  /** Transactions begun (again after a reconnect too). */
  transactions = 0;
  #open = false;
  #rejections: { row: Row; err: PgError }[] = [];
  #inflight: Promise<void> | undefined;
  readonly #held: HeldChunks<Row>;
  readonly #o: OpenTransactionOptions;

  constructor(options: OpenTransactionOptions) {
    this.#o = options;
    this.#held = new HeldChunks<Row>(options.holdInMemory);
  }

  /** True while a transaction is open on the connection. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Rows the open transaction holds (sent again after a reconnect). */
  get heldRows(): number {
    return this.#held.rows;
  }

  /**
   * Notes a row the database rejected in the current attempt; its dead letter is sent when the
   * attempt succeeds (an attempt that fails is done again and finds the same row again).
   */
  reject(row: Row, err: PgError): void {
    this.#rejections.push({ row, err });
  }

  /**
   * Runs `op` on the open transaction as one attempt, retried on a new connection until it
   * succeeds or `retryTimeout` passes; the rows it rejected go to the dlq output once it succeeded.
   */
  attempt<T>(doing: string, op: () => Promise<T>): Promise<T> {
    return this.#o.retry(
      doing,
      async () => {
        this.#rejections = [];
        const result = await op();
        const list = this.#rejections;
        this.#rejections = [];
        for (const { row, err } of list) this.#o.deadLetter(row, err);
        return result;
      },
      async () => {
        this.#rejections = [];
        await this.#reset();
      },
    );
  }

  /** Begins the transaction if none is open, sending again what it held before a reconnect. */
  async begin(): Promise<void> {
    if (this.#open) return;
    await this.#o.beforeBegin();
    await this.#o.conn.query('BEGIN');
    this.#open = true;
    this.transactions++;
    const again = this.#held.take();
    try {
      for (const entry of again) await this.#held.add(await this.#o.resend(await this.#held.load(entry)));
    } catch (err) {
      // Broken again half-way: the next attempt must find every chunk, not only those sent.
      this.#held.restore(again);
      throw err;
    }
  }

  /**
   * Writes one chunk into the open transaction (beginning it) and holds it for a resend. With
   * `inBackground` the chunk is left in flight and this resolves at once (exactly-once only:
   * every later step waits for it, and PREPARE comes after it on the same connection).
   */
  async send(inBackground: boolean, writeIt: () => Promise<TxChunk>): Promise<void> {
    const sent = this.attempt('writing to', async () => {
      await this.begin();
      const held = await writeIt();
      await this.#held.add(held);
      this.written += held.count;
    });
    if (inBackground) {
      sent.catch(() => {});
      this.#inflight = sent;
    } else await sent;
  }

  /** Waits for the chunk in flight, if any; its failure is thrown here. */
  async drain(): Promise<void> {
    const p = this.#inflight;
    if (p === undefined) return;
    this.#inflight = undefined;
    await p;
  }

  /**
   * At-least-once: commits the open transaction, if any. When the answer to COMMIT is lost, the
   * rows are sent again (duplicates, or rejections on a unique key), which this mode allows.
   */
  async commit(): Promise<void> {
    if (!this.#open) return;
    await this.attempt('committing to', async () => {
      await this.begin();
      await this.#o.conn.query('COMMIT');
      this.#ended();
    });
  }

  /**
   * Ends the open transaction (begun if none is open) with `last` then `PREPARE TRANSACTION gid`.
   * When the connection breaks after the PREPARE was sent, its outcome is read from
   * `pg_prepared_xacts` on the new connection: prepared (the answer was lost) or not (the server
   * lost the whole transaction, which is then begun again with its rows).
   */
  async prepare(doing: string, gid: string, last: () => Promise<unknown>): Promise<void> {
    let sent = false;
    await this.attempt(doing, async () => {
      if (sent && !this.#open && (await this.#isPrepared(gid))) {
        this.#held.clear();
        return;
      }
      await this.begin();
      await last();
      sent = true;
      await this.#o.conn.query(`PREPARE TRANSACTION ${pgLib().escapeLiteral(gid)}`);
      this.#ended();
    });
  }

  /** Runs `sql` on the transaction's connection: for the steps given to {@link attempt} and {@link prepare}. */
  query(sql: string, values?: unknown[]): Promise<unknown> {
    return this.#o.conn.query(sql, values);
  }

  /** Waits for the chunk in flight (ignoring its failure), drops the connection and the temporary file. */
  async close(): Promise<void> {
    await this.#inflight?.catch(() => {});
    // An open transaction is rolled back by the server when its connection ends.
    await this.#reset();
    await this.#held.close();
  }

  #ended(): void {
    this.#open = false;
    this.#held.clear();
  }

  /** Forgets the broken connection and the open transaction (the server rolled it back). */
  async #reset(): Promise<void> {
    this.#open = false;
    await this.#o.conn.reset();
  }

  async #isPrepared(gid: string): Promise<boolean> {
    const r = await this.#o.conn.query(
      'SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()',
      [gid],
    );
    return r.rowCount === 1;
  }
}
