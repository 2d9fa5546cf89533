/**
 * `sluice/postgres`: the PostgreSQL source and sink, and the PostgreSQL state backend. A
 * separate entry so that importing `sluice` never loads the client (`pg`, `pg-copy-streams`);
 * this entry loads it only when a source, sink or backend connects.
 *
 * @example
 * import { Pipeline, fileSource } from 'sluice';
 * import { postgresSink } from 'sluice/postgres';
 * const p = new Pipeline('load');
 * p.from(fileSource({ path: 'orders.jsonl', format: 'jsonl' }))
 *   .to(
 *     postgresSink({
 *       url: 'postgres://localhost/shop', table: 'orders', mode: 'insert', batchSize: 1000,
 *       linger: 100, exactlyOnce: false, pipeline: 'load', retryTimeout: 30_000,
 *     }),
 *   );
 * await p.run().done;
 *
 * @module sluice/postgres
 */

export {
  type PostgresMode,
  type PostgresSink,
  type PostgresSinkOptions,
  postgresSink,
} from './connectors/postgres/sink.ts';
export {
  type PostgresSource,
  type PostgresSourceOptions,
  postgresSource,
} from './connectors/postgres/source.ts';
export { DEFAULT_STATE_TABLE, type PostgresBackendOptions, postgresBackend } from './state/postgres.ts';
