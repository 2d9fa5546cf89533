/**
 * The `postgres` source: reads a table (or the rows of a query) incrementally, in the order of
 * a monotonic column (an integer id, a sequence, a timestamp), with `pg`.
 *
 * - Each poll reads the next rows after the cursor with parameters only (values are never put
 *   into SQL text; identifiers are quoted by the server, `regclass`, or `escapeIdentifier`):
 *   with a tie-breaker `key`, `WHERE (column, key) > ($1, $2) ORDER BY column, key LIMIT n`;
 *   without one, `WHERE column > $1 ORDER BY column LIMIT n` when a unique index covers
 *   `column` alone, else every row up to and including the `n`-th row's column value — all its
 *   ties with it — so a batch never ends in the middle of a group of equal values.
 * - The cursor is the last row's `column` (and `key`) as the server's own text, so it compares
 *   exactly (no float, no millisecond rounding of a microsecond timestamp). `position()` is that
 *   cursor; a checkpoint stores it and `restore` resumes right after it. Without checkpoints a run
 *   starts from the beginning (or `after`).
 * - Values keep their exact types: `numeric` as a {@link Decimal} at the column's scale (`NaN` and
 *   the infinities, which are no decimal, as strings), `bigint` as a decimal string — what the sink's
 *   encoder writes back unchanged — timestamps as ISO-8601 strings with microseconds
 *   (`timestamptz` in UTC with `Z`; `timestamp` without a zone), dates as `YYYY-MM-DD`.
 * - `follow: false` ends the input once caught up; `follow: true` polls every `pollInterval`.
 *   `lag` reads only rows whose timestamp column is at least that old (by the server's clock), a
 *   guard against rows that commit out of column order under concurrent writers (see README).
 * - A lost connection or a restarting server is retried with backoff until `retryTimeout`, through
 *   the one retry policy (`retryingPg`: `core/retry.ts` with PostgreSQL's wording).
 */
import type pg from 'pg';
import { type PgError, pgLib, retryingPg } from '../../clients/postgres.ts';
import { pgConnectFailure, pgTlsSettings } from '../../clients/postgres-tls.ts';
import type { TlsConfig } from '../../clients/tls.ts';
import { Decimal } from '../../core/decimal.ts';
import { cancelledError, ErrorCode, errorMessage, SluiceError, wrapError } from '../../core/errors.ts';
import type { Position, RecordMeta } from '../../core/message.ts';
import type { Source, SourceContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';

/** Options of {@link postgresSource} (the parsed YAML config). */
export interface PostgresSourceOptions {
  /** Connection URL, `postgres://user:password@host:port/database` (`?sslmode=…` honoured). */
  url: string;
  /** TLS settings (`true`: the system's CAs); see `clients/postgres-tls.ts`. */
  tls?: TlsConfig | true | undefined;
  /** Table to read, optionally schema-qualified; or `query`. */
  table?: string | undefined;
  /** A SELECT whose rows are read; or `table`. */
  query?: string | undefined;
  /** The monotonic column rows are read in the order of. */
  column: string;
  /** A unique column that orders rows with the same `column` value (strongly advised). */
  key?: string | undefined;
  /** Most rows per query (without `key`, a batch may exceed it by the ties of its last value). */
  batchSize: number;
  /** How often a caught-up `follow` source polls, ms. */
  pollInterval: number;
  /** Keep polling for new rows; false: end when caught up. */
  follow: boolean;
  /** Read only rows whose (timestamp) `column` is at least this many ms old. */
  lag?: number | undefined;
  /** Start after this `column` value (text the server parses with the column's type). */
  after?: string | undefined;
  /** How long (ms) a failing query is retried before the run fails. */
  retryTimeout: number;
}

/** A {@link Source} reading PostgreSQL; see {@link postgresSource}. */
export interface PostgresSource extends Source<unknown> {
  /** Rows emitted so far. */
  readonly rows: number;
}

/** Types a cursor column may have: integers, numeric, timestamps and dates. */
const MONOTONIC_TYPES = new Map<number, string>([
  [20, 'bigint'],
  [21, 'smallint'],
  [23, 'integer'],
  [1700, 'numeric'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1082, 'date'],
]);
const TIME_TYPES = new Set([1114, 1184, 1082]);

/** Names of the two cursor columns appended to every row (as text) and not part of the record. */
const POS_COLUMN = 'sluice$column';
const POS_KEY = 'sluice$key';

/** `2026-01-31 12:00:00.123456+00` (session time zone UTC) → `2026-01-31T12:00:00.123456Z`. */
function isoTimestamptz(text: string): string {
  if (text.length < 19 || text.charCodeAt(4) !== 45) return text; // infinity, BC dates: as the server says
  const t = `${text.slice(0, 10)}T${text.slice(11)}`;
  return t.endsWith('+00') ? `${t.slice(0, -3)}Z` : t;
}

/** `2026-01-31 12:00:00.123456` → `2026-01-31T12:00:00.123456`. */
function isoTimestamp(text: string): string {
  if (text.length < 19 || text.charCodeAt(4) !== 45) return text;
  return `${text.slice(0, 10)}T${text.slice(11)}`;
}

const identity = (text: string): string => text;

/** `numeric` text as an exact {@link Decimal}; `NaN` and `±Infinity` stay strings. */
const numeric = (text: string): Decimal | string => Decimal.parse(text) ?? text;

/**
 * Type parsers of this source's connections: exact text for int8 (pg's default), a Decimal for numeric,
 * ISO-8601 strings for timestamps and dates (pg's default would make a millisecond Date).
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1184) return isoTimestamptz;
    if (oid === 1114) return isoTimestamp;
    if (oid === 1082) return identity;
    if (oid === 1700) return numeric;
    return (
      pgLib().types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (text: string) => unknown
    )(oid, format);
  },
};

/**
 * A source reading `options.table` (or `options.query`) in the order of `options.column`.
 *
 * @example
 * const source = postgresSource({
 *   url: 'postgres://sluice:sluice@127.0.0.1:5432/sluice', table: 'orders', column: 'updated_at',
 *   key: 'id', batchSize: 1000, pollInterval: 1000, follow: false, retryTimeout: 120_000,
 * });
 * await new Pipeline('orders').from(source).to(fileSink({ path: 'orders.jsonl', format: 'jsonl' })).run().done;
 */
export function postgresSource(options: PostgresSourceOptions): PostgresSource {
  const { column, key, batchSize } = options;
  if ((options.table === undefined) === (options.query === undefined)) {
    throw new SluiceError(ErrorCode.CONFIG, 'the postgres source needs exactly one of `table` and `query`');
  }
  const what = options.table !== undefined ? `table \`${options.table}\`` : 'the query';
  const where = `${what} on ${redactUrl(options.url)}`;
  let ctx: SourceContext;
  let client: pg.Client | undefined;
  /** The cursor: the last emitted row's column and key values, as the server's text. */
  let cursorColumn: string | undefined = options.after;
  let cursorKey: string | undefined;
  let restored = false;
  let rows = 0;
  let polls = 0;
  let retries = 0;
  /** The SQL of a poll after the cursor, and of the first poll (no cursor yet). */
  let nextSql = '';
  let firstSql = '';
  /** With `key`: the poll after a column value alone (`after`). */
  let afterSql = '';
  let columnIsTime = false;

  async function connect(): Promise<pg.Client> {
    const c = new (pgLib().Client)({
      ...pgTlsSettings(options.url, options.tls),
      application_name: 'sluice source',
      types,
    });
    c.on('error', () => {}); // a broken idle connection: the next query fails and is retried
    try {
      await c.connect();
      await c.query("SET TIME ZONE 'UTC'");
    } catch (err) {
      await c.end().catch(() => {});
      throw pgConnectFailure(err, options.url, options.tls) ?? err;
    }
    return c;
  }

  /**
   * Runs `op` on a connection through the one retry policy (`retryingPg`): a transient failure
   * drops the connection and `op` runs again on a new one, until `retryTimeout`.
   */
  function withRetry<T>(doing: string, op: (c: pg.Client) => Promise<T>): Promise<T> {
    return retryingPg(
      async () => {
        if (client === undefined) client = await connect();
        return op(client);
      },
      {
        url: options.url,
        doing: `${doing} ${what}`,
        where: `${doing} ${where}`,
        timeoutMs: options.retryTimeout,
        setting: 'retryTimeout',
        clock: ctx.clock,
        signal: ctx.signal,
        log: ctx.log,
        logFields: { stage: ctx.name },
        context: { stage: ctx.name, component: 'postgres' },
        onFailure: async () => {
          retries++;
          const broken = client;
          client = undefined;
          await broken?.end();
        },
      },
    );
  }

  /** Resolves the relation, checks `column` and `key`, and builds the two poll statements. */
  async function prepare(c: pg.Client): Promise<void> {
    let from: string;
    /** `column` alone has a unique index: no ties, so the plain `LIMIT` poll is exact. */
    let unique = false;
    if (options.table !== undefined) {
      let r: pg.QueryResult<{ qualified: string }>;
      try {
        r = await c.query('SELECT $1::regclass::text AS qualified', [options.table]);
      } catch (err) {
        const code = (err as PgError).code;
        if (code === '42P01' || code === '42602' || code === '3F000') {
          throw new SluiceError(
            ErrorCode.CONFIG,
            `${where} does not exist (${errorMessage(err)}); check the name and schema (\`schema.table\`)`,
            { table: options.table },
            { cause: err },
          );
        }
        throw err;
      }
      from = `${r.rows[0]?.qualified as string} AS sluice_t`;
      if (key === undefined) {
        const u = await c.query(
          `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
              AND a.attname = $2) AS unique`,
          [options.table, column],
        );
        unique = u.rows[0]?.unique === true;
      }
    } else {
      from = `(${(options.query as string).trim().replace(/;+$/, '')}) AS sluice_t`;
    }
    let probe: pg.QueryResult;
    try {
      probe = await c.query(`SELECT * FROM ${from} LIMIT 0`);
    } catch (err) {
      throw wrapError(`checking ${where}`, err, { component: 'postgres' }, ErrorCode.CONFIG);
    }
    const fields = probe.fields;
    const names = fields.map((f) => `\`${f.name}\``).join(', ');
    const colField = fields.find((f) => f.name === column);
    if (colField === undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `${where} has no column \`${column}\` (\`column\`); its columns are ${names}`,
        { dbColumn: column },
      );
    }
    const colType = MONOTONIC_TYPES.get(colField.dataTypeID);
    if (colType === undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `column \`${column}\` of ${where} has type oid ${colField.dataTypeID}; \`column\` must be an integer, numeric, timestamp or date column that grows with each new row`,
        { dbColumn: column },
      );
    }
    columnIsTime = TIME_TYPES.has(colField.dataTypeID);
    if (key !== undefined && !fields.some((f) => f.name === key)) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `${where} has no column \`${key}\` (\`key\`); its columns are ${names}`,
        {
          key,
        },
      );
    }
    if (options.lag !== undefined && !columnIsTime) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`lag\` needs a timestamp or date \`column\`; \`${column}\` is ${colType}`,
        { dbColumn: column },
      );
    }
    const col = `sluice_t.${pgLib().escapeIdentifier(column)}`;
    const k = key === undefined ? undefined : `sluice_t.${pgLib().escapeIdentifier(key)}`;
    const select = `SELECT sluice_t.*, ${col}::text AS ${pgLib().escapeIdentifier(POS_COLUMN)}${k === undefined ? '' : `, ${k}::text AS ${pgLib().escapeIdentifier(POS_KEY)}`} FROM ${from}`;
    // `$1` is always the lag (NULL without one), so every statement takes parameters the same way.
    const lag = options.lag === undefined ? '$1::interval IS NULL' : `${col} <= now() - $1::interval`;
    if (k !== undefined) {
      firstSql = `${select} WHERE ${col} IS NOT NULL AND ${lag} ORDER BY ${col}, ${k} LIMIT ${batchSize}`;
      nextSql = `${select} WHERE (${col}, ${k}) > ($2, $3) AND ${lag} ORDER BY ${col}, ${k} LIMIT ${batchSize}`;
      afterSql = `${select} WHERE ${col} > $2 AND ${lag} ORDER BY ${col}, ${k} LIMIT ${batchSize}`;
    } else if (unique) {
      firstSql = `${select} WHERE ${col} IS NOT NULL AND ${lag} ORDER BY ${col} LIMIT ${batchSize}`;
      nextSql = `${select} WHERE ${col} > $2 AND ${lag} ORDER BY ${col} LIMIT ${batchSize}`;
    } else {
      // Every row up to the n-th row's value, ties included: a batch never splits a group of equal values.
      const upto = (after: string) =>
        `WITH lim AS (SELECT ${col} AS v FROM ${from} WHERE ${after} AND ${lag} ORDER BY ${col} OFFSET ${batchSize - 1} LIMIT 1) ` +
        `${select} WHERE ${after} AND ${lag} AND (NOT EXISTS (SELECT 1 FROM lim) OR ${col} <= (SELECT v FROM lim)) ORDER BY ${col}`;
      firstSql = upto(`${col} IS NOT NULL`);
      nextSql = upto(`${col} > $2`);
    }
  }

  /** The next rows after the cursor, as records, their meta and the new cursor. */
  async function poll(): Promise<{ records: unknown[]; meta: RecordMeta[]; column?: string; key?: string }> {
    const lag = options.lag === undefined ? null : `${options.lag} milliseconds`;
    let sql: string;
    let params: (string | null)[];
    if (cursorColumn === undefined) {
      sql = firstSql;
      params = [lag];
    } else if (key !== undefined && cursorKey === undefined) {
      sql = afterSql; // resuming from `after` alone: every key of that value is behind the cursor
      params = [lag, cursorColumn];
    } else {
      sql = nextSql;
      params = key === undefined ? [lag, cursorColumn] : [lag, cursorColumn, cursorKey as string];
    }
    const r = await withRetry('reading', (c) => c.query({ text: sql, values: params, rowMode: 'array' }));
    polls++;
    const fields = r.fields;
    const nData = fields.length - (key === undefined ? 1 : 2);
    const names = fields.slice(0, nData).map((f) => f.name);
    const records: unknown[] = new Array(r.rows.length);
    const meta: RecordMeta[] = new Array(r.rows.length);
    const source = ctx.name;
    let lastColumn: string | undefined;
    let lastKey: string | undefined;
    for (let i = 0; i < r.rows.length; i++) {
      const row = r.rows[i] as unknown[];
      const rec: Record<string, unknown> = {};
      for (let j = 0; j < nData; j++) rec[names[j] as string] = row[j];
      records[i] = rec;
      lastColumn = row[nData] as string;
      lastKey = key === undefined ? undefined : (row[nData + 1] as string);
      const position: Record<string, string> = { column: lastColumn };
      if (lastKey !== undefined) position.key = lastKey;
      const m: { source: string; position: Position; timestamp?: number } = { source, position };
      if (columnIsTime) {
        const t = Date.parse(rec[column] as string);
        if (Number.isFinite(t)) m.timestamp = t;
      }
      meta[i] = m;
    }
    const out: { records: unknown[]; meta: RecordMeta[]; column?: string; key?: string } = { records, meta };
    if (lastColumn !== undefined) out.column = lastColumn;
    if (lastKey !== undefined) out.key = lastKey;
    return out;
  }

  return {
    get rows() {
      return rows;
    },
    open(c) {
      ctx = c;
    },
    restore(position: Position) {
      const col = position.column;
      if (typeof col !== 'string') {
        throw new SluiceError(
          ErrorCode.STAGE,
          `restoring the postgres source of ${what}: the checkpoint holds no \`column\` position; delete the checkpoint folder to start over`,
        );
      }
      if (key !== undefined && typeof position.key !== 'string') {
        throw new SluiceError(
          ErrorCode.STAGE,
          `restoring the postgres source of ${what}: the checkpoint was taken without \`key\`; delete the checkpoint folder to start over, or drop \`key\``,
        );
      }
      cursorColumn = col;
      cursorKey = typeof position.key === 'string' ? position.key : undefined;
      restored = true;
    },
    async run(out, c) {
      ctx = c;
      try {
        await withRetry('opening', prepare);
      } catch (err) {
        if (err instanceof SluiceError) throw err;
        throw wrapError(`opening ${where}`, err, { component: 'postgres' });
      }
      if (restored)
        ctx.log.info(`Resuming ${where} after \`${column}\` = ${cursorColumn}`, { stage: ctx.name });
      while (!ctx.stopSignal.aborted) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        let batch: Awaited<ReturnType<typeof poll>>;
        try {
          batch = await poll();
        } catch (err) {
          if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
          throw wrapError(`reading ${where}`, err, {
            component: 'postgres',
            sqlState: (err as PgError).code,
          });
        }
        if (batch.records.length > 0) {
          // The cursor moves before the emit: `position()` read during it covers these rows.
          cursorColumn = batch.column;
          cursorKey = batch.key;
          rows += batch.records.length;
          await out.emit({ kind: 'batch', records: batch.records, meta: batch.meta });
        }
        if (batch.records.length >= batchSize) continue;
        if (!options.follow) break;
        try {
          await ctx.clock.sleep(options.pollInterval, AbortSignal.any([ctx.signal, ctx.stopSignal]));
        } catch {
          // stopped or cancelled: the loop condition or the next check says which
        }
      }
      if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
    },
    position() {
      if (cursorColumn === undefined) return undefined;
      const pos: Record<string, string> = { column: cursorColumn };
      if (cursorKey !== undefined) pos.key = cursorKey;
      return pos;
    },
    metrics() {
      return { rows, polls, retries };
    },
    async close() {
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
