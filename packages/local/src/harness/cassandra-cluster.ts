/**
 * A local Cassandra cluster: up to three nodes of one datacenter on 127.0.0.1, 127.0.0.2 and
 * 127.0.0.3, sharing one storage port, with gossip and streaming over mutual TLS only and peers
 * restricted to the node identities (docs/adr/0028-cassandra-cluster.md). Each node is a
 * {@link startCassandra} node: same config rendering, launch spec and first-start bootstrap. The
 * nodes may instead each run in a pod of their own, at the pod's address (cassandra-pod-cluster.ts).
 */
import { Client, type ClientOptions } from 'cassandra-driver';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  cassandraClientOptions,
  nodetool,
  type CassandraClientCredentials,
  type CassandraServer,
} from './cassandra-client.ts';
import type {
  CassandraClass,
  CassandraOptions,
  CassandraPorts,
  CassandraTlsFiles,
} from './cassandra-config.ts';
import { CASSANDRA_HOST, LOCAL_DATACENTER, startCassandra } from './cassandra.ts';
import type { PodLaunch } from '../pods/launch.ts';
import { freePort } from './ports.ts';
import { writePemFiles, type CertificateAuthority } from './tls.ts';
import { waitUntil } from './wait.ts';

/** The loopback addresses of the nodes, in start order; the first is the seed. */
export const CASSANDRA_CLUSTER_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3'] as const;

/** Cassandra 5.0's certificate-identity classes (org.apache.cassandra.auth). */
export const MUTUAL_TLS_INTERNODE_AUTHENTICATOR =
  'org.apache.cassandra.auth.MutualTlsInternodeAuthenticator';
export const MUTUAL_TLS_AUTHENTICATOR = 'org.apache.cassandra.auth.MutualTlsAuthenticator';
export const SPIFFE_CERTIFICATE_VALIDATOR = 'org.apache.cassandra.auth.SpiffeCertificateValidator';

/** One node of a cluster: its key material and the SPIFFE ID its certificate carries. */
export interface CassandraClusterNode {
  /**
   * PEM keystore (key + chain) and truststore. The certificate carries the node's loopback address
   * as an IP SAN (peers verify it: `require_endpoint_verification`) and {@link identity} as its URI
   * SAN. It serves both the storage port and the native transport.
   */
  tls: CassandraTlsFiles;
  /** The node's SPIFFE ID: only these identities may open an internode connection. */
  identity: string;
  /**
   * The node's address: its pod's with {@link pod}. @default the node's entry of
   * {@link CASSANDRA_CLUSTER_ADDRESSES}
   */
  address?: string;
  /**
   * Run the node in this pod, as its user (ADR 0012), on {@link POD_CASSANDRA_PORTS}; then
   * {@link address} must be the pod's address, and every node of the cluster must have a pod.
   * @default on the host's loopback
   */
  pod?: PodLaunch;
}

/**
 * A pod node's ports: its network namespace is its own, so fixed ones are free (and the host cannot
 * bind-test a pod's address). One native port for every node, as the driver keys peers at one port.
 */
export const POD_CASSANDRA_PORTS: CassandraPorts = { native: 9042, storage: 7000, jmx: 7199 };

/**
 * Issue and write (under `dir`) the key material of `count` nodes from `ca`: each certificate names
 * its node's address (IP SAN) and `identity` (URI SAN), for server and client use (a node both
 * accepts and dials peers). One identity for all nodes, as pods of one service account have in
 * Kubernetes; the services check that one ID on the native transport. `count` may instead list the
 * nodes' addresses (their pods'): each entry then carries its `address`.
 */
export async function issueCassandraClusterTls(
  ca: CertificateAuthority,
  dir: string,
  identity: string,
  count: number | readonly string[] = CASSANDRA_CLUSTER_ADDRESSES.length,
): Promise<CassandraClusterNode[]> {
  const given = typeof count === 'number' ? undefined : count;
  const n = typeof count === 'number' ? count : count.length;
  const out: CassandraClusterNode[] = [];
  for (let i = 0; i < n; i++) {
    const address = given ? given[i] : CASSANDRA_CLUSTER_ADDRESSES[i];
    if (!address) throw new Error(`issueCassandraClusterTls: count must be at most 3, got ${n}`);
    const files = writePemFiles(
      dir,
      `cassandra-${i + 1}`,
      await ca.issue({ commonName: `cassandra-${i + 1}`, ips: [address], uris: [identity] }),
      ca.rootPem,
    );
    out.push({
      identity,
      tls: { keystore: files.keystore, truststore: files.truststore },
      ...(given ? { address } : {}),
    });
  }
  return out;
}

/** Options of {@link startCassandraCluster}. */
export interface CassandraClusterOptions {
  /** The cluster's directory: one `node<N>/` below it per node. */
  dir: string;
  /** Two or three nodes, in start order (the first is the seed, at 127.0.0.1 or its pod's address). */
  nodes: readonly CassandraClusterNode[];
  /**
   * The superuser role created by the seed's first-start bootstrap and mapped to this identity
   * (ADR 0005); the cluster-wide statements run as it.
   */
  bootstrapSuperuser: { role: string; identity: string };
  /** The superuser identity's client certificate: readiness probes and cluster-wide statements. */
  admin: CassandraClientCredentials;
  /** CQL run once by the seed's bootstrap, before the other nodes join (roles, `ADD IDENTITY`). */
  bootstrap?: readonly string[];
  /**
   * @default MutualTlsAuthenticator with SpiffeCertificateValidator (client certificates, ADR 0008)
   */
  authenticator?: CassandraClass;
  /** @default 'CassandraAuthorizer' */
  authorizer?: CassandraClass;
  /** Heap per node in MiB. @default 512 */
  heapMb?: number;
  /**
   * `cassandra.ring_delay_ms` of the non-seed nodes: how long a node's first gossip round may take
   * (over mTLS, on a loaded machine) and how long a joining node waits for the ring before it streams.
   * @default 8_000 (upstream: 30_000)
   */
  joinRingDelayMs?: number;
  /** Per node. @default 240_000 */
  startupTimeoutMs?: number;
}

/** A running cluster, and what a test does to it. */
export interface CassandraCluster {
  /** The nodes in start order (an entry is replaced by {@link restart}). */
  nodes: CassandraServer[];
  /** Every node's `host:port` (one native port, each node at its own address). */
  contactPoints: string[];
  localDataCenter: string;
  /** Milliseconds from the first spawn until every node is UN and system_auth is replicated. */
  startupMs: number;
  /** Per node, from its spawn to its first CQL answer (the seed's includes its bootstrap start). */
  nodeStartupMs: number[];
  /** Driver options for a client of the whole cluster (every node a contact point). */
  clientOptions(creds: CassandraClientCredentials): ClientOptions;
  /** `nodetool <args>` against node `i`'s local JMX port. */
  nodetool(i: number, args: readonly string[]): Promise<string>;
  /** `nodetool status` of node `i`, as address → state (`UN`, `DN`, `UJ`…). */
  status(i: number): Promise<Map<string, string>>;
  /** kill -9 node `i`'s process group (a crash: no drain, no flush); resolves once it has exited. */
  kill(i: number): Promise<void>;
  /** Start node `i` again on its data dir and ports; resolves when it answers CQL. */
  restart(i: number): Promise<CassandraServer>;
  /** Stop every node (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
}

/** The replication of the app keyspaces and system_auth on a cluster of `n` nodes (RF n, one DC). */
export function clusterReplication(n: number): string {
  return `{'class': 'NetworkTopologyStrategy', '${LOCAL_DATACENTER}': ${n}}`;
}

/** `n` evenly spaced Murmur3 tokens starting at 0 (the single node's token), as decimal strings. */
export function evenTokens(n: number): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new Error(`evenTokens: n must be an integer in [1, 256], got ${n}`);
  const span = 2n ** 64n;
  return Array.from({ length: n }, (_, i) => {
    const t = (BigInt(i) * span) / BigInt(n);
    return String(t >= 2n ** 63n ? t - span : t);
  });
}

/** Parse `nodetool status`: each node line's address and its two-letter state (`UN`, `DN`, `UJ`…). */
export function parseNodetoolStatus(out: string): Map<string, string> {
  const states = new Map<string, string>();
  for (const m of out.matchAll(/^([UD][NLJM])\s+(\d+\.\d+\.\d+\.\d+)\s/gm))
    states.set(m[2] ?? '', m[1] ?? '');
  return states;
}

/** A TCP port free on every one of `hosts` (the storage and native ports nodes share). */
async function portFreeOnAll(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort(hosts[0]);
    const free = await Promise.all(hosts.slice(1).map((h) => canBind(h, port)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`could not find a port free on all of ${hosts.join(', ')}`);
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function check(opts: CassandraClusterOptions): void {
  const n = opts.nodes.length;
  if (n < 2 || n > CASSANDRA_CLUSTER_ADDRESSES.length)
    throw new Error(
      `startCassandraCluster: nodes must list 2 to ${CASSANDRA_CLUSTER_ADDRESSES.length} nodes, got ${n}`,
    );
  opts.nodes.forEach((node, i) => {
    if (!node.identity.startsWith('spiffe://'))
      throw new Error(
        `startCassandraCluster: nodes[${i}].identity must be a SPIFFE ID (spiffe://…), got ${JSON.stringify(node.identity)}`,
      );
    if (node.identity.includes(','))
      throw new Error(`startCassandraCluster: nodes[${i}].identity must not contain a comma`);
    if (node.tls.requireClientAuth === false)
      throw new Error(
        `startCassandraCluster: nodes[${i}].tls.requireClientAuth must stay true (the internode authenticator reads the peer's certificate)`,
      );
  });
  const pods = opts.nodes.filter((node) => node.pod !== undefined).length;
  if (pods !== 0 && pods !== n)
    throw new Error(
      `startCassandraCluster: either every node runs in a pod or none does, got ${pods} of ${n}`,
    );
  opts.nodes.forEach((node, i) => {
    if (node.pod && node.address === undefined)
      throw new Error(`startCassandraCluster: nodes[${i}].address must be its pod's address`);
  });
  if (!opts.admin.cert)
    throw new Error(
      'startCassandraCluster: admin.cert must be given (client certificates are required)',
    );
}

/**
 * Start a cluster one node after another (a joining node streams its ranges; Cassandra lets only one
 * node bootstrap at a time): the seed first, with the first-start bootstrap of roles and identities
 * (ADR 0005), then each other node, which joins over mTLS and streams. Then system_auth gets RF n
 * (NetworkTopologyStrategy) and a full repair, so logins survive the loss of a node. Any failure
 * stops what was started.
 */
export async function startCassandraCluster(
  opts: CassandraClusterOptions,
): Promise<CassandraCluster> {
  check(opts);
  const n = opts.nodes.length;
  const inPods = opts.nodes.some((node) => node.pod !== undefined);
  const addresses = opts.nodes.map(
    (node, i) => node.address ?? CASSANDRA_CLUSTER_ADDRESSES[i] ?? '',
  );
  // Cassandra has one storage_port for the whole cluster; the native port is shared too, so a
  // client's contact points differ only by address.
  const storage = inPods ? POD_CASSANDRA_PORTS.storage : await portFreeOnAll(addresses);
  const native = inPods ? POD_CASSANDRA_PORTS.native : await portFreeOnAll(addresses);
  // Local JMX binds the loopback address (127.0.0.1, a pod's own in a pod): one port per node.
  const jmx: number[] = [];
  for (let i = 0; i < n; i++)
    jmx.push(inPods ? POD_CASSANDRA_PORTS.jmx : await freePort(CASSANDRA_HOST));
  const tokens = evenTokens(n);
  const trusted = [...new Set(opts.nodes.map((x) => x.identity))].join(',');

  const nodeOptions = (i: number): CassandraOptions => {
    const node = opts.nodes[i];
    if (!node) throw new Error(`cassandra cluster: no node ${i}`);
    const ports: CassandraPorts = { native, storage, jmx: jmx[i] ?? 0 };
    const dir = join(opts.dir, `node${i + 1}`);
    // A pod's JVM keeps its temporary files (JNA's native library) in its own dir, not /tmp.
    const podArgs = node.pod
      ? [`-Djava.io.tmpdir=${join(dir, 'tmp')}`, `-Djna.tmpdir=${join(dir, 'tmp')}`]
      : [];
    return {
      dir,
      heapMb: opts.heapMb ?? 512,
      // Schema changes go through the commit log: with `cassandra.unsafesystem` a node killed with
      // -9 came back without a keyspace created before the kill (measured, 2026-12-07).
      fsyncSystemTables: true,
      address: addresses[i],
      seeds: [addresses[0] ?? CASSANDRA_HOST],
      initialToken: tokens[i] ?? '0',
      ports,
      clientTls: node.tls,
      // No endpoint verification: Cassandra applies it to inbound connections too, where a peer's
      // source address is 127.0.0.1 whatever its listen address, and Netty's OpenSSL engine refuses
      // it on the server side ("Endpoint Identification Algorithm HTTPS is not supported on the
      // server side"). Peers are identified by their SPIFFE ID instead (the authenticator below).
      internodeTls: { ...node.tls, requireClientAuth: true, requireEndpointVerification: false },
      internodeAuthenticator: {
        className: MUTUAL_TLS_INTERNODE_AUTHENTICATOR,
        parameters: {
          validator_class_name: SPIFFE_CERTIFICATE_VALIDATOR,
          trusted_peer_identities: trusted,
        },
      },
      authenticator: opts.authenticator ?? {
        className: MUTUAL_TLS_AUTHENTICATOR,
        parameters: { validator_class_name: SPIFFE_CERTIFICATE_VALIDATOR },
      },
      authorizer: opts.authorizer ?? 'CassandraAuthorizer',
      probe: opts.admin,
      startupTimeoutMs: opts.startupTimeoutMs ?? 240_000,
      // A non-seed gives up on its first gossip round ("Unable to gossip with any peers") after the
      // ring delay, and sleeps that long before it bootstraps, so it cannot keep the single node's 0.
      ...(i === 0 && !node.pod
        ? {}
        : {
            jvmArgs: [
              ...podArgs,
              ...(i === 0 ? [] : [`-Dcassandra.ring_delay_ms=${opts.joinRingDelayMs ?? 8_000}`]),
            ],
          }),
      ...(node.pod ? { pod: node.pod } : {}),
      // Only the seed runs the bootstrap; the others join its cluster and stream what they own.
      ...(i === 0
        ? { bootstrapSuperuser: opts.bootstrapSuperuser, bootstrap: opts.bootstrap ?? [] }
        : {}),
    };
  };

  const nodes: CassandraServer[] = [];
  const nodeStartupMs: number[] = [];
  const contactPoints = addresses.map((a) => `${a}:${native}`);
  const endpoint = {
    contactPoint: contactPoints[0] ?? '',
    contactPoints,
    host: CASSANDRA_HOST,
    localDataCenter: LOCAL_DATACENTER,
    tls: true,
  };
  const node = (i: number): CassandraServer => {
    const s = nodes[i];
    if (!s) throw new Error(`cassandra cluster: node ${i} is not running`);
    return s;
  };
  // JMX listens on 127.0.0.1 whatever the node's address (a pod's own loopback: nodetool runs there).
  const tool = (i: number, args: readonly string[]): Promise<string> => {
    const pod = opts.nodes[i]?.pod;
    return nodetool({ ...node(i), host: CASSANDRA_HOST }, args, pod ? { pod } : {});
  };
  const status = async (i: number): Promise<Map<string, string>> =>
    parseNodetoolStatus(await tool(i, ['status']));

  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((s) => s.stop()));
  };
  const t0 = Date.now();
  try {
    for (let i = 0; i < n; i++) {
      const s = await startCassandra(nodeOptions(i));
      nodes.push(s);
      nodeStartupMs.push(s.startupMs);
    }
    await waitUntil(
      async () => {
        const st = await status(0);
        return addresses.every((a) => st.get(a) === 'UN');
      },
      { what: `${n} Cassandra nodes UN`, timeoutMs: 120_000, intervalMs: 2_000 },
    );
    // The seed's bootstrap wrote roles and identities into system_auth at RF 1: replicate them to
    // every node, so that logins (read at LOCAL_QUORUM) survive the loss of one.
    const admin = new Client(cassandraClientOptions(endpoint, opts.admin));
    try {
      await admin.connect();
      await admin.execute(`ALTER KEYSPACE system_auth WITH replication = ${clusterReplication(n)}`);
    } finally {
      await admin.shutdown().catch(() => undefined);
    }
    await tool(0, ['repair', '-full', 'system_auth']);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    nodes,
    contactPoints,
    localDataCenter: LOCAL_DATACENTER,
    startupMs: Date.now() - t0,
    nodeStartupMs,
    clientOptions: (creds) => cassandraClientOptions(endpoint, creds),
    nodetool: tool,
    status,
    kill: async (i) => {
      const proc = node(i).process;
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await waitUntil(async () => !proc.running, {
        what: `node ${i + 1} to exit after SIGKILL`,
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      await proc.stop();
    },
    restart: async (i) => {
      const s = await startCassandra(nodeOptions(i));
      nodes[i] = s;
      return s;
    },
    stop,
  };
}
