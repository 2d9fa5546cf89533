/**
 * The `pg` client library, loaded on first use rather than with the connector modules: the
 * component registry lists the PostgreSQL source and sink, and a process that never talks to
 * PostgreSQL should not pay for the client (~11 MB of RSS for the import alone, measured: 41 →
 * 52 MB). `pg` is CommonJS, so `require` loads it synchronously where a connector needs it.
 */
import { createRequire } from 'node:module';
import type Pg from 'pg';

const require = createRequire(import.meta.url);
let lib: typeof Pg | undefined;

/** The `pg` module; the first call loads it. */
export function pgLib(): typeof Pg {
  lib ??= require('pg') as typeof Pg;
  return lib;
}
