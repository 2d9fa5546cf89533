/**
 * PostgreSQL from Debian's `postgresql` package, on 127.0.0.1:5432, with a role and database
 * `sluice` (password `sluice`) for tests and benchmarks.
 *
 * Debian runs each server as a "cluster" managed by `pg_ctlcluster`, which starts the server
 * as the `postgres` user (the server refuses to run as root). `install` adds the package when
 * `pg_ctlcluster` is missing and creates the `main` cluster of the newest installed major
 * version when it does not exist; `start` writes `conf.d/sluice.conf` (listen on loopback
 * only, the port, `max_prepared_transactions` for the exactly-once sink's two-phase commit;
 * a running server restarts when this file changed) and `conf.d/sluice-tls.conf` (TLS, below;
 * a reload), starts the cluster, waits for `pg_isready`, then creates the role and the
 * database if they are missing. Everything is idempotent; the server keeps its data between
 * runs (tests use fresh table names).
 *
 * TLS, on the same port (PostgreSQL negotiates it per connection): the server's certificate is
 * signed by a test CA made in `.services/postgres/tls` (`tls.ts`; clients trust `ca.pem`, and
 * `client.pem`/`client.key` is a client certificate with CN `sluice`), installed for the server in
 * `/etc/postgresql/<ver>/main/sluice-tls` (the key readable by `postgres` only). Plaintext stays
 * accepted for `sluice`, so other tests are unchanged; two more roles prove TLS is really used,
 * through lines at the top of `pg_hba.conf` that refuse them without TLS:
 * `sluice_tls` (password `sluice-tls`) over TLS only, and `sluice_cert` by client certificate only
 * (`cert` authentication, CN `sluice` mapped to it in `pg_ident.conf`). Both may use database `sluice`.
 *
 * Environment: `SLUICE_POSTGRES_PORT` (default 5432).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, hasCommand, portOpen, type ServiceDef, sh, waitUntil } from './service.ts';
import { certificatePaths, installServerCertificates, serviceTlsDir } from './tls.ts';

const PORT = Number(process.env.SLUICE_POSTGRES_PORT ?? 5432);
const USER = 'sluice';
const PASSWORD = 'sluice';
const DATABASE = 'sluice';
const CLUSTER = 'main';
/** The role that may connect over TLS only, with a password. */
export const TLS_USER = 'sluice_tls';
const TLS_PASSWORD = 'sluice-tls';
/** The role that may connect over TLS only, with the client certificate (CN `sluice`). */
export const CERT_USER = 'sluice_cert';
/** The test CA and client certificate clients use (see the module comment). */
export const POSTGRES_TLS_DIR = serviceTlsDir('postgres');

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

/** Where the server reads its certificate, key and the CA of client certificates. */
function serverTlsDir(ver: string): string {
  return `/etc/postgresql/${ver}/${CLUSTER}/sluice-tls`;
}

/**
 * The server's certificate files in {@link serverTlsDir}: made once (in `POSTGRES_TLS_DIR`) and
 * kept, since clients trust the CA; a server set up from another checkout keeps its files, and
 * this checkout's clients adopt its CA.
 */
function ensureServerCertificates(ver: string): void {
  installServerCertificates(POSTGRES_TLS_DIR, serverTlsDir(ver), 'Sluice test CA (postgres)', 'postgres');
}

/**
 * Loopback only, our port, and prepared transactions (the exactly-once `postgres` sink commits
 * in two phases). Returns true when the file changed (a running server must then restart).
 */
function writeConfig(ver: string): boolean {
  const text =
    '# Written by sluice scripts/services/postgres.ts\n' +
    `listen_addresses = '127.0.0.1'\nport = ${PORT}\nmax_prepared_transactions = 64\n`;
  return writeConfD(ver, 'sluice.conf', text);
}

/**
 * TLS with the test certificate, in a file of its own: the TLS settings take a reload, not a
 * restart, and a services script from before TLS (another checkout) leaves this file alone
 * instead of fighting over `sluice.conf`. Returns true when the file changed.
 */
function writeTlsConfig(ver: string): boolean {
  const tls = certificatePaths(serverTlsDir(ver));
  const text =
    '# Written by sluice scripts/services/postgres.ts\n' +
    `ssl = on\nssl_cert_file = '${tls.serverCert}'\nssl_key_file = '${tls.serverKey}'\nssl_ca_file = '${tls.ca}'\n`;
  return writeConfD(ver, 'sluice-tls.conf', text);
}

/** Writes `conf.d/<name>` of the cluster unless it already holds `text`; true when it changed. */
function writeConfD(ver: string, name: string, text: string): boolean {
  const confD = `/etc/postgresql/${ver}/${CLUSTER}/conf.d`;
  mkdirSync(confD, { recursive: true });
  const file = join(confD, name);
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return false;
  writeFileSync(file, text);
  return true;
}

const BEGIN = '# sluice (scripts/services/postgres.ts) begin';
const END = '# sluice end';

/**
 * Puts `lines` between the marker comments at the top of `file` (replacing an earlier block);
 * returns true when the file changed (the server must then reload).
 */
function ensureBlock(file: string, lines: readonly string[]): boolean {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const rest = start >= 0 && end > start ? text.slice(0, start) + text.slice(end + END.length + 1) : text;
  const next = `${BEGIN}\n${lines.join('\n')}\n${END}\n${rest}`;
  if (next === text) return false;
  writeFileSync(file, next);
  return true;
}

/** `pg_hba.conf` and `pg_ident.conf` lines of the TLS-only roles; true when a file changed. */
function writeAccessRules(ver: string): boolean {
  const dir = `/etc/postgresql/${ver}/${CLUSTER}`;
  // pg_hba.conf takes the first matching line: these come before Debian's `host all all` lines.
  const hba = ensureBlock(join(dir, 'pg_hba.conf'), [
    `hostssl   all ${TLS_USER}  127.0.0.1/32 scram-sha-256`,
    `hostnossl all ${TLS_USER}  127.0.0.1/32 reject`,
    `hostssl   all ${CERT_USER} 127.0.0.1/32 cert map=sluice`,
    `hostnossl all ${CERT_USER} 127.0.0.1/32 reject`,
  ]);
  const ident = ensureBlock(join(dir, 'pg_ident.conf'), [`sluice sluice ${CERT_USER}`]);
  return hba || ident;
}

/** Creates the `sluice` role (with its password) and database when missing. */
function ensureRoleAndDatabase(): void {
  const role = psqlAsPostgres(`SELECT 1 FROM pg_roles WHERE rolname = '${USER}'`);
  if (role !== '1') psqlAsPostgres(`CREATE ROLE ${USER} LOGIN CREATEDB PASSWORD '${PASSWORD}'`);
  const db = psqlAsPostgres(`SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'`);
  if (db !== '1') psqlAsPostgres(`CREATE DATABASE ${DATABASE} OWNER ${USER}`);
  for (const [name, password] of [
    [TLS_USER, TLS_PASSWORD],
    [CERT_USER, undefined],
  ] as const) {
    if (psqlAsPostgres(`SELECT 1 FROM pg_roles WHERE rolname = '${name}'`) !== '1') {
      psqlAsPostgres(`CREATE ROLE ${name} LOGIN${password === undefined ? '' : ` PASSWORD '${password}'`}`);
      psqlAsPostgres(`GRANT ALL ON SCHEMA public TO ${name}`, DATABASE);
    }
  }
}

/** The PostgreSQL service. */
export const postgres: ServiceDef = {
  name: 'postgres',
  summary: `PostgreSQL (Debian postgresql) on 127.0.0.1:${PORT} (plaintext and TLS), role and database \`${USER}\``,
  async install() {
    if (!hasCommand('pg_ctlcluster') || installedVersion() === undefined) aptInstall('postgresql');
    const ver = version();
    if (!existsSync(`/etc/postgresql/${ver}/${CLUSTER}/postgresql.conf`)) {
      sh('pg_createcluster', [ver, CLUSTER, '-p', String(PORT)], { quiet: true });
    }
  },
  async start() {
    const ver = version();
    ensureServerCertificates(ver);
    // Both take a reload only (`pg_hba.conf`, `pg_ident.conf` and the `ssl*` settings).
    const access = writeAccessRules(ver);
    if ((writeTlsConfig(ver) || access) && ready())
      sh('pg_ctlcluster', [ver, CLUSTER, 'reload'], { quiet: true });
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
  details: () => [
    `TLS on the same port: postgres://${TLS_USER}:${TLS_PASSWORD}@127.0.0.1:${PORT}/${DATABASE}?sslmode=verify-full (TLS only; CA ${join(POSTGRES_TLS_DIR, 'ca.pem')})`,
    `client certificate: user \`${CERT_USER}\` (TLS and certificate only; ${join(POSTGRES_TLS_DIR, 'client.pem')}, client.key)`,
  ],
};
