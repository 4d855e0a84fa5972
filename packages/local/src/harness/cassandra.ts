import { auth, Client, type ClientOptions } from 'cassandra-driver';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../toolchain/exec.ts';
import {
  CASSANDRA_JAVA,
  CASSANDRA_JVM_OPTIONS,
  CASSANDRA_TOOL_JVM_OPTIONS,
  CASSANDRA_MAIN,
  CASSANDRA_VERSION,
  cassandra as cassandraTool,
} from '../toolchain/cassandra.ts';
import { javaHome } from '../toolchain/java.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { splitPem } from './tls.ts';
import { waitUntil } from './wait.ts';

/** The PEM factory of Cassandra 4.1+: key material from PEM files, no keystore passwords. */
export const PEM_SSL_CONTEXT_FACTORY = 'org.apache.cassandra.security.PEMBasedSslContextFactory';

/** SimpleSnitch's data center: what clients must name as their local DC. */
export const LOCAL_DATACENTER = 'datacenter1';

/** PEM files for one side of Cassandra's TLS (see `writePemFiles` in tls.ts). */
export interface CassandraTlsFiles {
  /** PKCS#8 private key followed by the certificate chain. */
  keystore: string;
  /** Trusted CA certificates: whose clients (or peers) are accepted. */
  truststore: string;
  /** Ask for and verify the peer's certificate. @default true */
  requireClientAuth?: boolean;
}

/** A Cassandra class option: a class name, or a class with parameters (as `authenticator:` in cassandra.yaml). */
export type CassandraClass = string | { className: string; parameters?: Record<string, string> };

/** Options of {@link startCassandra}: one single-node cluster on loopback. */
export interface CassandraOptions {
  /** The node's own directory: `conf/`, `data/`, `logs/`, and the process `log` go here. */
  dir: string;
  /** @default 'trellis' (must stay the same across restarts of one data dir) */
  clusterName?: string;
  /** Heap in MiB (-Xms = -Xmx). @default 512 */
  heapMb?: number;
  /** CQL over TLS only (`client_encryption_options`), with client certificates required by default. */
  clientTls?: CassandraTlsFiles;
  /** Internode (gossip, streaming) over TLS only (`server_encryption_options`, `internode_encryption: all`). */
  internodeTls?: CassandraTlsFiles & {
    /** Check that a peer's certificate names its address. @default true */
    requireEndpointVerification?: boolean;
  };
  /** @default 'AllowAllAuthenticator' (e.g. MutualTlsAuthenticator with a SpiffeCertificateValidator) */
  authenticator?: CassandraClass;
  /** @default 'AllowAllAuthorizer' */
  authorizer?: CassandraClass;
  /** @default 'CassandraRoleManager' */
  roleManager?: CassandraClass;
  /**
   * CQL to run once, on the first start of this data dir, as the default superuser (`cassandra`) with
   * PasswordAuthenticator, before the node restarts with the configured authenticator. This is how
   * roles and `ADD IDENTITY` mappings exist before MutualTlsAuthenticator accepts anyone. The default
   * superuser keeps its well-known password; under a certificate-only authenticator it cannot log in.
   */
  bootstrap?: readonly string[];
  /**
   * During the bootstrap start, create this superuser role mapped to a certificate identity, and drop
   * the default `cassandra` superuser with its well-known password: the bootstrap statements then run
   * as this role, and afterwards no role holds a usable password
   * (docs/adr/0005-cassandra-identity-bootstrap.md).
   */
  bootstrapSuperuser?: { role: string; identity: string };
  /** How the readiness probe connects when TLS or authentication is on (its client certificate, a login). */
  probe?: CassandraClientCredentials;
  /** Fixed loopback ports (a Pulumi stack's); free ports are picked when omitted. */
  ports?: CassandraPorts;
  /**
   * How the commit log reaches the disk (`commitlog_sync`): what a crash of the machine can lose.
   * @default { mode: 'periodic', periodMs: 10_000 } (the upstream default)
   */
  commitlog?: CommitlogSync;
  /** Extra cassandra.yaml entries, applied last (e.g. `internode_authenticator`). */
  yaml?: Record<string, unknown>;
  /**
   * fsync flushes of the system keyspaces. Off by default (`-Dcassandra.unsafesystem=true`), which saves
   * seconds of first start on slow disks; a crash of the machine may then lose recent schema changes.
   * @default false
   */
  fsyncSystemTables?: boolean;
  /** Extra JVM arguments (system properties, GC logging), placed before the main class. */
  jvmArgs?: readonly string[];
  /** @default 240_000 */
  startupTimeoutMs?: number;
}

/** The loopback ports of one node. */
export interface CassandraPorts {
  /** CQL native transport. */
  native: number;
  /** Internode (gossip, streaming). */
  storage: number;
  /** Local-only JMX, for nodetool. */
  jmx: number;
}

/**
 * `commitlog_sync` of cassandra.yaml (Cassandra 5.0 `Config.CommitLogSync`): `periodic` acknowledges
 * writes before the fsync, which runs every `periodMs`; `batch` fsyncs before acknowledging;
 * `group` fsyncs every `windowMs` and acknowledges the writes of that window after it.
 */
export type CommitlogSync =
  { mode: 'periodic'; periodMs: number } | { mode: 'batch' } | { mode: 'group'; windowMs: number };

/** How a client proves itself: a certificate (PEM file paths) and/or a login. */
export interface CassandraClientCredentials {
  /** Client certificate (chain) PEM file; a keystore file (key + chain) also works. */
  cert?: string;
  /** Client private key PEM file; defaults to the key found in `cert`. */
  key?: string;
  /** CA PEM file that signs the server's certificate. */
  ca?: string;
  username?: string;
  password?: string;
}

/** A running single-node Cassandra. */
export interface CassandraServer {
  host: string;
  /** CQL native transport port. */
  nativePort: number;
  /** Internode (storage) port. */
  storagePort: number;
  /** Local-only JMX port, for nodetool. */
  jmxPort: number;
  /** `host:port` for driver contact points. */
  contactPoint: string;
  localDataCenter: string;
  /** Whether CQL needs TLS. */
  tls: boolean;
  version: string;
  /** Milliseconds from spawn to the first successful CQL query (including any bootstrap start). */
  startupMs: number;
  /** Milliseconds of the final start alone, when a bootstrap start came first. */
  restartMs?: number;
  dir: string;
  /** The process log (stdout and stderr). */
  logFile: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

interface Ports {
  nativePort: number;
  storagePort: number;
}

/**
 * The cassandra.yaml for one local node, as a plain object (Cassandra's SnakeYAML reads the JSON we write).
 * Keys are Cassandra 5.0's (conf/cassandra.yaml on the cassandra-5.0 branch); sized for a 2-core dev machine.
 */
export function cassandraConfig(
  opts: CassandraOptions,
  host: string,
  ports: Ports,
): Record<string, unknown> {
  const data = join(opts.dir, 'data');
  const cfg: Record<string, unknown> = {
    cluster_name: opts.clusterName ?? 'trellis',
    // One token at a fixed position: no token allocation work, and a single node owns the whole ring.
    num_tokens: 1,
    initial_token: '0',
    partitioner: 'org.apache.cassandra.dht.Murmur3Partitioner',
    endpoint_snitch: 'SimpleSnitch',
    seed_provider: [
      {
        class_name: 'org.apache.cassandra.locator.SimpleSeedProvider',
        parameters: [{ seeds: `${host}:${ports.storagePort}` }],
      },
    ],
    listen_address: host,
    rpc_address: host,
    storage_port: ports.storagePort,
    native_transport_port: ports.nativePort,
    start_native_transport: true,
    data_file_directories: [join(data, 'data')],
    commitlog_directory: join(data, 'commitlog'),
    saved_caches_directory: join(data, 'saved_caches'),
    hints_directory: join(data, 'hints'),
    cdc_raw_directory: join(data, 'cdc_raw'),
    // Stated explicitly because it decides what a crash of the machine loses
    // (docs/adr/0005-cassandra-identity-bootstrap.md).
    ...commitlogConfig(opts.commitlog ?? { mode: 'periodic', periodMs: 10_000 }),
    // Two cores: upstream's 32/32/32 and per-disk compactors only add contention here.
    concurrent_reads: 8,
    concurrent_writes: 8,
    concurrent_counter_writes: 4,
    concurrent_materialized_view_writes: 2,
    concurrent_compactors: 1,
    authenticator: classOption(opts.authenticator ?? 'AllowAllAuthenticator'),
    authorizer: classOption(opts.authorizer ?? 'AllowAllAuthorizer'),
    role_manager: classOption(opts.roleManager ?? 'CassandraRoleManager'),
  };
  if (opts.clientTls) {
    cfg.client_encryption_options = {
      enabled: true,
      // Not optional: a plaintext CQL connection is refused on the one native port.
      optional: false,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
      keystore: opts.clientTls.keystore,
      truststore: opts.clientTls.truststore,
      require_client_auth: opts.clientTls.requireClientAuth ?? true,
    };
  }
  if (opts.internodeTls) {
    cfg.server_encryption_options = {
      internode_encryption: 'all',
      optional: false,
      legacy_ssl_storage_port_enabled: false,
      ssl_context_factory: { class_name: PEM_SSL_CONTEXT_FACTORY },
      keystore: opts.internodeTls.keystore,
      truststore: opts.internodeTls.truststore,
      require_client_auth: opts.internodeTls.requireClientAuth ?? true,
      require_endpoint_verification: opts.internodeTls.requireEndpointVerification ?? true,
    };
  }
  return { ...cfg, ...(opts.yaml ?? {}) };
}

/** The cassandra.yaml keys of a {@link CommitlogSync} (5.0 names: `commitlog_sync_period`, `commitlog_sync_group_window`). */
export function commitlogConfig(c: CommitlogSync): Record<string, string> {
  const ms = (v: number, field: string): string => {
    if (!Number.isInteger(v) || v < 1 || v > 60_000)
      throw new Error(
        `cassandra: commitlog ${field} must be an integer in [1, 60000] ms, got ${v}`,
      );
    return `${v}ms`;
  };
  switch (c.mode) {
    case 'periodic':
      return { commitlog_sync: 'periodic', commitlog_sync_period: ms(c.periodMs, 'periodMs') };
    case 'batch':
      return { commitlog_sync: 'batch' };
    case 'group':
      return { commitlog_sync: 'group', commitlog_sync_group_window: ms(c.windowMs, 'windowMs') };
  }
}

function classOption(c: CassandraClass): unknown {
  if (typeof c === 'string') {
    if (!/^[A-Za-z_][\w.$]*$/.test(c))
      throw new Error(`cassandra: bad class name ${JSON.stringify(c)}`);
    return c;
  }
  if (!/^[A-Za-z_][\w.$]*$/.test(c.className))
    throw new Error(`cassandra: bad className ${JSON.stringify(c.className)}`);
  return { class_name: c.className, parameters: c.parameters ?? {} };
}

/** Logback config: everything at INFO to stdout, which the harness keeps in `<dir>/log`. */
export const CASSANDRA_LOGBACK = `<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
`;

/**
 * The JVM command line for one node. System properties are the ones `bin/cassandra` and
 * `conf/cassandra-env.sh` set, plus startup shortcuts for a single node, each checked to exist in
 * 5.0's `CassandraRelevantProperties`:
 * - `cassandra.skip_wait_for_gossip_to_settle=0`: no peers to wait for (saves ~8 s);
 * - `cassandra.ring_delay_ms=0`: no ring to learn before joining;
 * - `cassandra.superuser_setup_delay_ms=0`: create the default roles at once, not after 10 s.
 */
export function cassandraArgs(opts: {
  dir: string;
  heapMb: number;
  jmxPort: number;
  classpath: string;
  extra?: readonly string[];
}): string[] {
  const conf = join(opts.dir, 'conf');
  return [
    `-Xms${opts.heapMb}m`,
    `-Xmx${opts.heapMb}m`,
    ...CASSANDRA_JVM_OPTIONS,
    `-Dcassandra.config=file://${join(conf, 'cassandra.yaml')}`,
    `-Dlogback.configurationFile=${join(conf, 'logback.xml')}`,
    `-Dcassandra.storagedir=${join(opts.dir, 'data')}`,
    `-Dcassandra.logdir=${join(opts.dir, 'logs')}`,
    '-Dcassandra-foreground=yes',
    `-Dcassandra.jmx.local.port=${opts.jmxPort}`,
    '-Djava.rmi.server.hostname=127.0.0.1',
    '-Dcassandra.skip_wait_for_gossip_to_settle=0',
    '-Dcassandra.ring_delay_ms=0',
    '-Dcassandra.superuser_setup_delay_ms=0',
    `-XX:HeapDumpPath=${join(opts.dir, 'logs')}`,
    ...(opts.extra ?? []),
    '-cp',
    opts.classpath,
    CASSANDRA_MAIN,
  ];
}

// The driver's runtime base classes; its typings only describe them as interfaces.
const driverAuth = auth as unknown as {
  AuthProvider: new () => object;
  Authenticator: new () => object;
};

/**
 * Answers the SASL exchange of certificate-based authenticators (MutualTlsAuthenticator): the node
 * decides from the TLS client certificate alone, so the token is empty. Without an auth provider the
 * driver refuses any node that asks for authentication.
 */
class CertificateAuthenticator extends driverAuth.Authenticator {
  initialResponse(callback: (err: Error | null, token: Buffer) => void): void {
    callback(null, Buffer.alloc(0));
  }
  evaluateChallenge(
    _challenge: Buffer,
    callback: (err: Error | null, token: Buffer) => void,
  ): void {
    callback(null, Buffer.alloc(0));
  }
  onAuthenticationSuccess(): void {}
}

class CertificateAuthProvider extends driverAuth.AuthProvider {
  newAuthenticator(): CertificateAuthenticator {
    return new CertificateAuthenticator();
  }
}

/** cassandra-driver options for a client of `server` (TLS and login from `creds`). */
export function cassandraClientOptions(
  server: Pick<CassandraServer, 'contactPoint' | 'localDataCenter' | 'tls' | 'host'>,
  creds: CassandraClientCredentials = {},
): ClientOptions {
  const opts: ClientOptions = {
    contactPoints: [server.contactPoint],
    localDataCenter: server.localDataCenter,
    socketOptions: { connectTimeout: 3_000, readTimeout: 10_000 },
  };
  if (server.tls) {
    const certText = creds.cert ? readFileSync(creds.cert, 'utf8') : '';
    const keyText = creds.key ? readFileSync(creds.key, 'utf8') : certText;
    const certs = splitPem(certText).certs;
    const key = splitPem(keyText).keys[0];
    opts.sslOptions = {
      ...(creds.ca ? { ca: [readFileSync(creds.ca, 'utf8')] } : {}),
      ...(certs.length ? { cert: certs.join('') } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: true,
      // The server's certificate carries an IP SAN for the loopback address it listens on.
      host: server.host,
    };
  }
  if (creds.username !== undefined)
    opts.credentials = { username: creds.username, password: creds.password ?? '' };
  else if (server.tls && creds.cert)
    opts.authProvider = new CertificateAuthProvider() as unknown as auth.AuthProvider;
  return opts;
}

/** Why the driver could not connect (the per-host errors of its NoHostAvailableError), or 'connected'. */
export async function cassandraConnectError(opts: ClientOptions): Promise<string> {
  const c = new Client(opts);
  try {
    await c.connect();
    return 'connected';
  } catch (err) {
    const inner = (err as { innerErrors?: Record<string, Error> }).innerErrors ?? {};
    const msgs = Object.values(inner).map((e) => e.message);
    return msgs.length ? msgs.join('; ') : (err as Error).message;
  } finally {
    await c.shutdown();
  }
}

/**
 * Run `nodetool <args>` against the node's local JMX port (e.g. `['status']`) and return its output.
 * Its history file goes under the node's dir, not `~/.cassandra`.
 */
export async function nodetool(
  server: Pick<CassandraServer, 'host' | 'jmxPort' | 'dir'>,
  args: readonly string[],
): Promise<string> {
  const home = await cassandraTool.ensure();
  const java = join(javaHome(CASSANDRA_JAVA.min, CASSANDRA_JAVA.max), 'bin', 'java');
  return run(
    java,
    [
      '-Xmx128m',
      ...CASSANDRA_TOOL_JVM_OPTIONS,
      `-Duser.home=${server.dir}`,
      `-Dlogback.configurationFile=${join(server.dir, 'conf', 'logback.xml')}`,
      '-cp',
      join(home, 'lib', '*'),
      'org.apache.cassandra.tools.NodeTool',
      '-h',
      server.host,
      '-p',
      String(server.jmxPort),
      ...args,
    ],
    { what: `nodetool ${args.join(' ')}`, timeoutMs: 120_000 },
  );
}

/** One CQL query on a fresh connection; resolves the node's release_version. */
export async function probeCassandra(
  server: Pick<CassandraServer, 'contactPoint' | 'localDataCenter' | 'tls' | 'host'>,
  creds?: CassandraClientCredentials,
): Promise<string> {
  const client = new Client(cassandraClientOptions(server, creds));
  try {
    await client.connect();
    const rs = await client.execute('SELECT release_version FROM system.local');
    const v = rs.first()?.get('release_version') as string | undefined;
    if (!v) throw new Error('system.local returned no release_version');
    return v;
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}

/** The loopback address every local node listens on. */
export const CASSANDRA_HOST = '127.0.0.1';

/** The marker that a data dir has been bootstrapped (written last by {@link bootstrapCassandra}). */
export function cassandraBootstrapMarker(dir: string): string {
  return join(dir, 'data', 'trellis-bootstrapped');
}

function needsBootstrap(opts: CassandraOptions): boolean {
  return (opts.bootstrap?.length ?? 0) > 0 || opts.bootstrapSuperuser !== undefined;
}

/** The JVM that runs Cassandra (a JDK 17: see CASSANDRA_JAVA). */
export function cassandraJava(): string {
  return join(javaHome(CASSANDRA_JAVA.min, CASSANDRA_JAVA.max), 'bin', 'java');
}

/** What runs one node: the command, its arguments, and the files (relative to `opts.dir`) it reads. */
export interface CassandraLaunchSpec {
  command: string;
  args: string[];
  /** `conf/cassandra.yaml` and `conf/logback.xml`. */
  files: Record<string, string>;
}

/**
 * The command line and config files of one node on `ports`: what {@link startCassandra} runs, and
 * what a supervised process (the local Pulumi stack's) runs.
 */
export async function cassandraLaunchSpec(
  opts: CassandraOptions,
  ports: CassandraPorts,
): Promise<CassandraLaunchSpec> {
  const heapMb = checkHeap(opts.heapMb ?? 512);
  const home = await cassandraTool.ensure();
  const yaml = cassandraConfig(opts, CASSANDRA_HOST, {
    nativePort: ports.native,
    storagePort: ports.storage,
  });
  return {
    command: cassandraJava(),
    args: cassandraArgs({
      dir: opts.dir,
      heapMb,
      jmxPort: ports.jmx,
      classpath: join(home, 'lib', '*'),
      extra: [
        ...(opts.fsyncSystemTables ? [] : ['-Dcassandra.unsafesystem=true']),
        ...(opts.jvmArgs ?? []),
      ],
    }),
    files: {
      'conf/cassandra.yaml': `# Generated by Trellis (packages/local/src/harness/cassandra.ts); JSON is valid YAML.\n${JSON.stringify(
        yaml,
        null,
        2,
      )}\n`,
      'conf/logback.xml': CASSANDRA_LOGBACK,
    },
  };
}

function checkHeap(heapMb: number): number {
  if (!Number.isInteger(heapMb) || heapMb < 256 || heapMb > 16_384)
    throw new Error(`startCassandra: heapMb must be an integer in [256, 16384], got ${heapMb}`);
  return heapMb;
}

const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** Run statements on a fresh connection; a failure names the statement (or its label, for secrets). */
async function runCql(
  server: Pick<CassandraServer, 'contactPoint' | 'localDataCenter' | 'tls' | 'host'>,
  creds: CassandraClientCredentials,
  statements: readonly (string | { cql: string; label: string })[],
): Promise<void> {
  if (statements.length === 0) return;
  const client = new Client(cassandraClientOptions(server, creds));
  try {
    await client.connect();
    for (const st of statements) {
      const cql = typeof st === 'string' ? st : st.cql;
      try {
        await client.execute(cql);
      } catch (err) {
        const what = typeof st === 'string' ? st : st.label;
        throw new Error(`cassandra bootstrap: ${what}\n  failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}

/**
 * The first start of a data dir, when `opts` asks for a bootstrap: start the node with
 * PasswordAuthenticator, log in as the default superuser (`cassandra`) over the same TLS, run the
 * bootstrap (see {@link CassandraOptions.bootstrapSuperuser} and {@link CassandraOptions.bootstrap}),
 * mark the data dir, and stop. Certificate-only authenticators accept no one before identities exist.
 * Resolves null (and starts nothing) when the data dir is already marked or nothing is asked.
 */
export async function bootstrapCassandra(
  opts: CassandraOptions & { ports: CassandraPorts },
): Promise<{ ms: number } | null> {
  const marker = cassandraBootstrapMarker(opts.dir);
  if (!needsBootstrap(opts) || existsSync(marker)) return null;
  const t0 = Date.now();
  const login = { ...opts.probe, username: 'cassandra', password: 'cassandra' };
  const first = await launch({
    ...opts,
    authenticator: 'PasswordAuthenticator',
    authorizer: opts.authorizer ?? 'CassandraAuthorizer',
    probe: login,
  });
  try {
    let creds: CassandraClientCredentials = login;
    const su = opts.bootstrapSuperuser;
    if (su) {
      // A throwaway password: it logs this bootstrap in once and is never stored or printed. Set by
      // ALTER (once: Cassandra 5 refuses a second change within 5 s), so that a bootstrap interrupted
      // after the CREATE can run again.
      const password = randomBytes(24).toString('base64url');
      await runCql(first, login, [
        `CREATE ROLE IF NOT EXISTS ${quote(su.role)} WITH SUPERUSER = true AND LOGIN = true`,
        {
          cql: `ALTER ROLE ${quote(su.role)} WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = ${quote(password)}`,
          label: `ALTER ROLE ${quote(su.role)} WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = <hidden>`,
        },
        `ADD IDENTITY IF NOT EXISTS ${quote(su.identity)} TO ROLE ${quote(su.role)}`,
      ]);
      creds = { ...opts.probe, username: su.role, password };
    }
    await runCql(first, creds, opts.bootstrap ?? []);
    // A role cannot drop the role it is logged in as, hence the new superuser's login above.
    if (su) await runCql(first, creds, ["DROP ROLE IF EXISTS 'cassandra'"]);
    writeFileSync(marker, `${new Date().toISOString()}\n`);
  } finally {
    await first.stop();
  }
  return { ms: Date.now() - t0 };
}

/**
 * Start one Cassandra node on loopback (free ports unless `opts.ports`), with its own data and logs
 * under `opts.dir`, and wait until a real CQL query answers. Fails fast with the log tail if the
 * process dies first. Runs {@link bootstrapCassandra} first when asked.
 */
export async function startCassandra(opts: CassandraOptions): Promise<CassandraServer> {
  checkHeap(opts.heapMb ?? 512);
  if (opts.clientTls && (opts.clientTls.requireClientAuth ?? true) && !opts.probe?.cert)
    throw new Error(
      'startCassandra: clientTls requires client certificates, so probe.cert must be given',
    );
  await cassandraTool.ensure();
  const ports: CassandraPorts = opts.ports ?? {
    native: await freePort(CASSANDRA_HOST),
    storage: await freePort(CASSANDRA_HOST),
    jmx: await freePort(CASSANDRA_HOST),
  };
  const t0 = Date.now();
  const boot = await bootstrapCassandra({ ...opts, ports });
  const server = await launch({ ...opts, ports });
  if (boot) {
    server.restartMs = server.startupMs;
    server.startupMs = Date.now() - t0;
  }
  return server;
}

async function launch(
  opts: CassandraOptions & { ports: CassandraPorts },
): Promise<CassandraServer> {
  const host = CASSANDRA_HOST;
  const { ports } = opts;
  const spec = await cassandraLaunchSpec(opts, ports);
  for (const d of [join(opts.dir, 'conf'), join(opts.dir, 'data'), join(opts.dir, 'logs')])
    mkdirSync(d, { recursive: true });
  for (const [rel, text] of Object.entries(spec.files)) writeFileSync(join(opts.dir, rel), text);
  const started = Date.now();
  const proc = ManagedProcess.start({
    name: 'cassandra',
    command: spec.command,
    args: spec.args,
    dir: opts.dir,
    stopGraceMs: 20_000,
  });
  const server: CassandraServer = {
    host,
    nativePort: ports.native,
    storagePort: ports.storage,
    jmxPort: ports.jmx,
    contactPoint: `${host}:${ports.native}`,
    localDataCenter: LOCAL_DATACENTER,
    tls: opts.clientTls !== undefined,
    version: CASSANDRA_VERSION,
    startupMs: 0,
    dir: opts.dir,
    logFile: proc.logFile,
    process: proc,
    stop: () => proc.stop(),
  };
  try {
    server.version = await waitUntil(() => probeCassandra(server, opts.probe), {
      what: `Cassandra CQL on ${server.contactPoint}`,
      timeoutMs: opts.startupTimeoutMs ?? 240_000,
      intervalMs: 1_000,
      proc,
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  server.startupMs = Date.now() - started;
  return server;
}
