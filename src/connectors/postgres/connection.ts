/**
 * The `postgres` sink's connections and how it retries on them: the main connection that holds
 * the open transaction ({@link SinkConnection}), a second one for `COMMIT PREPARED` and other
 * bookkeeping that may run while a write is pending ({@link AdminLane}), and the one retry policy
 * bound to the sink's settings ({@link sinkRetry}). Nothing here knows about rows or checkpoints.
 */
import { Readable } from 'node:stream';
import { pipeline as pipeStreams } from 'node:stream/promises';
import type pg from 'pg';
import { pgCopyLib, pgLib, retryingPg } from '../../clients/postgres.ts';
import { pgConnectFailure, pgTlsSettings } from '../../clients/postgres-tls.ts';
import type { TlsConfig } from '../../clients/tls.ts';
import type { StageContext } from '../../core/stage.ts';

/** Longest single connection attempt: a server that does not answer is tried again sooner. */
const ATTEMPT_TIMEOUT = 10_000;

/**
 * Opens one connection of the sink (`application_name` `sluice <pipeline>`, keep-alive, each
 * attempt bounded by `connectTimeout` and at most 10 s; TLS by `sslmode` and `tls`, see
 * `clients/postgres-tls.ts`). Rejects with the client's error, or with a `SLUICE_CONFIG` error
 * saying what to do when the server refused it for good (password, certificate, TLS); the
 * half-open connection is closed first.
 */
export async function openSinkClient(
  url: string,
  tls: TlsConfig | true | undefined,
  pipeline: string,
  connectTimeout: number,
): Promise<pg.Client> {
  const c = new (pgLib().Client)({
    ...pgTlsSettings(url, tls),
    application_name: `sluice ${pipeline}`,
    connectionTimeoutMillis: Math.min(connectTimeout, ATTEMPT_TIMEOUT),
    keepAlive: true,
  });
  // An idle connection that breaks emits `error`; the next query fails and is retried.
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => {});
    throw pgConnectFailure(err, url, tls) ?? err;
  }
  return c;
}

/** Closes `c`, ignoring a failure (a broken connection has nothing left to close). */
export async function dropClient(c: pg.Client | undefined): Promise<void> {
  if (c !== undefined) await c.end().catch(() => {});
}

/**
 * The connection that holds the sink's open transaction, opened on first use. After a failure
 * the caller {@link reset}s it (the server rolls the transaction back with it) and the next call
 * opens a new one. One caller at a time: the sink runs one step on it at a time.
 */
export class SinkConnection {
  #client: pg.Client | undefined;
  readonly #open: () => Promise<pg.Client>;

  /** `open`: makes a new connected client (see {@link openSinkClient}). */
  constructor(open: () => Promise<pg.Client>) {
    this.#open = open;
  }

  /** Takes a client connected elsewhere (by `open`, which checked the table on it). */
  adopt(client: pg.Client): void {
    this.#client = client;
  }

  /** Runs `sql` (with `values` as parameters), connecting first if needed. */
  async query(sql: string, values?: unknown[]): Promise<pg.QueryResult> {
    this.#client ??= await this.#open();
    return values === undefined ? this.#client.query(sql) : this.#client.query(sql, values);
  }

  /** Streams `payload` (COPY text) into `copySql` (`COPY … FROM STDIN`); resolves once the server acknowledged it. */
  async copy(copySql: string, payload: Buffer): Promise<void> {
    this.#client ??= await this.#open();
    await pipeStreams(Readable.from([payload]), this.#client.query(pgCopyLib().from(copySql)));
  }

  /** Forgets the connection and closes it; an open transaction on it is rolled back by the server. */
  async reset(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    await dropClient(c);
  }
}

/** What {@link sinkRetry} needs from the sink. */
export interface SinkRetrySettings {
  readonly url: string;
  /** The table, in warnings (``writing to `t` ``). */
  readonly table: string;
  /** ``table `t` at postgres://…``, in the final error. */
  readonly where: string;
  /** `retryTimeout`, ms: the default limit. */
  readonly retryTimeout: number;
  /** The stage's context (clock, signal, log), known once the sink is opened. */
  readonly ctx: () => StageContext;
  /** Rows that a reconnect sends again, named in each warning. */
  readonly pendingRows: () => number;
  /** Counts each retry, for the sink's metrics. */
  readonly onRetry: () => void;
}

/**
 * Runs `op` until it succeeds, through the one retry policy ({@link retryingPg}); `onFailure`
 * runs after each transient failure (drop the broken connection). `limit` is the time and the
 * setting that bounds it (default `retryTimeout`).
 */
export type SinkRetry = <T>(
  doing: string,
  op: () => Promise<T>,
  onFailure: () => Promise<void>,
  limit?: readonly [ms: number, setting: string],
) => Promise<T>;

/**
 * The sink's retry: each retry warns ``Waiting for PostgreSQL at `host:port` (database `db`):
 * writing to `t` failed (…); retrying in 400 ms (attempt 3, giving up after 2 min,
 * `retryTimeout`). 12000 rows of the open transaction are sent again then``; see {@link retryingPg}.
 */
export function sinkRetry(settings: SinkRetrySettings): SinkRetry {
  return (doing, op, onFailure, limit = [settings.retryTimeout, 'retryTimeout']) => {
    const ctx = settings.ctx();
    return retryingPg(op, {
      url: settings.url,
      doing: `${doing} \`${settings.table}\``,
      where: `${doing} ${settings.where}`,
      timeoutMs: limit[0],
      setting: limit[1],
      clock: ctx.clock,
      signal: ctx.signal,
      log: ctx.log,
      logFields: { table: settings.table },
      context: { table: settings.table },
      hint: () => {
        const rows = settings.pendingRows();
        return rows === 0 ? undefined : `${rows} rows of the open transaction are sent again then`;
      },
      onFailure: async () => {
        settings.onRetry();
        await onFailure();
      },
    });
  };
}

/**
 * A second connection for work that may run while a write is pending on the main one (`COMMIT
 * PREPARED`, settling prepared transactions, reading and deleting positions): calls run one at a
 * time in call order, each retried on a new connection after a transient failure.
 */
export class AdminLane {
  #client: pg.Client | undefined;
  #lane: Promise<unknown> = Promise.resolve();
  readonly #open: () => Promise<pg.Client>;
  readonly #retry: SinkRetry;

  constructor(open: () => Promise<pg.Client>, retry: SinkRetry) {
    this.#open = open;
    this.#retry = retry;
  }

  /** Runs `op` on the admin connection after every earlier call settled; see the class comment. */
  run<T>(doing: string, op: (c: pg.Client) => Promise<T>): Promise<T> {
    const call = this.#lane.then(() =>
      this.#retry(
        doing,
        async () => {
          this.#client ??= await this.#open();
          return op(this.#client);
        },
        async () => {
          const c = this.#client;
          this.#client = undefined;
          await dropClient(c);
        },
      ),
    );
    this.#lane = call.catch(() => {});
    return call;
  }

  /** Waits for the calls under way, then closes the connection. */
  async close(): Promise<void> {
    await this.#lane.catch(() => {});
    const c = this.#client;
    this.#client = undefined;
    await dropClient(c);
  }
}
