/**
 * The `statement` writer of the `postgres` sink: each record runs one parameterised SQL statement
 * (`SELECT ledger_apply($1, $2, $3)`, a conditional `UPDATE … WHERE balance >= $2`) inside the
 * sink's open transaction, its parameters taken from the record fields `params` names (as text the
 * server parses with the parameter's type). Statements run one after another in record order, so
 * a statement that locks rows (`SELECT … FOR UPDATE`) sees every earlier record's effect. With
 * `exactlyOnce` they commit with the checkpoint's source positions, so each runs exactly once in
 * the committed state. A row the statement rejects (class 22/23, or a `RAISE` with such a SQLSTATE)
 * goes to the `dlq` output, found by bisection as for the other writers.
 */
import type { RecordMeta } from '../../core/message.ts';
import { type ColumnInfo, columnInfo, paramValues } from './encode.ts';
import { type IsolationTarget, writeIsolating } from './isolate.ts';
import { isRowObject, type Row, type TableWriter, type TxChunk, type WriteTarget } from './rows.ts';

/** The {@link TableWriter} of `statement` mode; see the module comment. */
export class StatementWriter implements TableWriter {
  #buffer: Row[] = [];
  readonly #params: readonly ColumnInfo[];
  readonly #isolation: IsolationTarget<Row>;
  readonly #batchSize: number;

  /** `statement`: the SQL, with `$1`… for the fields of `params`, in order; `batchSize`: rows per savepoint. */
  constructor(target: WriteTarget, statement: string, params: readonly string[], batchSize: number) {
    // `text` parameters: the value as written, typed by the statement (`$1::bigint`, a function's signature).
    this.#params = params.map((name) => columnInfo(name, 'text'));
    this.#batchSize = batchSize;
    this.#isolation = {
      // Large, so an error naming `parameter $N` never maps to a row: rows are found by bisection.
      columnsPerRow: Number.MAX_SAFE_INTEGER,
      exec: (sql) => target.conn.query(sql),
      reject: (row, err) => target.reject(row, err),
      async write(rows) {
        for (const row of rows) await target.conn.query(statement, row.params as (string | null)[]);
      },
    };
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  add(
    records: readonly unknown[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    notObject: (record: unknown, meta: RecordMeta | undefined) => void,
  ): void {
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      if (!isRowObject(record)) {
        notObject(record, meta?.[i]);
        continue;
      }
      this.#buffer.push({ record, meta: meta?.[i], params: paramValues(record, this.#params) });
    }
  }

  takeChunks(): (() => Promise<TxChunk>)[] {
    const rows = this.#buffer;
    this.#buffer = [];
    const out: (() => Promise<TxChunk>)[] = [];
    for (let i = 0; i < rows.length; i += this.#batchSize) {
      const chunk = rows.slice(i, i + this.#batchSize);
      out.push(() => this.#write(chunk));
    }
    return out;
  }

  resend(chunk: TxChunk): Promise<TxChunk> {
    return this.#write(chunk.rows ?? []);
  }

  async #write(rows: Row[]): Promise<TxChunk> {
    const ok = await writeIsolating(this.#isolation, rows);
    return { rows: ok, count: ok.length };
  }
}
