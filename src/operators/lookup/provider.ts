/**
 * The port the `lookup` step drives: a {@link LookupProvider} fetches rows by key from one
 * store. The step owns batching, concurrency, caching, retries, misses and merging; a provider
 * only answers "which rows have these keys?" and "can a retry help with this error?". The
 * PostgreSQL and Redis providers live with their connectors (`connectors/postgres/lookup.ts`,
 * `connectors/redis/lookup.ts`); the HTTP and file providers live beside this file.
 */
import type { z } from 'zod';
import type { StageContext } from '../../core/stage.ts';
import type { BuildContext } from '../../spec/registry.ts';

/** The rows a fetch found, by key; a key without an entry (or with `undefined`) is a miss. */
export type LookupRows = ReadonlyMap<string, unknown>;

/**
 * One store the `lookup` step reads rows from.
 *
 * Contract:
 * - `open` is called once, in the step's `open`, before any `fetch`: connect, and check what can
 *   be checked against the store (a query's columns) so that a bad config fails at start.
 * - `fetch` gets distinct, non-empty keys (at most `maxBatch`, when set) and resolves with the
 *   rows found. It may be called again before an earlier call settled (up to the step's
 *   `concurrency` calls at once). A rejection is retried with backoff while `retryable` says a
 *   retry can help (then `fetch` is called again with the same keys), and after the step's
 *   `retryTimeout` every record of those keys goes to the dead-letter output with its key.
 * - `close` is called once at the end of the run, even when `open` failed.
 */
export interface LookupProvider {
  /** The store in messages, e.g. ``PostgreSQL at `127.0.0.1:5432` (database `app`)``. */
  readonly describe: string;
  /** Most keys one `fetch` takes (1: the store is asked one key at a time). Default: the step's `batchSize`. */
  readonly maxBatch?: number;
  /** See the contract above. */
  open?(ctx: StageContext): Promise<void>;
  /** See the contract above. `signal` aborts when the run is cancelled. */
  fetch(keys: readonly string[], signal: AbortSignal): Promise<LookupRows>;
  /** True for failures another attempt may cure (connection lost, timeout). Default `isRetryable` (core/retry.ts). */
  retryable?(err: unknown): boolean;
  /** See the contract above. */
  close?(): Promise<void>;
}

/**
 * How a pipeline file declares one kind of store under `lookup:` (`postgres:`, `redis:`, `http:`,
 * `file:`): the YAML key, its config schema (whose `.describe()` texts are the docs) and the
 * factory. `create` must do no I/O (`sluice lint` calls it); the provider's `open` does.
 */
export interface LookupStoreSpec<C = unknown> {
  /** The key under `lookup:`, a noun: `postgres`, `redis`, `http`, `file`. */
  readonly name: string;
  /** One line for the docs. */
  readonly summary: string;
  readonly config: z.ZodType<C>;
  create(config: C, ctx: BuildContext): LookupProvider;
}

/**
 * Declares a {@link LookupStoreSpec} with its config type inferred from the schema.
 *
 * @example
 * export const memoryStore = defineLookupStore({
 *   name: 'memory', summary: 'Rows from a fixed object.', config: z.object({ rows: z.record(z.string(), z.unknown()) }),
 *   create: (c) => ({ describe: 'memory', fetch: async (keys) => new Map(keys.map((k) => [k, c.rows[k]])) }),
 * });
 */
export function defineLookupStore<S extends z.ZodType>(
  spec: LookupStoreSpec<z.output<S>> & { readonly config: S },
): LookupStoreSpec<z.output<S>> & { readonly config: S } {
  return spec;
}
