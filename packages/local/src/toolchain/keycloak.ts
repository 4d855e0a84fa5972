import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../harness/ports.ts';
import { ManagedProcess } from '../harness/process.ts';
import { waitUntil } from '../harness/wait.ts';
import { ensureSymlink, installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
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
 * skips the re-augmentation). All are build options in the "All configuration" guide
 * (keycloak.org/server/all-config): `db`, `health-enabled`, `metrics-enabled` (`/metrics` on the
 * management interface: keycloak.org/observability/configuration-metrics) and
 * `event-metrics-user-enabled` (`keycloak_user_events_total` per realm, event and error:
 * keycloak.org/observability/event-metrics; a feature of its own no more since 26.2).
 */
export const KEYCLOAK_BUILD_OPTIONS: readonly string[] = [
  '--db=dev-file',
  '--health-enabled=true',
  '--metrics-enabled=true',
  '--event-metrics-user-enabled=true',
];

/**
 * The install's directory name: the version and a digest of the build options, so that changing
 * them builds a new image beside the old one (a running Keycloak keeps its own) instead of reusing
 * an image built without them.
 */
export const KEYCLOAK_BUILD = `${PINNED}-${createHash('sha256').update(KEYCLOAK_BUILD_OPTIONS.join(' ')).digest('hex').slice(0, 8)}`;

/**
 * Keycloak's `log-level` for the audit trail (syntax keycloak.org/server/logging,
 * `<root-level>,<category>:<level>`): the jboss-logging event listener logs successful logins and
 * token grants at DEBUG (errors at WARN) under `org.keycloak.events`, so that category runs at DEBUG;
 * the readiness poll would otherwise log a DOWN line on every probe. The local stack passes it as
 * `--log-level`, the Kubernetes stack as the Keycloak CR's `additionalOptions` (components/k8s).
 */
export const KEYCLOAK_LOG_LEVEL = 'info,io.smallrye.health:warn,org.keycloak.events:debug';

/**
 * JDK majors Keycloak 26.x supports (keycloak.org/server/supported-configurations: OpenJDK 17, 21,
 * 25; it recommends the newest for performance). The jars are Java 17 bytecode.
 */
export const KEYCLOAK_JDK_MAJORS: readonly number[] = [25, 21, 17];

/** Where the Keycloak distribution lives once installed. */
export function keycloakHome(build = KEYCLOAK_BUILD): string {
  return toolDir('keycloak', build);
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

/**
 * JVM options for a quick start: C1 only (`-XX:TieredStopAtLevel=1`, a HotSpot option). On 2 cores
 * C2 compiling during boot costs about half the start-up CPU (measured: 54 s -> 25 s of CPU); the
 * local IdP issues a few tokens, so peak throughput does not matter.
 */
export const KEYCLOAK_QUICK_START_JVM: readonly string[] = ['-XX:TieredStopAtLevel=1'];

// The distribution parts an instance home links to; `data/` stays the instance's own.
const SHARED_PARTS = ['bin', 'conf', 'lib', 'providers', 'themes', 'version.txt'] as const;

/**
 * Make `home` an instance home: links to the install's read-only parts and a `data/` of its own.
 * Keycloak keeps its H2 database, import dir and tmp under `<kc.home.dir>/data`, so instances that
 * share one install must each have their own home (`-Dkc.home.dir`).
 */
export function linkKeycloakHome(install: string, home: string): void {
  mkdirSync(join(home, 'data'), { recursive: true });
  for (const part of SHARED_PARTS) {
    ensureSymlink(join(install, part), join(home, part));
  }
}

/** The server certificate of a Keycloak that speaks TLS only (PEM files, as a CA writes them). */
export interface KeycloakTlsFiles {
  /** The certificate chain (leaf first). */
  certFile: string;
  /** Its PKCS#8 private key. */
  keyFile: string;
  /**
   * How often Keycloak re-reads the two files (`https-certificates-reload-period`; more than 30 s), so a
   * renewed certificate is served without a restart. @default '1m' (Keycloak's own default is 1 h)
   */
  reloadPeriod?: string;
}

/**
 * `kc.sh` arguments for a production-mode start on loopback, on the optimized image: plain HTTP, or
 * with `tls` HTTPS only. Option names: keycloak.org/server/all-config, /server/enabletls,
 * /server/hostname, /server/management-interface, /server/caching (`cache=local`: one node, no
 * JGroups discovery or cluster port to collide on).
 *
 * With `tls` the HTTP listener is off (`http-enabled=false`) and the management interface (health)
 * inherits the HTTPS settings (`http-management-scheme` defaults to `inherited`), so it serves the
 * same certificate; both bind to `http-host`, 127.0.0.1. Keycloak re-reads the certificate files
 * every hour (`https-certificates-reload-period`, default 1h), so a certificate renewed in place
 * reaches it without a restart.
 */
export function keycloakStartArgs(
  home: string,
  port: number,
  managementPort: number,
  tls?: KeycloakTlsFiles,
): string[] {
  const scheme = tls ? 'https' : 'http';
  return [
    // A later -D wins over the one kc.sh derives from its own path.
    `-Dkc.home.dir=${home}`,
    'start',
    '--optimized',
    `--http-enabled=${tls ? 'false' : 'true'}`,
    // The bind address of the HTTPS listener and the management interface too.
    '--http-host=127.0.0.1',
    ...(tls
      ? [
          `--https-port=${port}`,
          `--https-certificate-file=${tls.certFile}`,
          `--https-certificate-key-file=${tls.keyFile}`,
          `--https-certificates-reload-period=${tls.reloadPeriod ?? '1m'}`,
        ]
      : [`--http-port=${port}`]),
    `--http-management-port=${managementPort}`,
    `--hostname=${scheme}://127.0.0.1:${port}`,
    '--cache=local',
    `--log-level=${KEYCLOAK_LOG_LEVEL}`,
  ];
}

function aotDir(jdk: Jdk): string {
  return toolDir('keycloak-aot', `${KEYCLOAK_BUILD}-jdk${jdk.version}`);
}

/**
 * The JDK AOT cache for this Keycloak and JDK, when one was trained (JDK 25+, JEP 514/515:
 * `-XX:AOTCacheOutput` in a training run, `-XX:AOTCache` afterwards). Null otherwise.
 */
export function keycloakAotCache(jdk: Jdk): string | null {
  const file = join(aotDir(jdk), 'keycloak.aot');
  return isInstalled(aotDir(jdk)) && existsSync(file) ? file : null;
}

/**
 * One training start of Keycloak that writes an AOT cache at exit. Measured on 2 cores: start-up
 * CPU 25 s -> 18 s with C1 only. Failure is not fatal: Keycloak just starts without the cache.
 */
async function trainAot(install: string, jdk: Jdk): Promise<void> {
  const dir = aotDir(jdk);
  const failed = `${dir}.failed`;
  if (jdk.major < 25 || isInstalled(dir) || existsSync(failed)) return;
  progress(`training a JDK AOT cache for Keycloak ${PINNED} (one start and stop, about a minute)`);
  try {
    await installAtomically(dir, async (staging) => {
      const home = join(staging, 'home');
      linkKeycloakHome(install, home);
      const [httpPort, mgmtPort] = await freePorts(2);
      const proc = ManagedProcess.start({
        name: 'keycloak-aot-training',
        command: join(install, 'bin', 'kc.sh'),
        args: keycloakStartArgs(home, httpPort ?? 0, mgmtPort ?? 0),
        dir: staging,
        env: {
          ...keycloakBaseEnv(),
          JAVA_HOME: jdk.home,
          JAVA_OPTS_APPEND: [
            ...KEYCLOAK_QUICK_START_JVM,
            `-XX:AOTCacheOutput=${join(staging, 'keycloak.aot')}`,
          ].join(' '),
        },
        // The JVM writes the cache on exit; give it time.
        stopGraceMs: 300_000,
      });
      try {
        await waitUntil(
          async () =>
            (
              await fetch(`http://127.0.0.1:${mgmtPort}/health/ready`, {
                signal: AbortSignal.timeout(3_000),
              })
            ).status === 200,
          { what: 'Keycloak AOT training start', timeoutMs: 900_000, intervalMs: 500, proc },
        );
      } finally {
        await proc.stop();
      }
      rmSync(home, { recursive: true, force: true });
      if (!existsSync(join(staging, 'keycloak.aot')))
        throw new Error(`no AOT cache written; see ${proc.logFile}`);
    });
  } catch (err) {
    writeFileSync(failed, `${new Date().toISOString()} ${(err as Error).message}\n`);
    progress(
      `Keycloak AOT cache training failed (Keycloak will start without it; delete ${failed} to retry): ${(err as Error).message.split('\n')[0] ?? ''}`,
    );
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
    await trainAot(dir, keycloakJdk());
    return dir;
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
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
