import { chmodSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { run, tryRun } from './exec.ts';
import { findJdks, JDK_APT_PACKAGE, type Jdk } from './java.ts';
import { coordinatesLabel, downloadArtifact, type MavenCoordinates } from './maven.ts';
import { progress } from './log.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

const PINNED = '26.7.3';
const MINIMUM = '26.0.0';
const REGISTRY = 'Maven Central';
const COORDINATES: MavenCoordinates = {
  groupId: 'org.keycloak',
  artifactId: 'keycloak-quarkus-dist',
  version: PINNED,
  ext: 'zip',
};
const GAV = coordinatesLabel(COORDINATES);

/**
 * Build-time options, fixed into the optimized image by `kc.sh build` (so that `start --optimized`
 * skips the re-augmentation). Both are build options in the "All configuration" guide
 * (keycloak.org/server/all-config): `db`, `health-enabled`.
 */
export const KEYCLOAK_BUILD_OPTIONS: readonly string[] = ['--db=dev-file', '--health-enabled=true'];

/**
 * JDK majors Keycloak 26.x supports (keycloak.org/server/supported-configurations: OpenJDK 17, 21,
 * 25; it recommends the newest for performance). The jars are Java 17 bytecode.
 */
export const KEYCLOAK_JDK_MAJORS: readonly number[] = [25, 21, 17];

/** Where the Keycloak distribution lives once installed. */
export function keycloakHome(version = PINNED): string {
  return toolDir('keycloak', version);
}

/**
 * The JDK to run Keycloak with: the newest supported LTS (25, then 21, then 17) among the JDKs that
 * `findJdks` sees (TRELLIS_JAVA_HOME, JAVA_HOME, PATH, /usr/lib/jvm). Throws naming what was found.
 */
export function keycloakJdk(): Jdk {
  const found = findJdks();
  for (const major of KEYCLOAK_JDK_MAJORS) {
    const j = found.find((x) => x.major === major);
    if (j) return j;
  }
  const seen = found.map((j) => `${j.version} (${j.home})`).join(', ') || 'none';
  throw new Error(
    `Keycloak ${PINNED} needs JDK ${KEYCLOAK_JDK_MAJORS.join(', ')} (keycloak.org/server/supported-configurations); ` +
      `found: ${seen}. Install one (Debian: apt-get install ${JDK_APT_PACKAGE}) or set TRELLIS_JAVA_HOME.`,
  );
}

async function unzip(zip: string, into: string): Promise<void> {
  if (await tryRun('unzip', ['-v'], { timeoutMs: 10_000 })) {
    await run('unzip', ['-q', zip, '-d', into], { what: `unzip ${zip}`, timeoutMs: 600_000 });
    return;
  }
  // No unzip CLI: Python's zipfile (Python is needed for Envoy anyway). It drops file modes.
  await run('python3', ['-m', 'zipfile', '-e', zip, into], {
    what: `python3 -m zipfile -e ${zip}`,
    timeoutMs: 600_000,
  });
}

async function install(staging: string): Promise<void> {
  const jdk = keycloakJdk();
  const zip = join(staging, `keycloak-${PINNED}.zip`);
  const what = `Keycloak ${PINNED} (${GAV})`;
  await downloadArtifact(COORDINATES, zip, what);
  progress(`unpacking Keycloak ${PINNED}`);
  const unpack = join(staging, 'unpack');
  await unzip(zip, unpack);
  rmSync(zip);
  const top = join(unpack, `keycloak-${PINNED}`);
  if (!existsSync(join(top, 'bin', 'kc.sh')))
    throw new Error(`${what}: the zip has no keycloak-${PINNED}/bin/kc.sh`);
  for (const entry of readdirSync(top)) renameSync(join(top, entry), join(staging, entry));
  rmSync(unpack, { recursive: true, force: true });
  for (const f of readdirSync(join(staging, 'bin')).filter((n) => n.endsWith('.sh')))
    chmodSync(join(staging, 'bin', f), 0o755);
  progress(
    `building the optimized Keycloak image (kc.sh build ${KEYCLOAK_BUILD_OPTIONS.join(' ')}) with JDK ${jdk.version}; about a minute`,
  );
  await run(join(staging, 'bin', 'kc.sh'), ['build', ...KEYCLOAK_BUILD_OPTIONS], {
    what: 'kc.sh build',
    env: { ...keycloakBaseEnv(), JAVA_HOME: jdk.home },
    timeoutMs: 900_000,
  });
  const version = readVersion(staging);
  if (version !== PINNED) throw new Error(`${what}: version.txt says ${version ?? 'nothing'}`);
}

/** The parent environment without KC_* and JAVA_OPTS* variables, so that Keycloak sees only ours. */
export function keycloakBaseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      k.startsWith('KC_') ||
      k.startsWith('KEYCLOAK_') ||
      k.startsWith('JAVA_OPTS') ||
      k === 'PRINT_ENV'
    )
      continue;
    env[k] = v;
  }
  return env;
}

function readVersion(home: string): string | null {
  try {
    return /Version\s+(\S+)/.exec(readFileSync(join(home, 'version.txt'), 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Keycloak (Quarkus distribution) from Maven Central, built once into an optimized image. */
export const keycloak: Tool = {
  name: 'keycloak',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${REGISTRY} ${GAV}`,
  async ensure(): Promise<string> {
    const dir = keycloakHome();
    if (!isInstalled(dir)) await installAtomically(dir, install);
    return dir;
  },
  async check(): Promise<ToolCheck> {
    const base = { name: 'keycloak', pinned: PINNED, minimum: MINIMUM, source: this.source };
    const dir = keycloakHome();
    if (!isInstalled(dir))
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    const found = readVersion(dir);
    let jdk: Jdk;
    try {
      jdk = keycloakJdk();
    } catch (err) {
      return { ...base, found, location: dir, runs: false, problem: (err as Error).message };
    }
    // `kc.sh --version` starts the JVM without the server: a real smoke check that takes a second or two.
    const out = await tryRun(join(dir, 'bin', 'kc.sh'), ['--version'], {
      env: { ...keycloakBaseEnv(), JAVA_HOME: jdk.home },
      timeoutMs: 60_000,
    });
    const runs = out !== null && out.includes(PINNED);
    const tooOld = found !== null && compareVersions(found, MINIMUM) < 0;
    return {
      ...base,
      found,
      location: dir,
      runs,
      ...(runs && !tooOld
        ? {}
        : { problem: tooOld ? `version ${found} is below ${MINIMUM}` : 'kc.sh --version failed' }),
    };
  },
};
