/**
 * Redis from Debian's `redis-server`, on 127.0.0.1:6379, no persistence (tests only).
 *
 * {@link privateRedis} starts a second server from the same binary with its own folder and port,
 * for tests that stop or crash Redis (never the shared one other tests use).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { aptInstall, hasCommand, portOpen, type ServiceDef, sh, waitUntil } from './service.ts';

const PORT = Number(process.env.SLUICE_REDIS_PORT ?? 6379);

/** The `redis-server` arguments of a server on loopback port `port`. */
function serverArgs(port: number): string[] {
  return ['--bind', '127.0.0.1', '--port', String(port)];
}

/** The Redis service. */
export const redis: ServiceDef = {
  name: 'redis',
  summary: `Redis (Debian redis-server) on 127.0.0.1:${PORT}`,
  async install() {
    if (!hasCommand('redis-server')) aptInstall('redis-server');
  },
  async start() {
    if (await portOpen(PORT)) return;
    sh('redis-server', ['--daemonize', 'yes', ...serverArgs(PORT), '--save', '', '--appendonly', 'no']);
    await waitUntil('redis', () => portOpen(PORT), 30_000);
  },
  async stop() {
    if (!(await portOpen(PORT))) return;
    sh('redis-cli', ['-p', String(PORT), 'shutdown', 'nosave'], { quiet: true });
    await waitUntil('redis shutdown', async () => !(await portOpen(PORT)), 15_000);
  },
  isUp: () => portOpen(PORT),
  address: () => `redis://127.0.0.1:${PORT}`,
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
