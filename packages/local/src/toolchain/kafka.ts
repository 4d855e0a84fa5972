import { assembledInstall, installAssembled, type AssembledInstall } from './assembled.ts';
import { toolDir } from './cache.ts';
import { checkJvmInstall } from './check.ts';
import { findJdk, javaHome } from './java.ts';
import { mavenRegistryName, type MavenCoordinates } from './maven.ts';
import type { Tool, ToolCheck } from './spec.ts';

/**
 * Kafka 4 (KRaft only), assembled from `org.apache.kafka:kafka_2.13` and its runtime dependencies.
 * 4.4.0 is listed on Maven Central but its `kafka-tools-api` jar is missing (HTTP 404), so 4.3.1 is the
 * newest 4.x that resolves.
 */
export const KAFKA_VERSION = '4.3.1';
export const KAFKA_MINIMUM = '4.0.0';

/** Kafka 4 brokers need Java 17+. */
export const KAFKA_JAVA_MIN = 17;

/**
 * The SLF4J 1.x binding for Log4j 2. kafka_2.13's POM brings slf4j-api 1.7.36 and log4j-core at runtime
 * but no binding (the binary distribution adds one), so without it Kafka logs nothing. Its version
 * must equal log4j-core's, which the installer checks.
 */
const LOG4J_VERSION = '2.25.4';

const ARTIFACTS: readonly MavenCoordinates[] = [
  { groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version: KAFKA_VERSION },
  { groupId: 'org.apache.logging.log4j', artifactId: 'log4j-slf4j-impl', version: LOG4J_VERSION },
];

/** The JVM flags of Kafka's `bin/kafka-run-class.sh` (KAFKA_JVM_PERFORMANCE_OPTS); heap is the caller's. */
export const KAFKA_JVM_OPTIONS: readonly string[] = [
  '-server',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-Djava.awt.headless=true',
  '-XX:+ExitOnOutOfMemoryError',
];

/** The broker's main class, and the class behind `bin/kafka-storage.sh`. */
export const KAFKA_MAIN = 'kafka.Kafka';
export const KAFKA_STORAGE_TOOL = 'kafka.tools.StorageTool';

/** The installed layout: `<home>/lib/*.jar` and `<home>/install.json`. */
export type KafkaInstall = AssembledInstall;

function home(): string {
  return toolDir('kafka', KAFKA_VERSION);
}

/** Where Kafka is installed, or null when it is not (installs nothing). */
export function kafkaInstall(): KafkaInstall | null {
  return assembledInstall(home(), KAFKA_VERSION, () => findJdk(KAFKA_JAVA_MIN)?.home);
}

/** Kafka 4 from Maven Central: `kafka_2.13` plus its runtime classpath and a Log4j 2 binding. */
export const kafka: Tool = {
  name: 'kafka',
  pinned: KAFKA_VERSION,
  minimum: KAFKA_MINIMUM,
  source: `${mavenRegistryName()} org.apache.kafka:kafka_2.13:${KAFKA_VERSION} + runtime dependencies`,

  async ensure(): Promise<string> {
    const h = home();
    await installAssembled(h, {
      name: 'kafka',
      artifacts: ARTIFACTS,
      javaHome: javaHome(KAFKA_JAVA_MIN),
      record: { version: KAFKA_VERSION, artifacts: ARTIFACTS },
      verify: (jars) => {
        const core = jars.find((j) => j.startsWith('log4j-core-'));
        if (core !== `log4j-core-${LOG4J_VERSION}.jar`) {
          throw new Error(
            `kafka classpath: log4j-core is ${core ?? 'missing'}, but the SLF4J binding is ${LOG4J_VERSION}; ` +
              'update LOG4J_VERSION in toolchain/kafka.ts to match',
          );
        }
      },
    });
    return h;
  },

  async check(): Promise<ToolCheck> {
    // `kafka-server-start.sh --version` prints the software version and exits.
    return checkJvmInstall(this, kafkaInstall(), {
      mainArgs: [KAFKA_MAIN, '--version'],
      what: `${KAFKA_MAIN} --version`,
      jdk: `JDK ≥ ${KAFKA_JAVA_MIN}`,
    });
  },
};
