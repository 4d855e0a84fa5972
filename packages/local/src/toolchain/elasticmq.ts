import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembledInstall, installAssembled, type AssembledInstall } from './assembled.ts';
import { toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { findJdk, javaHome } from './java.ts';
import { mavenRegistryName, type MavenCoordinates } from './maven.ts';
import type { Tool, ToolCheck } from './spec.ts';

/**
 * ElasticMQ, an SQS-compatible message queue server (the real server that the SQS queue adapter is
 * tested against), assembled from `org.elasticmq:elasticmq-server_2.13` and its runtime dependencies.
 * 1.7.1 is the newest version listed on Maven Central (maven-metadata.xml, December 2026).
 */
export const ELASTICMQ_VERSION = '1.7.1';
export const ELASTICMQ_MINIMUM = '1.7.0';

/** The JDK it runs on: Java 17, the project's default (Pekko and Scala 2.13 need 11+). */
export const ELASTICMQ_JAVA_MIN = 17;

const ARTIFACTS: readonly MavenCoordinates[] = [
  { groupId: 'org.elasticmq', artifactId: 'elasticmq-server_2.13', version: ELASTICMQ_VERSION },
];

/** The server's main class (the `Main-Class` of the published standalone jar). */
export const ELASTICMQ_MAIN = 'org.elasticmq.server.Main';

/** The installed layout: `<home>/lib/*.jar` and `<home>/install.json`. */
export type ElasticMqInstall = AssembledInstall;

function home(): string {
  return toolDir('elasticmq', ELASTICMQ_VERSION);
}

/** Where ElasticMQ is installed, or null when it is not (installs nothing). */
export function elasticMqInstall(): ElasticMqInstall | null {
  return assembledInstall(home(), ELASTICMQ_VERSION, () => findJdk(ELASTICMQ_JAVA_MIN)?.home);
}

/** ElasticMQ from Maven Central: `elasticmq-server_2.13` plus its runtime classpath. */
export const elasticmq: Tool = {
  name: 'elasticmq',
  pinned: ELASTICMQ_VERSION,
  minimum: ELASTICMQ_MINIMUM,
  source: `${mavenRegistryName()} org.elasticmq:elasticmq-server_2.13:${ELASTICMQ_VERSION} + runtime dependencies`,

  async ensure(): Promise<string> {
    const h = home();
    await installAssembled(h, {
      name: 'elasticmq',
      artifacts: ARTIFACTS,
      javaHome: javaHome(ELASTICMQ_JAVA_MIN),
      record: { version: ELASTICMQ_VERSION, artifacts: ARTIFACTS },
    });
    return h;
  },

  async check(): Promise<ToolCheck> {
    // The server has no version flag: start it on a free loopback port with one queue, read the version
    // it logs once started, and stop it (a few seconds, like Keycloak's check).
    const base = toolBase(this);
    const inst = elasticMqInstall();
    if (!inst)
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    if (!inst.javaHome)
      return {
        ...base,
        found: null,
        location: inst.home,
        runs: false,
        problem: `no JDK ≥ ${ELASTICMQ_JAVA_MIN} to run it`,
      };
    const { startElasticMq, elasticMqStartedVersion } = await import('../harness/elasticmq.ts');
    const { waitUntil } = await import('../harness/wait.ts');
    const dir = mkdtempSync(join(tmpdir(), 'trellis-elasticmq-check-'));
    try {
      const server = await startElasticMq({
        dir,
        queues: [{ name: 'check' }],
        name: 'elasticmq-check',
      });
      // The line comes just after the listener is up, so wait for it rather than race it.
      const log = (): string => readFileSync(server.process.logFile, 'utf8');
      const found = await waitUntil(async () => elasticMqStartedVersion(log()), {
        what: 'ElasticMQ to log its start',
        timeoutMs: 10_000,
        intervalMs: 100,
        proc: server.process,
      }).finally(() => server.stop());
      const runs = found === ELASTICMQ_VERSION;
      return {
        ...base,
        found,
        location: inst.home,
        runs,
        ...(runs ? {} : { problem: `the server did not report ${ELASTICMQ_VERSION} when started` }),
      };
    } catch (err) {
      return {
        ...base,
        found: null,
        location: inst.home,
        runs: false,
        problem: (err as Error).message.slice(0, 300),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
