/**
 * What the `postgres` sink's two writers share (Vector's `request_builder.rs` role): the row as
 * isolation sees it, the chunk the open transaction holds, and the {@link TableWriter} contract
 * that `copy-writer.ts` (`insert`) and `upsert-writer.ts` (`upsert`) implement.
 */
import type { PgError } from '../../clients/postgres.ts';
import type { RecordMeta } from '../../core/message.ts';
import type { SinkConnection } from './connection.ts';
import type { HeldChunk } from './held.ts';
import type { IsolationTarget } from './isolate.ts';
import type { TableShape } from './table.ts';

/** One row as rejected-row isolation handles it. */
export interface Row {
  /** The record, or for `insert` the row as sent (column → text, see `copyRecord`). */
  readonly record: unknown;
  readonly meta: RecordMeta | undefined;
  /** COPY line (`insert`) … */
  readonly line?: string;
  /** … or INSERT parameters (`upsert`). */
  readonly params?: (string | null)[];
  /** `upsert`: the key values as one string, to keep the last row of a key per chunk. */
  readonly key?: string;
}

/** A chunk the open transaction holds, to send it again after a reconnect. */
export type TxChunk = HeldChunk<Row>;

/** What a writer writes through: the main connection, the table, and where rejected rows go. */
export interface WriteTarget {
  readonly conn: SinkConnection;
  readonly shape: TableShape;
  /** Notes a row the database rejected (its dead letter goes out when the attempt succeeds). */
  reject(row: Row, err: PgError): void;
}

/**
 * Turns records into chunks of statements on the open transaction, one writer per mode. Called
 * from one step at a time; `takeChunks` and `resend` only inside the open transaction.
 */
export interface TableWriter {
  /** Rows added and not yet taken by {@link takeChunks}. */
  readonly buffered: number;
  /**
   * Takes a written batch. A record that is not an object goes to `notObject` (its dead letter)
   * and is not buffered.
   */
  add(
    records: readonly unknown[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    notObject: (record: unknown, meta: RecordMeta | undefined) => void,
  ): void;
  /**
   * Empties the buffer into chunks of about `batchSize` rows; each function, called in order
   * inside the open transaction, writes its chunk (isolating rejected rows) and resolves with
   * what the transaction then holds of it. A failed call may be called again after a reconnect.
   */
  takeChunks(): (() => Promise<TxChunk>)[];
  /** Writes again a chunk the lost transaction held (isolating rows rejected now). */
  resend(chunk: TxChunk): Promise<TxChunk>;
}

/** True when `record` can fill a row: an object (not null, not an array) whose fields name columns. */
export function isRowObject(record: unknown): record is Record<string, unknown> {
  return record !== null && typeof record === 'object' && !Array.isArray(record);
}

/** The COPY text of `rows` (each row's `line`), as UTF-8. */
export function payloadOf(rows: readonly Row[]): Buffer {
  let text = '';
  for (const r of rows) text += r.line as string;
  return Buffer.from(text, 'utf8');
}

/**
 * The {@link IsolationTarget} of `target`: statements on the main connection, `write` as one
 * COPY (`insert`, from the payload or the rows' lines) or one multi-row INSERT (`upsert`).
 */
export function isolationTarget(target: WriteTarget, mode: 'insert' | 'upsert'): IsolationTarget<Row> {
  const { conn, shape } = target;
  const n = shape.columns.length;
  return {
    columnsPerRow: n,
    exec: (sql) => conn.query(sql),
    reject: (row, err) => target.reject(row, err),
    async write(rows, payload) {
      if (mode === 'insert') {
        await conn.copy(shape.copySql, payload ?? payloadOf(rows));
        return;
      }
      const values: (string | null)[] = [];
      let sql = shape.insertHead;
      for (let i = 0; i < rows.length; i++) {
        sql += i === 0 ? '(' : ', (';
        for (let j = 0; j < n; j++) sql += j === 0 ? `$${i * n + j + 1}` : `, $${i * n + j + 1}`;
        sql += ')';
        for (const v of (rows[i] as Row).params as (string | null)[]) values.push(v);
      }
      await conn.query(sql + shape.upsertTail, values);
    },
  };
}
