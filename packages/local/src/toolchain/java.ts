import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { toolBase } from './check.ts';
import { FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';
import { progress } from './log.ts';
import type { Tool, ToolCheck } from './spec.ts';

/** The oldest Java that Trellis' servers accept: Kafka 4 brokers need 17, Cassandra 5.0 runs on 11 or 17. */
export const JAVA_MINIMUM = 17;

/** The Debian package installed when no JDK ≥ 17 is found and we may use apt (running as root). */
export const JDK_APT_PACKAGE = 'openjdk-17-jdk-headless';

/** One JDK found on this machine. */
export interface Jdk {
  home: string;
  /** Feature release, e.g. 17 or 25. */
  major: number;
  /** Full version string from `<home>/release`, e.g. `17.0.15`. */
  version: string;
  /** Where we found it: `TRELLIS_JAVA_HOME`, `JAVA_HOME`, `PATH` or `/usr/lib/jvm`. */
  origin: string;
}

/** Parse `JAVA_VERSION="17.0.15"` (or `1.8.0_392`) from a JDK's `release` file. */
export function parseReleaseFile(text: string): { version: string; major: number } | null {
  const m = /^JAVA_VERSION="([^"]+)"/m.exec(text);
  if (!m?.[1]) return null;
  const version = m[1];
  const parts = version.split(/[._+-]/).map((p) => Number.parseInt(p, 10));
  const major = parts[0] === 1 ? (parts[1] ?? 0) : (parts[0] ?? 0);
  return Number.isFinite(major) && major > 0 ? { version, major } : null;
}

function jdkAt(home: string, origin: string): Jdk | null {
  try {
    if (!existsSync(join(home, 'bin', 'java'))) return null;
    const rel = parseReleaseFile(readFileSync(join(home, 'release'), 'utf8'));
    return rel ? { home, origin, ...rel } : null;
  } catch {
    return null;
  }
}

function javaOnPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'java');
    if (dir && existsSync(p)) {
      try {
        return dirname(dirname(realpathSync(p)));
      } catch {
        continue;
      }
    }
  }
  return null;
}

/**
 * Every usable JDK on this machine, in order of preference: `TRELLIS_JAVA_HOME`, `JAVA_HOME`, the
 * `java` on PATH (the system default), then `/usr/lib/jvm/*`. Reads each `release` file; runs nothing.
 */
export function findJdks(): Jdk[] {
  const seen = new Set<string>();
  const out: Jdk[] = [];
  const add = (home: string | null | undefined, origin: string): void => {
    if (!home) return;
    let real: string;
    try {
      real = realpathSync(home);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    const jdk = jdkAt(real, origin);
    if (jdk) {
      seen.add(real);
      out.push(jdk);
    }
  };
  add(process.env.TRELLIS_JAVA_HOME, 'TRELLIS_JAVA_HOME');
  add(process.env.JAVA_HOME, 'JAVA_HOME');
  add(javaOnPath(), 'PATH');
  const jvm = '/usr/lib/jvm';
  if (existsSync(jvm)) for (const d of readdirSync(jvm).sort()) add(join(jvm, d), jvm);
  return out;
}

/**
 * The JDK to run a server that needs Java `minMajor` (and at most `maxMajor`): the first in
 * {@link findJdks} order that fits. Cassandra 5.0 passes `(17, 17)`: it calls
 * `System.setSecurityManager`, which JDK 24+ no longer allows.
 */
export function findJdk(minMajor = JAVA_MINIMUM, maxMajor = Number.POSITIVE_INFINITY): Jdk | null {
  return findJdks().find((j) => j.major >= minMajor && j.major <= maxMajor) ?? null;
}

/**
 * JAVA_HOME for a minimum (and optional maximum) major version. Throws a clear error listing what
 * was found when nothing fits; `java.ensure()` installs a JDK 17 where it can.
 */
export function javaHome(minMajor = JAVA_MINIMUM, maxMajor = Number.POSITIVE_INFINITY): string {
  const jdk = findJdk(minMajor, maxMajor);
  if (jdk) return jdk.home;
  const range = Number.isFinite(maxMajor) ? `${minMajor}–${maxMajor}` : `≥ ${minMajor}`;
  const found = findJdks().map((j) => `${j.version} at ${j.home}`);
  throw new Error(
    `no JDK ${range} found (${found.length ? `found: ${found.join(', ')}` : 'none found'}; looked at ` +
      `TRELLIS_JAVA_HOME, JAVA_HOME, java on PATH and /usr/lib/jvm). Install one ` +
      `(Debian: apt-get install -y ${JDK_APT_PACKAGE}) or set TRELLIS_JAVA_HOME.`,
  );
}

async function aptInstallJdk(): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  progress(`no JDK ≥ ${JAVA_MINIMUM} found: installing ${JDK_APT_PACKAGE} with apt-get`);
  try {
    await run('apt-get', ['update'], {
      what: 'apt-get update',
      env,
      echo: true,
      timeoutMs: 600_000,
    });
    await run('apt-get', ['install', '-y', '--no-install-recommends', JDK_APT_PACKAGE], {
      what: `apt-get install ${JDK_APT_PACKAGE}`,
      env,
      echo: true,
      timeoutMs: 1_200_000,
    });
  } catch (err) {
    throw new FetchError(JDK_APT_PACKAGE, 'Debian apt', (err as Error).message);
  }
}

/** The Java runtime for Kafka, Cassandra and Keycloak: a system JDK ≥ 17 (installed with apt as root). */
export const java: Tool = {
  name: 'java',
  pinned: '17',
  minimum: String(JAVA_MINIMUM),
  source: `system JDK (Debian ${JDK_APT_PACKAGE})`,

  async ensure(): Promise<string> {
    const have = findJdk(JAVA_MINIMUM);
    if (have) return have.home;
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    const apt = await tryRun('apt-get', ['--version']);
    if (!root || apt === null) {
      throw new Error(
        `no JDK ≥ ${JAVA_MINIMUM} found and ${root ? 'apt-get is not available' : 'not running as root'}: ` +
          `install ${JDK_APT_PACKAGE} (or any JDK ${JAVA_MINIMUM}+) and set TRELLIS_JAVA_HOME if it is not on PATH`,
      );
    }
    await aptInstallJdk();
    return javaHome(JAVA_MINIMUM);
  },

  async check(): Promise<ToolCheck> {
    const jdk = findJdk(JAVA_MINIMUM);
    const base = toolBase(this);
    if (!jdk) {
      const others = findJdks();
      return {
        ...base,
        found: others[0]?.version ?? null,
        location: others[0]?.home ?? null,
        runs: false,
        problem: `no JDK ≥ ${JAVA_MINIMUM} (install ${JDK_APT_PACKAGE})`,
      };
    }
    const out = await tryRun(join(jdk.home, 'bin', 'java'), ['-version']);
    const others = findJdks()
      .filter((j) => j.home !== jdk.home)
      .map((j) => `${j.version}`);
    return {
      ...base,
      found: jdk.version,
      location: jdk.home + (others.length ? ` (also: ${others.join(', ')})` : ''),
      runs: out !== null && out.includes(jdk.version.split('+')[0] ?? jdk.version),
      ...(out === null ? { problem: `${jdk.home}/bin/java -version failed` } : {}),
    };
  },
};
