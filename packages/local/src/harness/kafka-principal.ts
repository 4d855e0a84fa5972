/**
 * The SPIFFE principal builder of the local Kafka: a small Java class, compiled once per source and
 * Kafka version into the per-user cache (docs/adr/0006-kafka-spiffe-principals.md).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  const source = readFileSync(SPIFFE_PRINCIPAL_BUILDER_SOURCE, 'utf8');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = toolDir('kafka-spiffe-principal', `${KAFKA_VERSION}-${digest}`);
  const classes = join(dir, 'classes');
  if (existsSync(join(classes, 'dev', 'trellis', 'kafka', 'SpiffePrincipalBuilder.class')))
    return classes;
  const home = await kafkaTool.ensure();
  const jdk = javaHome(KAFKA_JAVA_MIN);
  const javac = join(jdk, 'bin', 'javac');
  if (!existsSync(javac))
    throw new Error(
      `kafka: ${jdk} has no javac to compile ${SPIFFE_PRINCIPAL_BUILDER}; install a full JDK ` +
        '(Debian: openjdk-17-jdk-headless) or set TRELLIS_JAVA_HOME to one',
    );
  await installAtomically(dir, async (staging) => {
    progress(`compiling ${SPIFFE_PRINCIPAL_BUILDER} against kafka-clients ${KAFKA_VERSION}`);
    await run(
      javac,
      [
        '--release',
        String(KAFKA_JAVA_MIN),
        '-cp',
        join(home, 'lib', '*'),
        '-d',
        join(staging, 'classes'),
        SPIFFE_PRINCIPAL_BUILDER_SOURCE,
      ],
      { what: `javac ${SPIFFE_PRINCIPAL_BUILDER}`, timeoutMs: 180_000 },
    );
  });
  return classes;
}
