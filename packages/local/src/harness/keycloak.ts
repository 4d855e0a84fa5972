import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import type { Jdk } from '../toolchain/java.ts';
import {
  KEYCLOAK_QUICK_START_JVM,
  keycloak,
  keycloakAotCache,
  keycloakBaseEnv,
  keycloakJdk,
  keycloakStartArgs,
  linkKeycloakHome,
  type KeycloakTlsFiles,
} from '../toolchain/keycloak.ts';
import { requestText } from './https.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

/**
 * The certificate a Keycloak serves HTTPS with, and the root it chains to (what its readiness probe
 * trusts). The certificate must name 127.0.0.1, where everything on this machine dials it, and the
 * host of the public hostname (e.g. `localhost`).
 */
export interface KeycloakServerTls extends KeycloakTlsFiles {
  /** PEM roots the certificate chains to. */
  caFile: string;
}

/** A realm representation as Keycloak imports it (`realm` is required; the rest is passed through). */
export interface RealmRepresentation {
  realm: string;
  [key: string]: unknown;
}

/**
 * A realm of one confidential client that may use only the client-credentials grant: what the harness
 * tests log in with.
 */
export function clientCredentialsRealm(
  realm: string,
  clientId: string,
  secret: string,
): RealmRepresentation {
  return {
    realm,
    enabled: true,
    clients: [
      {
        clientId,
        enabled: true,
        protocol: 'openid-connect',
        publicClient: false,
        clientAuthenticatorType: 'client-secret',
        secret,
        serviceAccountsEnabled: true,
        standardFlowEnabled: false,
        directAccessGrantsEnabled: false,
      },
    ],
  };
}

export interface KeycloakOptions {
  /**
   * The instance's own directory. Keycloak's home is rebuilt here from links into the shared install
   * (`-Dkc.home.dir`), so its `data/` (H2 database, import dir, tmp) belongs to this instance only.
   */
  dir: string;
  /** The realm imported at startup (`start --import-realm`, from `data/import`). */
  realm: RealmRepresentation;
  /** Name for logs and errors. @default 'keycloak' */
  name?: string;
  /**
   * Keep the database of an earlier run of this dir when the realm is unchanged (faster start). A
   * changed realm always starts from an empty database, because the import skips existing realms.
   * @default true
   */
  reuseData?: boolean;
  /**
   * C1-only JIT plus the JDK AOT cache trained at install time (JDK 25+): about 35–45 % less
   * start-up time, at the cost of peak throughput, which a local IdP does not need. @default true
   */
  quickStart?: boolean;
  /** @default 300_000 (a cold start on 2 busy cores takes 20–90 s) */
  readyTimeoutMs?: number;
  /**
   * Serve HTTPS only (main and management interface) with this certificate. @default plain HTTP on
   * loopback
   */
  tls?: KeycloakServerTls;
  /**
   * The public base URL (`--hostname`): the realm's issuer is `<hostname>/realms/<realm>`, e.g.
   * `https://localhost:<port>` once the port is known. @default the loopback base URL
   */
  hostname?: (port: number) => string;
}

/** The bootstrap admin of the master realm. Hand it to callers; never log it. */
export interface AdminCredentials {
  readonly username: string;
  readonly password: string;
}

/** A running Keycloak. */
export interface KeycloakInstance {
  /** `http(s)://127.0.0.1:<port>`: where the server listens. */
  readonly baseUrl: string;
  /** `<hostname>/realms/<realm>` (hostname defaults to `baseUrl`): the `iss` of the realm's tokens. */
  readonly issuer: string;
  readonly realm: string;
  /** Management interface (health), `http(s)://127.0.0.1:<port>`, with the same TLS as `baseUrl`. */
  readonly managementUrl: string;
  readonly admin: AdminCredentials;
  readonly process: ManagedProcess;
  /** Milliseconds from spawn to `/health/ready` UP with the realm served. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

const ADMIN_USER = 'trellis-admin';

function validateRealm(realm: RealmRepresentation): void {
  if (typeof realm !== 'object' || realm === null)
    throw new Error('keycloak: realm must be an object');
  if (typeof realm.realm !== 'string' || !/^[A-Za-z0-9._-]+$/.test(realm.realm)) {
    throw new Error(
      `keycloak: realm.realm must be a name of letters, digits, '.', '_' or '-' (got ${JSON.stringify(realm.realm)})`,
    );
  }
  if (realm.realm === 'master')
    throw new Error(
      'keycloak: realm.realm must not be "master" (importing master is not supported)',
    );
}

/** Lay out `<dir>/home` and decide whether the old database can be kept. Returns the admin password. */
function prepareHome(
  install: string,
  home: string,
  realm: RealmRepresentation,
  reuse: boolean,
): string {
  linkKeycloakHome(install, home);
  const data = join(home, 'data');
  const json = JSON.stringify(realm, null, 2);
  const hash = createHash('sha256').update(json).digest('hex');
  const stateFile = join(home, 'trellis-state.json');
  const secretFile = join(home, 'admin-password');
  let state: { realmHash?: string; installHome?: string } = {};
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as typeof state;
  } catch {
    // first run
  }
  const keep =
    reuse &&
    state.realmHash === hash &&
    state.installHome === install &&
    existsSync(secretFile) &&
    existsSync(join(data, 'h2'));
  if (!keep) {
    rmSync(data, { recursive: true, force: true });
    // The bootstrap admin is created only with the master realm, i.e. with a new database.
    writeFileSync(secretFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  mkdirSync(join(data, 'import'), { recursive: true });
  writeFileSync(join(data, 'import', `${realm.realm}.json`), json);
  writeFileSync(stateFile, JSON.stringify({ realmHash: hash, installHome: install }));
  return readFileSync(secretFile, 'utf8').trim();
}

/**
 * Ready when `/health/ready` on the management port says UP and the realm's discovery document is
 * served (throws with the reason otherwise). Over HTTPS both must present a certificate that chains
 * to `caFile`. Shared with the local stack's supervised Keycloak.
 */
export async function probeKeycloak(
  managementUrl: string,
  realmUrl: string,
  caFile?: string,
): Promise<boolean> {
  const ca = caFile !== undefined ? readFileSync(caFile) : undefined;
  const get = (url: string) => requestText(url, { timeoutMs: 3_000, ...(ca ? { ca } : {}) });
  const res = await get(`${managementUrl}/health/ready`);
  let status: string | undefined;
  try {
    status = (JSON.parse(res.body) as { status?: string }).status;
  } catch {
    // reported below
  }
  if (res.status !== 200 || status !== 'UP')
    throw new Error(`/health/ready said ${res.status} ${status ?? ''}`);
  // Ready means bootstrapped; the realm's discovery document proves the import is served too.
  const disc = await get(`${realmUrl}/.well-known/openid-configuration`);
  if (disc.status !== 200) throw new Error(`realm discovery said ${disc.status}`);
  return true;
}

/** JVM options (`JAVA_OPTS_APPEND`): C1 only and the trained AOT cache, when `quickStart`. */
export function keycloakJvmOptions(jdk: Jdk, quickStart: boolean): string[] {
  if (!quickStart) return [];
  const aot = keycloakAotCache(jdk);
  return [...KEYCLOAK_QUICK_START_JVM, ...(aot ? [`-XX:AOTCache=${aot}`] : [])];
}

/** Options of {@link keycloakLaunchSpec}. */
export interface KeycloakLaunchOptions {
  /** The instance's own directory (a supervised process's dir): `home/` is built below it. */
  dir: string;
  /** The realm's name; its JSON is expected at `<dir>/`{@link keycloakRealmFile}. */
  realmName: string;
  /** The HTTPS port with `tls`, else the HTTP port. */
  port: number;
  managementPort: number;
  /** Serve HTTPS only, with this certificate (see {@link keycloakStartArgs}). @default plain HTTP */
  tls?: KeycloakTlsFiles;
  /**
   * The public base URL (`--hostname`, keycloak.org/server/hostname): the issuer of the realm's
   * tokens is `<hostname>/realms/<realm>`. @default `http(s)://127.0.0.1:<port>`
   */
  hostname?: string;
  /** See {@link KeycloakOptions.quickStart}. @default true */
  quickStart?: boolean;
  /**
   * Run in a pod (ADR 0012), as a user that may write only below `home` (the toolchain is
   * read-only there): the HTTPS listener binds `address` (the pod's), the management interface
   * (health, metrics) the pod's own 127.0.0.1 (`http-management-host`), the instance home is
   * `home`, and the JVM keeps its temporary files in `<home>/data/tmp` and writes no hsperfdata
   * to /tmp (`-XX:-UsePerfData`), so nothing of it lands outside `home`.
   * @default none: both listeners on 127.0.0.1, home `<dir>/home`
   */
  pod?: { address: string; home: string };
}

/** What runs one Keycloak under a supervisor: a launcher script that prepares the home, then kc.sh. */
export interface KeycloakLaunchSpec {
  command: string;
  args: string[];
  /** The complete environment, without the bootstrap admin (the caller adds `KC_BOOTSTRAP_ADMIN_*`). */
  env: Record<string, string>;
  /** Relative to `dir`: the launcher. The realm file is the caller's (it holds secrets). */
  files: Record<string, string>;
}

/** Where {@link keycloakLaunchSpec} expects the realm JSON, relative to the instance dir. */
export function keycloakRealmFile(realmName: string): string {
  return join('realm', `${realmName}.json`);
}

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The supervised form of {@link startKeycloak}: `/bin/sh launch.sh` links the instance home to the
 * install (as `linkKeycloakHome` does), starts from an empty database when the realm file or the
 * install changed (`--import-realm` skips a realm that exists, so a changed realm must not meet the
 * old database), copies the realm into `data/import`, and `exec`s kc.sh. A restart by the supervisor
 * runs the same steps, so a crash restart keeps the database.
 */
export async function keycloakLaunchSpec(o: KeycloakLaunchOptions): Promise<KeycloakLaunchSpec> {
  validateRealm({ realm: o.realmName });
  for (const [k, v] of [
    ['port', o.port],
    ['managementPort', o.managementPort],
  ] as const)
    if (!Number.isInteger(v) || v < 1 || v > 65_535)
      throw new Error(`keycloak: ${k} must be a TCP port, got ${v}`);
  if (o.pod !== undefined) {
    if (isIP(o.pod.address) !== 4 || o.pod.address.startsWith('127.'))
      throw new Error(
        `keycloak: pod.address must be an IPv4 address off loopback, got '${o.pod.address}'`,
      );
    if (!isAbsolute(o.pod.home))
      throw new Error(`keycloak: pod.home must be an absolute path, got '${o.pod.home}'`);
  }
  const install = await keycloak.ensure();
  const jdk = keycloakJdk();
  const home = o.pod?.home ?? join(o.dir, 'home');
  const hostname = o.hostname ?? `${o.tls ? 'https' : 'http'}://127.0.0.1:${o.port}`;
  // keycloakStartArgs fixes the hostname to the loopback address; a stack names its own. In a pod
  // the server moves to the pod's address and the management interface stays on its loopback.
  const kcArgs = [
    ...(o.pod !== undefined ? [`-Djava.io.tmpdir=${join(home, 'data', 'tmp')}`] : []),
    ...keycloakStartArgs(home, o.port, o.managementPort, o.tls).map((a) =>
      a.startsWith('--hostname=')
        ? `--hostname=${hostname}`
        : o.pod !== undefined && a === '--http-host=127.0.0.1'
          ? `--http-host=${o.pod.address}`
          : a,
    ),
    ...(o.pod !== undefined ? ['--http-management-host=127.0.0.1'] : []),
    '--import-realm',
  ];
  const realm = join(o.dir, keycloakRealmFile(o.realmName));
  const parts = ['bin', 'conf', 'lib', 'providers', 'themes', 'version.txt'];
  const script = [
    '#!/bin/sh',
    '# Written by Trellis (packages/local/src/harness/keycloak.ts): prepare the home, then run kc.sh.',
    'set -eu',
    `install=${sh(install)}`,
    `home=${sh(home)}`,
    `realm=${sh(realm)}`,
    'mkdir -p "$home"',
    `for part in ${parts.join(' ')}; do`,
    '  if [ "$(readlink "$home/$part" 2>/dev/null || true)" != "$install/$part" ]; then',
    '    rm -rf "$home/$part"; ln -s "$install/$part" "$home/$part"',
    '  fi',
    'done',
    '# A changed realm or install starts from an empty database (the import skips existing realms).',
    'stamp="$(sha256sum < "$realm" | cut -d" " -f1) $install"',
    'if [ "$(cat "$home/trellis-stamp" 2>/dev/null || true)" != "$stamp" ]; then rm -rf "$home/data"; fi',
    `mkdir -p "$home/data/import"${o.pod !== undefined ? ' "$home/data/tmp"' : ''}`,
    `(umask 077 && cp "$realm" "$home/data/import/${o.realmName}.json")`,
    'printf "%s" "$stamp" > "$home/trellis-stamp"',
    `exec "$install/bin/kc.sh" ${kcArgs.map(sh).join(' ')}`,
    '',
  ].join('\n');
  return {
    command: '/bin/sh',
    args: [join(o.dir, 'launch.sh')],
    env: {
      PATH: '/usr/bin:/bin',
      JAVA_HOME: jdk.home,
      // kc.sh appends these to its JAVA_OPTS.
      JAVA_OPTS_APPEND: [
        ...keycloakJvmOptions(jdk, o.quickStart ?? true),
        // hsperfdata goes to /tmp/hsperfdata_<user> whatever java.io.tmpdir says.
        ...(o.pod !== undefined ? ['-XX:-UsePerfData'] : []),
      ].join(' '),
    },
    files: { 'launch.sh': script },
  };
}

/**
 * Start Keycloak in production mode (`start --optimized` on the image built at install time) on
 * loopback, HTTP or (with `tls`) HTTPS only, import the realm, and wait for `/health/ready` on the
 * management port.
 */
export async function startKeycloak(opts: KeycloakOptions): Promise<KeycloakInstance> {
  validateRealm(opts.realm);
  const install = await keycloak.ensure();
  const jdk = keycloakJdk();
  const home = join(opts.dir, 'home');
  const password = prepareHome(install, home, opts.realm, opts.reuseData ?? true);
  const [port = 0, mgmtPort = 0] = await freePorts(2);
  const scheme = opts.tls ? 'https' : 'http';
  const baseUrl = `${scheme}://127.0.0.1:${port}`;
  const managementUrl = `${scheme}://127.0.0.1:${mgmtPort}`;
  const hostname = opts.hostname?.(port) ?? baseUrl;
  const issuer = `${hostname}/realms/${opts.realm.realm}`;
  // start --import-realm reads data/import (keycloak.org/server/importExport).
  const args = [
    ...keycloakStartArgs(home, port, mgmtPort, opts.tls).map((a) =>
      a.startsWith('--hostname=') ? `--hostname=${hostname}` : a,
    ),
    '--import-realm',
  ];
  const jvm = keycloakJvmOptions(jdk, opts.quickStart ?? true);
  const t0 = Date.now();
  const proc = ManagedProcess.start({
    name: opts.name ?? 'keycloak',
    command: join(install, 'bin', 'kc.sh'),
    args,
    dir: opts.dir,
    env: {
      ...keycloakBaseEnv(),
      JAVA_HOME: jdk.home,
      // kc.sh appends these to its JAVA_OPTS.
      JAVA_OPTS_APPEND: jvm.join(' '),
      // Documented bootstrap-admin env vars (keycloak.org/server/bootstrap-admin-recovery, all-config).
      KC_BOOTSTRAP_ADMIN_USERNAME: ADMIN_USER,
      KC_BOOTSTRAP_ADMIN_PASSWORD: password,
    },
    stopGraceMs: 20_000,
  });
  try {
    await waitUntil(
      () => probeKeycloak(managementUrl, `${baseUrl}/realms/${opts.realm.realm}`, opts.tls?.caFile),
      {
        what: `${proc.name} /health/ready and realm ${opts.realm.realm}`,
        timeoutMs: opts.readyTimeoutMs ?? 300_000,
        intervalMs: 250,
        proc,
      },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  // Non-enumerable: console.log or JSON.stringify of the instance never shows the password.
  const admin = Object.freeze(
    Object.defineProperty({ username: ADMIN_USER }, 'password', {
      value: password,
      enumerable: false,
    }),
  ) as AdminCredentials;
  return {
    baseUrl,
    issuer,
    realm: opts.realm.realm,
    managementUrl,
    admin,
    process: proc,
    startupMs: Date.now() - t0,
    stop: () => proc.stop(),
  };
}
