/**
 * PostgreSQL from Debian's `postgresql` package, on 127.0.0.1:5432, with a role and database
 * `sluice` (password `sluice`) for tests and benchmarks.
 *
 * Debian runs each server as a "cluster" managed by `pg_ctlcluster`, which starts the server
 * as the `postgres` user (the server refuses to run as root). `install` adds the package when
 * `pg_ctlcluster` is missing and creates the `main` cluster of the newest installed major
 * version when it does not exist; `start` writes `conf.d/sluice.conf` (listen on loopback
 * only, the port, `max_prepared_transactions` for the exactly-once sink's two-phase commit;
 * a running server restarts when this file changed), starts the cluster, waits for `pg_isready`, then creates the role and the
 * database if they are missing. Everything is idempotent; the server keeps its data between
 * runs (tests use fresh table names).
 *
 * Environment: `SLUICE_POSTGRES_PORT` (default 5432).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, hasCommand, portOpen, type ServiceDef, sh, waitUntil } from './service.ts';

const PORT = Number(process.env.SLUICE_POSTGRES_PORT ?? 5432);
const USER = 'sluice';
const PASSWORD = 'sluice';
const DATABASE = 'sluice';
const CLUSTER = 'main';

/** The newest PostgreSQL major version installed (`/usr/lib/postgresql/<ver>`), or undefined. */
function installedVersion(): string | undefined {
  const dir = '/usr/lib/postgresql';
  if (!existsSync(dir)) return undefined;
  const versions = readdirSync(dir)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(dir, v, 'bin', 'postgres')))
    .sort((a, b) => Number(a) - Number(b));
  return versions[versions.length - 1];
}

function version(): string {
  const v = installedVersion();
  if (v === undefined) {
    throw new Error(
      'PostgreSQL is not installed; run `npm run services -- up postgres` as root to install it',
    );
  }
  return v;
}

/** Runs `psql` as the `postgres` superuser over the local socket; returns its output. */
function psqlAsPostgres(sql: string, database = 'postgres'): string {
  return sh(
    'runuser',
    [
      '-u',
      'postgres',
      '--',
      'psql',
      '-p',
      String(PORT),
      '-d',
      database,
      '-v',
      'ON_ERROR_STOP=1',
      '-tAqc',
      sql,
    ],
    { quiet: true },
  ).trim();
}

/** True when the server accepts connections on 127.0.0.1:PORT. */
function ready(): boolean {
  if (!hasCommand('pg_isready')) return false;
  try {
    sh('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(PORT)], { quiet: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Loopback only, our port, and prepared transactions (the exactly-once `postgres` sink commits
 * in two phases). Returns true when the file changed (a running server must then restart).
 */
function writeConfig(ver: string): boolean {
  const confD = `/etc/postgresql/${ver}/${CLUSTER}/conf.d`;
  mkdirSync(confD, { recursive: true });
  const file = join(confD, 'sluice.conf');
  const text =
    '# Written by sluice scripts/services/postgres.ts\n' +
    `listen_addresses = '127.0.0.1'\nport = ${PORT}\nmax_prepared_transactions = 64\n`;
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return false;
  writeFileSync(file, text);
  return true;
}

/** Creates the `sluice` role (with its password) and database when missing. */
function ensureRoleAndDatabase(): void {
  const role = psqlAsPostgres(`SELECT 1 FROM pg_roles WHERE rolname = '${USER}'`);
  if (role !== '1') psqlAsPostgres(`CREATE ROLE ${USER} LOGIN CREATEDB PASSWORD '${PASSWORD}'`);
  const db = psqlAsPostgres(`SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'`);
  if (db !== '1') psqlAsPostgres(`CREATE DATABASE ${DATABASE} OWNER ${USER}`);
}

/** The PostgreSQL service. */
export const postgres: ServiceDef = {
  name: 'postgres',
  summary: `PostgreSQL (Debian postgresql) on 127.0.0.1:${PORT}, role and database \`${USER}\``,
  async install() {
    if (!hasCommand('pg_ctlcluster') || installedVersion() === undefined) aptInstall('postgresql');
    const ver = version();
    if (!existsSync(`/etc/postgresql/${ver}/${CLUSTER}/postgresql.conf`)) {
      sh('pg_createcluster', [ver, CLUSTER, '-p', String(PORT)], { quiet: true });
    }
  },
  async start() {
    const ver = version();
    if (writeConfig(ver) && ready()) {
      sh('pg_ctlcluster', [ver, CLUSTER, 'restart', '-m', 'fast'], { quiet: true });
      await waitUntil('postgres', async () => ready(), 60_000);
    }
    if (!ready()) {
      // `pg_ctlcluster start` fails when the cluster is already starting; the wait below settles it.
      try {
        sh('pg_ctlcluster', [ver, CLUSTER, 'start'], { quiet: true });
      } catch (err) {
        if (!ready()) process.stderr.write(`postgres: ${(err as Error).message}\n`);
      }
      await waitUntil('postgres', async () => ready(), 60_000);
    }
    ensureRoleAndDatabase();
  },
  async stop() {
    if (!(await portOpen(PORT))) return;
    sh('pg_ctlcluster', [version(), CLUSTER, 'stop', '-m', 'fast'], { quiet: true });
    await waitUntil('postgres shutdown', async () => !(await portOpen(PORT)), 30_000);
  },
  isUp: async () => ready(),
  address: () => `postgres://${USER}:${PASSWORD}@127.0.0.1:${PORT}/${DATABASE}`,
};
