import { assembledInstall, installAssembled, type AssembledInstall } from './assembled.ts';
import { toolDir } from './cache.ts';
import { checkJvmInstall } from './check.ts';
import { findJdk, javaHome } from './java.ts';
import { mavenRegistryName, type MavenCoordinates } from './maven.ts';
import type { Tool, ToolCheck } from './spec.ts';

/**
 * Cassandra, assembled from `org.apache.cassandra:cassandra-all` and its runtime dependencies: the
 * `apache-cassandra` bin tarball is not on Maven Central for 5.x (docs/adr/0001).
 */
export const CASSANDRA_VERSION = '5.0.9';
export const CASSANDRA_MINIMUM = '5.0.7';

/** Cassandra 5.0 supports Java 11 and 17; it installs a SecurityManager, which JDK 24+ refuses. */
export const CASSANDRA_JAVA = { min: 17, max: 17 } as const;

const ROOT: MavenCoordinates = {
  groupId: 'org.apache.cassandra',
  artifactId: 'cassandra-all',
  version: CASSANDRA_VERSION,
};

/** The installed layout: `<home>/lib/*.jar` and `<home>/install.json`. */
export type CassandraInstall = AssembledInstall;

/**
 * The static JVM flags Cassandra 5.0 wants on JDK 17: `conf/jvm-server.options` and
 * `conf/jvm17-server.options` (apache/cassandra, cassandra-5.0 branch), minus what does not suit a
 * small single-node dev server (`-XX:+AlwaysPreTouch` and `-XX:+UseNUMA` slow startup; heap sizing is the
 * caller's). The JPMS exports/opens are required: without them Cassandra fails at startup on JDK 17.
 */
export const CASSANDRA_JVM_OPTIONS: readonly string[] = [
  // jvm-server.options
  '-ea',
  '-da:net.openhft...',
  '-XX:+UseThreadPriorities',
  '-XX:+HeapDumpOnOutOfMemoryError',
  '-Xss256k',
  '-XX:+UseTLAB',
  '-XX:+ResizeTLAB',
  '-XX:+PerfDisableSharedMem',
  '-Djava.net.preferIPv4Stack=true',
  // Cassandra's startup check warns unless the JVM stops on OOM (data corruption risk otherwise).
  '-XX:+ExitOnOutOfMemoryError',
  // jvm17-server.options: G1
  '-XX:+UseG1GC',
  '-XX:+ParallelRefProcEnabled',
  '-XX:MaxTenuringThreshold=1',
  '-XX:G1HeapRegionSize=16m',
  '-XX:G1RSetUpdatingPauseTimePercent=5',
  '-XX:MaxGCPauseMillis=300',
  '-XX:InitiatingHeapOccupancyPercent=70',
  // jvm17-server.options: JPMS
  '-Djdk.attach.allowAttachSelf=true',
  '--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED',
  '--add-exports=java.sql/java.sql=ALL-UNNAMED',
  '--add-exports=java.base/java.lang.ref=ALL-UNNAMED',
  '--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
  '--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.module=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.math=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.module=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED',
  '--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  // jvm17-server.options: Netty
  '-Dio.netty.tryReflectionSetAccessible=true',
  '-Dio.netty.allocator.useCacheForAllThreads=true',
  '-Dio.netty.allocator.maxOrder=11',
];

/** JVM flags for Cassandra's own tools (nodetool) on JDK 17: `conf/jvm17-clients.options`. */
export const CASSANDRA_TOOL_JVM_OPTIONS: readonly string[] = [
  '-Djdk.attach.allowAttachSelf=true',
  ...[
    'java.base/jdk.internal.misc',
    'java.base/jdk.internal.ref',
    'java.base/sun.nio.ch',
    'java.management.rmi/com.sun.jmx.remote.internal.rmi',
    'java.rmi/sun.rmi.registry',
    'java.rmi/sun.rmi.server',
    'java.sql/java.sql',
    'jdk.unsupported/sun.misc',
    'jdk.compiler/com.sun.tools.javac.file',
    'jdk.attach/sun.tools.attach',
  ].map((p) => `--add-exports=${p}=ALL-UNNAMED`),
  ...[
    'java.base/java.lang.module',
    'java.base/jdk.internal.loader',
    'java.base/jdk.internal.ref',
    'java.base/jdk.internal.reflect',
    'java.base/jdk.internal.math',
    'java.base/jdk.internal.module',
    'java.base/jdk.internal.util.jar',
    'jdk.management/com.sun.management.internal',
    'java.base/sun.nio.ch',
    'java.base/java.io',
    'java.base/java.util.concurrent',
    'java.base/java.util',
    'java.base/java.util.concurrent.atomic',
    'java.base/java.lang',
    'java.base/java.math',
    'jdk.compiler/com.sun.tools.javac',
    'java.base/java.lang.reflect',
    'java.base/java.net',
  ].map((p) => `--add-opens=${p}=ALL-UNNAMED`),
];

/** The main class that `bin/cassandra` runs. */
export const CASSANDRA_MAIN = 'org.apache.cassandra.service.CassandraDaemon';

function home(): string {
  return toolDir('cassandra', CASSANDRA_VERSION);
}

/** Where Cassandra is installed, or null when it is not (installs nothing). */
export function cassandraInstall(): CassandraInstall | null {
  return assembledInstall(
    home(),
    CASSANDRA_VERSION,
    () => findJdk(CASSANDRA_JAVA.min, CASSANDRA_JAVA.max)?.home,
  );
}

/** Cassandra 5.0 from Maven Central: `cassandra-all` plus its runtime classpath, run with our own JVM flags. */
export const cassandra: Tool = {
  name: 'cassandra',
  pinned: CASSANDRA_VERSION,
  minimum: CASSANDRA_MINIMUM,
  source: `${mavenRegistryName()} org.apache.cassandra:cassandra-all:${CASSANDRA_VERSION} + runtime dependencies`,

  async ensure(): Promise<string> {
    const h = home();
    await installAssembled(h, {
      name: 'cassandra',
      artifacts: [ROOT],
      javaHome: javaHome(CASSANDRA_JAVA.min, CASSANDRA_JAVA.max),
      record: { version: CASSANDRA_VERSION, root: ROOT },
    });
    return h;
  },

  async check(): Promise<ToolCheck> {
    // GetVersion is what `bin/cassandra -v` runs: it loads the jar's build properties.
    return checkJvmInstall(this, cassandraInstall(), {
      mainArgs: ['org.apache.cassandra.tools.GetVersion'],
      what: 'GetVersion',
      jdk: 'JDK 17',
    });
  },
};
