import cassandra from 'cassandra-driver';
import type { FastifyBaseLogger } from 'fastify';
import type { Dependency } from './dependency.ts';
import { splitHostPort } from './env.ts';
import type { CONSISTENCY_LEVELS } from './env-schema.ts';
import { TlsMaterial, type TlsFiles } from './tls.ts';

const { Client, auth, policies, types } = cassandra;

/** A consistency level a service may choose; see {@link CassandraOptions.consistency}. */
export type ConsistencyName = (typeof CONSISTENCY_LEVELS)[number];

/** How to reach Cassandra: directly with mTLS, or through the sidecar's plaintext egress port. */
export interface CassandraOptions {
  /** `host:port` contact points. */
  contactPoints: string[];
  /** The local datacenter name, as the nodes report it (`datacenter1` for a default node). */
  localDataCenter: string;
  /**
   * Consistency for reads and writes. LOCAL_QUORUM is right in every environment: with RF 3 it
   * gives read-your-writes inside the region, and on a single local node (RF 1) a quorum is that one
   * node, so it costs the same as ONE there while keeping the code identical to production.
   * @default 'LOCAL_QUORUM'
   */
  consistency?: ConsistencyName;
  /** Client TLS (direct mTLS with the workload certificate). Omit when a sidecar originates TLS. */
  tls?: TlsFiles;
  /**
   * Send every connection to this fixed `host:port` whatever address a node advertises. For a local
   * proxy (the sidecar's egress listener): without it the driver would learn the node's real
   * `rpc_address` from `system.peers` and bypass the proxy. Only meaningful for one node per proxy.
   */
  translateTo?: string;
  /** Connect timeout per socket. @default 5000 */
  connectTimeoutMs?: number;
}

/**
 * The port the driver gives the nodes it learns from `system.peers`: the contact points' own. The
 * driver (4.10) reads `rpc_address` from `system.peers`, without a port, and keys each peer at
 * `protocolOptions.port`, 9042 unless set. A cluster on another native port would leave every node
 * but the control connection's unreachable, and a query would fail on all hosts when that one node
 * went down (measured on a 3-node cluster, ADR 0028). Contact points on different ports are refused by
 * the config (`CASSANDRA_CONTACT_POINTS`); the first one's port is used.
 */
export function peerNativePort(contactPoints: readonly string[]): number {
  const first = contactPoints[0];
  return first === undefined ? 9042 : splitHostPort(first).port;
}

/** A Cassandra session with readiness, as a {@link Dependency}. */
export class CassandraDependency implements Dependency {
  readonly name = 'cassandra';
  readonly client: cassandra.Client;
  private readonly log: FastifyBaseLogger;
  private readonly onConnect: ((client: cassandra.Client) => Promise<void>) | undefined;
  private readonly tls: TlsMaterial | undefined;
  private rotation: NodeJS.Timeout | undefined;
  private connected = false;

  /** `onConnect` runs after each successful connect (e.g. table migrations) and must succeed too. */
  constructor(
    opts: CassandraOptions,
    log: FastifyBaseLogger,
    onConnect?: (client: cassandra.Client) => Promise<void>,
  ) {
    this.log = log;
    this.onConnect = onConnect;
    this.tls = opts.tls ? new TlsMaterial(opts.tls) : undefined;
    const clientOptions: cassandra.ClientOptions = {
      contactPoints: opts.contactPoints,
      localDataCenter: opts.localDataCenter,
      protocolOptions: { port: peerNativePort(opts.contactPoints) },
      queryOptions: {
        consistency: types.consistencies[toConsistencyKey(opts.consistency ?? 'LOCAL_QUORUM')],
        prepare: true,
      },
      socketOptions: { connectTimeout: opts.connectTimeoutMs ?? 5_000, readTimeout: 12_000 },
      policies: {
        reconnection: new policies.reconnection.ExponentialReconnectionPolicy(250, 5_000, false),
      },
    };
    if (this.tls) clientOptions.sslOptions = this.tls.current();
    // Always: directly (our certificate) or via the sidecar (its SVID), the node authenticates the
    // TLS client certificate and still runs the SASL exchange, which the driver refuses without a
    // provider. Nodes that ask for nothing never call it.
    clientOptions.authProvider =
      new CertificateAuthProvider() as unknown as cassandra.auth.AuthProvider;
    if (opts.translateTo) {
      clientOptions.policies = {
        ...clientOptions.policies,
        addressResolution: new FixedAddressTranslator(opts.translateTo),
      };
    }
    this.client = new Client(clientOptions);
  }

  async connect(): Promise<void> {
    await this.client.connect();
    if (this.onConnect) await this.onConnect(this.client);
    this.connected = true;
    if (this.tls && !this.rotation) {
      const tls = this.tls;
      this.rotation = setInterval(() => this.reloadTls(tls), 30_000);
      this.rotation.unref();
    }
  }

  ready(): boolean {
    return this.connected && this.client.getState().getConnectedHosts().length > 0;
  }

  async close(): Promise<void> {
    clearInterval(this.rotation);
    this.connected = false;
    await this.client.shutdown();
  }

  /**
   * New connections must present the rotated workload certificate. The driver copies `sslOptions`
   * once into its options object and reads that copy for every new socket, so update the copy.
   */
  private reloadTls(tls: TlsMaterial): void {
    try {
      if (!tls.changed()) return;
      const live = (this.client as unknown as { options?: { sslOptions?: object } }).options;
      if (live?.sslOptions) {
        Object.assign(live.sslOptions, tls.current());
        this.log.info(
          { dependency: this.name },
          'reloaded rotated TLS certificate for new connections',
        );
      }
    } catch (err) {
      this.log.warn({ dependency: this.name, err: err as Error }, 'could not reload TLS files');
    }
  }
}

/**
 * Apply a service's table DDL (its `ddl` export), statement by statement. Idempotent when the
 * statements are (`CREATE TABLE IF NOT EXISTS`); fails clearly when the keyspace does not exist yet.
 */
export async function migrate(
  client: cassandra.Client,
  statements: readonly string[],
): Promise<void> {
  for (const cql of statements) await client.execute(cql);
}

function toConsistencyKey(c: ConsistencyName): 'localQuorum' | 'localOne' | 'one' | 'quorum' {
  const map = {
    LOCAL_QUORUM: 'localQuorum',
    LOCAL_ONE: 'localOne',
    ONE: 'one',
    QUORUM: 'quorum',
  } as const;
  return map[c];
}

// The driver's runtime base classes; its typings describe them as interfaces only, but it checks
// `instanceof` at runtime, so implementations must extend these.
const runtime = {
  AddressTranslator: (
    policies.addressResolution as unknown as {
      AddressTranslator: new () => cassandra.policies.addressResolution.AddressTranslator;
    }
  ).AddressTranslator,
  AuthProvider: (auth as unknown as { AuthProvider: new () => object }).AuthProvider,
  Authenticator: (auth as unknown as { Authenticator: new () => object }).Authenticator,
};

/**
 * Authentication by TLS client certificate (Cassandra 5's MutualTlsAuthenticator): the node takes
 * the identity from the certificate, so the SASL response carries nothing.
 */
class CertificateAuthenticator extends runtime.Authenticator {
  initialResponse(callback: (err: Error | null, token: Buffer) => void): void {
    callback(null, Buffer.alloc(0));
  }

  evaluateChallenge(
    _challenge: Buffer,
    callback: (err: Error | null, token: Buffer) => void,
  ): void {
    callback(null, Buffer.alloc(0));
  }

  onAuthenticationSuccess(): void {
    // Nothing to keep: there is no session token.
  }
}

/** Hands out a {@link CertificateAuthenticator} per connection. */
export class CertificateAuthProvider extends runtime.AuthProvider {
  newAuthenticator(): CertificateAuthenticator {
    return new CertificateAuthenticator();
  }
}

/**
 * cassandra-driver AddressTranslator (policies.addressResolution) that maps every node address to
 * one fixed endpoint, so a driver behind a local TCP proxy keeps using the proxy port.
 */
export class FixedAddressTranslator extends runtime.AddressTranslator {
  private readonly endpoint: string;

  constructor(hostPort: string) {
    super();
    const { host, port } = splitHostPort(hostPort);
    this.endpoint = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  override translate(_address: string, _port: number, callback: (endpoint: string) => void): void {
    callback(this.endpoint);
  }
}
