/**
 * Apache Pulsar standalone (broker + one embedded bookie in one JVM), on 127.0.0.1: binary
 * protocol 6650, web/admin/WebSocket 8080, for tests and benchmarks.
 *
 * No Pulsar distribution tarball can be fetched here, so the broker is assembled from Maven
 * Central: a throw-away `pom.xml` depends on `org.apache.pulsar:pulsar-broker` and imports the
 * `org.apache.pulsar:pulsar` BOM in `dependencyManagement` (without it Maven mixes two
 * OpenTelemetry versions and the broker dies with `NoSuchMethodError`), and
 * `mvn dependency:copy-dependencies` puts the runtime jars in `.services/pulsar/<version>/lib`.
 * Metadata lives in RocksDB (no ZooKeeper), there is no functions worker and no stream storage;
 * the WebSocket API (`/ws/v2/…`), which the `pulsar` connector speaks, is on. `start` returns once
 * the admin API lists `public/default`.
 *
 * Environment: `SLUICE_PULSAR_VERSION` (default 4.2.4), `SLUICE_PULSAR_PORT` (binary, default
 * 6650), `SLUICE_PULSAR_WEB_PORT` (default 8080), `SLUICE_PULSAR_BOOKIE_PORT` (default 3181),
 * `SLUICE_PULSAR_HEAP` (default 384m).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  mavenCopyDependencies,
  portOpen,
  processAlive,
  readPidFile,
  type ServiceDef,
  stopProcess,
  waitForStart,
} from './service.ts';

const VERSION = process.env.SLUICE_PULSAR_VERSION ?? '4.2.4';
const PORT = Number(process.env.SLUICE_PULSAR_PORT ?? 6650);
const WEB_PORT = Number(process.env.SLUICE_PULSAR_WEB_PORT ?? 8080);
const BOOKIE_PORT = Number(process.env.SLUICE_PULSAR_BOOKIE_PORT ?? 3181);
const HEAP = process.env.SLUICE_PULSAR_HEAP ?? '384m';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.services', 'pulsar');
const HOME = join(ROOT, VERSION);
const LIB = join(HOME, 'lib');
const INSTALLED = join(HOME, 'installed');
const DATA = join(ROOT, 'data');
const LOGS = join(ROOT, 'logs');
const PID_FILE = join(ROOT, 'pulsar.pid');
const CONFIG = join(ROOT, 'standalone.conf');
const LOG_CONFIG = join(ROOT, 'log4j2.properties');

/** A cold start takes 7–19 s on 2 cores; a busy machine may need more. */
const START_TIMEOUT_MS = 120_000;
/** A clean shutdown takes about 4 s; past this the process is killed. */
const STOP_TIMEOUT_MS = 20_000;

function pom(): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.services</groupId>
  <artifactId>pulsar-standalone</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar</artifactId><version>${VERSION}</version><type>pom</type><scope>import</scope></dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId><version>${VERSION}</version></dependency>
  </dependencies>
</project>
`;
}

function standaloneConf(): string {
  return `# Written by scripts/services/pulsar.ts on every start; edits are overwritten.
clusterName=standalone
# Empty: RocksDB metadata in --metadata-dir, no ZooKeeper.
metadataStoreUrl=
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=${PORT}
webServicePort=${WEB_PORT}
webSocketServiceEnabled=true
functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
loadManagerClassName=org.apache.pulsar.broker.loadbalance.NoopLoadManager
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
brokerDeleteInactiveTopicsEnabled=false
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
# Small thread pools and caches: a 2-core machine shared with other services.
numIOThreads=2
numOrderedExecutorThreads=2
numHttpServerThreads=8
numExecutorThreadPoolSize=2
numCacheExecutorThreadPoolSize=2
webSocketNumIoThreads=2
webSocketNumServiceThreads=4
bookkeeperClientNumWorkerThreads=2
bookkeeperClientNumIoThreads=2
managedLedgerCacheSizeMB=32
managedLedgerNumSchedulerThreads=2
# The embedded bookie reads this file too.
journalSyncData=false
dbStorage_writeCacheMaxSizeMb=16
dbStorage_readAheadCacheMaxSizeMb=16
dbStorage_rocksDB_blockCacheSize=16777216
numAddWorkerThreads=0
numReadWorkerThreads=1
numJournalCallbackThreads=1
serverNumIOThreads=2
`;
}

function log4jProperties(): string {
  return `status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${join(LOGS, 'pulsar.log')}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c{1})%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
`;
}

const readPid = () => readPidFile(PID_FILE);
const alive = processAlive;

function logTail(lines = 25): string {
  const parts: string[] = [];
  for (const f of ['pulsar.out', 'pulsar.log']) {
    const p = join(LOGS, f);
    if (!existsSync(p)) continue;
    const text = readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    if (text) parts.push(`--- ${p} ---\n${text}`);
  }
  return parts.join('\n');
}

/** True when the admin API lists `public/default` (an open port is not enough: the namespace comes last). */
async function ready(): Promise<boolean> {
  if (!(await portOpen(WEB_PORT))) return false;
  try {
    const res = await fetch(`http://127.0.0.1:${WEB_PORT}/admin/v2/namespaces/public`, {
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) return false;
    const list = (await res.json()) as unknown;
    return Array.isArray(list) && list.includes('public/default');
  } catch {
    return false;
  }
}

/** The `--add-opens` flags of Pulsar's own `bin/pulsar`. */
const OPENS = [
  'java.base/java.io',
  'java.base/java.util.zip',
  'java.base/java.nio',
  'java.base/jdk.internal.misc',
  'java.base/sun.net',
  'java.management/sun.management',
  'java.base/java.lang',
].flatMap((m) => ['--add-opens', `${m}=ALL-UNNAMED`]);

/** The Pulsar service. */
export const pulsar: ServiceDef = {
  name: 'pulsar',
  summary: `Apache Pulsar ${VERSION} standalone (Maven Central jars, Java 17) on 127.0.0.1:${PORT}, web ${WEB_PORT}`,
  async install() {
    if (existsSync(INSTALLED)) return;
    mavenCopyDependencies(HOME, pom(), LIB, `pulsar ${VERSION}`);
    writeFileSync(INSTALLED, `${new Date().toISOString()}\n`);
  },
  async start() {
    if (await ready()) return;
    const old = readPid();
    if (old === undefined || !alive(old)) {
      for (const p of [PORT, WEB_PORT, BOOKIE_PORT]) {
        if (await portOpen(p)) {
          throw new Error(
            `port ${p} is taken by something that is not this Pulsar; stop it or set SLUICE_PULSAR_PORT, SLUICE_PULSAR_WEB_PORT or SLUICE_PULSAR_BOOKIE_PORT`,
          );
        }
      }
      mkdirSync(LOGS, { recursive: true });
      mkdirSync(DATA, { recursive: true });
      writeFileSync(CONFIG, standaloneConf());
      writeFileSync(LOG_CONFIG, log4jProperties());
      const out = openSync(join(LOGS, 'pulsar.out'), 'a');
      const child = spawn(
        'java',
        [
          `-Xms128m`,
          `-Xmx${HEAP}`,
          '-XX:MaxDirectMemorySize=256m',
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          '-XX:-UsePerfData',
          '-Djava.awt.headless=true',
          ...OPENS,
          `-Dlog4j.configurationFile=${LOG_CONFIG}`,
          `-Dlog4j2.configurationFile=${LOG_CONFIG}`,
          `-Dpulsar.log.dir=${LOGS}`,
          '-Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver',
          '-Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver',
          '-cp',
          `${LIB}/*`,
          'org.apache.pulsar.PulsarStandaloneStarter',
          '--config',
          CONFIG,
          '--no-functions-worker',
          '--no-stream-storage',
          '--metadata-dir',
          join(DATA, 'metadata'),
          '--bookkeeper-dir',
          join(DATA, 'bookkeeper'),
          '--bookkeeper-port',
          String(BOOKIE_PORT),
        ],
        { detached: true, stdio: ['ignore', out, out], cwd: ROOT },
      );
      closeSync(out);
      if (child.pid === undefined) throw new Error('could not start `java` for Pulsar');
      writeFileSync(PID_FILE, `${child.pid}\n`);
      child.unref();
    }
    await waitForStart({
      pid: readPid() as number,
      pidFile: PID_FILE,
      what: 'Pulsar',
      ready,
      readyMeans: `did not list \`public/default\` on 127.0.0.1:${WEB_PORT}`,
      timeoutMs: START_TIMEOUT_MS,
      logTail,
    });
  },
  async stop() {
    await stopProcess(readPid(), PID_FILE, STOP_TIMEOUT_MS);
  },
  isUp: ready,
  /** The web service: admin REST and the WebSocket API the connector speaks. */
  address: () => `http://127.0.0.1:${WEB_PORT}`,
};
