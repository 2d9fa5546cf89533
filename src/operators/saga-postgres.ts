/**
 * A saga action or compensation that runs one PostgreSQL statement, idempotently: in one
 * transaction it first claims the call's idempotency key (`<sagaId>:<step>`, `…:compensate`) in
 * a table of done calls (`sluice_saga_calls` unless `table` says otherwise), then runs the
 * statement. The claim and the effect commit together or not at all, so a call retried after a
 * timeout, or run again after a crash between its commit and the saga log's entry, finds its key
 * taken and does nothing: the step is applied once. A concurrent retry of the same key waits on
 * the first one's row lock and then skips too.
 *
 * Errors: a connection failure, a serialization failure or a deadlock is retried by the saga
 * (see `isTransientPgError`); any other server error (a `CHECK` constraint, a missing column)
 * and a statement that touched fewer rows than `minRows` fail the step at once, and the saga
 * compensates. On a timeout or cancellation the connection is dropped, so the server rolls the
 * transaction back.
 */
import type Pg from 'pg';
import { isTransientPgError, type PgError, pgLib, serverOf } from '../clients/postgres.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { SagaCall, SagaStepContext } from './saga.ts';

/** Options of {@link postgresCall}. */
export interface PostgresCallOptions {
  /** The connection URL, e.g. `postgres://user:pass@127.0.0.1:5432/db`. */
  readonly url: string;
  /** One SQL statement, with `$1`, `$2`… for the fields of `params`. */
  readonly statement: string;
  /** The record fields passed as `$1`, `$2`, … (as text; the statement casts them). Default none. */
  readonly params?: readonly string[];
  /** The statement must touch at least this many rows, else the step fails (not retried). Default 0. */
  readonly minRows?: number;
  /** The table of done calls (created when missing). Default `sluice_saga_calls`. */
  readonly table?: string;
}

/** The default table of done saga calls. */
export const SAGA_CALLS_TABLE = 'sluice_saga_calls';

/** A connection pool per URL, shared by every call of one saga operator that names the URL. */
export class SagaPools {
  readonly #pools = new Map<string, { pool: Pg.Pool; tables: Map<string, Promise<void>> }>();

  /** The pool for `url` (created on first use) and the promise that `table` exists. */
  get(url: string, table: string): { pool: Pg.Pool; ready: Promise<void> } {
    let entry = this.#pools.get(url);
    if (entry === undefined) {
      const pool = new (pgLib().Pool)({ connectionString: url, max: 8 });
      // An idle client's connection dropping must not crash the process; the next query reconnects.
      pool.on('error', () => {});
      entry = { pool, tables: new Map() };
      this.#pools.set(url, entry);
    }
    let ready = entry.tables.get(table);
    if (ready === undefined) {
      ready = createTable(entry.pool, table);
      // A failed creation (server down) is tried again by the next call.
      ready.catch(() => entry.tables.delete(table));
      entry.tables.set(table, ready);
    }
    return { pool: entry.pool, ready };
  }

  /** Closes every pool; called when the saga operator closes. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.pool.end().catch(() => {})));
  }
}

async function createTable(pool: Pg.Pool, table: string): Promise<void> {
  try {
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${quoteName(table)} (key text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`,
    );
  } catch (err) {
    // Two creations at once: the loser fails on the catalog's unique index; the table exists.
    const code = (err as PgError).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}

/** `name` or `schema.name` as a quoted SQL identifier. */
function quoteName(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p.replaceAll('"', '""')}"`)
    .join('.');
}

/** A record field as a statement parameter: text, or null. */
function param(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON !== 'function')
    return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  return String(value);
}

/**
 * An action or compensation running `statement` once per saga call, idempotently (see the module
 * comment). `pools` holds the connections; the saga closes them when it closes.
 *
 * @example
 * { name: 'debit', action: postgresCall({ url, statement: 'UPDATE accounts SET balance = balance - $2::numeric WHERE id = $1', params: ['from', 'amount'], minRows: 1 }, pools) }
 */
export function postgresCall<I>(options: PostgresCallOptions, pools: SagaPools): SagaCall<I> {
  const table = options.table ?? SAGA_CALLS_TABLE;
  const params = options.params ?? [];
  const minRows = options.minRows ?? 0;
  const where = `PostgreSQL ${serverOf(options.url).address}`;
  return async (s: SagaStepContext<I>) => {
    const { pool, ready } = pools.get(options.url, table);
    const fail = (what: string, err: unknown, retryable: boolean) =>
      new SluiceError(
        ErrorCode.STAGE,
        `${where}: ${what}: ${errorMessage(err)}`,
        {},
        { cause: err, retryable },
      );
    let client: Pg.PoolClient;
    try {
      await ready;
      client = await pool.connect();
    } catch (err) {
      throw fail('connecting', err, true);
    }
    let broken: unknown;
    const abort = () => {
      // Dropping the connection makes the server roll back whatever the transaction did; it
      // notices at its next read or write, so the backend is also terminated (best effort), or a
      // statement that waits (a lock, a sleep) would hold the claimed key until it ends.
      broken = s.signal.reason;
      const pid = (client as unknown as { processID?: number }).processID;
      client.on('error', () => {});
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      if (pid !== undefined) pool.query('SELECT pg_terminate_backend($1)', [pid]).catch(() => {});
    };
    s.signal.addEventListener('abort', abort, { once: true });
    try {
      if (s.signal.aborted) throw s.signal.reason;
      await client.query('BEGIN');
      const claimed = await client.query(
        `INSERT INTO ${quoteName(table)} (key) VALUES ($1) ON CONFLICT (key) DO NOTHING`,
        [s.idempotencyKey],
      );
      if (claimed.rowCount === 0) {
        await client.query('ROLLBACK');
        return { skipped: true };
      }
      const values = params.map((f) => param((s.record as Record<string, unknown>)[f]));
      const result = await client.query(options.statement, values);
      const rows = result.rowCount ?? 0;
      if (rows < minRows) {
        await client.query('ROLLBACK');
        throw new SluiceError(
          ErrorCode.STAGE,
          `${where}: the statement touched ${rows} row(s), fewer than minRows ${minRows} (params ${JSON.stringify(values)})`,
          {},
          { retryable: false },
        );
      }
      await client.query('COMMIT');
      return { rows };
    } catch (err) {
      if (broken === undefined) await client.query('ROLLBACK').catch(() => {});
      if (err instanceof SluiceError) throw err;
      if (broken !== undefined) throw fail('cancelled', err, true);
      throw fail('running the statement', err, isTransientPgError(err));
    } finally {
      s.signal.removeEventListener('abort', abort);
      client.release(broken !== undefined ? new Error('cancelled') : undefined);
    }
  };
}
