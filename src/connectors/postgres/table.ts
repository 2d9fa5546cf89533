/**
 * What the `postgres` sink learns about its table when it opens (Vector's `config.rs` role: the
 * settings checked against the server, once): the columns it fills and their types, the COPY and
 * INSERT statements built from them, the upsert key's unique index, and what exactly-once needs
 * (checkpoints, `max_prepared_transactions`, the offsets table).
 */
import type pg from 'pg';
import { type PgError, pgLib } from '../../clients/postgres.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { type ColumnInfo, columnInfo } from './encode.ts';

/**
 * Name of the table holding the source positions of exactly-once sinks: one row per pipeline,
 * sink, checkpoint and source. Each checkpoint's transaction only inserts its own rows, so two
 * prepared checkpoints never wait on each other's row locks (with one row per source updated in
 * place, checkpoint n + 1 would wait for the commit of n, forever if that never comes); older
 * rows are deleted once a later checkpoint is committed.
 */
export const OFFSETS_TABLE = 'sluice_sink_offsets';

/** The table as the sink writes it; see {@link describeTable}. */
export interface TableShape {
  /** The columns filled, in statement order. */
  readonly columns: readonly ColumnInfo[];
  /** `COPY <table> (<columns>) FROM STDIN`. */
  readonly copySql: string;
  /** `upsert`: `INSERT INTO <table> (<columns>) VALUES `, before the rows of parameters. */
  readonly insertHead: string;
  /** `upsert`: ` ON CONFLICT (<key>) DO UPDATE SET …` (or `DO NOTHING`), after them. */
  readonly upsertTail: string;
}

/** What {@link describeTable} checks. */
export interface TableRequest {
  /** The table as configured (`public.t`, `"Odd"`). */
  readonly table: string;
  /** ``table `t` at postgres://…``, for messages. */
  readonly where: string;
  readonly mode: 'insert' | 'upsert' | 'statement';
  readonly key?: readonly string[] | undefined;
  readonly columns?: readonly string[] | undefined;
}

/**
 * Reads the table's columns on `c` and builds the statements. Rejects with a `SLUICE_CONFIG`
 * error saying what to do when the table does not exist, a configured column is missing, or
 * `upsert` has no `key` or no unique index on exactly it; with the client's error otherwise (a
 * transient one is retried by the caller).
 */
export async function describeTable(c: pg.Client, req: TableRequest): Promise<TableShape> {
  const { table, where } = req;
  let r: pg.QueryResult<{ name: string; type: string; generated: boolean; qualified: string }>;
  try {
    r = await c.query(
      `SELECT a.attname AS name, t.typname AS type, (a.attgenerated <> '' OR a.attidentity = 'a') AS generated,
              $1::regclass::text AS qualified
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [table],
    );
  } catch (err) {
    if ((err as PgError).code === '42P01') {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `${where} does not exist; create it first (CREATE TABLE ${table} (…) with one column per record field)`,
        { table },
        { cause: err },
      );
    }
    throw err;
  }
  const quotedTable = r.rows[0]?.qualified ?? table;
  const all = r.rows;
  let chosen = all.filter((x) => !x.generated);
  if (req.columns !== undefined) {
    const missing = req.columns.filter((name) => !all.some((x) => x.name === name));
    if (missing.length > 0) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `${where} has no column ${missing.map((m) => `\`${m}\``).join(', ')}; its columns are ${all.map((x) => `\`${x.name}\``).join(', ')}`,
        { table },
      );
    }
    chosen = req.columns.map((name) => all.find((x) => x.name === name) as (typeof all)[number]);
  }
  const columns = chosen.map((x) => columnInfo(x.name, x.type));
  const quote = (name: string) => pgLib().escapeIdentifier(name);
  const list = columns.map((x) => quote(x.name)).join(', ');
  const shape = {
    columns,
    copySql: `COPY ${quotedTable} (${list}) FROM STDIN`,
    insertHead: `INSERT INTO ${quotedTable} (${list}) VALUES `,
    upsertTail: '',
  };
  if (req.mode !== 'upsert') return shape;
  const key = req.key ?? [];
  const notFilled = key.filter((k) => !columns.some((x) => x.name === k));
  if (key.length === 0 || notFilled.length > 0) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      key.length === 0
        ? `upsert into ${where} needs \`key\`: the columns of a unique index (e.g. key: [id])`
        : `upsert key ${notFilled.map((k) => `\`${k}\``).join(', ')} is not among the columns written to ${where}`,
      { table },
    );
  }
  const idx = await c.query(
    `SELECT 1 FROM pg_index i
      WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
        AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
              WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = $2::text[]`,
    [table, [...key].sort()],
  );
  if (idx.rowCount === 0) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `upsert into ${where} needs a unique index on exactly (${key.join(', ')}); create one (CREATE UNIQUE INDEX ON ${table} (${key.join(', ')})) or fix \`key\``,
      { table },
    );
  }
  const others = columns.filter((x) => !key.includes(x.name));
  const conflict = key.map(quote).join(', ');
  shape.upsertTail =
    others.length === 0
      ? ` ON CONFLICT (${conflict}) DO NOTHING`
      : ` ON CONFLICT (${conflict}) DO UPDATE SET ${others.map((x) => `${quote(x.name)} = EXCLUDED.${quote(x.name)}`).join(', ')}`;
  return shape;
}

/**
 * Checks what `exactlyOnce` needs and creates {@link OFFSETS_TABLE} when missing. Rejects with a
 * `SLUICE_CONFIG` error saying what to do without checkpoints (`checkpointing` false) or when the
 * server allows fewer than 2 prepared transactions.
 */
export async function checkExactlyOnce(
  c: pg.Client,
  checkpointing: boolean,
  table: string,
  where: string,
): Promise<void> {
  if (!checkpointing) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`exactlyOnce\` on ${where} needs checkpoints: add \`checkpoint: { interval: 10s }\` to the pipeline, or set \`exactlyOnce: false\``,
      { table },
    );
  }
  const r = await c.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions');
  if (Number(r.rows[0]?.max_prepared_transactions ?? 0) < 2) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`exactlyOnce\` on ${where} commits in two phases, but the server has max_prepared_transactions = ${r.rows[0]?.max_prepared_transactions}; set it to at least 2 (e.g. 64) in postgresql.conf and restart the server`,
      { table },
    );
  }
  await c.query(`CREATE TABLE IF NOT EXISTS ${OFFSETS_TABLE} (
    pipeline text NOT NULL, sink text NOT NULL, checkpoint_id bigint NOT NULL, source text NOT NULL,
    position jsonb, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, sink, checkpoint_id, source))`);
}
