/**
 * The Kafka Streams peer of the windowed Kafka job (`bench/kafka-window.ts`): `bench/kstreams/WindowJob.java`,
 * built from this script. {@link ensureKafkaStreams} fetches `org.apache.kafka:kafka-streams` and its
 * runtime jars from Maven Central with a throw-away pom (as `scripts/services/kafka.ts` does for the
 * broker; `~/.m2` caches the download) into `.services/kafka-streams/<version>/libs`, compiles the job
 * with `javac` into a folder named after the source's hash, and returns the `java` command line to run
 * it. Never throws for a missing toolchain: without `java`, `javac` or `mvn` it says why, and the
 * bench skips the peer.
 *
 * The version is the broker's (`SLUICE_KAFKA_VERSION`, default 4.1.1, what `npm run services -- up kafka`
 * runs; `SLUICE_KAFKA_STREAMS_VERSION` overrides it): client and broker from the same release, and
 * the Kafka Streams 4.1 that issue #16 compared with.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand, mavenCopyDependencies, sh } from '../scripts/services/service.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(ROOT, 'bench', 'kstreams', 'WindowJob.java');
export const KAFKA_STREAMS_VERSION =
  process.env.SLUICE_KAFKA_STREAMS_VERSION ?? process.env.SLUICE_KAFKA_VERSION ?? '4.1.1';
/** Jackson for the JSON serde; slf4j 2 + its simple binding so warnings and errors are printed. */
const JACKSON_VERSION = '2.22.4';
const SLF4J_VERSION = '2.0.17';
/**
 * The JVM's heap: the broker's own cap (`SLUICE_KAFKA_HEAP` default), with the default collector (G1
 * on 2 CPUs) and no fast-start flags, as for a throughput run. `SLUICE_BENCH_KSTREAMS_JVM` replaces it.
 */
const JVM_FLAGS = (process.env.SLUICE_BENCH_KSTREAMS_JVM ?? '-Xmx512m').split(' ').filter((s) => s !== '');

function pom(): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.bench</groupId>
  <artifactId>kafka-streams-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- First, so its jackson-annotations wins over the older one kafka-streams names. -->
    <dependency><groupId>com.fasterxml.jackson.core</groupId><artifactId>jackson-databind</artifactId><version>${JACKSON_VERSION}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-streams</artifactId><version>${KAFKA_STREAMS_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>${SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>${SLF4J_VERSION}</version></dependency>
  </dependencies>
</project>
`;
}

/** The built peer, or why there is none. */
export type KafkaStreamsPeer =
  | { readonly ok: true; readonly version: string; readonly java: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Fetches the jars (first time only), compiles `WindowJob.java` when its source changed, and returns
 * the command that runs it (`java <flags> -cp … WindowJob`; the job's own arguments follow).
 *
 * @example
 * const peer = ensureKafkaStreams();
 * if (peer.ok) spawnSync(peer.java[0], [...peer.java.slice(1), '--in', topic, …]);
 */
export function ensureKafkaStreams(): KafkaStreamsPeer {
  const missing = ['java', 'javac', 'mvn'].filter((c) => !hasCommand(c));
  if (missing.length > 0)
    return {
      ok: false,
      reason: `no ${missing.join(', ')} on the PATH (Debian: apt-get install -y openjdk-17-jdk-headless maven)`,
    };
  try {
    const home = join(ROOT, '.services', 'kafka-streams', KAFKA_STREAMS_VERSION);
    const libs = join(home, 'libs');
    // `installed` holds the pom the jars came from: a changed pom fetches again.
    const installed = join(home, 'installed');
    if (!existsSync(installed) || readFileSync(installed, 'utf8') !== pom()) {
      mavenCopyDependencies(home, pom(), libs, `kafka-streams ${KAFKA_STREAMS_VERSION}`);
      writeFileSync(installed, pom());
    }
    const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
    const classes = join(home, `classes-${hash}`);
    if (!existsSync(classes)) {
      const tmp = `${classes}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      sh('javac', ['--release', '17', '-nowarn', '-cp', `${libs}/*`, '-d', tmp, SOURCE], { quiet: true });
      renameSync(tmp, classes);
    }
    return {
      ok: true,
      version: KAFKA_STREAMS_VERSION,
      java: [
        'java',
        '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
        ...JVM_FLAGS,
        '-cp',
        `${classes}:${libs}/*`,
        'WindowJob',
      ],
    };
  } catch (e) {
    return { ok: false, reason: `building the Kafka Streams peer failed: ${(e as Error).message}` };
  }
}
