/**
 * The SPIFFE principal builder of the local Kafka (docs/adr/0006-kafka-spiffe-principals.md) and the
 * quorum probe of its clusters (docs/adr/0027-kafka-kraft-cluster.md): small Java classes, each
 * compiled once per source and Kafka version into the per-user cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { installAtomically, toolDir } from '../toolchain/cache.ts';
import { run } from '../toolchain/exec.ts';
import { javaHome } from '../toolchain/java.ts';
import { progress } from '../toolchain/log.ts';
import { KAFKA_JAVA_MIN, KAFKA_VERSION, kafka as kafkaTool } from '../toolchain/kafka.ts';

/** The Java source of the SPIFFE principal builder (docs/adr/0006-kafka-spiffe-principals.md). */
export const SPIFFE_PRINCIPAL_BUILDER_SOURCE = new URL(
  '../../java/dev/trellis/kafka/SpiffePrincipalBuilder.java',
  import.meta.url,
).pathname;

/** `principal.builder.class` that maps a peer certificate's SPIFFE URI SAN to `User:<SPIFFE ID>`. */
export const SPIFFE_PRINCIPAL_BUILDER = 'dev.trellis.kafka.SpiffePrincipalBuilder';

/**
 * Compile the SPIFFE principal builder against the pinned kafka-clients with the machine's JDK, once
 * per source and Kafka version, into the per-user cache; resolves the classes directory to add to the
 * broker's classpath.
 */
export async function ensureSpiffePrincipalBuilder(): Promise<string> {
  return ensureKafkaJavaClass('kafka-spiffe-principal', SPIFFE_PRINCIPAL_BUILDER_SOURCE);
}

/** The Java source of the quorum probe: Admin#describeMetadataQuorum per client config. */
export const KAFKA_QUORUM_PROBE_SOURCE = new URL(
  '../../java/dev/trellis/kafka/QuorumProbe.java',
  import.meta.url,
).pathname;

/** Main class of the quorum probe (see {@link describeKafkaQuorum} in kafka-cluster.ts). */
export const KAFKA_QUORUM_PROBE = 'dev.trellis.kafka.QuorumProbe';

/** Compile the quorum probe like the principal builder; resolves its classes directory. */
export async function ensureKafkaQuorumProbe(): Promise<string> {
  return ensureKafkaJavaClass('kafka-quorum-probe', KAFKA_QUORUM_PROBE_SOURCE);
}

/**
 * Compile one Java source of packages/local/java against the pinned Kafka's jars, once per source
 * digest and Kafka version, into `tools/<cacheName>/<version>-<digest>/classes`.
 */
async function ensureKafkaJavaClass(cacheName: string, sourceFile: string): Promise<string> {
  const source = readFileSync(sourceFile, 'utf8');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = toolDir(cacheName, `${KAFKA_VERSION}-${digest}`);
  const classes = join(dir, 'classes');
  const className = basename(sourceFile, '.java');
  if (existsSync(join(classes, 'dev', 'trellis', 'kafka', `${className}.class`))) return classes;
  const home = await kafkaTool.ensure();
  const jdk = javaHome(KAFKA_JAVA_MIN);
  const javac = join(jdk, 'bin', 'javac');
  if (!existsSync(javac))
    throw new Error(
      `kafka: ${jdk} has no javac to compile ${className}; install a full JDK ` +
        '(Debian: openjdk-17-jdk-headless) or set TRELLIS_JAVA_HOME to one',
    );
  await installAtomically(dir, async (staging) => {
    progress(`compiling ${className} against kafka-clients ${KAFKA_VERSION}`);
    await run(
      javac,
      [
        '--release',
        String(KAFKA_JAVA_MIN),
        '-cp',
        join(home, 'lib', '*'),
        '-d',
        join(staging, 'classes'),
        sourceFile,
      ],
      { what: `javac ${className}`, timeoutMs: 180_000 },
    );
  });
  return classes;
}
