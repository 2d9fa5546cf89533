/**
 * The `lookup` step of pipeline files. Its spec is built from the stores it can read
 * ({@link lookupSpecWith}): the file and HTTP stores of this folder, and the PostgreSQL and
 * Redis stores their connectors declare (`connectors/postgres/lookup.ts`,
 * `connectors/redis/lookup.ts`). `component-modules.ts`, which sits above both, puts them
 * together, so this folder never imports a connector.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { durationField } from '../../spec/fields.ts';
import { type ComponentSpec, defineComponent } from '../../spec/registry.ts';
import { fileLookup } from './file.ts';
import { httpLookup } from './http.ts';
import { lookup } from './operator.ts';
import { defineLookupStore, type LookupStoreSpec } from './provider.ts';

/** The `file` store: a CSV or JSONL table loaded into memory. */
export const fileLookupStore = defineLookupStore({
  name: 'file',
  summary:
    'A CSV (with a header) or JSONL file loaded into memory when the step opens, indexed by `keyField`.',
  config: z
    .object({
      path: z.string().min(1).describe("The file; relative paths start at the pipeline file's folder."),
      format: z.enum(['csv', 'jsonl']).describe('`csv` (first line is the header) or `jsonl`.'),
      keyField: z.string().min(1).describe('The field of each row holding its key, compared as text.'),
    })
    .strict(),
  create: (c, ctx) =>
    fileLookup({ path: resolve(ctx.baseDir, c.path), format: c.format, keyField: c.keyField }),
});

/** The `http` store: one GET per key, or one POST per batch of keys. */
export const httpLookupStore = defineLookupStore({
  name: 'http',
  summary:
    'An HTTP endpoint: `GET` of `url` with `{key}` replaced (404: no row; `concurrency` requests at once), or with `batch: true` one `POST {"keys": [...]}` per batch answered by `{ key: row, … }`.',
  config: z
    .object({
      url: z
        .string()
        .regex(/^https?:\/\//, 'must be an `http://` or `https://` URL')
        .describe('The endpoint. Per key it must contain `{key}` (e.g. `http://users/api/users/{key}`).'),
      batch: z
        .boolean()
        .default(false)
        .describe('Send many keys per request (`POST`), as the endpoint takes them.'),
      headers: z
        .record(z.string(), z.string())
        .optional()
        .describe(`Extra request headers (\`authorization: Bearer \${TOKEN}\`).`),
      timeout: durationField()
        .prefault('10s')
        .describe('Longest one request may take; a timed-out request is retried.'),
    })
    .strict()
    .superRefine((c, ctx) => {
      if (!c.batch && !c.url.includes('{key}'))
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'must contain `{key}` where the key goes (or set `batch: true` to POST the keys)',
        });
    }),
  create: (c) => httpLookup({ url: c.url, batch: c.batch, headers: c.headers, timeoutMs: c.timeout }),
});

/** The stores of this folder; the connectors add theirs in `component-modules.ts`. */
export const builtinLookupStores: readonly LookupStoreSpec[] = [fileLookupStore, httpLookupStore];

const cacheSchema = z
  .object({
    maxEntries: z.number().int().min(1).optional().describe('Most rows kept (least recently used go first).'),
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .optional()
      .describe('Most bytes kept, estimated from each key and row (least recently used go first).'),
    ttl: durationField()
      .optional()
      .describe('Longest a row is served from the cache (`5m`). Default: until evicted.'),
    misses: z
      .boolean()
      .default(true)
      .describe('Remember keys the store does not have too, so they are not asked again.'),
  })
  .strict()
  .refine((c) => c.maxEntries !== undefined || c.maxBytes !== undefined, {
    message: 'give `maxEntries`, `maxBytes` or both (or `cache: false` for no cache)',
  });

/**
 * The `lookup` spec for the given stores: one optional field per store name, exactly one of which
 * a step sets.
 *
 * @example
 * const spec = lookupSpecWith([...builtinLookupStores, postgresLookupStore]);
 */
export function lookupSpecWith(stores: readonly LookupStoreSpec[]): ComponentSpec<'operator'> {
  const names = stores.map((s) => s.name);
  const storeFields: Record<string, z.ZodType> = {};
  for (const s of stores) storeFields[s.name] = s.config.optional().describe(s.summary);
  const listed = names.map((n) => `\`${n}\``).join(', ');
  const config = z
    .object({
      key: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
        .describe(
          'The record field holding the key (or several fields, joined with U+001F), compared as text.',
        ),
      into: z
        .string()
        .min(1)
        .optional()
        .describe(
          'The field that receives the row (`null` on a miss). Omitted: the row’s fields are merged into the record (the row wins a clash) and a miss leaves the record as it is.',
        ),
      onMiss: z
        .enum(['null', 'drop', 'dlq'])
        .default('null')
        .describe(
          'A key the store does not have (or a record without the key): `null` keeps the record, `drop` drops it, `dlq` dead-letters it with the key.',
        ),
      batchSize: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(500)
        .describe('Most keys per request to the store.'),
      concurrency: z.number().int().min(1).max(1024).default(4).describe('Most requests in flight at once.'),
      ordered: z
        .boolean()
        .default(true)
        .describe(
          '`true`: records leave in input order. `false`: each request’s records leave as soon as it completes.',
        ),
      cache: z
        .union([z.literal(false), cacheSchema])
        .prefault({ maxEntries: 100_000 })
        .describe(
          'Rows kept between batches (LRU with an optional `ttl`); `false` for none. Default 100,000 entries.',
        ),
      retryTimeout: durationField()
        .prefault('30s')
        .describe(
          'How long a failing request is retried (with backoff) before its records go to the dlq with their key.',
        ),
      ...storeFields,
    })
    .strict()
    .superRefine((c, ctx) => {
      const set = names.filter((n) => (c as Record<string, unknown>)[n] !== undefined);
      if (set.length !== 1)
        ctx.addIssue({
          code: 'custom',
          path: set.length === 0 ? [] : [set[1] as string],
          message:
            set.length === 0
              ? `say where rows come from: one of ${listed}`
              : `give only one store, not ${set.map((n) => `\`${n}\``).join(' and ')}`,
        });
    });
  return defineComponent({
    name: 'lookup',
    kind: 'operator',
    stability: 'experimental',
    summary: `Enriches each record with the row a store (${listed}) holds for its key: batched, cached, bounded concurrency, order kept.`,
    description:
      'A stream–table join against an external table. Per batch the cache answers what it can; the other distinct keys go to the store `batchSize` at a time (PostgreSQL: one query with `= ANY($1)`; Redis: one `MGET`/`HMGET` or a pipeline of `HGETALL`), at most `concurrency` requests at once. A failing request is retried until `retryTimeout`, then its records go to the dlq with the key. Metrics: `cacheHits`, `cacheMisses`, `lookupRequests`, `lookupKeys`, `lookupNotFound`, `lookupFailures`, `lookupRetries`, `lookupLatencyMsTotal`, `lookupLatencyMsMax`.',
    config,
    examples: [
      {
        title: 'Users from PostgreSQL into field `profile`',
        yaml: 'key: user\ninto: profile\npostgres:\n  url: postgres://app@db:5432/app\n  query: SELECT id, name, tier FROM users WHERE id = ANY($1)\n  keyColumn: id',
      },
      {
        title: 'A Redis hash per key, records without one dropped',
        yaml: 'key: user\ninto: user_info\nonMiss: drop\ncache: { maxEntries: 50000, ttl: 1m }\nredis:\n  url: redis://127.0.0.1:6379\n  command: hgetall\n  keyPrefix: "user:"',
      },
      {
        title: 'Countries from a CSV file, merged into the record',
        yaml: 'key: country\nfile: { path: countries.csv, format: csv, keyField: code }',
      },
    ],
    create: (c, ctx) => {
      const cfg = c as Record<string, unknown> & z.output<typeof config>;
      const store = stores.find((s) => cfg[s.name] !== undefined) as LookupStoreSpec;
      return lookup({
        provider: store.create(cfg[store.name], ctx),
        key: cfg.key,
        into: cfg.into,
        onMiss: cfg.onMiss,
        batchSize: cfg.batchSize,
        concurrency: cfg.concurrency,
        ordered: cfg.ordered,
        cache:
          cfg.cache === false
            ? false
            : {
                maxEntries: cfg.cache.maxEntries,
                maxBytes: cfg.cache.maxBytes,
                ttlMs: cfg.cache.ttl,
                misses: cfg.cache.misses,
              },
        retryTimeoutMs: cfg.retryTimeout,
      }) as never;
    },
  });
}
