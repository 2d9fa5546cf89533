/**
 * From a store setting to an open {@link StateBackend}: the embedded LMDB in a folder, or a
 * PostgreSQL or Redis server named by URL (`checkpoint.store` in a pipeline file). The server
 * backends and their clients are imported only when asked for, so a run on the embedded store
 * (and the CLI's start) never loads `pg` or `ioredis`.
 */
import type { TlsConfig } from '../clients/tls.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';
import { lmdbBackend, type StateBackend } from './backend.ts';

/** URL schemes `checkpoint.store` accepts, with the backend each one opens. */
export const STORE_SCHEMES = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'redis:': 'redis',
  'rediss:': 'redis',
} as const;

/** The server backend a store URL names, or undefined for anything else. */
export function storeKindOf(url: string): 'postgres' | 'redis' | undefined {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    return undefined;
  }
  return Object.hasOwn(STORE_SCHEMES, protocol)
    ? STORE_SCHEMES[protocol as keyof typeof STORE_SCHEMES]
    : undefined;
}

/** Where state is kept: the embedded store in `dir`, or a server at `url` under `namespace`. */
export type StateStoreSpec =
  | { readonly dir: string }
  | {
      /** `postgres://…`, `postgresql://…`, `redis://…` or `rediss://…`. */
      readonly url: string;
      /** TLS to the server (`true`: the system's CAs); see `clients/tls.ts`. */
      readonly tls?: TlsConfig | true | undefined;
      /** Keys of this pipeline in the shared store (the pipeline name by default). */
      readonly namespace: string;
    };

/**
 * Opens the store `spec` names. Rejects with a `SLUICE_CONFIG` error for a URL of another
 * scheme (listing the accepted ones), and like the backend itself when it cannot be opened
 * (a `SLUICE_STAGE` error naming the folder or the server).
 *
 * @example
 * const backend = await openStateBackend({ url: 'redis://127.0.0.1:6379', namespace: 'orders' }, { log: console });
 * const store = new CheckpointStore(backend);
 */
export async function openStateBackend(
  spec: StateStoreSpec,
  options: {
    log?: Pick<Logger, 'warn'> | undefined;
    /** A server store: how long (ms) a call is retried while the server does not answer. Default 60 000. */
    retryTimeoutMs?: number | undefined;
  } = {},
): Promise<StateBackend> {
  if ('dir' in spec) return lmdbBackend({ dir: spec.dir });
  const kind = storeKindOf(spec.url);
  if (kind === 'postgres') {
    const { postgresBackend } = await import('./postgres.ts');
    return postgresBackend({
      url: spec.url,
      tls: spec.tls,
      namespace: spec.namespace,
      log: options.log,
      retryTimeoutMs: options.retryTimeoutMs,
    });
  }
  if (kind === 'redis') {
    const { redisBackend } = await import('./redis.ts');
    return redisBackend({
      url: spec.url,
      tls: spec.tls,
      namespace: spec.namespace,
      log: options.log,
      retryTimeoutMs: options.retryTimeoutMs,
    });
  }
  throw new SluiceError(
    ErrorCode.CONFIG,
    `\`${schemeOf(spec.url)}\` is not a state store; use a URL starting with ${acceptedSchemes()}`,
    { path: 'checkpoint.store' },
  );
}

/** `postgres://`, `postgresql://`, `redis://` or `rediss://`, for messages. */
export function acceptedSchemes(): string {
  const all = Object.keys(STORE_SCHEMES).map((s) => `\`${s}//\``);
  return `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`;
}

/** The scheme of a URL-ish string (never the rest: it may hold a password), for messages. */
export function schemeOf(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  return m === null ? url.slice(0, 20) : `${m[1]}://…`;
}
