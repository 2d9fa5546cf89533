/**
 * Finding the rows the database rejects without losing the others. A chunk of rows is written
 * inside a savepoint; when the server rejects it for one row (a class 22 data exception or a
 * class 23 constraint violation) the sink rolls back to the savepoint, takes the culprit from
 * the error when it names one (`COPY t, line N`, `parameter $N`) and writes the rows around it
 * again, or else bisects: each half is tried alone, recursively. After {@link MANY_FAILURES}
 * rejections in one chunk the rest goes row by row (one savepoint per row costs less than
 * resending the rest each time). Knows nothing of connections or COPY: it drives an
 * {@link IsolationTarget}, so it is tested with a fake one.
 */
import type { PgError } from '../../clients/postgres.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import { toJsonLine } from '../../formats/jsonl.ts';

/** Rejections in one chunk after which the rest of it is written row by row. */
export const MANY_FAILURES = 16;

/** True for SQLSTATE classes that blame one row: data exceptions (22) and integrity violations (23). */
export function isRowError(err: unknown): boolean {
  const code = (err as PgError | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * The index among `count` rows of the row `err` names: the COPY line in its context (`COPY t,
 * line 3` → 2) or the INSERT parameter (`parameter $7` with 3 columns per row → 2). Undefined
 * when it names none or one outside the chunk.
 */
export function culprit(err: PgError, count: number, columnsPerRow: number): number | undefined {
  const w = err.where ?? '';
  let m = /COPY [^,]+, line (\d+)/.exec(w);
  if (m !== null) {
    const i = Number(m[1]) - 1;
    return i >= 0 && i < count ? i : undefined;
  }
  m = /parameter \$(\d+)/.exec(w);
  if (m !== null) {
    const i = Math.floor((Number(m[1]) - 1) / columnsPerRow);
    return i >= 0 && i < count ? i : undefined;
  }
  return undefined;
}

/** The column an error names: its `column` field or its context line (`COPY t, line 2, column amount: "abc"`). */
export function columnOf(err: PgError): string | undefined {
  if (err.column !== undefined) return err.column;
  const w = err.where ?? '';
  const at = w.indexOf(', column ');
  if (at < 0) return undefined;
  const rest = w.slice(at + 9);
  const end = rest.indexOf(':');
  return end < 0 ? rest : rest.slice(0, end);
}

/**
 * The error a rejected row's dead letter carries (`SLUICE_RECORD`): the table, the row's source
 * position, the column, the server's message, detail and context, and what to do.
 */
export function rejectedRowError(
  where: string,
  table: string,
  err: PgError,
  meta: RecordMeta | undefined,
): SluiceError {
  const column = columnOf(err);
  const pos = meta?.position !== undefined ? ` (from ${toJsonLine(meta.position)})` : '';
  const detail = [err.detail, err.where].filter((x) => x !== undefined && x !== '').join('; ');
  return new SluiceError(
    ErrorCode.RECORD,
    `${where} rejected a row${pos}${column !== undefined ? `, column \`${column}\`` : ''}: ${err.message}${detail !== '' ? ` (${detail})` : ''}; fix the record upstream or the table's constraint — the other rows were written`,
    {
      table,
      ...(column !== undefined ? { field: column } : {}),
      ...(err.constraint !== undefined ? { constraint: err.constraint } : {}),
      sqlState: err.code,
    },
  );
}

/** What {@link writeIsolating} drives: the open transaction, seen as rows of type `R`. */
export interface IsolationTarget<R> {
  /** Runs a statement on the open transaction (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`). */
  exec(sql: string): Promise<unknown>;
  /**
   * Writes `rows` in one statement (a COPY or a multi-row INSERT); `payload`, when given, is
   * their COPY text already encoded. Rejects with the server's error.
   */
  write(rows: readonly R[], payload?: Buffer): Promise<void>;
  /** Columns per row, to map an INSERT parameter number to its row. */
  readonly columnsPerRow: number;
  /** Called once per row the database rejected, with the error that names it. */
  reject(row: R, err: PgError): void;
}

/** Rejections so far in the chunk being written (shared by the recursive calls). */
export interface IsolationState {
  failures: number;
}

const SAVEPOINT = 'SAVEPOINT sluice_rows';
const RELEASE = 'RELEASE SAVEPOINT sluice_rows';
const ROLLBACK = 'ROLLBACK TO SAVEPOINT sluice_rows; RELEASE SAVEPOINT sluice_rows';

/**
 * Runs `write` inside a savepoint. Resolves with undefined when it succeeded, or with the
 * server's error when it rejected a row (the savepoint is rolled back: the transaction goes on
 * without those rows); any other failure is thrown (the caller's retry reconnects).
 */
export async function inSavepoint<R>(
  target: IsolationTarget<R>,
  write: () => Promise<void>,
): Promise<PgError | undefined> {
  await target.exec(SAVEPOINT);
  try {
    await write();
    await target.exec(RELEASE);
    return undefined;
  } catch (err) {
    if (!isRowError(err)) throw err;
    await target.exec(ROLLBACK);
    return err as PgError;
  }
}

/**
 * Writes `rows` inside a savepoint; a row the database rejects goes to `target.reject` and the
 * others are written again. Resolves with the rows accepted, in order (`rows` itself when all
 * were). `payload`: the rows' COPY text when already encoded.
 *
 * @example
 * const ok = await writeIsolating(target, rows);
 * // ok.length + rejected rows === rows.length
 */
export async function writeIsolating<R>(
  target: IsolationTarget<R>,
  rows: R[],
  state: IsolationState = { failures: 0 },
  payload?: Buffer,
): Promise<R[]> {
  if (rows.length === 0) return rows;
  if (state.failures >= MANY_FAILURES && rows.length > 1) {
    const ok: R[] = [];
    for (const row of rows) for (const r of await writeIsolating(target, [row], state)) ok.push(r);
    return ok;
  }
  const err = await inSavepoint(target, () => target.write(rows, payload));
  if (err === undefined) return rows;
  state.failures++;
  return isolate(target, rows, err, state);
}

/**
 * After `rows` were rejected together with `err` (and rolled back): the row `err` names goes to
 * `target.reject` and the others are written again; when it names none, each half is written
 * alone. Resolves with the rows accepted, in order.
 */
export async function isolate<R>(
  target: IsolationTarget<R>,
  rows: R[],
  err: PgError,
  state: IsolationState,
): Promise<R[]> {
  const bad = rows.length === 1 ? 0 : culprit(err, rows.length, target.columnsPerRow);
  if (bad !== undefined) {
    target.reject(rows[bad] as R, err);
    const before = await writeIsolating(target, rows.slice(0, bad), state);
    const after = await writeIsolating(target, rows.slice(bad + 1), state);
    return before.concat(after);
  }
  const mid = rows.length >> 1;
  const left = await writeIsolating(target, rows.slice(0, mid), state);
  return left.concat(await writeIsolating(target, rows.slice(mid), state));
}
