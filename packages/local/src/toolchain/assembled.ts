/**
 * JVM tools assembled from Maven artefacts (Cassandra, Kafka): their install layout is
 * `<home>/lib/*.jar` plus `<home>/install.json` (the version, what was asked for and the jars resolved).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled } from './cache.ts';
import { resolveClasspath, type MavenCoordinates } from './maven.ts';

/** An installed assembled tool. */
export interface AssembledInstall {
  home: string;
  version: string;
  libDir: string;
  /** `-cp` value (a `lib/*` wildcard, which the JVM expands). */
  classpath: string;
  /** A JDK that suits the tool, or '' when there is none. */
  javaHome: string;
}

/** The tool installed at `home`, or null when it is not (installs nothing; looks for a JDK only then). */
export function assembledInstall(
  home: string,
  version: string,
  findJavaHome: () => string | undefined,
): AssembledInstall | null {
  if (!isInstalled(home)) return null;
  return {
    home,
    version,
    libDir: join(home, 'lib'),
    classpath: join(home, 'lib', '*'),
    javaHome: findJavaHome() ?? '',
  };
}

/**
 * Install into `home` (atomically, idempotent): resolve `artifacts` and their runtime dependencies into
 * `lib/` with Maven, let `verify` reject the resolved jar names, and write `install.json` as `record`
 * plus the jars.
 */
export async function installAssembled(
  home: string,
  opts: {
    name: string;
    artifacts: readonly MavenCoordinates[];
    /** JAVA_HOME for Maven. */
    javaHome: string;
    /** What install.json records besides the jars, e.g. `{ version, artifacts }`. */
    record: Record<string, unknown>;
    verify?: (jars: readonly string[]) => void;
  },
): Promise<void> {
  await installAtomically(home, async (staging) => {
    const jars = await resolveClasspath({
      name: opts.name,
      artifacts: opts.artifacts,
      into: join(staging, 'lib'),
      javaHome: opts.javaHome,
    });
    opts.verify?.(jars);
    writeFileSync(
      join(staging, 'install.json'),
      `${JSON.stringify({ ...opts.record, jars }, null, 2)}\n`,
    );
  });
}
