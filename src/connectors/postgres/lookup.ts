/**
 * The PostgreSQL store of the `lookup` step: one query per batch of keys, the keys passed as one
 * array parameter (`WHERE id = ANY($1)`), on a small pool of connections. The query is checked
 * when the step opens (run once with no keys: it must parse, and return `keyColumn`), so a wrong
 * table or column fails the run at start, not record by record.
 */
import type pg from 'pg';
import { z } from 'zod';
import { isTransientPgError, type PgError, pgLib, retryingPg, serverOf } from '../../clients/postgres.ts';
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import type { StageContext } from '../../core/stage.ts';
import type { LookupProvider } from '../../operators/lookup/provider.ts';
import { defineLookupStore } from '../../operators/lookup/provider.ts';
import { checkConnectionUrl, durationField } from '../../spec/fields.ts';

/** Options of {@link postgresLookup}. */
export interface PostgresLookupOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly url: string;
  /** A query with one parameter, `$1`, the array of keys: `SELECT id, name FROM users WHERE id = ANY($1)`. */
  readonly query: string;
  /** The column of the result holding each row's key (compared as text). */
  readonly keyColumn: string;
  /** Connections in the pool (requests at once). Default 4. */
  readonly connections?: number | undefined;
  /** How long the check at open retries an unreachable server, ms. Default 30 s. */
  readonly connectTimeoutMs?: number | undefined;
  /** The pipeline's name, in `application_name`. */
  readonly pipelineName?: string | undefined;
}

/**
 * The problems of a lookup query that can be seen without a server: it must use `$1` (the keys)
 * and no other parameter, and compare with `= ANY($1)` rather than `= $1`.
 *
 * @example
 * queryProblems('SELECT * FROM users WHERE id = $1'); // ['compare with `= ANY($1)`: …']
 */
export function queryProblems(query: string): string[] {
  const problems: string[] = [];
  const params = new Set([...query.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  if (!params.has(1))
    problems.push('must use `$1`, the array of keys of a batch (e.g. `WHERE id = ANY($1)`)');
  const others = [...params].filter((p) => p !== 1).sort((a, b) => a - b);
  if (others.length > 0)
    problems.push(`takes only \`$1\` (the keys); remove ${others.map((p) => `\`$${p}\``).join(', ')}`);
  if (/(=|<>|!=)\s*\$1(?!\d)|\bIN\s*\(\s*\$1\s*\)/i.test(query))
    problems.push('compare with `= ANY($1)`: `$1` is the array of keys of a batch, not one key');
  return problems;
}

/**
 * A provider reading rows from PostgreSQL; see the module comment. A key with several rows gets
 * the first. Connection failures are retried by the step (see `isTransientPgError`); other
 * failures dead-letter the batch's records.
 *
 * @example
 * const users = postgresLookup({ url, query: 'SELECT id, tier FROM users WHERE id = ANY($1)', keyColumn: 'id' });
 */
export function postgresLookup(options: PostgresLookupOptions): LookupProvider {
  const server = serverOf(options.url);
  const describe = `PostgreSQL at \`${server.address}\` (database \`${server.database}\`)`;
  let pool: pg.Pool | undefined;
  const problems = queryProblems(options.query);
  if (problems.length > 0)
    throw new SluiceError(ErrorCode.CONFIG, `the lookup \`query\` ${problems.join('; ')}`, {
      field: 'query',
    });

  const open = async (ctx: StageContext) => {
    pool = new (pgLib().Pool)({
      connectionString: options.url,
      max: options.connections ?? 4,
      application_name: `sluice ${options.pipelineName ?? 'sluice'}`,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    // An idle connection that breaks emits `error` on the pool; the next query fails and is retried.
    pool.on('error', () => {});
    const p = pool;
    let result: pg.QueryResult;
    try {
      result = await retryingPg(() => p.query(options.query, [[]]), {
        url: options.url,
        doing: 'checking the lookup query',
        where: `checking the lookup query at ${describe}`,
        timeoutMs: options.connectTimeoutMs ?? 30_000,
        setting: 'connectTimeout',
        clock: ctx.clock,
        signal: ctx.signal,
        log: ctx.log,
        logFields: { stage: ctx.name },
      });
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      const e = err as PgError;
      throw new SluiceError(
        ErrorCode.CONFIG,
        `the lookup \`query\` fails at ${describe}: ${errorMessage(err)}${e.hint ? ` (${e.hint})` : ''}; fix \`query\` (it is run with \`$1\` = an array of keys as text)`,
        { stage: ctx.name, sqlState: e.code },
        { cause: err },
      );
    }
    const columns = result.fields.map((f) => f.name);
    if (!columns.includes(options.keyColumn))
      throw new SluiceError(
        ErrorCode.CONFIG,
        `the lookup query returns no column \`${options.keyColumn}\` (\`keyColumn\`); it returns ${columns.map((c) => `\`${c}\``).join(', ') || 'no columns'}`,
        { stage: ctx.name },
      );
  };

  return {
    describe,
    open,
    async fetch(keys) {
      const p = pool as pg.Pool;
      const result = await p.query(options.query, [keys]);
      const found = new Map<string, unknown>();
      const col = options.keyColumn;
      for (const row of result.rows as Record<string, unknown>[]) {
        const k = String(row[col]);
        if (!found.has(k)) found.set(k, row);
      }
      return found;
    },
    retryable: isTransientPgError,
    async close() {
      const p = pool;
      pool = undefined;
      await p?.end().catch(() => {});
    },
  };
}

/** The `postgres` store of the `lookup` step, for pipeline files. */
export const postgresLookupStore = defineLookupStore({
  name: 'postgres',
  summary:
    'Rows from PostgreSQL: one query per batch of keys, `$1` being the array of keys (`WHERE id = ANY($1)`).',
  config: z
    .object({
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must be a URL such as `postgres://user:password@host:5432/database`')
        .superRefine(checkConnectionUrl)
        .describe(
          `Connection URL, \`postgres://user:password@host:port/database\` (use \`\${ENV_VAR}\` for the password).`,
        ),
      query: z
        .string()
        .min(1)
        .superRefine((q, ctx) => {
          for (const message of queryProblems(q)) ctx.addIssue({ code: 'custom', message });
        })
        .describe(
          'The query, with `$1` the array of keys of a batch as text (`SELECT id, name FROM users WHERE id = ANY($1)`; the server casts the array to the column’s type). Checked when the step opens.',
        ),
      keyColumn: z
        .string()
        .min(1)
        .describe('The result column holding each row’s key (compared as text with the record’s key).'),
      connections: z
        .number()
        .int()
        .min(1)
        .max(64)
        .default(4)
        .describe('Connections in the pool: requests at once (match the step’s `concurrency`).'),
      connectTimeout: durationField()
        .prefault('30s')
        .describe('How long the check at open waits for an unreachable server.'),
    })
    .strict(),
  create: (c, ctx) =>
    postgresLookup({
      url: c.url,
      query: c.query,
      keyColumn: c.keyColumn,
      connections: c.connections,
      connectTimeoutMs: c.connectTimeout,
      pipelineName: ctx.pipelineName,
    }),
});
