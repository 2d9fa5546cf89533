/**
 * Redis from Debian's `redis-server`, on 127.0.0.1:6379, no persistence (tests only), and over
 * TLS on 127.0.0.1:6380 (`tls-port`; Debian's build links OpenSSL).
 *
 * The TLS port's certificate is signed by a test CA made in `.services/redis/tls` (`tls.ts`:
 * clients trust `ca.pem`; `client.pem`/`client.key` for mutual TLS, optional on this port) and
 * installed for the server in `/etc/redis/sluice-tls`, so a server started from another checkout
 * keeps serving the same files and this checkout's clients adopt its CA. A server already running
 * without the TLS port (an older script) gets it at run time (`CONFIG SET`), not a restart. An ACL
 * user `sluice` / `sluice-redis` is added for tests of authentication; the `default` user stays
 * open, so other tests are unchanged.
 *
 * {@link privateRedis} starts a second server from the same binary with its own folder and port,
 * for tests that stop or crash Redis (never the shared one other tests use).
 *
 * Environment: `SLUICE_REDIS_PORT` (default 6379), `SLUICE_REDIS_TLS_PORT` (default 6380).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { aptInstall, hasCommand, portOpen, type ServiceDef, sh, waitUntil } from './service.ts';
import { installServerCertificates, serviceTlsDir, type TestCertificates } from './tls.ts';

const PORT = Number(process.env.SLUICE_REDIS_PORT ?? 6379);
const TLS_PORT = Number(process.env.SLUICE_REDIS_TLS_PORT ?? 6380);
/** The ACL user for tests of authentication, and its password. */
const USER = 'sluice';
const PASSWORD = 'sluice-redis';
/** The test CA and client certificate clients use (see the module comment). */
export const REDIS_TLS_DIR = serviceTlsDir('redis');
/** Where the server reads its certificate, key and the CA of client certificates. */
const SERVER_TLS_DIR = '/etc/redis/sluice-tls';

/** The server's certificate files: made once in `REDIS_TLS_DIR`, installed, adopted back. */
const ensureServerCertificates = () =>
  installServerCertificates(REDIS_TLS_DIR, SERVER_TLS_DIR, 'Sluice test CA (redis)');

/** `redis-server` / `CONFIG SET` settings of the TLS port (pairs of name and value). */
function tlsSettings(files: TestCertificates): string[] {
  return [
    'tls-cert-file',
    files.serverCert,
    'tls-key-file',
    files.serverKey,
    'tls-ca-cert-file',
    files.ca,
    'tls-auth-clients',
    'optional',
    'tls-port',
    String(TLS_PORT),
  ];
}

const cli = (...args: string[]) => sh('redis-cli', ['-p', String(PORT), ...args], { quiet: true }).trim();

/** The `redis-server` arguments of a server on loopback port `port`. */
function serverArgs(port: number): string[] {
  return ['--bind', '127.0.0.1', '--port', String(port)];
}

/** The Redis service. */
export const redis: ServiceDef = {
  name: 'redis',
  summary: `Redis (Debian redis-server) on 127.0.0.1:${PORT}, TLS on ${TLS_PORT}`,
  async install() {
    if (!hasCommand('redis-server')) aptInstall('redis-server');
  },
  async start() {
    const files = ensureServerCertificates();
    if (!(await portOpen(PORT))) {
      const settings = tlsSettings(files);
      const tlsArgs = settings.flatMap((v, i) => (i % 2 === 0 ? [`--${v}`] : [v]));
      sh('redis-server', [
        '--daemonize',
        'yes',
        ...serverArgs(PORT),
        '--save',
        '',
        '--appendonly',
        'no',
        ...tlsArgs,
      ]);
      await waitUntil('redis', () => portOpen(PORT), 30_000);
    } else if (!(await portOpen(TLS_PORT))) {
      // Started without TLS (by an older script): Redis 7 opens the TLS port at run time.
      const answer = cli('CONFIG', 'SET', ...tlsSettings(files));
      if (answer !== 'OK') throw new Error(`redis: opening the TLS port ${TLS_PORT} failed: ${answer}`);
    }
    await waitUntil('redis TLS port', () => portOpen(TLS_PORT), 15_000);
    const acl = cli('ACL', 'SETUSER', USER, 'on', 'resetpass', `>${PASSWORD}`, '~*', '&*', '+@all');
    if (acl !== 'OK') throw new Error(`redis: adding ACL user \`${USER}\` failed: ${acl}`);
  },
  async stop() {
    if (!(await portOpen(PORT))) return;
    sh('redis-cli', ['-p', String(PORT), 'shutdown', 'nosave'], { quiet: true });
    await waitUntil('redis shutdown', async () => !(await portOpen(PORT)), 15_000);
  },
  isUp: () => portOpen(PORT),
  address: () => `redis://127.0.0.1:${PORT}`,
  details: () => [
    `TLS rediss://127.0.0.1:${TLS_PORT} (CA ${join(REDIS_TLS_DIR, 'ca.pem')}; client certificate optional: ${join(REDIS_TLS_DIR, 'client.pem')}, client.key)`,
    `ACL user \`${USER}\` / \`${PASSWORD}\` (the \`default\` user needs no password)`,
  ],
};

/** A Redis server of a test's own: see {@link privateRedis}. */
export interface PrivateRedis {
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Starts it (again) on the same folder and port; resolves once it accepts connections. No-op when running. */
  start(): Promise<void>;
  /**
   * Stops it: `SIGTERM` is a clean shutdown (the AOF is flushed), `SIGKILL` a crash. Resolves once
   * the process is gone. No-op when it is not running.
   */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/**
 * A second Redis server from the binary `npm run services -- up redis` installs, keeping its
 * append-only file (fsynced on every write, so a crash loses nothing acknowledged) in `dir`, on
 * `port`: for tests that stop or crash Redis, which must never be the shared one.
 *
 * @example
 * const server = privateRedis({ dir: mkdtempSync(join(tmpdir(), 'redis-')), port: 16379 });
 * await server.start();
 * await server.stop('SIGKILL');
 * await server.start(); // same data, same port
 * await server.stop('SIGKILL');
 */
export function privateRedis(options: { dir: string; port: number }): PrivateRedis {
  if (!hasCommand('redis-server')) {
    throw new Error('redis-server is not installed; run `npm run services -- up redis` first');
  }
  const { dir, port } = options;
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  const server: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      if (child !== undefined) return;
      const args = [...serverArgs(port), '--dir', dir, '--save', '', '--appendonly', 'yes'];
      const c = spawn('redis-server', [...args, '--appendfsync', 'always'], { stdio: 'ignore' });
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      // A test that fails midway must not leave the server behind.
      process.once('exit', () => c.kill('SIGKILL'));
      await waitUntil(`a private Redis on 127.0.0.1:${port}`, () => portOpen(port), 30_000);
    },
    async stop(signal) {
      const c = child;
      if (c === undefined) return;
      c.kill(signal);
      await exited;
      child = undefined;
    },
  };
  return server;
}
