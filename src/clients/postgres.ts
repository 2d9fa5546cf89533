/**
 * The `pg` client library (and `pg-copy-streams`), loaded on first use rather than with the connector modules: the
 * component registry lists the PostgreSQL source and sink, and a process that never talks to
 * PostgreSQL should not pay for the client (~11 MB of RSS for the import alone, measured: 41 →
 * 52 MB). `pg` is CommonJS, so `require` loads it synchronously where a connector needs it.
 * Also what the PostgreSQL source, sink and state backend share about its errors and URLs.
 */
import { createRequire } from 'node:module';
import type Pg from 'pg';
import type * as PgCopy from 'pg-copy-streams';
import { errorMessage, SluiceError } from '../core/errors.ts';
import { redactUrl } from '../core/url.ts';

const require = createRequire(import.meta.url);
let lib: typeof Pg | undefined;
let copyLib: typeof PgCopy | undefined;

/** The `pg` module; the first call loads it. */
export function pgLib(): typeof Pg {
  lib ??= require('pg') as typeof Pg;
  return lib;
}

/** The `pg-copy-streams` module (COPY … FROM STDIN); the first call loads it. */
export function pgCopyLib(): typeof PgCopy {
  copyLib ??= require('pg-copy-streams') as typeof PgCopy;
  return copyLib;
}

/**
 * An error of the `pg` client: `code` is the server's SQLSTATE or node's own code
 * (`ECONNREFUSED`); the other fields are the server's error report, when it sent one.
 */
export interface PgError extends Error {
  code?: string;
  where?: string;
  detail?: string;
  hint?: string;
  constraint?: string;
  column?: string;
}

/**
 * Failures worth another attempt on a new connection: network errors, the server shutting down
 * or starting, serialization failures and deadlocks, lack of resources. The one test the
 * PostgreSQL source, sink and state backend retry on; Sluice's own errors never are.
 */
export function isTransientPgError(err: unknown): boolean {
  if (err instanceof SluiceError) return false;
  const code = (err as PgError | null)?.code;
  if (typeof code === 'string') {
    // 08 connection exception, 53 insufficient resources, 57P admin shutdown / cannot connect now,
    // 40001 serialization failure, 40P01 deadlock; node's own ECONNREFUSED, ECONNRESET, EPIPE…
    if (/^(08|53|57P)/.test(code) || code === '40001' || code === '40P01') return true;
    if (/^E[A-Z]+$/.test(code)) return true;
  }
  return /Connection terminated|connection.*(closed|ended|lost)|not queryable|timeout|ECONN|EPIPE/i.test(
    errorMessage(err),
  );
}

/** `host:port` and database of a connection URL, for messages (never the password). */
export function serverOf(url: string): { address: string; database: string } {
  try {
    // Parsed without its user-info: a password that would be misread must not become the host.
    const u = new URL(redactUrl(url));
    const host = u.hostname === '' ? 'localhost' : u.hostname;
    const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username);
    return { address: `${host}:${u.port === '' ? '5432' : u.port}`, database };
  } catch {
    return { address: '(unparsable URL)', database: '' };
  }
}
