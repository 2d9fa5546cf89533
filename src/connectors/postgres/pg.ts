/**
 * The `pg` client library (and `pg-copy-streams`), loaded on first use rather than with the connector modules: the
 * component registry lists the PostgreSQL source and sink, and a process that never talks to
 * PostgreSQL should not pay for the client (~11 MB of RSS for the import alone, measured: 41 →
 * 52 MB). `pg` is CommonJS, so `require` loads it synchronously where a connector needs it.
 */
import { createRequire } from 'node:module';
import type Pg from 'pg';
import type * as PgCopy from 'pg-copy-streams';

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
