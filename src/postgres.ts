/**
 * `sluice/postgres`: the PostgreSQL source and sink, and the PostgreSQL state backend. A
 * separate entry so that importing `sluice` never loads the client (`pg`, `pg-copy-streams`);
 * this entry loads it only when a source, sink or backend connects.
 *
 * The factories take the same config as the `postgres` input and output of a pipeline file
 * (same fields, same defaults, durations as strings such as `'30s'`; see docs/components.md).
 *
 * @example
 * import { Pipeline, fileSource } from 'sluice';
 * import { postgresSink } from 'sluice/postgres';
 * const p = new Pipeline('load');
 * p.from(fileSource({ path: 'orders.jsonl', format: 'jsonl' }))
 *   .to(postgresSink({ url: 'postgres://localhost/shop', table: 'orders' }));
 * await p.run().done;
 *
 * @module sluice/postgres
 */
import type { z } from 'zod';
import type { PostgresSink } from './connectors/postgres/sink.ts';
import type { PostgresSource } from './connectors/postgres/source.ts';
import {
  type postgresSinkConfig,
  postgresSinkSpec,
  type postgresSourceConfig,
  postgresSourceSpec,
} from './connectors/postgres/spec.ts';
import { type FactoryContext, specFactory } from './spec/factory.ts';

export { type PostgresLookupOptions, postgresLookup } from './connectors/postgres/lookup.ts';
export type { PostgresMode, PostgresSink } from './connectors/postgres/sink.ts';
export type { PostgresSource } from './connectors/postgres/source.ts';
export type { FactoryContext } from './spec/factory.ts';
export { DEFAULT_STATE_TABLE, type PostgresBackendOptions, postgresBackend } from './state/postgres.ts';

/** Config of {@link postgresSink}: the fields of the pipeline file's `postgres` output. */
export type PostgresSinkConfig = z.input<typeof postgresSinkConfig>;
/** Config of {@link postgresSource}: the fields of the pipeline file's `postgres` input. */
export type PostgresSourceConfig = z.input<typeof postgresSourceConfig>;

const buildSink = specFactory(postgresSinkSpec);
const buildSource = specFactory(postgresSourceSpec);

/**
 * A PostgreSQL sink: COPY or upsert in transactions, exactly-once with `exactlyOnce: true` and
 * checkpoints (see the `postgres` output in docs/components.md). Throws a `SLUICE_CONFIG` error
 * listing every problem of `config`.
 *
 * @example
 * postgresSink({ url: 'postgres://app@db/shop', table: 'orders', mode: 'upsert', key: ['id'] });
 */
export function postgresSink(config: PostgresSinkConfig, context: FactoryContext = {}): PostgresSink {
  return buildSink(config, context) as PostgresSink;
}

/**
 * An incremental PostgreSQL source reading a table in key order (see the `postgres` input in
 * docs/components.md). Throws a `SLUICE_CONFIG` error listing every problem of `config`.
 *
 * @example
 * postgresSource({ url: 'postgres://app@db/shop', table: 'orders', column: 'id', follow: true });
 */
export function postgresSource(config: PostgresSourceConfig, context: FactoryContext = {}): PostgresSource {
  return buildSource(config, context) as PostgresSource;
}
