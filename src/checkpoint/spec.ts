/**
 * The `checkpoint:` key of pipeline files: its schema (validation, JSON Schema, docs) and the
 * validated config that `setup.ts` turns into a coordinator.
 */
import { z } from 'zod';
import { type TlsConfig, tlsField } from '../clients/tls.ts';
import { checkConnectionUrl, durationText } from '../spec/fields.ts';
import { acceptedSchemes, schemeOf, storeKindOf } from '../state/open.ts';

/** The `checkpoint:` key of a pipeline file, validated. */
export interface CheckpointConfig {
  /** Time between checkpoints, e.g. `10s`. */
  readonly interval: string;
  /** Also checkpoint after this many records read. */
  readonly records?: number | undefined;
  /** Folder of the embedded state store (relative to the pipeline file); default `.sluice/<name>/`. */
  readonly dir?: string | undefined;
  /** Checkpoints in a server (`postgres://…`, `redis://…`) instead of the embedded store. */
  readonly store?: string | undefined;
  /** TLS to the `store` server (`true`: the system's CAs); `sslmode` / `rediss://` in the URL also work. */
  readonly tls?: TlsConfig | true | undefined;
  /** Names the pipeline's checkpoints in a shared `store`; default the pipeline name. */
  readonly namespace?: string | undefined;
  /** How long a server `store` may stay unreachable before the run fails, e.g. `2m`. Default `1m`. */
  readonly storeTimeout?: string | undefined;
  /** Completed checkpoints kept. Default 3. */
  readonly retain?: number | undefined;
  /** Write-ahead log of what sources emit between checkpoints: `true` or its fsync policy. */
  readonly wal?: boolean | { readonly fsync?: 'always' | 'interval' | 'never' | undefined } | undefined;
  /**
   * `pipeline` (default): one checkpoint of the whole pipeline. `partition`: scale-out — state
   * kept per Kafka partition in `dir`, shared by every process of the consumer group.
   */
  readonly scope?: 'pipeline' | 'partition' | undefined;
}

/** Schema of the `checkpoint:` key. */
export const checkpointSchema = z
  .strictObject({
    interval: durationText().describe('Time between checkpoints, e.g. `10s`.'),
    records: z.number().int().min(1).optional().describe('Also checkpoint after this many records read.'),
    dir: z
      .string()
      .optional()
      .describe(
        'Folder of the embedded state store and of the write-ahead log (relative to the pipeline file); default `.sluice/<name>/`.',
      ),
    store: z
      .string()
      .refine((url) => storeKindOf(url) !== undefined, {
        error: (issue) =>
          `\`${schemeOf(String(issue.input))}\` is not a state store; use a URL starting with ${acceptedSchemes()}, or leave \`store\` out for the embedded store in \`dir\``,
      })
      .superRefine(checkConnectionUrl)
      .optional()
      .describe(
        `Keep checkpoints in a server instead of the embedded store: \`postgres://user:password@host:5432/db\` (table \`sluice_state\`) or \`redis://host:6379/0\` (\`rediss://\` for TLS). Use \`\${VAR}\` for the password.`,
      ),
    tls: tlsField.describe(
      'TLS to the `store` server: `true` (the system’s CAs), or `{ ca, cert, key, servername, rejectUnauthorized }` with PEM files. ' +
        'A `postgres://` URL may instead say `?sslmode=verify-full&sslrootcert=ca.pem`; a `redis://` store then connects as `rediss://`.',
    ),
    namespace: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Names this pipeline's checkpoints in a shared `store`, so many pipelines can use one database; default the pipeline `name`.",
      ),
    storeTimeout: durationText()
      .optional()
      .describe(
        'With a server `store`: how long it may stay unreachable (default `1m`). Meanwhile each call is retried with backoff, checkpoints wait and the data flows on, with one warning when it goes away and one when it is back; past it the run fails with one line, and the next run resumes from the last stored checkpoint.',
      ),
    retain: z.number().int().min(1).optional().describe('Completed checkpoints kept (default 3).'),
    wal: z
      .union([
        z.boolean(),
        z.strictObject({
          fsync: z
            .enum(['always', 'interval', 'never'])
            .optional()
            .describe('When log entries are fsynced (default `interval`: at most every second).'),
        }),
      ])
      .optional()
      .describe(
        'Write-ahead log of what sources emit between checkpoints, replayed on restart (for inputs that cannot be read again).',
      ),
    scope: z
      .enum(['pipeline', 'partition'])
      .optional()
      .describe(
        '`pipeline` (default): one checkpoint of the whole pipeline. `partition`: scale-out with a `kafka` input — ' +
          'several processes with the same pipeline and `group` share the partitions; each stateful step keeps its ' +
          'state per partition, stored with the partition’s offset in `dir` (a folder every process opens), and the ' +
          'state moves with the partition when the group rebalances. Records aggregated together must share a partition. ' +
          'Exactly-once output under it: a `kafka` sink with `exactlyOnce` (a PostgreSQL sink’s `exactlyOnce` is per pipeline and is refused).',
      ),
  })
  .describe(
    'Periodic consistent checkpoints: a restarted run resumes from the newest one (state, input positions, file outputs exactly-once).',
  );
