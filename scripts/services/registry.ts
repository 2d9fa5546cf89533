/**
 * A schema registry with the Confluent-compatible REST API for tests and benchmarks: Apicurio
 * Registry 3.x (in-memory storage, no Kafka) on 127.0.0.1:8081, API at
 * `http://127.0.0.1:8081/apis/ccompat/v7` (the address `up` prints).
 *
 * Installed from Maven Central: a throw-away `pom.xml` runs `maven-dependency-plugin:unpack` on
 * `io.apicurio:apicurio-registry-app:<version>:tar.gz:all` (a Quarkus fast-jar with
 * `quarkus-run.jar`) into `.services/registry/<version>/app`; `~/.m2` caches the 159 MB archive.
 * The app is compiled for Java 21: a JDK ≥ 21 is looked for under `/usr/lib/jvm` and `/opt`
 * (`SLUICE_JAVA21_HOME` or `JAVA_HOME` when new enough; the newest wins). Debian bookworm has no
 * Java 21 package, so none found is an error saying what to install.
 *
 * Apicurio's own defaults differ from Confluent's in two ways the tests rely on: its default
 * compatibility is NONE (set globally to BACKWARD here) and ids are content ids (never assume
 * contiguous ids). Protobuf schemas must be read as `.proto` text: `?format=serialized` returns
 * mangled bytes.
 *
 * Python with `fastavro` (the producer outside Sluice the acceptance tests use) is installed on
 * demand into a venv under `.services/registry/venv` by {@link pythonWithFastavro}.
 *
 * Environment: `SLUICE_REGISTRY_VERSION` (default 3.3.3), `SLUICE_REGISTRY_PORT` (default 8081).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  aptInstall,
  hasCommand,
  mvn,
  portOpen,
  processAlive,
  readPidFile,
  type ServiceDef,
  sh,
  stopProcess,
  waitForStart,
} from './service.ts';

const VERSION = process.env.SLUICE_REGISTRY_VERSION ?? '3.3.3';
const PORT = Number(process.env.SLUICE_REGISTRY_PORT ?? 8081);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.services', 'registry');
const HOME = join(ROOT, VERSION);
const APP = join(HOME, 'app');
const INSTALLED = join(HOME, 'installed');
const LOGS = join(ROOT, 'logs');
const PID_FILE = join(ROOT, 'registry.pid');
const VENV = join(ROOT, 'venv');
/** Where clients find the Confluent-compatible API. */
export const REGISTRY_URL = `http://127.0.0.1:${PORT}/apis/ccompat/v7`;

/** A cold JVM answers in 8–12 s on 2 cores; a loaded machine needs more. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 15_000;

function pom(): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.services</groupId>
  <artifactId>apicurio-registry</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
  </plugin></plugins></build>
</project>
`;
}

/** The major version of the JDK at `home`, from its `release` file. */
function javaMajor(home: string): number {
  try {
    const m = /JAVA_VERSION="(\d+)/.exec(readFileSync(join(home, 'release'), 'utf8'));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A `java` binary of version 21 or newer, or undefined. */
export function java21(): string | undefined {
  const candidates: string[] = [];
  for (const env of [process.env.SLUICE_JAVA21_HOME, process.env.JAVA_HOME]) if (env) candidates.push(env);
  for (const dir of ['/usr/lib/jvm', '/opt']) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) candidates.push(join(dir, name));
  }
  let best: { bin: string; major: number } | undefined;
  for (const home of candidates) {
    const bin = join(home, 'bin', 'java');
    const major = javaMajor(home);
    if (major >= 21 && existsSync(bin) && (best === undefined || major > best.major)) best = { bin, major };
  }
  return best?.bin;
}

async function answers(): Promise<boolean> {
  if (!(await portOpen(PORT))) return false;
  try {
    const res = await fetch(`${REGISTRY_URL}/subjects`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

const readPid = () => readPidFile(PID_FILE);
const alive = processAlive;

function logTail(lines = 30): string {
  const p = join(LOGS, 'registry.out');
  if (!existsSync(p)) return '';
  return readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** A free TCP port for Apicurio's management interface (it defaults to 9000). */
function managementPort(): number {
  return PORT + 1000;
}

/**
 * A Python interpreter with `fastavro` (and `protobuf`), from a venv under `.services/registry`
 * made on first use: the producer and consumer outside Sluice the acceptance tests use.
 */
export function pythonWithFastavro(): string {
  const py = join(VENV, 'bin', 'python');
  const marker = join(VENV, 'installed');
  if (existsSync(marker)) return py;
  rmSync(VENV, { recursive: true, force: true });
  const python = hasCommand('python3') ? 'python3' : 'python';
  sh(python, ['-m', 'venv', VENV], { quiet: true });
  sh(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'fastavro==1.12.1'], { quiet: true });
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return py;
}

/** The schema registry service. */
export const registry: ServiceDef = {
  name: 'registry',
  summary: `Apicurio Registry ${VERSION} (Confluent-compatible API, in memory, Java 21+) at ${REGISTRY_URL}`,
  async install() {
    if (existsSync(INSTALLED)) return;
    if (!hasCommand('mvn')) aptInstall('maven');
    mkdirSync(HOME, { recursive: true });
    writeFileSync(join(HOME, 'pom.xml'), pom());
    const tmp = `${APP}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(
      `registry: fetching Apicurio Registry ${VERSION} with Maven (first time only, 159 MB)\n`,
    );
    mvn([
      '-f',
      join(HOME, 'pom.xml'),
      'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack',
      `-Dartifact=io.apicurio:apicurio-registry-app:${VERSION}:tar.gz:all`,
      `-DoutputDirectory=${tmp}`,
    ]);
    // The archive holds one top folder (or the fast-jar directly): find quarkus-run.jar.
    const found = findRunJar(tmp);
    if (found === undefined) throw new Error(`no quarkus-run.jar in the unpacked Apicurio archive (${tmp})`);
    rmSync(APP, { recursive: true, force: true });
    renameSync(found, APP);
    rmSync(tmp, { recursive: true, force: true });
    writeFileSync(INSTALLED, `${new Date().toISOString()}\n`);
  },
  async start() {
    if (await answers()) return;
    const old = readPid();
    if (old === undefined || !alive(old)) {
      if (await portOpen(PORT))
        throw new Error(
          `port ${PORT} is taken by something that is not a schema registry; stop it or set SLUICE_REGISTRY_PORT`,
        );
      const bin = java21();
      if (bin === undefined)
        throw new Error(
          'Apicurio Registry needs Java 21 or newer and none was found under /usr/lib/jvm or /opt; install one (e.g. Temurin) and set SLUICE_JAVA21_HOME',
        );
      mkdirSync(LOGS, { recursive: true });
      const out = openSync(join(LOGS, 'registry.out'), 'a');
      const child = spawn(
        bin,
        [
          '-Xms64m',
          '-Xmx384m',
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          '-XX:+AutoCreateSharedArchive',
          `-XX:SharedArchiveFile=${join(HOME, 'app.jsa')}`,
          '-Djava.util.logging.manager=org.jboss.logmanager.LogManager',
          '-Dquarkus.http.host=127.0.0.1',
          `-Dquarkus.http.port=${PORT}`,
          '-Dquarkus.management.host=127.0.0.1',
          `-Dquarkus.management.port=${managementPort()}`,
          '-Dapicurio.rules.global.compatibility=BACKWARD',
          '-Dapicurio.rest.deletion.artifact.enabled=true',
          '-Dapicurio.rest.deletion.artifact-version.enabled=true',
          '-Dapicurio.rest.deletion.group.enabled=true',
          '-jar',
          join(APP, 'quarkus-run.jar'),
        ],
        { detached: true, stdio: ['ignore', out, out], cwd: APP },
      );
      closeSync(out);
      if (child.pid === undefined) throw new Error('could not start `java` for the schema registry');
      writeFileSync(PID_FILE, `${child.pid}\n`);
      child.unref();
    }
    await waitForStart({
      pid: readPid() as number,
      pidFile: PID_FILE,
      what: 'The schema registry',
      ready: answers,
      readyMeans: `did not answer at ${REGISTRY_URL}`,
      timeoutMs: START_TIMEOUT_MS,
      logTail,
    });
  },
  async stop() {
    await stopProcess(readPid(), PID_FILE, STOP_TIMEOUT_MS);
  },
  isUp: answers,
  address: () => REGISTRY_URL,
};

/** The folder under `dir` holding `quarkus-run.jar`. */
function findRunJar(dir: string, depth = 0): string | undefined {
  if (existsSync(join(dir, 'quarkus-run.jar'))) return dir;
  if (depth > 3) return undefined;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const f = findRunJar(join(dir, e.name), depth + 1);
    if (f !== undefined) return f;
  }
  return undefined;
}
