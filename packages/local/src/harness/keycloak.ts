import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  KEYCLOAK_QUICK_START_JVM,
  keycloak,
  keycloakAotCache,
  keycloakBaseEnv,
  keycloakJdk,
  keycloakStartArgs,
  linkKeycloakHome,
} from '../toolchain/keycloak.ts';
import { freePorts } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

/** A realm representation as Keycloak imports it (`realm` is required; the rest is passed through). */
export interface RealmRepresentation {
  realm: string;
  [key: string]: unknown;
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
}

/** The bootstrap admin of the master realm. Hand it to callers; never log it. */
export interface AdminCredentials {
  readonly username: string;
  readonly password: string;
}

/** A running Keycloak. */
export interface KeycloakInstance {
  /** `http://127.0.0.1:<port>`; the hostname is fixed to it, so tokens carry a stable `iss`. */
  readonly baseUrl: string;
  /** `<baseUrl>/realms/<realm>`: the `iss` of the realm's tokens. */
  readonly issuer: string;
  readonly realm: string;
  /** Management interface (health), `http://127.0.0.1:<port>`. */
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

async function readyProbe(managementUrl: string, issuer: string): Promise<boolean> {
  const res = await fetch(`${managementUrl}/health/ready`, { signal: AbortSignal.timeout(3_000) });
  const body = (await res.json().catch(() => ({}))) as { status?: string };
  if (res.status !== 200 || body.status !== 'UP')
    throw new Error(`/health/ready said ${res.status} ${body.status ?? ''}`);
  // Ready means bootstrapped; the realm's discovery document proves the import is served too.
  const disc = await fetch(`${issuer}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(3_000),
  });
  await disc.body?.cancel();
  if (disc.status !== 200) throw new Error(`realm discovery said ${disc.status}`);
  return true;
}

/**
 * Start Keycloak in production mode (`start --optimized` on the image built at install time) on
 * loopback HTTP, import the realm, and wait for `/health/ready` on the management port.
 */
export async function startKeycloak(opts: KeycloakOptions): Promise<KeycloakInstance> {
  validateRealm(opts.realm);
  const install = await keycloak.ensure();
  const jdk = keycloakJdk();
  const home = join(opts.dir, 'home');
  const password = prepareHome(install, home, opts.realm, opts.reuseData ?? true);
  const [httpPort, mgmtPort] = await freePorts(2);
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  const managementUrl = `http://127.0.0.1:${mgmtPort}`;
  const issuer = `${baseUrl}/realms/${opts.realm.realm}`;
  // start --import-realm reads data/import (keycloak.org/server/importExport).
  const args = [...keycloakStartArgs(home, httpPort ?? 0, mgmtPort ?? 0), '--import-realm'];
  const aot = opts.quickStart === false ? null : keycloakAotCache(jdk);
  const jvm = [
    ...(opts.quickStart === false ? [] : KEYCLOAK_QUICK_START_JVM),
    ...(aot ? [`-XX:AOTCache=${aot}`] : []),
  ];
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
    await waitUntil(() => readyProbe(managementUrl, issuer), {
      what: `${proc.name} /health/ready and realm ${opts.realm.realm}`,
      timeoutMs: opts.readyTimeoutMs ?? 300_000,
      intervalMs: 250,
      proc,
    });
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
