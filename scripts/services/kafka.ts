/**
 * Apache Kafka 4.x, one node in KRaft mode (broker + controller in one JVM), on
 * 127.0.0.1:9092 (controller 9093), for tests and benchmarks; also a SASL_SSL listener on 9094
 * (SCRAM-SHA-512/256 and PLAIN user `sluice` / `sluice-secret`, OAUTHBEARER with unsecured JWTs)
 * and an SSL listener requiring client certificates on 9095. The certificates are made with
 * `openssl` in `.services/kafka/tls` (`tls.ts`: `ca.pem`, `client.pem`, `client.key`, PEM
 * keystores, no keytool); the SCRAM credentials are written at format time
 * (`StorageTool format --add-scram`). A broker running without the secure listeners (started by
 * an older script) is restarted once with them: KRaft cannot add a listener at run time.
 *
 * No Kafka distribution tarball can be fetched here, so the broker is assembled from Maven
 * Central: a throw-away `pom.xml` names `org.apache.kafka:kafka_2.13` plus the slf4j-1.7 →
 * log4j2 binding (`log4j-slf4j-impl`; Kafka 4.1 logs through slf4j-api 1.7.36 and without a
 * binding the broker runs silently), and `mvn dependency:copy-dependencies` puts the runtime
 * jars in `.services/kafka/<version>/libs`. `~/.m2` caches the download, so a fresh clone
 * only copies jars. Storage is formatted once (`StorageTool format --standalone`), then
 * `kafka.Kafka` starts in the background with a small heap and fast-start JVM flags, logging
 * to `.services/kafka/logs/server.log`. `start` returns once a Metadata request succeeds.
 *
 * Environment: `SLUICE_KAFKA_VERSION` (default 4.1.1), `SLUICE_KAFKA_PORT` (default 9092;
 * the controller, SASL_SSL and mutual-TLS listeners take the next three ports), `SLUICE_KAFKA_HEAP` (default 512m).
 *
 * {@link privateKafkaBroker} starts a second broker from the same jars with its own folder and
 * ports, for tests that kill or restart a broker (never the shared one other tests use).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  hasCommand,
  mavenCopyDependencies,
  portOpen,
  processAlive,
  readPidFile,
  type ServiceDef,
  sh,
  stopProcess,
  waitForStart,
} from './service.ts';
import { adoptClientCertificates, ensureCertificates, type TestCertificates } from './tls.ts';

const VERSION = process.env.SLUICE_KAFKA_VERSION ?? '4.1.1';
/** The log4j2 version Kafka 4.1 itself depends on, so the binding matches log4j-core. */
const LOG4J_VERSION = '2.24.3';
const PORT = Number(process.env.SLUICE_KAFKA_PORT ?? 9092);
const CONTROLLER_PORT = PORT + 1;
/** SASL_SSL (SCRAM-SHA-256/512, PLAIN, OAUTHBEARER with unsecured JWTs) and SSL with client certificates. */
const SASL_PORT = PORT + 2;
const MTLS_PORT = PORT + 3;
const HEAP = process.env.SLUICE_KAFKA_HEAP ?? '512m';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.services', 'kafka');
const HOME = join(ROOT, VERSION);
const LIBS = join(HOME, 'libs');
const INSTALLED = join(HOME, 'installed');
const DATA = join(ROOT, 'data');
const LOGS = join(ROOT, 'logs');
const PID_FILE = join(ROOT, 'kafka.pid');
const CONFIG = join(ROOT, 'server.properties');
const LOG_CONFIG = join(ROOT, 'log4j2.properties');
/** The shared broker's certificates (see `tls.ts`): clients trust `ca.pem`; `client.pem`/`client.key` for mutual TLS. */
export const KAFKA_TLS_DIR = join(ROOT, 'tls');

/** How long a cold JVM may take to answer; a warm start takes 2–4 s on 2 cores. */
const START_TIMEOUT_MS = 90_000;
/** Controlled shutdown normally takes 1–3 s; past this the process is killed. */
const STOP_TIMEOUT_MS = 20_000;

function pom(): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.services</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
`;
}

/** The secure listeners of a broker: SASL_SSL (SCRAM, PLAIN, OAUTHBEARER) and SSL with client certificates. */
interface SecureListeners {
  readonly saslPort: number;
  readonly mtlsPort: number;
  readonly tls: TestCertificates;
}

/** SASL users of the shared broker (PLAIN from the JAAS line, SCRAM made at format time or by `ensureScramUser`). */
export const KAFKA_USER = 'sluice';
export const KAFKA_PASSWORD = 'sluice-secret';

/** The broker settings of the secure listeners (also what `addSecureListeners` sets on a running broker). */
function secureSettings(s: SecureListeners): Record<string, string> {
  const jaas = (module: string, extra = '') => `${module} required${extra};`;
  return {
    'listener.name.sasl_ssl.sasl.enabled.mechanisms': 'SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': jaas(
      'org.apache.kafka.common.security.scram.ScramLoginModule',
    ),
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': jaas(
      'org.apache.kafka.common.security.scram.ScramLoginModule',
    ),
    'listener.name.sasl_ssl.plain.sasl.jaas.config': jaas(
      'org.apache.kafka.common.security.plain.PlainLoginModule',
      ` user_${KAFKA_USER}="${KAFKA_PASSWORD}"`,
    ),
    // Unsecured JWTs (`alg: none`, Kafka's default validator): enough to prove the client side of
    // OAUTHBEARER; a real deployment validates signed tokens against its identity provider.
    'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config': jaas(
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule',
    ),
    'listener.name.sasl_ssl.ssl.keystore.type': 'PEM',
    'listener.name.sasl_ssl.ssl.keystore.location': s.tls.serverChain,
    'listener.name.mtls.ssl.keystore.type': 'PEM',
    'listener.name.mtls.ssl.keystore.location': s.tls.serverChain,
    'listener.name.mtls.ssl.truststore.type': 'PEM',
    'listener.name.mtls.ssl.truststore.location': s.tls.ca,
    'listener.name.mtls.ssl.client.auth': 'required',
  };
}

function listeners(port: number, controllerPort: number, secure: SecureListeners | undefined): string {
  const extra = secure ? `,SASL_SSL://127.0.0.1:${secure.saslPort},MTLS://127.0.0.1:${secure.mtlsPort}` : '';
  return `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${extra}`;
}

const PROTOCOL_MAP = 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL';

function serverProperties(
  port = PORT,
  controllerPort = CONTROLLER_PORT,
  data = DATA,
  secure?: SecureListeners,
): string {
  const secureLines = secure
    ? `${Object.entries(secureSettings(secure))
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n`
    : '';
  return `# Written by scripts/services/kafka.ts on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}
listeners=${listeners(port, controllerPort, secure)}
advertised.listeners=${listeners(port, controllerPort, secure)}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=${PROTOCOL_MAP}
${secureLines}log.dirs=${data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# A killed member's partitions move after its session times out: 45 s by default, 6 s here so
# crash-and-restart tests finish quickly.
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
num.network.threads=2
num.io.threads=2
auto.create.topics.enable=true
# Tests create many small topics: keep each one cheap on disk.
log.segment.bytes=16777216
log.index.size.max.bytes=1048576
`;
}

function log4jProperties(logs = LOGS): string {
  return `status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${join(logs, 'server.log')}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
`;
}

const readPid = () => readPidFile(PID_FILE);
const alive = processAlive;

/** The last lines of the broker's logs, for an error message. */
function logTail(lines = 25, logs = LOGS): string {
  const parts: string[] = [];
  for (const f of ['kafka.out', 'server.log']) {
    const p = join(logs, f);
    if (!existsSync(p)) continue;
    const text = readFileSync(p, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    if (text) parts.push(`--- ${p} ---\n${text}`);
  }
  return parts.join('\n');
}

/**
 * True when the broker answers a Metadata request: an open port is not enough, since the
 * socket server opens before the broker has caught up with the controller's metadata.
 */
async function metadataOk(port = PORT): Promise<boolean> {
  if (!(await portOpen(port))) return false;
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({
    clientId: 'sluice-services',
    bootstrapBrokers: [`127.0.0.1:${port}`],
    connectTimeout: 2000,
    requestTimeout: 3000,
    retries: 0,
  });
  try {
    const meta = await admin.metadata({ topics: [] });
    return meta.brokers.size > 0;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => {});
  }
}

/** `--add-scram` arguments of `StorageTool format`: user `sluice` for SCRAM-SHA-256 and -512. */
function scramArgs(): string[] {
  return ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => [
    '--add-scram',
    `${m}=[name=${KAFKA_USER},password=${KAFKA_PASSWORD}]`,
  ]);
}

function java(args: string[]): string[] {
  return ['-Xshare:auto', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:-UsePerfData', ...args];
}

/** Where one broker keeps its files and listens. */
interface BrokerLayout {
  readonly port: number;
  readonly controllerPort: number;
  readonly data: string;
  readonly logs: string;
  readonly config: string;
  readonly logConfig: string;
  /** Detached (the shared service outlives `npm run services`); a private broker is not. */
  readonly detached: boolean;
  /** The SASL_SSL and mutual-TLS listeners, when the broker has them. */
  readonly secure?: SecureListeners | undefined;
}

/**
 * Writes the broker's config, formats its storage on first use (a fresh cluster), and starts
 * `kafka.Kafka` in the background. Returns the JVM's process; the caller waits for it to answer.
 */
function launch(b: BrokerLayout): ChildProcess {
  mkdirSync(b.logs, { recursive: true });
  writeFileSync(b.config, serverProperties(b.port, b.controllerPort, b.data, b.secure));
  writeFileSync(b.logConfig, log4jProperties(b.logs));
  const cp = `${LIBS}/*`;
  if (!existsSync(join(b.data, 'meta.properties'))) {
    rmSync(b.data, { recursive: true, force: true });
    // A cluster id is 16 random bytes in URL-safe base64 without padding (what
    // `StorageTool random-uuid` prints); made here to save a JVM start.
    const clusterId = randomBytes(16).toString('base64url');
    sh(
      'java',
      java([
        '-cp',
        cp,
        `-Dlog4j2.configurationFile=${b.logConfig}`,
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        // One argument, `--cluster-id=…`: an id that starts with `-` (1 in 64 of them) would be
        // read as an option after a separate `-t`, and formatting fails.
        `--cluster-id=${clusterId}`,
        '-c',
        b.config,
        // The SCRAM user of the SASL_SSL listener, stored in the cluster's first metadata.
        ...(b.secure ? scramArgs() : []),
      ]),
      { quiet: true },
    );
  }
  const out = openSync(join(b.logs, 'kafka.out'), 'a');
  const child = spawn(
    'java',
    java([
      `-Xms256m`,
      `-Xmx${HEAP}`,
      '-Djava.awt.headless=true',
      `-Dkafka.logs.dir=${b.logs}`,
      `-Dlog4j2.configurationFile=${b.logConfig}`,
      '-cp',
      cp,
      'kafka.Kafka',
      b.config,
    ]),
    { detached: b.detached, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  if (child.pid === undefined) throw new Error('could not start `java` for Kafka');
  return child;
}

/** A broker a test owns: started, killed and restarted on the same folder and ports. */
export interface PrivateKafkaBroker {
  /** `127.0.0.1:<port>`, for `brokers`. */
  readonly address: string;
  /** Starts the broker (formatting its folder the first time) and waits until it answers. */
  start(): Promise<void>;
  /**
   * Stops it: `SIGTERM` is a controlled shutdown (killed after 20 s), `SIGKILL` a crash.
   * Resolves once the process is gone. No-op when it is not running.
   */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Stops it (SIGKILL) and deletes its folder. */
  destroy(): Promise<void>;
}

/**
 * A second single-node KRaft broker from the jars `npm run services -- up kafka` installed, in
 * `dir` (data, logs, config) on `port` (controller on `controllerPort`): for tests that stop or
 * crash a broker, which must never be the shared one.
 *
 * @example
 * const broker = privateKafkaBroker({ dir: mkdtempSync(join(tmpdir(), 'kafka-')), port: 19092, controllerPort: 19093 });
 * await broker.start();
 * await broker.stop('SIGKILL');
 * await broker.start(); // same data, same ports
 * await broker.destroy();
 */
export function privateKafkaBroker(options: {
  dir: string;
  port: number;
  controllerPort: number;
  /** Also open a SASL_SSL and a mutual-TLS listener on these ports (certificates in `<dir>/tls`). */
  secure?: { saslPort: number; mtlsPort: number } | undefined;
}): PrivateKafkaBroker {
  if (!existsSync(INSTALLED)) {
    throw new Error(
      `the Kafka jars are not installed in ${LIBS}; run \`npm run services -- up kafka\` first`,
    );
  }
  const { dir, port, controllerPort } = options;
  const layout: BrokerLayout = {
    port,
    controllerPort,
    data: join(dir, 'data'),
    logs: join(dir, 'logs'),
    config: join(dir, 'server.properties'),
    logConfig: join(dir, 'log4j2.properties'),
    detached: false,
    secure:
      options.secure === undefined
        ? undefined
        : { ...options.secure, tls: ensureCertificates(join(dir, 'tls'), 'Sluice test CA (private kafka)') },
  };
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  const broker: PrivateKafkaBroker = {
    address: `127.0.0.1:${port}`,
    async start() {
      if (child !== undefined) return;
      const c = launch(layout);
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      let gone = false;
      void exited.then(() => {
        gone = true;
      });
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline) {
        if (gone) {
          child = undefined;
          throw new Error(
            `a private Kafka broker exited while starting; its logs end with:\n${logTail(25, layout.logs)}`,
          );
        }
        if (await metadataOk(port)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(
        `a private Kafka broker did not answer on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s`,
      );
    },
    async stop(signal) {
      const c = child;
      if (c === undefined) return;
      c.kill(signal);
      const timer = setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
      child = undefined;
    },
    async destroy() {
      await broker.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return broker;
}

/** True when user `sluice` can log in with SCRAM-SHA-512 on the SASL_SSL listener. */
async function scramLoginOk(): Promise<boolean> {
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({
    clientId: 'sluice-services',
    bootstrapBrokers: [`127.0.0.1:${SASL_PORT}`],
    tls: { ca: readFileSync(join(KAFKA_TLS_DIR, 'ca.pem')) },
    sasl: { mechanism: 'SCRAM-SHA-512', username: KAFKA_USER, password: KAFKA_PASSWORD },
    connectTimeout: 3000,
    retries: 0,
  });
  try {
    await admin.metadata({ topics: [] });
    return true;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => {});
  }
}

/**
 * Creates the SCRAM credentials of user `sluice` when the login fails: a data folder formatted
 * before the secure listeners existed has none (`format --add-scram` only runs on a fresh one).
 * Kafka's own `ConfigCommand` (`kafka-configs --alter --entity-type users`), from the jars.
 */
async function ensureScramUser(): Promise<void> {
  if (await scramLoginOk()) return;
  // One mechanism per call: Kafka 4.1's ConfigCommand sends both of one `--add-config` as two
  // alterations of the same user, which the broker refuses ("A user credential cannot be
  // altered twice in the same request").
  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512']) {
    sh(
      'java',
      java([
        '-cp',
        `${LIBS}/*`,
        `-Dlog4j2.configurationFile=${LOG_CONFIG}`,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server',
        `127.0.0.1:${PORT}`,
        '--alter',
        '--entity-type',
        'users',
        '--entity-name',
        KAFKA_USER,
        '--add-config',
        `${mechanism}=[password=${KAFKA_PASSWORD}]`,
      ]),
      { quiet: true },
    );
  }
}

/** Stops the broker `pid` (SIGTERM, then SIGKILL after 20 s) and removes the pid file. */
function stopBroker(pid: number | undefined): Promise<void> {
  return stopProcess(pid, PID_FILE, STOP_TIMEOUT_MS);
}

/**
 * The pid of the Kafka JVM listening on `port` (`ss`), for a broker another checkout's services
 * script started (its pid file is there). Undefined when none or when it is not `kafka.Kafka`.
 */
function listenerPid(port: number): number | undefined {
  if (!hasCommand('ss')) return undefined;
  const out = sh('ss', ['-ltnpH', `sport = :${port}`], { quiet: true });
  const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  return cmdline.split('\0').includes('kafka.Kafka') ? pid : undefined;
}

/**
 * When the running broker was started from another checkout (so its certificates are there),
 * copies its CA and client certificate into {@link KAFKA_TLS_DIR}: clients of this checkout
 * then trust the broker that actually answers. Found through the broker's command line (its
 * `server.properties`) and that file's keystore location.
 */
function adoptCertificates(): void {
  const pid = listenerPid(SASL_PORT);
  if (pid === undefined) return;
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const config = args[args.length - 1] as string;
  if (!existsSync(config)) return;
  const keystore = /^listener\.name\.sasl_ssl\.ssl\.keystore\.location=(.+)$/m.exec(
    readFileSync(config, 'utf8'),
  )?.[1];
  if (keystore === undefined) return;
  adoptClientCertificates(dirname(keystore), KAFKA_TLS_DIR);
}

/** The Kafka service. */
export const kafka: ServiceDef = {
  name: 'kafka',
  summary: `Apache Kafka ${VERSION} (KRaft, Maven Central jars, Java 17) on 127.0.0.1:${PORT}, SASL_SSL ${SASL_PORT}, mutual TLS ${MTLS_PORT}`,
  async install() {
    if (existsSync(INSTALLED)) return;
    mavenCopyDependencies(HOME, pom(), LIBS, `kafka ${VERSION}`);
    writeFileSync(INSTALLED, `${new Date().toISOString()}\n`);
  },
  async start() {
    if (await metadataOk()) {
      if ((await portOpen(SASL_PORT)) && (await portOpen(MTLS_PORT))) {
        adoptCertificates();
        await ensureScramUser();
        return;
      }
      // Started by a services script from before the secure listeners: a KRaft broker cannot add
      // listeners at run time (`advertised.listeners` is static), so it restarts once with them.
      process.stderr.write(
        `kafka: the broker on 127.0.0.1:${PORT} has no SASL_SSL/mutual-TLS listeners (${SASL_PORT}/${MTLS_PORT}); restarting it with them\n`,
      );
      await stopBroker(readPid() ?? listenerPid(PORT));
    }
    const old = readPid();
    if (old !== undefined && alive(old)) {
      // Started by an earlier `up` that is still coming up (or hung): wait for it below.
    } else {
      for (const port of [PORT, SASL_PORT, MTLS_PORT]) {
        if (await portOpen(port)) {
          throw new Error(
            `port ${port} is taken by something that is not this Kafka broker; stop it or set SLUICE_KAFKA_PORT (the broker uses ${PORT}–${MTLS_PORT})`,
          );
        }
      }
      const child = launch({
        port: PORT,
        controllerPort: CONTROLLER_PORT,
        data: DATA,
        logs: LOGS,
        config: CONFIG,
        logConfig: LOG_CONFIG,
        detached: true,
        secure: {
          saslPort: SASL_PORT,
          mtlsPort: MTLS_PORT,
          tls: ensureCertificates(KAFKA_TLS_DIR, 'Sluice test CA (kafka)'),
        },
      });
      writeFileSync(PID_FILE, `${child.pid}\n`);
      child.unref();
    }
    await waitForStart({
      pid: readPid() as number,
      pidFile: PID_FILE,
      what: 'Kafka',
      ready: async () => (await metadataOk()) && (await portOpen(SASL_PORT)),
      readyMeans: `did not answer on 127.0.0.1:${PORT}`,
      timeoutMs: START_TIMEOUT_MS,
      logTail,
    });
    await ensureScramUser();
  },
  async stop() {
    await stopBroker(readPid() ?? listenerPid(PORT));
  },
  isUp: metadataOk,
  address: () => `127.0.0.1:${PORT}`,
  details: () => [
    `SASL_SSL 127.0.0.1:${SASL_PORT} (SCRAM-SHA-512/256 and PLAIN user \`${KAFKA_USER}\` / \`${KAFKA_PASSWORD}\`, OAUTHBEARER unsecured JWT; CA ${join(KAFKA_TLS_DIR, 'ca.pem')})`,
    `SSL with client certificates 127.0.0.1:${MTLS_PORT} (${join(KAFKA_TLS_DIR, 'client.pem')}, client.key)`,
  ],
};
