/**
 * Clients of a local Cassandra node: driver options (TLS, login or certificate authentication), the
 * readiness probe, connect errors, and nodetool over the node's local JMX port.
 */
import { auth, Client, type ClientOptions } from 'cassandra-driver';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podCommand, type PodLaunch } from '../pods/launch.ts';
import { run } from '../toolchain/exec.ts';
import {
  CASSANDRA_JAVA,
  CASSANDRA_TOOL_JVM_OPTIONS,
  cassandra as cassandraTool,
} from '../toolchain/cassandra.ts';
import { javaHome } from '../toolchain/java.ts';
import type { ManagedProcess } from './process.ts';
import { splitPem } from './tls.ts';

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

/**
 * What a client needs to reach a node, or a cluster: with `contactPoints` (every node's
 * `host:port`), the client dials each node at its own address and checks that node's certificate
 * against that address.
 */
export type CassandraEndpoint = Pick<
  CassandraServer,
  'contactPoint' | 'localDataCenter' | 'tls' | 'host'
> & { contactPoints?: readonly string[] };

/** cassandra-driver options for a client of `server` (TLS and login from `creds`). */
export function cassandraClientOptions(
  server: CassandraEndpoint,
  creds: CassandraClientCredentials = {},
): ClientOptions {
  const cluster = server.contactPoints !== undefined;
  const contactPoints = cluster ? [...(server.contactPoints ?? [])] : [server.contactPoint];
  const opts: ClientOptions = {
    contactPoints,
    localDataCenter: server.localDataCenter,
    // The driver keys every node it learns from system.peers (an address, no port) at this port,
    // 9042 unless set: the harness's nodes share one free native port (ADR 0028).
    protocolOptions: { port: Number(contactPoints[0]?.split(':').pop() ?? 9042) },
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
      // The server's certificate carries an IP SAN for the loopback address it listens on. Not for a
      // cluster: Node's tls.connect dials `host` when the options carry one, so every node would be
      // dialled at this one address; without it, each is dialled and checked at its own.
      ...(cluster ? {} : { host: server.host }),
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
 * Its history file goes under the node's dir, not `~/.cassandra`. With `pod`, it runs inside that
 * pod as its user (the only place a pod's JMX is reachable from).
 */
export async function nodetool(
  server: Pick<CassandraServer, 'host' | 'jmxPort' | 'dir'>,
  args: readonly string[],
  opts: { pod?: PodLaunch } = {},
): Promise<string> {
  const argv = await nodetoolArgv(server, args);
  // A node in a pod has its JMX on the pod's own loopback: nodetool must run there, as its user.
  const cmd = opts.pod ? podCommand(opts.pod, argv.command, argv.args) : argv;
  return run(cmd.command, cmd.args, {
    what: `nodetool ${args.join(' ')}`,
    timeoutMs: 120_000,
  });
}

/**
 * The command line of {@link nodetool} without running it: for a caller that runs it elsewhere
 * (inside a pod, as the pod's user, through the pod launcher).
 */
export async function nodetoolArgv(
  server: Pick<CassandraServer, 'host' | 'jmxPort' | 'dir'>,
  args: readonly string[],
): Promise<{ command: string; args: string[] }> {
  const home = await cassandraTool.ensure();
  const java = join(javaHome(CASSANDRA_JAVA.min, CASSANDRA_JAVA.max), 'bin', 'java');
  return {
    command: java,
    args: [
      '-Xmx128m',
      ...CASSANDRA_TOOL_JVM_OPTIONS,
      // No hsperfdata file in the shared /tmp: a caller may run this argv in a pod as its user (the
      // e2e bypass table does), and that user's file would outlive the user.
      '-XX:+PerfDisableSharedMem',
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
  };
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
