/**
 * A {@link StateBackend} in a PostgreSQL table, so that checkpoints live in a database the team
 * already runs and backs up, and many pipelines share it (one namespace each).
 *
 * Layout: `sluice_state (namespace text, key bytea, value bytea, PRIMARY KEY (namespace, key))`,
 * created when missing. Keys are stored as their UTF-8 bytes, so the primary-key order is the
 * byte order the contract asks for, whatever the database's collation, and a prefix listing is
 * an index range scan.
 */

import type pg from 'pg';
import { isTransientPgError, type PgError, pgCopyLib, pgLib, serverOf } from '../clients/postgres.ts';
import { pgConnectFailure, pgTlsSettings } from '../clients/postgres-tls.ts';
import type { TlsConfig } from '../clients/tls.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';
import type { StateBackend } from './backend.ts';
import { keyBytes, prefixEnd } from './keys.ts';
import { serialCalls } from './retry.ts';

/** Options of {@link postgresBackend}. */
export interface PostgresBackendOptions {
  /** Connection URL, `postgres://user:password@host:port/database` (`?sslmode=…` honoured). */
  readonly url: string;
  /** TLS settings (`true`: the system's CAs); see `clients/postgres-tls.ts`. */
  readonly tls?: TlsConfig | true | undefined;
  /** Keys of this store are kept apart from other namespaces in the same table (e.g. the pipeline name). */
  readonly namespace: string;
  /** Table, optionally schema-qualified (`ops.sluice_state`); created when missing. Default `sluice_state`. */
  readonly table?: string | undefined;
  /** How long (ms) an operation is retried across connection failures before it fails. Default 60 000. */
  readonly retryTimeoutMs?: number | undefined;
  /** Where retries are reported. */
  readonly log?: Pick<Logger, 'warn'> | undefined;
  /** Raw bytes (keys + values) per statement of a write; larger writes take several, in one transaction. Default 32 MB. */
  readonly chunkBytes?: number | undefined;
  /** Test hook: called after each statement of a multi-statement write, inside its transaction. */
  readonly afterChunk?: ((chunk: number) => void) | undefined;
}

/** The default table of {@link postgresBackend}. */
export const DEFAULT_STATE_TABLE = 'sluice_state';

/**
 * Raw bytes per statement of a write (keys + values), by default. A larger write is split into
 * several statements inside one transaction: each bytea travels hex-encoded in an array literal,
 * so a bound keeps a statement well under PostgreSQL's 1 GB message limit.
 */
const CHUNK_BYTES = 32 << 20;

/**
 * Values this large go in a statement of their own as a binary parameter: half the bytes of
 * the hex text an array literal needs, and no array parsing on the server.
 */
const BIG_VALUE = 64 << 10;

/** The signature that starts PostgreSQL's binary COPY format. */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * The one field of the first row of a binary COPY (`undefined` when there is no row): the
 * signature, flags and header extension, then per row a field count, and per field its length
 * (-1: NULL) and bytes.
 */
function copiedValue(data: Buffer): Buffer | undefined {
  if (data.length < 21 || !data.subarray(0, 11).equals(COPY_SIGNATURE))
    throw new Error('unexpected COPY output: not the binary format');
  let at = 15;
  at += 4 + data.readUInt32BE(at);
  if (data.readInt16BE(at) !== 1) return undefined;
  const len = data.readInt32BE(at + 2);
  if (len < 0) return undefined;
  return data.subarray(at + 6, at + 6 + len);
}

/** `"schema"."table"` from `schema.table` or `table`; throws for anything else. */
function quoteTable(table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || parts.some((p) => !/^[A-Za-z_][A-Za-z0-9_$]*$/.test(p)))
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${table}\` is not a table name for the state store; use letters, digits and \`_\`, optionally \`schema.table\``,
      { table },
    );
  return parts.map((p) => `"${p}"`).join('.');
}

/**
 * A {@link StateBackend} in PostgreSQL (the `pg` client, loaded on first use so that runs
 * without it do not pay for it).
 *
 * - `write` is one transaction: deletes and upserts (`INSERT … SELECT FROM unnest($keys, $values)
 *   ON CONFLICT DO UPDATE`) in a single statement, or several inside `BEGIN`/`COMMIT` for writes
 *   over 32 MB. It resolves after `COMMIT` returns; the session runs with `synchronous_commit`
 *   at least `local` (the backend raises it from `off`), so a resolved write is flushed to the
 *   server's WAL.
 * - Calls run one at a time, in call order, on one connection.
 * - A connection failure (refused, reset, server restarting) is retried on a new connection with
 *   backoff (100 ms doubling to 5 s) for `retryTimeoutMs`; re-running a write is safe because it
 *   sets keys to values. Then, or at once for other errors (authentication, permissions), the call
 *   rejects with a `SLUICE_STAGE` error naming the server, database, table and namespace.
 * - Keys must be well-formed Unicode strings (no lone surrogates). Values are sent as they are
 *   when the call's turn comes: do not change their bytes until `write` resolves.
 *
 * Resolves once the table exists; rejects like a failed call when the server cannot be reached.
 *
 * @example
 * const b = await postgresBackend({ url: 'postgres://sluice:sluice@127.0.0.1:5432/sluice', namespace: 'orders' });
 * await b.write(new Map([['k', Buffer.from('v')]]));
 * await b.close();
 */
export async function postgresBackend(options: PostgresBackendOptions): Promise<StateBackend> {
  const { url, namespace } = options;
  const table = options.table ?? DEFAULT_STATE_TABLE;
  const quoted = quoteTable(table);
  const { address, database } = serverOf(url);
  const server = `${address}/${database || '(default database)'}`;
  const where = `PostgreSQL \`${server}\`, table \`${table}\`, namespace \`${namespace}\``;
  const timeoutMs = options.retryTimeoutMs ?? 60_000;
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const copyTo = pgCopyLib().to;

  let client: pg.Client | undefined;

  const drop = async () => {
    const c = client;
    client = undefined;
    await c?.end().catch(() => {});
  };

  async function connection(): Promise<pg.Client> {
    if (client !== undefined) return client;
    const c = new (pgLib().Client)({
      ...pgTlsSettings(url, options.tls),
      application_name: `sluice state ${namespace}`,
    });
    // A broken idle connection emits `error`; the next query fails and is retried.
    c.on('error', () => {});
    try {
      await c.connect();
      const sc = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      if (sc.rows[0]?.synchronous_commit === 'off') await c.query('SET synchronous_commit = local');
    } catch (err) {
      await c.end().catch(() => {});
      throw (
        pgConnectFailure(err, url, options.tls, { url: 'checkpoint.store', tls: 'checkpoint.tls' }) ?? err
      );
    }
    client = c;
    return c;
  }

  const calls = serialCalls({
    where,
    timeoutMs,
    isTransient: isTransientPgError,
    onFailure: drop,
    log: options.log,
    hint: (err) => {
      const code = (err as PgError).code;
      if (code === '28P01' || code === '28000') return 'check the user and password in `checkpoint.store`';
      if (code === '42501') return `grant the user CREATE on the schema, or create \`${table}\` beforehand`;
      return undefined;
    },
    context: (err) => ({ server, table, namespace, sqlState: (err as PgError).code }),
  });

  /** Runs `fn` after every earlier call, retrying transient failures on a new connection. */
  const serial = <T>(doing: string, fn: (c: pg.Client) => Promise<T>): Promise<T> =>
    calls.run(doing, async () => fn(await connection()));

  const created = serial('creating the state table', async (c) => {
    // Only when missing: the ALTER takes an exclusive lock on a table other pipelines may use.
    const found = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [quoted]);
    if (found.rows[0]?.t !== null && found.rows[0]?.t !== undefined) return;
    try {
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${quoted} (namespace text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (namespace, key))`,
      );
      // Snapshot blobs are written once and read once: compressing them (pglz) costs more
      // time than it saves. Out-of-line storage without compression.
      await c.query(`ALTER TABLE ${quoted} ALTER COLUMN value SET STORAGE EXTERNAL`);
    } catch (err) {
      // Two processes creating the table at once: one wins, the other sees a duplicate type.
      const code = (err as PgError).code;
      if (code !== '23505' && code !== '42P07') throw err;
    }
  });
  try {
    await created;
  } catch (err) {
    await calls.close();
    await drop();
    throw err;
  }

  const insertOne =
    `INSERT INTO ${quoted} (namespace, key, value) VALUES ($1, $2, $3) ` +
    'ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value';
  const upsert =
    `WITH d AS (DELETE FROM ${quoted} WHERE namespace = $1 AND key = ANY($2::bytea[])) ` +
    `INSERT INTO ${quoted} (namespace, key, value) SELECT $1, k, v FROM unnest($3::bytea[], $4::bytea[]) AS u(k, v) ` +
    'ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value';

  return {
    kind: 'postgres',
    write(entries) {
      // Encoded before queueing: a bad key fails the call without touching the store.
      const chunks: { del: Buffer[]; keys: Buffer[]; values: Buffer[] }[] = [];
      let chunk = { del: [] as Buffer[], keys: [] as Buffer[], values: [] as Buffer[] };
      /** Values of `BIG_VALUE` bytes or more: one statement each, sent in binary (no hex). */
      const big: [Buffer, Buffer][] = [];
      let bytes = 0;
      try {
        for (const [k, v] of entries) {
          const kb = keyBytes(k, where);
          if (v !== null && v.byteLength >= BIG_VALUE) {
            big.push([kb, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]);
            continue;
          }
          const size = kb.length + (v?.byteLength ?? 0);
          if (chunk.del.length + chunk.keys.length > 0 && bytes + size > chunkBytes) {
            chunks.push(chunk);
            chunk = { del: [], keys: [], values: [] };
            bytes = 0;
          }
          bytes += size;
          if (v === null) chunk.del.push(kb);
          else {
            chunk.keys.push(kb);
            chunk.values.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
          }
        }
      } catch (err) {
        return Promise.reject(err);
      }
      if (chunk.del.length + chunk.keys.length > 0) chunks.push(chunk);
      const statements = chunks.length + big.length;
      if (statements === 0) return Promise.resolve();
      return serial('writing state', async (c) => {
        if (statements === 1 && chunks.length === 1) {
          const only = chunks[0] as (typeof chunks)[number];
          await c.query(upsert, [namespace, only.del, only.keys, only.values]);
          return;
        }
        await c.query('BEGIN');
        try {
          let i = 0;
          for (const ch of chunks) {
            await c.query(upsert, [namespace, ch.del, ch.keys, ch.values]);
            options.afterChunk?.(i++);
          }
          for (const [key, value] of big) {
            await c.query(insertOne, [namespace, key, value]);
            options.afterChunk?.(i++);
          }
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {});
          throw err;
        }
      });
    },
    read(key) {
      let kb: Buffer;
      try {
        kb = keyBytes(key, where);
      } catch (err) {
        return Promise.reject(err);
      }
      return serial('reading state', async (c) => {
        // `COPY … (FORMAT binary)` sends the value's bytes as they are; a SELECT would send
        // them as hex text (twice the bytes, encoded and decoded on both sides): 35 MB loaded in
        // about a quarter of the time. (`pg` has no binary result mode.)
        const sql =
          `COPY (SELECT value FROM ${quoted} WHERE namespace = ${c.escapeLiteral(namespace)} ` +
          `AND key = decode('${kb.toString('hex')}', 'hex')) TO STDOUT (FORMAT binary)`;
        const parts: Buffer[] = [];
        for await (const chunk of c.query(copyTo(sql))) parts.push(chunk as Buffer);
        return copiedValue(Buffer.concat(parts));
      });
    },
    keys(prefix) {
      let start: Buffer;
      try {
        start = keyBytes(prefix, where);
      } catch (err) {
        return Promise.reject(err);
      }
      const end = prefixEnd(start);
      return serial('listing state keys', async (c) => {
        const r = await c.query<{ key: Buffer }>(
          end === undefined
            ? `SELECT key FROM ${quoted} WHERE namespace = $1 AND key >= $2 ORDER BY key`
            : `SELECT key FROM ${quoted} WHERE namespace = $1 AND key >= $2 AND key < $3 ORDER BY key`,
          end === undefined ? [namespace, start] : [namespace, start, end],
        );
        return r.rows.map((row) => row.key.toString('utf8'));
      });
    },
    async close() {
      if (await calls.close()) return;
      await drop();
    },
  };
}
