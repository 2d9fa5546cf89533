/**
 * What a real service the tests need looks like to `npm run services`: how to install it on
 * a fresh machine, start it on loopback, tell whether it answers, stop it, and its address.
 * Every step is idempotent: `up` on a running service only prints its address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';

/** One service: Kafka, PostgreSQL, Redis, a schema registry… */
export interface ServiceDef {
  /** Name used on the command line, e.g. `redis`. */
  readonly name: string;
  /** One line for `status` and `--help`. */
  readonly summary: string;
  /** Installs what is missing (packages, jars). Must be a no-op when already installed. */
  install(): Promise<void>;
  /** Starts the service if it is not answering yet, and waits until it answers. */
  start(): Promise<void>;
  /** Stops the service if it is running. */
  stop(): Promise<void>;
  /** True when the service answers on its address. */
  isUp(): Promise<boolean>;
  /** Address clients use (a URL such as `redis://127.0.0.1:6379`). */
  address(): string;
  /** More addresses (a TLS port, another listener), one line each, printed by `status` under the address. */
  details?(): string[];
}

/** Runs a command, inheriting stderr; throws with the command line and exit status on failure. */
export function sh(
  cmd: string,
  args: string[],
  options: { quiet?: boolean; env?: NodeJS.ProcessEnv } = {},
): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', options.quiet ? 'pipe' : 'inherit'],
    env: options.env ?? process.env,
  });
  if (r.error) throw new Error(`running \`${cmd} ${args.join(' ')}\`: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `\`${cmd} ${args.join(' ')}\` exited with ${r.status}${r.stderr ? `: ${r.stderr.trim()}` : ''}`,
    );
  }
  return r.stdout;
}

/** True when `command` is on PATH. */
export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

let aptUpdated = false;

/** Installs Debian packages with apt-get (as root), running `apt-get update` once first. */
export function aptInstall(...packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    sh('apt-get', ['update', '-q'], { quiet: true, env });
    aptUpdated = true;
  }
  sh('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { quiet: true, env });
}

/** True when a TCP connection to host:port succeeds within `timeoutMs`. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls `check` every 200 ms until it returns true; throws after `timeoutMs` naming `what`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not answer within ${Math.round(timeoutMs / 1000)} s`);
}

/** The pid stored in `pidFile`, or undefined when there is none. */
export function readPidFile(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True while process `pid` exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
