/**
 * One local Kafka node's configuration: its options, server.properties, its Log4j 2 config, where
 * they live and the broker's JVM command line. Pure: nothing here touches the disk or starts a process.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KAFKA_JVM_OPTIONS, KAFKA_MAIN } from '../toolchain/kafka.ts';
import type { PodLaunch } from '../pods/launch.ts';
import type { JmxExporterOptions } from './jmx-exporter.ts';
import type { KafkaClientCredentials } from './kafka-client.ts';
import { SPIFFE_PRINCIPAL_BUILDER } from './kafka-principal.ts';

/** PEM key material for the broker: used on every listener, and as its client identity toward itself. */
export interface KafkaTlsFiles {
  /** PKCS#8 private key followed by the certificate chain (`ssl.keystore.type=PEM`). */
  keystore: string;
  /** Trusted CA certificates (`ssl.truststore.type=PEM`). */
  truststore: string;
  /** `ssl.client.auth=required` on every listener. @default true */
  requireClientAuth?: boolean;
}

/** Options of {@link startKafka}: one KRaft node (broker + controller) on loopback. */
export interface KafkaOptions {
  /** The broker's own directory: `conf/`, `data/`, `logs/`, and the process `log` go here. */
  dir: string;
  /**
   * Run the node in this pod: in its network namespace (made by this project's pod code), as its
   * user, who is given `dir`. `host` is then the pod's address, and `ports` must be given (a port
   * free inside the fresh namespace cannot be probed from the host). @default on the host
   */
  pod?: PodLaunch;
  /** Heap in MiB (-Xms = -Xmx). @default 512 */
  heapMb?: number;
  /**
   * SSL on all three listeners (clients, inter-broker, controller) with client certificates required.
   * Without it every listener is PLAINTEXT.
   */
  tls?: KafkaTlsFiles;
  /** How the readiness probe connects when TLS is on: its client certificate. */
  probe?: KafkaClientCredentials;
  /** Extra server.properties entries, applied last (e.g. `authorizer.class.name`, `super.users`). */
  properties?: Record<string, string>;
  /** Fixed loopback ports (a Pulumi stack's); free ports are picked when omitted. */
  ports?: KafkaPorts;
  /**
   * More client listeners, each with its own port and advertised address (e.g. a workload's sidecar
   * egress port, so that the metadata a client gets through its sidecar points back at the sidecar).
   * They use the same protocol and key material as the CLIENT listener.
   */
  listeners?: readonly KafkaListener[];
  /**
   * Principals are `User:<SPIFFE ID>` from the peer certificate's URI SAN, via the
   * {@link SPIFFE_PRINCIPAL_BUILDER} compiled by {@link ensureSpiffePrincipalBuilder}
   * (docs/adr/0006-kafka-spiffe-principals.md).
   * Without it, Kafka's SSL principal is the certificate's subject DN. @default false
   */
  spiffePrincipals?: boolean;
  /** @default 180_000 */
  startupTimeoutMs?: number;
  /**
   * Run the Prometheus JMX exporter agent in the broker, its HTTP server on 127.0.0.1 (the pod's own
   * loopback in a pod) at this port, with the rules of `JMX_EXPORTER_CONFIGS.kafka`.
   * @default no agent
   */
  jmxExporter?: JmxExporterOptions;
  /**
   * The address the client listeners (CLIENT and `listeners`) bind, when it is not the node's own:
   * a pod's address, with the controller and inter-broker listeners on the pod's loopback.
   * @default the node's address
   */
  clientAddress?: string;
  /**
   * `host:port` the CLIENT listener advertises: what its clients dial (a relay on the host, for a
   * node in a pod). @default `<clientAddress>:<client port>`
   */
  clientAdvertised?: string;
  /**
   * The loopback address this node's controller and inter-broker listeners bind (and its client
   * listeners, unless `clientAddress`): one of 127.0.0.0/8, so that the nodes of a cluster can each
   * have their own. @default 127.0.0.1
   */
  host?: string;
  /**
   * This node's place in a multi-node KRaft cluster (docs/adr/0027-kafka-kraft-cluster.md).
   * @default a cluster of one: node 1, the only voter, replication factor 1
   */
  cluster?: KafkaClusterMembership;
  /** The cluster id to format new storage with (every node of a cluster shares one). @default a new id */
  clusterId?: string;
}

/** One controller voter of a KRaft quorum: `<id>@<host>:<controllerPort>`. */
export interface KafkaVoter {
  id: number;
  host: string;
  controllerPort: number;
}

/** A node's membership of a static KRaft quorum, and the cluster's replication defaults. */
export interface KafkaClusterMembership {
  /** `node.id`: one of the voters' ids. */
  nodeId: number;
  /** Every controller voter, this node included (`controller.quorum.voters`). */
  voters: readonly KafkaVoter[];
  /**
   * `default.replication.factor`, and the replication factor of the offsets, transaction state and
   * share-group state topics. @default the number of voters (every node is a broker)
   */
  replicationFactor?: number;
  /**
   * `min.insync.replicas`, and the min ISR of the transaction and share-group state topics.
   * @default 2 when the replication factor is 3 or more, else 1
   */
  minInsyncReplicas?: number;
}

/** The loopback ports of one node. */
export interface KafkaPorts {
  /** The CLIENT listener: direct TLS clients, advertised as itself. */
  client: number;
  /** The inter-broker listener (BROKER). */
  broker: number;
  /** The KRaft controller listener (CONTROLLER). */
  controller: number;
}

/** An extra client listener: `<name>://<host>:<port>`, advertised as `advertised`. */
export interface KafkaListener {
  /** Upper-case listener name, e.g. `CLIENT_ORDERS_API`. */
  name: string;
  port: number;
  /** `host:port` that clients of this listener are told to use. */
  advertised: string;
}

/** The three listener ports of a node, named as in `KafkaServer`. */
export interface KafkaServerPorts {
  port: number;
  brokerPort: number;
  controllerPort: number;
}

/** A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` prints). */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Kafka's Uuid.randomUuid() never hands out ids starting with '-' (they read as CLI flags).
    if (!id.startsWith('-')) return id;
  }
}

/**
 * server.properties for one combined broker+controller node, as ordered key/value pairs.
 * Keys are Kafka 4's (docs: KRaft "Combined Servers", `listener.security.protocol.map`, `ssl.keystore.type=PEM`).
 */
export function kafkaProperties(
  opts: KafkaOptions,
  host: string,
  ports: KafkaServerPorts,
): Record<string, string> {
  const proto = opts.tls ? 'SSL' : 'PLAINTEXT';
  const extra = opts.listeners ?? [];
  const names = new Set(['CLIENT', 'BROKER', 'CONTROLLER']);
  const used = new Set([ports.port, ports.brokerPort, ports.controllerPort]);
  for (const l of extra) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(l.name))
      throw new Error(`kafka: listener name ${JSON.stringify(l.name)} must match [A-Z][A-Z0-9_]*`);
    if (names.has(l.name)) throw new Error(`kafka: listener name ${l.name} is used twice`);
    if (used.has(l.port)) throw new Error(`kafka: listener ${l.name}: port ${l.port} is taken`);
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(l.advertised))
      throw new Error(
        `kafka: listener ${l.name}: advertised must be host:port, got ${l.advertised}`,
      );
    names.add(l.name);
    used.add(l.port);
  }
  const quorum = clusterQuorum(opts, host, ports);
  const clientHost = opts.clientAddress ?? host;
  const clientAdvertised = opts.clientAdvertised ?? `${clientHost}:${ports.port}`;
  if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(clientAdvertised))
    throw new Error(`kafka: clientAdvertised must be host:port, got ${clientAdvertised}`);
  const own = extra.map((l) => `,${l.name}://${clientHost}:${l.port}`).join('');
  const advertised = extra.map((l) => `,${l.name}://${l.advertised}`).join('');
  const protocols = extra.map((l) => `,${l.name}:${proto}`).join('');
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(quorum.nodeId),
    // A static quorum (KRaft "Static versus Dynamic KRaft Quorums"): every voter is listed and the
    // storage format needs no `--standalone`/`--initial-controllers` bootstrap step to get wrong.
    'controller.quorum.voters': quorum.voters
      .map((v) => `${v.id}@${v.host}:${v.controllerPort}`)
      .join(','),
    listeners: `CLIENT://${clientHost}:${ports.port},BROKER://${host}:${ports.brokerPort},CONTROLLER://${host}:${ports.controllerPort}${own}`,
    'advertised.listeners': `CLIENT://${clientAdvertised},BROKER://${host}:${ports.brokerPort}${advertised}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'BROKER',
    'listener.security.protocol.map': `CLIENT:${proto},BROKER:${proto},CONTROLLER:${proto}${protocols}`,
    'log.dirs': join(opts.dir, 'data'),
    'num.partitions': '1',
    // Internal topics cannot have more replicas than brokers: one on a single node, RF on a cluster.
    'offsets.topic.replication.factor': String(quorum.replicationFactor),
    'transaction.state.log.replication.factor': String(quorum.replicationFactor),
    'transaction.state.log.min.isr': String(quorum.minInsyncReplicas),
    'share.coordinator.state.topic.replication.factor': String(quorum.replicationFactor),
    'share.coordinator.state.topic.min.isr': String(quorum.minInsyncReplicas),
    ...(opts.cluster
      ? {
          'default.replication.factor': String(quorum.replicationFactor),
          // acks=all is acknowledged once 2 of 3 replicas have it: one node may die, none is lost.
          'min.insync.replicas': String(quorum.minInsyncReplicas),
        }
      : {}),
    'group.initial.rebalance.delay.ms': '0',
    // Topics come from the policy model, created explicitly; a typo must not create a topic.
    'auto.create.topics.enable': 'false',
  };
  if (opts.tls) {
    Object.assign(props, {
      'ssl.keystore.type': 'PEM',
      'ssl.keystore.location': opts.tls.keystore,
      'ssl.truststore.type': 'PEM',
      'ssl.truststore.location': opts.tls.truststore,
      'ssl.client.auth': (opts.tls.requireClientAuth ?? true) ? 'required' : 'none',
      // The default, stated: the broker checks the host of every broker/controller it dials against its certificate.
      'ssl.endpoint.identification.algorithm': 'https',
    });
  }
  // Applies to every listener: the broker's own inter-broker and controller connections included.
  if (opts.spiffePrincipals) props['principal.builder.class'] = SPIFFE_PRINCIPAL_BUILDER;
  return { ...props, ...(opts.properties ?? {}) };
}

/** The node's quorum and replication defaults, checked; a single node is node 1, its own only voter. */
function clusterQuorum(
  opts: Pick<KafkaOptions, 'cluster' | 'pod'>,
  host: string,
  ports: KafkaServerPorts,
): Required<KafkaClusterMembership> {
  const c = opts.cluster;
  if (!c)
    return {
      nodeId: 1,
      voters: [{ id: 1, host, controllerPort: ports.controllerPort }],
      replicationFactor: 1,
      minInsyncReplicas: 1,
    };
  const ids = new Set<number>();
  for (const v of c.voters) {
    if (!Number.isInteger(v.id) || v.id < 0)
      throw new Error(`kafka: cluster.voters: id must be a non-negative integer, got ${v.id}`);
    if (ids.has(v.id)) throw new Error(`kafka: cluster.voters: id ${v.id} is listed twice`);
    ids.add(v.id);
    // Pod nodes (opts.pod) dial their peers' pod addresses, on the bridge this project's pod code made.
    if (opts.pod) checkIpv4(`cluster.voters[${v.id}].host`, v.host);
    else checkLoopback(`cluster.voters[${v.id}].host`, v.host);
    if (!Number.isInteger(v.controllerPort) || v.controllerPort < 1 || v.controllerPort > 65_535)
      throw new Error(
        `kafka: cluster.voters[${v.id}].controllerPort must be a TCP port, got ${v.controllerPort}`,
      );
  }
  const self = c.voters.find((v) => v.id === c.nodeId);
  if (!self) throw new Error(`kafka: cluster.nodeId ${c.nodeId} is not one of cluster.voters`);
  if (self.host !== host || self.controllerPort !== ports.controllerPort)
    throw new Error(
      `kafka: cluster.voters[${c.nodeId}] is ${self.host}:${self.controllerPort}, but this node's controller listener is ${host}:${ports.controllerPort}`,
    );
  const rf = c.replicationFactor ?? c.voters.length;
  if (!Number.isInteger(rf) || rf < 1 || rf > c.voters.length)
    throw new Error(
      `kafka: cluster.replicationFactor must be an integer in [1, ${c.voters.length}] (the nodes), got ${rf}`,
    );
  const minIsr = c.minInsyncReplicas ?? (rf >= 3 ? 2 : 1);
  if (!Number.isInteger(minIsr) || minIsr < 1 || minIsr > rf)
    throw new Error(
      `kafka: cluster.minInsyncReplicas must be an integer in [1, ${rf}] (the replication factor), got ${minIsr}`,
    );
  return { nodeId: c.nodeId, voters: c.voters, replicationFactor: rf, minInsyncReplicas: minIsr };
}

/** Throws unless `addr` is an IPv4 loopback address (127.0.0.0/8): nothing here listens elsewhere. */
/** Throw unless `addr` is an IPv4 address literal. */
export function checkIpv4(field: string, addr: string): void {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (!m || m.slice(1).some((o) => Number(o) > 255))
    throw new Error(`kafka: ${field} must be an IPv4 address, got ${addr}`);
}

export function checkLoopback(field: string, addr: string): void {
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (!m || m.slice(1).some((o) => Number(o) > 255))
    throw new Error(`kafka: ${field} must be a loopback address (127.0.0.0/8), got ${addr}`);
}

/** StandardAuthorizer: the KRaft authorizer, ACLs kept in the metadata log. */
export const KAFKA_STANDARD_AUTHORIZER = 'org.apache.kafka.metadata.authorizer.StandardAuthorizer';

/**
 * Authorization of every listener: the StandardAuthorizer, nothing allowed without an ACL, and these
 * principals (`User:<SPIFFE ID>`) as super users.
 */
export function kafkaAuthorizerProperties(superUsers: readonly string[]): Record<string, string> {
  if (superUsers.length === 0)
    throw new Error('kafka: superUsers must name at least one principal');
  for (const u of superUsers)
    if (!/^User:[^;\s]+$/.test(u))
      throw new Error(`kafka: super user ${JSON.stringify(u)} must be User:<name> without ';'`);
  return {
    'authorizer.class.name': KAFKA_STANDARD_AUTHORIZER,
    'allow.everyone.if.no.acl.found': 'false',
    'super.users': superUsers.join(';'),
  };
}

/** Render properties; values are written literally (no `\` escapes are needed for paths without backslashes). */
export function renderProperties(props: Record<string, string>): string {
  const lines = ['# Generated by Trellis (packages/local/src/harness/kafka.ts)'];
  for (const [k, v] of Object.entries(props)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(k))
      throw new Error(`kafka: bad property name ${JSON.stringify(k)}`);
    if (/[\n\r\\]/.test(v)) throw new Error(`kafka: property ${k} has a newline or backslash`);
    lines.push(`${k}=${v}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The authorizer's log under a node's `logs/` (`kafka.logs.dir`; see {@link KAFKA_LOG4J2}). */
export const KAFKA_AUTHORIZER_LOG = 'kafka-authorizer.log';

/**
 * The authorizer's logger, its level and its line layout (UTC ISO time, level, message: what
 * `./trellis audit` parses), shared by the local log4j2 file below and the Kubernetes stack's Strimzi
 * logging (components/k8s/kafka.ts).
 */
export const KAFKA_AUTHORIZER_LOGGING = {
  logger: 'kafka.authorizer.logger',
  level: 'DEBUG',
  pattern: "%d{yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}{UTC} %p %m%n",
} as const;

/**
 * Log4j 2 config: INFO to stdout, which the harness keeps in `<dir>/log`; the authorizer's decisions
 * alone to `<kafka.logs.dir>/kafka-authorizer.log`, UTC timestamps, rolled at 10 MiB (3 kept).
 *
 * `kafka.authorizer.logger` at DEBUG: Kafka 4.x's StandardAuthorizer logs a denial at INFO and an
 * allowed request at DEBUG, each only for actions flagged `logIfDenied`/`logIfAllowed` (anything
 * else only at TRACE). Produce and fetch on a topic and a consumer group's reads carry both flags,
 * while the metadata lookups clients repeat do not, so DEBUG adds the allowed produce and consume on
 * the model's topics that the audit trail needs, one line per request, and not the metadata chatter
 * that TRACE would.
 */
export const KAFKA_LOG4J2 = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
appender.authorizer.type = RollingFile
appender.authorizer.name = AUTHORIZER
appender.authorizer.fileName = \${sys:kafka.logs.dir}/${KAFKA_AUTHORIZER_LOG}
appender.authorizer.filePattern = \${sys:kafka.logs.dir}/${KAFKA_AUTHORIZER_LOG}.%i
appender.authorizer.layout.type = PatternLayout
appender.authorizer.layout.pattern = ${KAFKA_AUTHORIZER_LOGGING.pattern}
appender.authorizer.policies.type = Policies
appender.authorizer.policies.size.type = SizeBasedTriggeringPolicy
appender.authorizer.policies.size.size = 10MB
appender.authorizer.strategy.type = DefaultRolloverStrategy
appender.authorizer.strategy.max = 3
logger.authorizer.name = ${KAFKA_AUTHORIZER_LOGGING.logger}
logger.authorizer.level = ${KAFKA_AUTHORIZER_LOGGING.level}
logger.authorizer.additivity = false
logger.authorizer.appenderRef.authorizer.ref = AUTHORIZER
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
`;

/** Where a node under `dir` keeps its config files: `conf/server.properties`, `conf/log4j2.properties`. */
export function kafkaConfFiles(dir: string): { properties: string; log4j2: string } {
  return {
    properties: join(dir, 'conf', 'server.properties'),
    log4j2: join(dir, 'conf', 'log4j2.properties'),
  };
}

/** The broker's JVM command line (after `java`), reading the files of {@link kafkaConfFiles}. */
export function kafkaServerArgs(o: {
  dir: string;
  heapMb: number;
  classpath: string;
  /** More JVM arguments before the main class (e.g. the JMX exporter's `-javaagent`). */
  jvmArgs?: readonly string[];
}): string[] {
  const files = kafkaConfFiles(o.dir);
  return [
    `-Xms${o.heapMb}m`,
    `-Xmx${o.heapMb}m`,
    ...KAFKA_JVM_OPTIONS,
    ...(o.jvmArgs ?? []),
    `-Dlog4j2.configurationFile=${files.log4j2}`,
    `-Dkafka.logs.dir=${join(o.dir, 'logs')}`,
    '-cp',
    o.classpath,
    KAFKA_MAIN,
    files.properties,
  ];
}
