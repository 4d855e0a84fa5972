/**
 * A {@link startCassandraCluster} cluster whose nodes each run in a pod of their own (a network
 * namespace this code creates and a user, ADR 0012), on the pods' bridge, with a test CA, node
 * certificates (the one node SPIFFE ID and the pod's address) and client certificates. Made for
 * faults that need a network: taking a node's link down inside its namespace cuts it off from its
 * peers and its clients while its process keeps running (pod-cut.ts). Needs root, like every pod.
 */
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import type { CassandraClientCredentials } from './cassandra-client.ts';
import {
  issueCassandraClusterTls,
  startCassandraCluster,
  type CassandraCluster,
} from './cassandra-cluster.ts';
import { createNodePods, type NodeCut } from './pod-cut.ts';
import { CertificateAuthority, issueClientCerts, type PemFiles } from './tls.ts';
import type { PodStack } from '../pods/index.ts';
import { cacheRoot } from '../toolchain/index.ts';

/** Options of {@link startPodCassandraCluster}. */
export interface PodCassandraClusterOptions {
  /** The pods' stack name: names their namespaces, users and bridge; a run's leftovers are removed first. */
  stack: string;
  /** Picks the pods’ /24 (`stackSubnet` in ../pods/names.ts); distinct per concurrently running stack. */
  subnetBasePort: number;
  /** SPIFFE trust domain of the node and client certificates, e.g. `spiffe://trellis.test`. */
  trustDomain: string;
  /**
   * Client certificates to issue besides `admin`: name → SPIFFE ID. Their roles and identities are
   * for `bootstrap` to create.
   */
  clients: Record<string, string>;
  /** CQL run once by the seed's first-start bootstrap, as the superuser (roles, `ADD IDENTITY`). */
  bootstrap?: readonly string[];
  /** Heap per node in MiB. @default 512 */
  heapMb?: number;
}

/** A running {@link startPodCassandraCluster} cluster and what a test needs to reach and cut it. */
export interface PodCassandraCluster {
  /** The cluster: its methods number nodes from 0 (`nodes[i - 1]` is node `i` below). */
  cluster: CassandraCluster;
  pods: PodStack;
  /** The nodes' one SPIFFE ID (`<trust domain>/ns/data/sa/cassandra`). */
  nodeId: string;
  /** The superuser's SPIFFE ID, whose certificate is the client `admin`. */
  adminId: string;
  /** A client's key material, by the name given in `clients`, or `admin`. */
  clientCert(name: string): PemFiles;
  /** A client's driver credentials (certificate, key, CA), by name. */
  credentials(name: string): CassandraClientCredentials;
  /** Node `i`'s pod address (nodes 1..3, in pods `cassandra-1..3`). */
  address(i: number): string;
  /** Node `i`'s pod: its network namespace and its user's uid. */
  pod(i: number): { netns: string; uid: number };
  /** `ip -n <node's namespace> link set eth0 up|down`: the cable between the pod and the bridge. */
  link(i: number, state: 'up' | 'down'): void;
  /**
   * Cut node `i` off now and heal it after `ms` on a timer of its own, so a call hanging on the cut
   * node cannot stretch the cut; `heal()` heals at once (call it in a `finally`), and only once.
   */
  cut(i: number, ms: number): NodeCut;
  /** A scratch directory of the cluster (node dirs under `cluster/`), removed by `stop`. */
  dir: string;
  /** Every link up, the nodes stopped, the pods and files removed; never throws. */
  stop(): Promise<void>;
}

/** A 3-node Cassandra cluster, each node in a pod; see the module comment. */
export async function startPodCassandraCluster(
  opts: PodCassandraClusterOptions,
): Promise<PodCassandraCluster> {
  const ids = [1, 2, 3];
  const nodePods = await createNodePods('cassandra', opts);
  const { pods, dir, podOf, link } = nodePods;
  let cluster: CassandraCluster | undefined;
  const stop = (): Promise<void> => nodePods.stop(() => cluster?.stop() ?? Promise.resolve());
  try {
    const nodeId = `${opts.trustDomain}/ns/data/sa/cassandra`;
    const adminId = `${opts.trustDomain}/ns/platform/sa/platform-admin`;
    const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
    const nodes = await issueCassandraClusterTls(
      ca,
      join(dir, 'tls-nodes'),
      nodeId,
      ids.map((i) => podOf(i).address),
    );
    // What a node reads (its keystore is private, mode 0600) belongs to its pod user.
    nodes.forEach((node, k) => {
      const { uid, gid } = podOf(k + 1).launch;
      for (const f of [node.tls.keystore, node.tls.truststore]) chownSync(f, uid, gid);
    });
    const cert = await issueClientCerts(ca, join(dir, 'tls'), { admin: adminId, ...opts.clients });
    const credentials = (name: string): CassandraClientCredentials => {
      const c = cert(name);
      return { cert: c.cert, key: c.key, ca: c.truststore };
    };
    cluster = await startCassandraCluster({
      dir: join(dir, 'cluster'),
      nodes: nodes.map((node, k) => ({
        ...node,
        // The JDK and Cassandra live under the toolchain cache, which a pod user sees only revealed.
        pod: { ...podOf(k + 1).launch, reveal: [cacheRoot()] },
      })),
      bootstrapSuperuser: { role: 'platform_admin', identity: adminId },
      admin: credentials('admin'),
      ...(opts.bootstrap ? { bootstrap: opts.bootstrap } : {}),
      heapMb: opts.heapMb ?? 512,
    });
    return {
      cluster,
      pods,
      nodeId,
      adminId,
      clientCert: cert,
      credentials,
      address: (i) => podOf(i).address,
      pod: (i) => ({ netns: podOf(i).netns, uid: podOf(i).launch.uid }),
      link,
      cut: nodePods.cut,
      dir,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
