/**
 * A {@link startKafkaCluster} cluster whose nodes each run in a pod of their own (a network namespace
 * this code creates and a user, ADR 0012), on the pods' bridge, with a test CA, node certificates
 * (SPIFFE ID and pod address) and client certificates. Made for faults that need a network: taking a
 * node's link down inside its namespace cuts it off from its peers and its clients, while its process
 * keeps running (ADR 0027, "A network partition"). Needs root, like every pod.
 */
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import { kafkaClientConfig } from './kafka-client.ts';
import { startKafkaCluster, type KafkaCluster } from './kafka-cluster.ts';
import { createNodePods, type NodeCut } from './pod-cut.ts';
import { CertificateAuthority, issueClientCerts, writePemFiles, type PemFiles } from './tls.ts';
import { waitUntil } from './wait.ts';
import kafkajs, { type KafkaConfig } from 'kafkajs';
import type { PodStack } from '../pods/index.ts';
import { cacheRoot } from '../toolchain/index.ts';

// kafkajs is CommonJS: Node's ESM loader sees only the exports its lexer detects, and not these.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, ResourcePatternTypes } =
  kafkajs;
type Kafka = kafkajs.Kafka;

/** Options of {@link startPodKafkaCluster}. */
export interface PodKafkaClusterOptions {
  /** The pods' stack name: names their namespaces, users and bridge; a run's leftovers are removed first. */
  stack: string;
  /** Picks the pods’ /24 (`stackSubnet` in ../pods/names.ts); distinct per concurrently running stack. */
  subnetBasePort: number;
  /** SPIFFE trust domain of the node and client certificates, e.g. `spiffe://trellis.test`. */
  trustDomain: string;
  /** Client certificates to issue: name → SPIFFE ID. */
  clients: Record<string, string>;
  /** Heap per node in MiB. @default 384 */
  heapMb?: number;
  /** Extra server.properties for every node. */
  properties?: Record<string, string>;
}

/** Who may use a {@link PodKafkaCluster.topic}, and where its leader starts. */
export interface TopicAccess {
  /** SPIFFE IDs allowed to write (and describe). */
  producers: string[];
  /** SPIFFE IDs allowed to read (and describe), each in its group. */
  consumers: { spiffeId: string; group: string }[];
  /** The node the partition's leader starts on (its preferred replica). @default Kafka's choice */
  leader?: number;
}

export type { NodeCut } from './pod-cut.ts';

/** A running {@link startPodKafkaCluster} cluster and what a test needs to reach and cut it. */
export interface PodKafkaCluster {
  cluster: KafkaCluster;
  pods: PodStack;
  /** Node `i`'s SPIFFE ID (`<trust domain>/ns/data/sa/kafka-<i>`). */
  nodeId(i: number): string;
  /** Node `i`'s key material (its keystore is its pod user's alone). */
  nodeCert(i: number): PemFiles;
  /** A client's key material, by the name given in `clients`. */
  clientCert(name: string): PemFiles;
  /** Node `i`'s pod address. */
  address(i: number): string;
  /** Node `i`'s pod: its network namespace and its user's uid. */
  pod(i: number): { netns: string; uid: number };
  /** A kafkajs configuration for `client` (a name of `clients`, or `node-<i>`), over mTLS. */
  clientConfig(client: string, clientId: string): KafkaConfig;
  /**
   * Create a one-partition topic (replicated on all three, waited for in sync), let `producers` write
   * and describe it, and each consumer read it in its group, whose coordinator is waited for too: the
   * offsets topic needs all three brokers, so a test makes it before cutting one off.
   */
  topic(name: string, access: TopicAccess): Promise<void>;
  /** `ip -n <node's namespace> link set eth0 up|down`: the cable between the pod and the bridge. */
  link(i: number, state: 'up' | 'down'): void;
  /**
   * Cut node `i` off now and heal it after `ms` on a timer of its own, so a call hanging on the cut
   * node cannot stretch the cut; `heal()` heals at once (call it in a `finally`), and only once.
   */
  cut(i: number, ms: number): NodeCut;
  /** A scratch directory of the cluster, removed by `stop`. */
  dir: string;
  /** Every link up, the nodes stopped, the pods and files removed; never throws. */
  stop(): Promise<void>;
}

/** A 3-node KRaft cluster, each node in a pod; see the module comment. */
export async function startPodKafkaCluster(opts: PodKafkaClusterOptions): Promise<PodKafkaCluster> {
  const ids = [1, 2, 3];
  const nodePods = await createNodePods('kafka', opts);
  const { pods, dir, podOf, link } = nodePods;
  let cluster: KafkaCluster | undefined;
  const stop = (): Promise<void> => nodePods.stop(() => cluster?.stop() ?? Promise.resolve());
  try {
    const nodeId = (i: number): string => `${opts.trustDomain}/ns/data/sa/kafka-${i}`;
    const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
    const certs = new Map<string, PemFiles>();
    for (const i of ids) {
      const files = writePemFiles(
        join(dir, `tls-${i}`),
        `kafka-${i}`,
        await ca.issue({ uris: [nodeId(i)], ips: [podOf(i).address] }),
        ca.rootPem,
      );
      const { uid, gid } = podOf(i).launch;
      for (const f of [join(dir, `tls-${i}`), files.keystore, files.truststore, files.key])
        chownSync(f, uid, gid);
      certs.set(`node-${i}`, files);
    }
    const cert = await issueClientCerts(ca, join(dir, 'tls'), opts.clients, certs);
    cluster = await startKafkaCluster({
      dir: join(dir, 'cluster'),
      nodes: ids.map((i) => ({
        spiffeId: nodeId(i),
        tls: { keystore: cert(`node-${i}`).keystore, truststore: cert(`node-${i}`).truststore },
        host: podOf(i).address,
        // The JDK and Kafka live under the toolchain cache, which a pod user sees only revealed.
        pod: { ...podOf(i).launch, reveal: [cacheRoot()] },
      })),
      heapMb: opts.heapMb ?? 384,
      ...(opts.properties ? { properties: opts.properties } : {}),
    });
    const started = cluster;
    const clientConfigOf = (client: string, clientId: string): KafkaConfig => {
      const who = cert(client);
      return kafkaClientConfig(
        { bootstrap: started.bootstrap, tls: true, host: podOf(1).address },
        { cert: who.cert, key: who.key, ca: who.truststore },
        clientId,
      );
    };
    return {
      cluster: started,
      pods,
      nodeId,
      nodeCert: (i) => cert(`node-${i}`),
      clientCert: cert,
      address: (i) => podOf(i).address,
      pod: (i) => ({ netns: podOf(i).netns, uid: podOf(i).launch.uid }),
      clientConfig: clientConfigOf,
      link,
      cut: nodePods.cut,
      dir,
      stop,
      topic: (name, access) =>
        createTopic(new Kafka(clientConfigOf('node-1', 'trellis-admin')), name, access),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function createTopic(kafka: Kafka, topic: string, access: TopicAccess): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { leader } = access;
    await admin.createTopics({
      topics: [
        leader === undefined
          ? { topic, numPartitions: 1 }
          : {
              topic,
              replicaAssignment: [
                { partition: 0, replicas: [leader, ...[1, 2, 3].filter((i) => i !== leader)] },
              ],
            },
      ],
    });
    await waitUntil(
      async () => {
        const md = await admin.fetchTopicMetadata({ topics: [topic] });
        return (md.topics[0]?.partitions[0]?.isr.length ?? 0) === 3;
      },
      { what: `${topic} with 3 in sync`, timeoutMs: 60_000 },
    );
    const allow = (spiffeId: string, resourceType: number, name: string, operation: number) => ({
      resourceType,
      resourceName: name,
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: `User:${spiffeId}`,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    });
    const { TOPIC, GROUP } = AclResourceTypes;
    const { WRITE, READ, DESCRIBE } = AclOperationTypes;
    await admin.createAcls({
      acl: [
        ...access.producers.flatMap((p) => [
          allow(p, TOPIC, topic, WRITE),
          allow(p, TOPIC, topic, DESCRIBE),
        ]),
        ...access.consumers.flatMap((c) => [
          allow(c.spiffeId, TOPIC, topic, READ),
          allow(c.spiffeId, TOPIC, topic, DESCRIBE),
          allow(c.spiffeId, GROUP, c.group, READ),
        ]),
      ],
    });
    for (const c of access.consumers) {
      await waitUntil(() => admin.fetchOffsets({ groupId: c.group, topics: [topic] }), {
        what: `the group coordinator of ${c.group}`,
        timeoutMs: 60_000,
      });
    }
  } finally {
    await admin.disconnect();
  }
}

/** The test identities of {@link startOrdersPodCluster}: orders-api writes the topic, the ledger reads it. */
export const ORDERS_POD_CLUSTER_IDS = {
  trustDomain: 'spiffe://trellis.test',
  ordersApi: 'spiffe://trellis.test/ns/orders/sa/orders-api',
  ledger: 'spiffe://trellis.test/ns/orders/sa/ledger',
} as const;

/**
 * The partition tests' cluster: a {@link startPodKafkaCluster} with client certificates for orders-api
 * and the ledger, a 3-partition offsets topic, and `topic` written by orders-api and read by the ledger
 * in group `ledger`, its leader on `leader` when given. Stopped again if the topic cannot be made.
 */
export async function startOrdersPodCluster(o: {
  stack: string;
  subnetBasePort: number;
  topic: string;
  leader?: number;
}): Promise<PodKafkaCluster> {
  const ids = ORDERS_POD_CLUSTER_IDS;
  const pc = await startPodKafkaCluster({
    stack: o.stack,
    subnetBasePort: o.subnetBasePort,
    trustDomain: ids.trustDomain,
    clients: { 'orders-api': ids.ordersApi, ledger: ids.ledger },
    properties: { 'offsets.topic.num.partitions': '3' },
  });
  try {
    await pc.topic(o.topic, {
      producers: [ids.ordersApi],
      consumers: [{ spiffeId: ids.ledger, group: 'ledger' }],
      ...(o.leader !== undefined ? { leader: o.leader } : {}),
    });
  } catch (err) {
    await pc.stop();
    throw err;
  }
  return pc;
}
