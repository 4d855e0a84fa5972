/**
 * A local Kafka KRaft cluster: N combined broker+controller nodes (every node a controller voter) on
 * loopback, each on its own 127.0.0.x address, SSL with client certificates on every listener, SPIFFE
 * principals, the StandardAuthorizer with the nodes alone as super users, and replication defaults
 * for N nodes (docs/adr/0027-kafka-kraft-cluster.md). Each node is a {@link launchKafka} node with a
 * {@link KafkaClusterMembership}; the configuration is kafka-config.ts's.
 */
import { Kafka } from 'kafkajs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { PodLaunch } from '../pods/launch.ts';
import { run } from '../toolchain/exec.ts';
import { kafka as kafkaTool } from '../toolchain/kafka.ts';
import {
  kafkaClientConfig,
  type KafkaClientCredentials,
  type KafkaServer,
} from './kafka-client.ts';
import {
  checkLoopback,
  kafkaAuthorizerProperties,
  KAFKA_LOG4J2,
  newClusterId,
  renderProperties,
  type KafkaOptions,
  type KafkaPorts,
  type KafkaTlsFiles,
  type KafkaVoter,
} from './kafka-config.ts';
import { awaitKafka, kafkaJava, launchKafka } from './kafka.ts';
import { ensureKafkaQuorumProbe, KAFKA_QUORUM_PROBE } from './kafka-principal.ts';
import { freePort } from './ports.ts';
import { waitUntil } from './wait.ts';

/** One node of a {@link startKafkaCluster} cluster. */
export interface KafkaClusterNode {
  /**
   * The SPIFFE ID of the node's certificate (its URI SAN): `User:<spiffeId>` is a super user, so
   * that the node's inter-broker and controller connections are allowed.
   */
  spiffeId: string;
  /**
   * The node's key material, used on all its listeners and as its client identity toward the other
   * nodes; the certificate must carry an IP SAN of `host` (nodes verify the address they dial).
   */
  tls: Omit<KafkaTlsFiles, 'requireClientAuth'>;
  /** The node's loopback address, or its pod's address with `pod`. @default 127.0.0.<node id> */
  host?: string;
  /**
   * Run the node in this pod (its own network namespace and user); `host` must then be the pod's
   * address. Its ports are then {@link POD_KAFKA_PORTS}. @default on the host's loopback
   */
  pod?: PodLaunch;
}

/** A pod node's ports: its namespace is its own, so fixed ones are free. */
export const POD_KAFKA_PORTS: KafkaPorts = { client: 9092, broker: 9093, controller: 9094 };

/** Options of {@link startKafkaCluster}. */
export interface KafkaClusterOptions {
  /** Node `<id>` lives in `<dir>/node-<id>`. */
  dir: string;
  /** The nodes, ids 1..n in this order; every one is a broker and a controller voter. */
  nodes: readonly KafkaClusterNode[];
  /** Heap per node in MiB. @default 384 */
  heapMb?: number;
  /** More super users besides the nodes (e.g. a platform admin's `User:<SPIFFE ID>`). @default none */
  superUsers?: readonly string[];
  /** @default the number of nodes */
  replicationFactor?: number;
  /** @default 2 when the replication factor is 3 or more */
  minInsyncReplicas?: number;
  /** Extra server.properties entries for every node, applied last. */
  properties?: Record<string, string>;
  /** @default 240_000 */
  startupTimeoutMs?: number;
  /**
   * `together`: all storage formats (a short JVM each) at once, each node spawned when its format
   * ends; `staggered`: each node formats and is spawned before the next one formats. `together` was
   * as fast or faster on 2 cores (docs/adr/0027-kafka-kraft-cluster.md). @default 'together'
   */
  launch?: 'staggered' | 'together';
}

/** A running cluster. Node objects are replaced when a node is restarted. */
export interface KafkaCluster {
  clusterId: string;
  /** The nodes, ids 1..n (index = id - 1). */
  nodes: KafkaServer[];
  /** Every node's client listener, comma-separated (what {@link kafkaClientConfig} splits). */
  bootstrap: string;
  /** The principals that are super users: the nodes', then `superUsers`. */
  superUsers: string[];
  /** Milliseconds from the first spawn until every node answered and all brokers were registered. */
  startupMs: number;
  /** Milliseconds the storage formats took (in parallel; 0 when already formatted). */
  formatMs: number;
  node(id: number): KafkaServer;
  /** `kill -9` a node's process group (its files stay). */
  kill(id: number): Promise<void>;
  /** Start a stopped or killed node again on its own storage; resolves once it answers metadata. */
  restart(id: number): Promise<KafkaServer>;
  /** Stop every node (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
}

/**
 * Start a KRaft cluster of `opts.nodes.length` combined nodes sharing one cluster id. All nodes are
 * launched before any is waited for (no node answers before a majority of the voters is up), then the call waits
 * until each answers a metadata request as node 1 (a super user) and the metadata lists every
 * broker. Any failure stops every node before it throws.
 */
export async function startKafkaCluster(opts: KafkaClusterOptions): Promise<KafkaCluster> {
  const n = opts.nodes.length;
  if (n < 1) throw new Error('startKafkaCluster: nodes must list at least one node');
  const hosts = opts.nodes.map((node, i) => node.host ?? `127.0.0.${i + 1}`);
  hosts.forEach((h, i) => {
    if (opts.nodes[i]?.pod) {
      if (opts.nodes[i]?.host === undefined)
        throw new Error(`startKafkaCluster: nodes[${i}].host must be its pod's address`);
    } else checkLoopback(`nodes[${i}].host`, h);
  });
  const ports: KafkaPorts[] = [];
  for (const [i, h] of hosts.entries())
    ports.push(
      opts.nodes[i]?.pod
        ? POD_KAFKA_PORTS
        : { client: await freePort(h), broker: await freePort(h), controller: await freePort(h) },
    );
  const voters: KafkaVoter[] = hosts.map((host, i) => ({
    id: i + 1,
    host,
    controllerPort: ports[i]?.controller ?? 0,
  }));
  const superUsers = [...new Set(opts.nodes.map((node) => `User:${node.spiffeId}`))];
  superUsers.push(...(opts.superUsers ?? []));
  const auth = kafkaAuthorizerProperties(superUsers);
  const clusterId = newClusterId();
  const probe = (i: number): KafkaClientCredentials => {
    const tls = opts.nodes[i]?.tls;
    if (!tls) throw new Error(`startKafkaCluster: no node ${i + 1}`);
    return { cert: tls.keystore, ca: tls.truststore };
  };
  const nodeOptions = (i: number): KafkaOptions => ({
    dir: join(opts.dir, `node-${i + 1}`),
    ...(opts.nodes[i]?.pod ? { pod: opts.nodes[i].pod } : {}),
    heapMb: opts.heapMb ?? 384,
    host: hosts[i] ?? '',
    ports: ports[i] ?? { client: 0, broker: 0, controller: 0 },
    tls: { ...(opts.nodes[i]?.tls ?? { keystore: '', truststore: '' }), requireClientAuth: true },
    probe: probe(i),
    spiffePrincipals: true,
    clusterId,
    cluster: {
      nodeId: i + 1,
      voters,
      ...(opts.replicationFactor !== undefined
        ? { replicationFactor: opts.replicationFactor }
        : {}),
      ...(opts.minInsyncReplicas !== undefined
        ? { minInsyncReplicas: opts.minInsyncReplicas }
        : {}),
    },
    properties: { ...auth, ...(opts.properties ?? {}) },
    startupTimeoutMs: opts.startupTimeoutMs ?? 240_000,
  });

  const nodes: KafkaServer[] = [];
  const stopAllNodes = async (): Promise<void> => {
    await Promise.all(nodes.map((s) => s.stop()));
  };
  try {
    if ((opts.launch ?? 'together') === 'together') {
      const launched = await Promise.allSettled(
        opts.nodes.map((_, i) => launchKafka(nodeOptions(i))),
      );
      for (const r of launched) if (r.status === 'fulfilled') nodes.push(r.value);
      const failed = launched.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } else {
      for (let i = 0; i < n; i++) nodes.push(await launchKafka(nodeOptions(i)));
    }
    const t0 = Math.min(...nodes.map((s) => s.startedAt));
    await Promise.all(nodes.map((s, i) => awaitKafka(s, nodeOptions(i))));
    await waitForBrokers(nodes, probe(0), n, opts.startupTimeoutMs ?? 240_000);
    const cluster: KafkaCluster = {
      clusterId,
      nodes,
      bootstrap: nodes.map((s) => s.bootstrap).join(','),
      superUsers,
      startupMs: Date.now() - t0,
      formatMs: nodes.reduce((sum, s) => sum + s.formatMs, 0),
      node(id) {
        const s = nodes[id - 1];
        if (!s) throw new Error(`kafka cluster: no node ${id} (ids are 1..${n})`);
        return s;
      },
      async kill(id) {
        await cluster.node(id).process.kill();
      },
      async restart(id) {
        const old = cluster.node(id);
        await old.stop();
        const s = await launchKafka(nodeOptions(id - 1));
        nodes[id - 1] = s;
        await awaitKafka(s, nodeOptions(id - 1));
        return s;
      },
      stop: stopAllNodes,
    };
    return cluster;
  } catch (err) {
    await stopAllNodes();
    throw err;
  }
}

/** Wait until the metadata (asked of every node in turn) lists `n` brokers. */
async function waitForBrokers(
  nodes: readonly KafkaServer[],
  creds: KafkaClientCredentials,
  n: number,
  timeoutMs: number,
): Promise<void> {
  const first = nodes[0];
  if (!first) return;
  await waitUntil(
    async () => {
      const cfg = kafkaClientConfig(
        { ...first, bootstrap: nodes.map((s) => s.bootstrap).join(',') },
        creds,
        'trellis-probe',
      );
      const admin = new Kafka({ ...cfg, retry: { retries: 0 } }).admin();
      try {
        await admin.connect();
        const d = await admin.describeCluster();
        if (d.brokers.length < n)
          throw new Error(`metadata lists ${d.brokers.length} of ${n} brokers`);
        return true;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    { what: `${n} brokers registered`, timeoutMs, intervalMs: 500, proc: first.process },
  );
}

/** Who asks a {@link describeKafkaQuorum} question, and where. */
export interface QuorumQuestion {
  /** `host:port` of controller listeners (Admin `bootstrap.controllers`), or of broker listeners. */
  bootstrap: string;
  /** Ask the controllers directly (`bootstrap.controllers`) rather than brokers (`bootstrap.servers`). */
  controllers: boolean;
  /** PEM key material of the caller (keystore: key + chain); omitted: a PLAINTEXT connection. */
  tls?: Omit<KafkaTlsFiles, 'requireClientAuth'>;
}

/** One replica of the metadata log, as the leader sees it. */
export interface QuorumReplica {
  id: number;
  logEndOffset: number;
  lastFetchTimestamp: number | null;
  lastCaughtUpTimestamp: number | null;
}

/** The answer to one {@link QuorumQuestion}: the quorum, or the exception that refused the caller. */
export type QuorumAnswer =
  | {
      ok: true;
      leaderId: number;
      leaderEpoch: number;
      highWatermark: number;
      voters: QuorumReplica[];
      observers: QuorumReplica[];
    }
  | { ok: false; error: string; message: string };

/**
 * Ask the metadata quorum with Kafka's own Admin client (`describeMetadataQuorum`, what
 * kafka-metadata-quorum.sh calls), one JVM for all questions; `dir` holds the client configs.
 */
export async function describeKafkaQuorum(
  dir: string,
  questions: readonly QuorumQuestion[],
  timeoutMs = 20_000,
): Promise<QuorumAnswer[]> {
  mkdirSync(dir, { recursive: true });
  const files = questions.map((q, i) => {
    const props: Record<string, string> = {
      [q.controllers ? 'bootstrap.controllers' : 'bootstrap.servers']: q.bootstrap,
      'client.id': 'trellis-quorum-probe',
      'request.timeout.ms': String(Math.min(timeoutMs, 10_000)),
      'default.api.timeout.ms': String(timeoutMs),
      // One attempt at the bootstrap address, so a refused caller fails fast.
      'reconnect.backoff.max.ms': '1000',
      'retry.backoff.max.ms': '1000',
      'security.protocol': q.tls ? 'SSL' : 'PLAINTEXT',
      ...(q.tls
        ? {
            'ssl.keystore.type': 'PEM',
            'ssl.keystore.location': q.tls.keystore,
            'ssl.truststore.type': 'PEM',
            'ssl.truststore.location': q.tls.truststore,
          }
        : {}),
    };
    const file = join(dir, `quorum-${i}.properties`);
    writeFileSync(file, renderProperties(props));
    return file;
  });
  const log4j2 = join(dir, 'log4j2.properties');
  // The probe's answer is on stdout; the Admin client's own logging stays quiet.
  writeFileSync(
    log4j2,
    KAFKA_LOG4J2.replace('rootLogger.level = INFO', 'rootLogger.level = ERROR'),
  );
  const classpath = [
    join(await kafkaTool.ensure(), 'lib', '*'),
    await ensureKafkaQuorumProbe(),
  ].join(delimiter);
  const out = await run(
    kafkaJava(),
    [
      '-Xmx128m',
      `-Dlog4j2.configurationFile=${log4j2}`,
      `-Dkafka.logs.dir=${dir}`,
      '-cp',
      classpath,
      KAFKA_QUORUM_PROBE,
      ...files,
    ],
    { what: 'kafka quorum probe', timeoutMs: questions.length * (timeoutMs + 10_000) + 30_000 },
  );
  const answers = new Map<string, QuorumAnswer>();
  for (const line of out.split('\n')) {
    if (!line.startsWith('TRELLIS-QUORUM ')) continue;
    const r = JSON.parse(line.slice('TRELLIS-QUORUM '.length)) as {
      config: string;
      result: QuorumAnswer;
    };
    answers.set(r.config, r.result);
  }
  return files.map((f) => {
    const a = answers.get(f);
    if (!a) throw new Error(`kafka quorum probe: no answer for ${f}\n${out.slice(-2000)}`);
    return a;
  });
}
