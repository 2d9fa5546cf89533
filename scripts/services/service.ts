/**
 * What a real service the tests need looks like to `npm run services`: how to install it on
 * a fresh machine, start it on loopback, tell whether it answers, stop it, and its address.
 * Every step is idempotent: `up` on a running service only prints its address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

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

/**
 * Runs Maven quietly (`-B -q`, colours off) with its output captured, so nothing of it reaches
 * the terminal or `npm test`'s output when it succeeds; Maven 3.8 writes colour codes
 * (`ESC[0m`) even in batch mode and even to a pipe. On failure throws with what Maven said
 * (on its stdout), the colour codes removed, last lines first cut to 40.
 */
export function mvn(args: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const full = ['-B', '-q', '-Dstyle.color=never', ...args];
  const r = spawnSync('mvn', full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.error) throw new Error(`running \`mvn ${full.join(' ')}\`: ${r.error.message}`);
  if (r.status === 0) return;
  const said = stripVTControlCharacters(`${r.stdout ?? ''}${r.stderr ?? ''}`)
    .trim()
    .split('\n')
    .slice(-40)
    .join('\n');
  throw new Error(`\`mvn ${full.join(' ')}\` exited with ${r.status}${said ? `:\n${said}` : ''}`);
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

/**
 * Stops process `pid` of a service: `SIGTERM`, then `SIGKILL` after `timeoutMs`; waits until it
 * is gone and removes `pidFile`. Nothing to do (but remove the file) when it is not running.
 */
export async function stopProcess(
  pid: number | undefined,
  pidFile: string,
  timeoutMs: number,
): Promise<void> {
  if (pid === undefined || !processAlive(pid)) {
    rmSync(pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  while (processAlive(pid)) await new Promise((r) => setTimeout(r, 100));
  rmSync(pidFile, { force: true });
}

/** Options of {@link waitForStart}. */
export interface WaitForStartOptions {
  /** The service's process (from its pid file). */
  readonly pid: number;
  readonly pidFile: string;
  /** Names the service in errors, e.g. `Pulsar`. */
  readonly what: string;
  /** True once the service answers (a port, an admin call). */
  readonly ready: () => Promise<boolean>;
  /** What `ready` waits for, in the timeout error: ``did not answer on 127.0.0.1:9092``. */
  readonly readyMeans: string;
  readonly timeoutMs: number;
  /** The end of its logs, for the error. */
  readonly logTail: () => string;
}

/**
 * Waits until a service just started answers. Throws, with the end of its logs, when its process
 * exits first (the pid file is removed) or when `timeoutMs` passes.
 */
export async function waitForStart(o: WaitForStartOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(o.pid)) {
      rmSync(o.pidFile, { force: true });
      throw new Error(`${o.what} exited while starting (pid ${o.pid}); its logs end with:\n${o.logTail()}`);
    }
    if (await o.ready()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${o.what} ${o.readyMeans} within ${o.timeoutMs / 1000} s; its logs end with:\n${o.logTail()}`,
  );
}

/**
 * Installs the runtime jars a throw-away `pom.xml` depends on into `libDir` with Maven
 * (`dependency:copy-dependencies`), renaming the folder into place last, so an interrupted
 * download is never taken for a complete one.
 */
export function mavenCopyDependencies(home: string, pom: string, libDir: string, label: string): void {
  if (!hasCommand('java') || !hasCommand('mvn')) aptInstall('openjdk-17-jre-headless', 'maven');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'pom.xml'), pom);
  const tmp = `${libDir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`${label}: fetching jars with Maven (first time only)\n`);
  mvn([
    '-f',
    join(home, 'pom.xml'),
    'dependency:copy-dependencies',
    `-DoutputDirectory=${tmp}`,
    '-DincludeScope=runtime',
  ]);
  rmSync(libDir, { recursive: true, force: true });
  renameSync(tmp, libDir);
}
