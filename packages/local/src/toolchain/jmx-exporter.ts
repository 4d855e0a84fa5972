import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { tryRun } from './exec.ts';
import {
  coordinatesLabel,
  downloadArtifact,
  mavenRegistryName,
  type MavenCoordinates,
} from './maven.ts';
import type { Tool, ToolCheck } from './spec.ts';

/**
 * The Prometheus JMX exporter's Java agent. 1.0.1 is the newest version Maven Central lists
 * (`io/prometheus/jmx/jmx_prometheus_javaagent/maven-metadata.xml`, `<release>1.0.1</release>`,
 * checked 2026-12-06): the docs describe 1.1–1.7, which this registry does not serve.
 */
export const JMX_EXPORTER_VERSION = '1.0.1';

const COORDINATES: MavenCoordinates = {
  groupId: 'io.prometheus.jmx',
  artifactId: 'jmx_prometheus_javaagent',
  version: JMX_EXPORTER_VERSION,
};
const GAV = coordinatesLabel(COORDINATES);

/** The agent jar's file name in its install dir. */
const JAR = `jmx_prometheus_javaagent-${JMX_EXPORTER_VERSION}.jar`;

function home(): string {
  return toolDir('jmx-exporter', JMX_EXPORTER_VERSION);
}

/** The installed agent jar, or null when it is not installed (installs nothing). */
export function jmxExporterJar(): string | null {
  const jar = join(home(), JAR);
  return isInstalled(home()) && existsSync(jar) ? jar : null;
}

/**
 * The Prometheus JMX exporter Java agent from Maven Central, one jar verified against the `.sha1`
 * published beside it (as Keycloak's zip is), in `tools/jmx-exporter/<version>/`.
 */
export const jmxExporter: Tool = {
  name: 'jmx-exporter',
  pinned: JMX_EXPORTER_VERSION,
  minimum: JMX_EXPORTER_VERSION,
  source: `${mavenRegistryName()} ${GAV}`,

  async ensure(): Promise<string> {
    const h = home();
    await installAtomically(h, async (staging) => {
      await downloadArtifact(
        COORDINATES,
        join(staging, JAR),
        `JMX exporter agent ${JMX_EXPORTER_VERSION} (${GAV})`,
      );
    });
    return join(h, JAR);
  },

  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const jar = jmxExporterJar();
    if (jar === null)
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    // An agent has no main: check that the jar declares its agent class, which the JVM needs.
    const manifest = await tryRun('unzip', ['-p', jar, 'META-INF/MANIFEST.MF'], {
      timeoutMs: 10_000,
    });
    const runs = manifest !== null && /^Premain-Class:\s*\S+/m.test(manifest);
    return {
      ...base,
      found: JMX_EXPORTER_VERSION,
      location: jar,
      runs,
      ...(runs ? {} : { problem: `${jar} has no Premain-Class in its manifest` }),
    };
  },
};
