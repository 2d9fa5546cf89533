/**
 * A private, throw-away PostgreSQL server for tests that must stop, crash or restart the server —
 * which they must never do to the shared one on 5432 that other tests use at the same time.
 *
 * It uses the Debian binaries that `npm run services -- up postgres` installs
 * (`/usr/lib/postgresql/<newest>/bin`), runs them as the `postgres` user when the test runs as root
 * (the server refuses root), keeps its data directory and socket in a fresh temporary directory,
 * listens on 127.0.0.1 on a free port with trust authentication (loopback only), and allows
 * prepared transactions (the exactly-once `postgres` sink commits in two phases).
 *
 * The server is stopped and its directory deleted by {@link PrivatePostgres.destroy}, or at the
 * latest when the process exits (not when it is killed).
 *
 * @example
 * await using pgx = await startPrivatePostgres();
 * const client = new pg.Client({ connectionString: pgx.url });
 * await pgx.stop('immediate'); // a crash: prepared transactions survive, open ones are lost
 * await pgx.start();
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

/** How `pg_ctl stop` ends the server: `immediate` is a crash (recovery at the next start). */
export type ShutdownMode = 'smart' | 'fast' | 'immediate';

/** A running (or stopped) private server; {@link PrivatePostgres.destroy} removes everything. */
export interface PrivatePostgres {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (superuser, trust authentication, or its password). */
  readonly url: string;
  /** The temporary directory holding the data directory (`data/`) and the server log (`server.log`). */
  readonly dir: string;
  /** Stops the server with `pg_ctl stop -m <mode>` and waits until it is down. */
  stop(mode: ShutdownMode): Promise<void>;
  /** Starts the server again on the same port and data, and waits until it accepts connections. */
  start(): Promise<void>;
  /** The server log so far (for assertion messages). */
  log(): string;
  /** Stops the server (immediately) if it runs and deletes its directory. Idempotent. */
  destroy(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link startPrivatePostgres}. */
export interface PrivatePostgresOptions {
  /** Extra `postgresql.conf` settings, e.g. `{ max_connections: '50' }`. */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * The superuser's password: with one, connections over TCP must give the right password
   * (`scram-sha-256`) instead of none (trust), and `url` carries it.
   */
  readonly password?: string;
}

/** The newest installed PostgreSQL's `bin` directory; throws saying how to install one. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  const newest = versions[versions.length - 1];
  if (newest === undefined) {
    throw new Error(
      'no PostgreSQL binaries under /usr/lib/postgresql; run `npm run services -- up postgres` first',
    );
  }
  return join(root, newest, 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Servers not destroyed yet: stopped when the process exits, even after a failed or hung test. */
const live = new Set<() => void>();
process.once('exit', () => {
  for (const stop of live) stop();
});

/** Runs a PostgreSQL tool (as `postgres` when we are root); throws with its output on failure. */
function tool(bin: string, name: string, args: readonly string[]): string {
  const cmd = asRoot ? 'runuser' : join(bin, name);
  const argv = asRoot ? ['-u', 'postgres', '--', join(bin, name), ...args] : [...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: tmpdir() });
  if (r.error) throw new Error(`running ${name}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `\`${name} ${args.join(' ')}\` exited with ${r.status}: ${r.stderr.trim()} ${r.stdout.trim()}`,
    );
  }
  return r.stdout;
}

function userIds(user: string): { uid: number; gid: number } {
  const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error(`no user \`${user}\` on this machine`);
  return { uid, gid };
}

/**
 * Creates a cluster in a fresh temporary directory and starts it on a free port; resolves when it
 * accepts connections.
 */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  if (asRoot) {
    const { uid, gid } = userIds('postgres');
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const port = await freePort();
  let running = false;
  try {
    const auth = ['-A', 'trust'];
    if (options.password !== undefined) {
      const pwfile = join(dir, 'pwfile');
      writeFileSync(pwfile, `${options.password}\n`);
      if (asRoot) {
        const { uid, gid } = userIds('postgres');
        chownSync(pwfile, uid, gid);
      }
      auth.push('--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
    }
    tool(bin, 'initdb', ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-sync', '-N']);
    const settings: Record<string, string> = {
      listen_addresses: "'127.0.0.1'",
      port: String(port),
      unix_socket_directories: `'${dir}'`,
      max_prepared_transactions: '16',
      max_connections: '30',
      shared_buffers: "'32MB'",
      // No fsync (the OS does not crash in these tests), but commits still reach the WAL before
      // they are acknowledged, so an immediate stop loses nothing that was committed or prepared.
      fsync: 'off',
      full_page_writes: 'off',
      logging_collector: 'off',
      ...options.settings,
    };
    const conf = Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n');
    writeFileSync(join(data, 'postgresql.auto.conf'), `# private-postgres.ts\n${conf}\n`);
    if (asRoot) {
      const { uid, gid } = userIds('postgres');
      chownSync(join(data, 'postgresql.auto.conf'), uid, gid);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const stopOnExit = () => {
    try {
      tool(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', '-s', 'stop']);
    } catch {
      // Already down.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  live.add(stopOnExit);
  const server: PrivatePostgres = {
    port,
    url: `postgres://postgres${options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`}@127.0.0.1:${port}/postgres`,
    dir,
    async start() {
      tool(bin, 'pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', '-s', 'start']);
      running = true;
    },
    async stop(mode) {
      tool(bin, 'pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', '-s', 'stop']);
      running = false;
    },
    log() {
      const r = spawnSync('cat', [logFile], { encoding: 'utf8' });
      return r.stdout ?? '';
    },
    async destroy() {
      live.delete(stopOnExit);
      if (running || existsSync(join(data, 'postmaster.pid'))) {
        try {
          tool(bin, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', '-s', 'stop']);
        } catch {
          // Already down.
        }
        running = false;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return this.destroy();
    },
  };
  try {
    await server.start();
  } catch (err) {
    const log = server.log();
    await server.destroy();
    throw new Error(`${(err as Error).message}\nserver log:\n${log}`);
  }
  return server;
}
