/**
 * Specs of the `postgres` sink and source: config schemas (field docs, defaults, examples) and
 * factories. The client (`pg` + `pg-copy-streams`) connects in the stages' `open`/`run`, never in
 * `create`, so `sluice lint` needs no database.
 */
import { z } from 'zod';
import { sslModeProblem } from '../../clients/postgres-tls.ts';
import { tlsField } from '../../clients/tls.ts';
import { checkConnectionUrl, durationField } from '../../spec/fields.ts';
import { defineComponent } from '../../spec/registry.ts';
import { postgresSink } from './sink.ts';
import { postgresSource } from './source.ts';

/** The connection URL of the `postgres` sink and source. */
const urlField = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must be a URL such as `postgres://user:password@host:5432/database`')
  .superRefine(checkConnectionUrl)
  .superRefine((url, ctx) => {
    const problem = sslModeProblem(url);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe(
    `Connection URL, \`postgres://user:password@host:port/database\` (use \`\${ENV_VAR}\` for the password). ` +
      '`?sslmode=disable|require|verify-ca|verify-full` as libpq (`sslrootcert`, `sslcert`, `sslkey` too); with `tls:` and no `sslmode`, `verify-full`.',
  );

/** `sslmode=disable` beside `tls:` asks for two contrary things; said at lint. */
function checkTlsAgainstUrl(config: { url: string; tls?: unknown }, ctx: z.RefinementCtx): void {
  if (config.tls !== undefined && /[?&]sslmode=disable(&|$)/.test(config.url)) {
    ctx.addIssue({
      code: 'custom',
      path: ['tls'],
      message: '`sslmode=disable` in `url` turns TLS off, and `tls:` asks for it; remove one of them',
    });
  }
}

/** Config of the `postgres` sink. */
export const postgresSinkConfig = z
  .object({
    url: urlField,
    tls: tlsField,
    table: z
      .string()
      .min(1)
      .describe('Target table, optionally schema-qualified (`public.transactions`). It must exist.'),
    mode: z
      .enum(['insert', 'upsert', 'statement'])
      .default('insert')
      .describe(
        '`insert`: COPY the rows in. `upsert`: `INSERT … ON CONFLICT (key) DO UPDATE`, so a later record of a key ' +
          '(a late window update) overwrites the earlier one. `statement`: run `statement` once per record, in order, ' +
          'inside the batch transaction (a conditional update, a function that locks rows `FOR UPDATE`).',
      ),
    statement: z
      .string()
      .min(1)
      .optional()
      .describe(
        '`statement` mode: the SQL run per record, with `$1`, `$2`… for the fields of `params` (e.g. ' +
          '`SELECT ledger_apply($1, $2, $3, $4::bigint)`). Make it idempotent on a record id when the sink is not `exactlyOnce`.',
      ),
    params: z
      .array(z.string().min(1))
      .optional()
      .describe(
        '`statement` mode: the record fields passed as `$1`, `$2`, … (as text, typed by the statement).',
      ),
    key: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('`upsert`: the conflict columns; a unique index must cover exactly them.'),
    columns: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'Columns to fill, each from the record field of the same name (missing: NULL). Default: every column that is ' +
          'not generated — list them to leave out a column with a default (`serial`, `now()`).',
      ),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(20_000)
      .describe(
        'Rows per COPY or INSERT (and per transaction without `exactlyOnce`). Each COPY waits for the server, so ' +
          'fewer, larger ones load faster (5M rows: 8.5 s with 5,000, 6.3 s with 20,000) at the cost of memory.',
      ),
    linger: durationField()
      .prefault('200ms')
      .describe(
        'How long fewer than `batchSize` rows may wait to be committed together (`0ms`: commit every batch). ' +
          'Barriers and the end of input flush. Not used with `exactlyOnce` (commits follow checkpoints).',
      ),
    exactlyOnce: z
      .boolean()
      .default(false)
      .describe(
        'Commit each checkpoint’s rows together with the source positions (table `sluice_sink_offsets`) in one ' +
          'two-phase transaction, so a restart neither loses nor repeats a row. Needs `checkpoint:` and ' +
          '`max_prepared_transactions` > 0 on the server.',
      ),
    retryTimeout: durationField()
      .prefault('2m')
      .describe(
        'How long a failing transaction (connection lost, server restarting, deadlock) is retried with backoff before the run fails.',
      ),
    connectTimeout: durationField()
      .prefault('30s')
      .describe(
        'How long the run waits at start for the server to accept connections (not running yet, starting up, unreachable), retrying with backoff, before it fails.',
      ),
  })
  .strict()
  .superRefine(checkTlsAgainstUrl)
  .superRefine((config, ctx) => {
    if (config.mode === 'upsert' && config.key === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: '`upsert` needs `key`: the columns of a unique index',
      });
    }
    if (config.mode !== 'upsert' && config.key !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: '`key` applies to `mode: upsert` only' });
    }
    if (config.mode === 'statement' && config.statement === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['statement'],
        message: '`mode: statement` needs `statement`: the SQL run per record',
      });
    }
    for (const field of ['statement', 'params'] as const) {
      if (config.mode !== 'statement' && config[field] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `\`${field}\` applies to \`mode: statement\` only`,
        });
      }
    }
  });

/**
 * The `postgres` sink spec.
 *
 * @example
 * registry.add(postgresSinkSpec);
 */
export const postgresSinkSpec = defineComponent({
  name: 'postgres',
  kind: 'sink',
  stability: 'experimental',
  summary: 'Writes records into a PostgreSQL table with COPY or upserts, exactly-once under checkpoints.',
  description:
    'Columns are filled from the record fields of the same name, with exact types: a decimal or a decimal string ' +
    'goes into a `numeric` column as its exact text, a bigint as its digits, a Date or an ISO-8601 string (or epoch ms) into ' +
    '`timestamptz`, objects into `json`/`jsonb`. A row the database rejects (bad value, constraint violation) goes ' +
    'to the `dlq` output with the database’s message, table, column and source position; the rest of the batch ' +
    'commits. A lost connection or a restarting server is retried with backoff. With `exactlyOnce` each ' +
    'checkpoint’s rows and source positions are prepared in one transaction at the barrier and committed when the ' +
    'checkpoint is stored; a restart settles what was prepared and resumes right after the last completed checkpoint.',
  config: postgresSinkConfig,
  examples: [
    {
      title: 'Load transactions exactly once',
      yaml: `url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice\ntable: transactions\nexactlyOnce: true\n`,
    },
    {
      title: 'Apply each transfer to balances held in the database, exactly once',
      yaml: `url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice\ntable: ledger_accounts\nmode: statement\nstatement: SELECT ledger_apply($1, $2, $3, $4::bigint)\nparams: [id, from, to, amount]\nexactlyOnce: true\n`,
    },
    {
      title: 'Upsert window results on their key',
      yaml: `url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice\ntable: risk_by_country\nmode: upsert\nkey: [country, windowStart]\n`,
    },
  ],
  create: (config, ctx) =>
    postgresSink({
      url: config.url,
      tls: config.tls,
      table: config.table,
      mode: config.mode,
      key: config.key,
      statement: config.statement,
      params: config.params,
      columns: config.columns,
      batchSize: config.batchSize,
      linger: config.linger,
      exactlyOnce: config.exactlyOnce,
      pipeline: ctx.pipelineName,
      retryTimeout: config.retryTimeout,
      connectTimeout: config.connectTimeout,
    }),
});

/** Config of the `postgres` source. */
export const postgresSourceConfig = z
  .object({
    url: urlField,
    tls: tlsField,
    table: z
      .string()
      .min(1)
      .optional()
      .describe('Table (or view) to read, optionally schema-qualified (`public.orders`); or `query`.'),
    query: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A `SELECT` whose rows are read (joins, a column subset, a filter); or `table`. It must return `column` (and `key`).',
      ),
    column: z
      .string()
      .min(1)
      .describe(
        'The monotonic column rows are read in the order of: an integer id or sequence, `numeric`, `timestamp(tz)` or ' +
          '`date`. Rows where it is NULL are not read. An index on it (with `key`) keeps each poll cheap.',
      ),
    key: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A unique column that orders rows sharing a `column` value (`WHERE (column, key) > (…)`). Without it a batch ' +
          'holds every row of its last `column` value, however many.',
      ),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe('Most rows per query and per batch.'),
    follow: z
      .boolean()
      .default(false)
      .describe('Keep polling for new rows every `pollInterval`. Default: end the input once caught up.'),
    pollInterval: durationField()
      .prefault('1s')
      .describe('With `follow`: how often a caught-up source polls.'),
    lag: durationField()
      .optional()
      .describe(
        'Read only rows whose (timestamp) `column` is at least this old by the server’s clock (`5s`): a guard against ' +
          'rows that commit out of column order under concurrent writers (see the connector README).',
      ),
    after: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Start after this `column` value (`2026-01-01T00:00:00Z`, `41000`) when no checkpoint is restored. Default: the first row.',
      ),
    retryTimeout: durationField()
      .prefault('2m')
      .describe(
        'How long a failing query (connection lost, server restarting) is retried with backoff before the run fails.',
      ),
  })
  .strict()
  .superRefine(checkTlsAgainstUrl)
  .superRefine((config, ctx) => {
    if ((config.table === undefined) === (config.query === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['table'], message: 'give exactly one of `table` and `query`' });
    }
  });

/**
 * The `postgres` source spec.
 *
 * @example
 * registry.add(postgresSourceSpec);
 */
export const postgresSourceSpec = defineComponent({
  name: 'postgres',
  kind: 'source',
  stability: 'experimental',
  summary:
    'Reads a table or query incrementally in the order of a monotonic column, the position checkpointed.',
  description:
    'Each poll reads the rows after the last one read, `WHERE (column, key) > ($1, $2) ORDER BY column, key LIMIT n`, ' +
    'with parameters only. Records hold the row’s columns by name with exact values: `numeric` as an exact decimal ' +
    '(see docs/decimals.md), `bigint` as a decimal string, timestamps as ISO-8601 strings with microseconds (`timestamptz` in UTC), `json` parsed. ' +
    '`meta.position` is `{ column, key }` (the server’s text of the last row’s values). With `checkpoint:` a restart ' +
    'resumes right after the checkpoint’s row; without, a run starts from the beginning (or `after`). A missing ' +
    'table or column fails at start with the columns that exist. Under concurrent writers a sequence or timestamp ' +
    'can become visible out of order; `lag` guards against that for timestamps (see the README).',
  config: postgresSourceConfig,
  examples: [
    {
      title: 'Export a table once, in id order',
      yaml: `url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice\ntable: orders\ncolumn: id\n`,
    },
    {
      title: 'Follow changes by update time, ties broken by id, 5 s behind the writers',
      yaml: `url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice\ntable: orders\ncolumn: updated_at\nkey: id\nfollow: true\nlag: 5s\n`,
    },
  ],
  create: (config) =>
    postgresSource({
      url: config.url,
      tls: config.tls,
      table: config.table,
      query: config.query,
      column: config.column,
      key: config.key,
      batchSize: config.batchSize,
      pollInterval: config.pollInterval,
      follow: config.follow,
      lag: config.lag,
      after: config.after,
      retryTimeout: config.retryTimeout,
    }),
});
