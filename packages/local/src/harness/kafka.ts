import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { installAtomically, toolDir } from '../toolchain/cache.ts';
import { run } from '../toolchain/exec.ts';
import { javaHome } from '../toolchain/java.ts';
import { progress } from '../toolchain/log.ts';
import {
  KAFKA_JAVA_MIN,
  KAFKA_JVM_OPTIONS,
  KAFKA_MAIN,
  KAFKA_STORAGE_TOOL,
  KAFKA_VERSION,
  kafka as kafkaTool,
} from '../toolchain/kafka.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { splitPem } from './tls.ts';
import { waitUntil } from './wait.ts';

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

/** How a Kafka client proves itself: PEM file paths. */
export interface KafkaClientCredentials {
  /** Client certificate (chain) PEM file; a keystore file (key + chain) also works. */
  cert?: string;
  /** Client private key PEM file; defaults to the key found in `cert`. */
  key?: string;
  /** CA PEM file that signs the broker's certificate. */
  ca?: string;
}

/** A running single-node Kafka in KRaft combined mode (broker + controller). */
export interface KafkaServer {
  host: string;
  /** The client listener's port. */
  port: number;
  /** `host:port` of the client listener, for `brokers: [...]`. */
  bootstrap: string;
  /** The inter-broker and controller listeners' ports. */
  brokerPort: number;
  controllerPort: number;
  clusterId: string;
  tls: boolean;
  version: string;
  /** Milliseconds from spawn to the first successful metadata request (storage format excluded). */
  startupMs: number;
  /** Milliseconds the storage format took (0 when the data dir was already formatted). */
  formatMs: number;
  dir: string;
  logFile: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

interface Ports {
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
  ports: Ports,
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
  const own = extra.map((l) => `,${l.name}://${host}:${l.port}`).join('');
  const advertised = extra.map((l) => `,${l.name}://${l.advertised}`).join('');
  const protocols = extra.map((l) => `,${l.name}:${proto}`).join('');
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // A static one-voter quorum: no dynamic-quorum bootstrap step (`--standalone`) to get wrong.
    'controller.quorum.voters': `1@${host}:${ports.controllerPort}`,
    listeners: `CLIENT://${host}:${ports.port},BROKER://${host}:${ports.brokerPort},CONTROLLER://${host}:${ports.controllerPort}${own}`,
    'advertised.listeners': `CLIENT://${host}:${ports.port},BROKER://${host}:${ports.brokerPort}${advertised}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'BROKER',
    'listener.security.protocol.map': `CLIENT:${proto},BROKER:${proto},CONTROLLER:${proto}${protocols}`,
    'log.dirs': join(opts.dir, 'data'),
    'num.partitions': '1',
    // One node: internal topics cannot have more replicas than brokers.
    'offsets.topic.replication.factor': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
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

/** Log4j 2 config: INFO to stdout, which the harness keeps in `<dir>/log`. */
export const KAFKA_LOG4J2 = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
`;

/** kafkajs config for a client of `server` (SSL from `creds` when the server uses TLS). */
export function kafkaClientConfig(
  server: Pick<KafkaServer, 'bootstrap' | 'tls' | 'host'>,
  creds: KafkaClientCredentials = {},
  clientId = 'trellis',
): KafkaConfig {
  const cfg: KafkaConfig = {
    clientId,
    brokers: [server.bootstrap],
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    logLevel: logLevel.NOTHING,
  };
  if (server.tls) {
    const certText = creds.cert ? readFileSync(creds.cert, 'utf8') : '';
    const keyText = creds.key ? readFileSync(creds.key, 'utf8') : certText;
    const certs = splitPem(certText).certs;
    const key = splitPem(keyText).keys[0];
    cfg.ssl = {
      ...(creds.ca ? { ca: [readFileSync(creds.ca, 'utf8')] } : {}),
      ...(certs.length ? { cert: certs.join('') } : {}),
      ...(key ? { key } : {}),
      rejectUnauthorized: true,
    };
  }
  return cfg;
}

/** One metadata request (admin describeCluster) on a fresh connection; resolves the cluster id. */
export async function probeKafka(
  server: Pick<KafkaServer, 'bootstrap' | 'tls' | 'host'>,
  creds?: KafkaClientCredentials,
): Promise<string> {
  const cfg = kafkaClientConfig(server, creds, 'trellis-probe');
  const admin = new Kafka({ ...cfg, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    const d = await admin.describeCluster();
    if (d.brokers.length === 0) throw new Error('metadata lists no broker yet');
    if (d.controller === null || d.controller < 0) throw new Error('no active controller yet');
    return d.clusterId;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The Java source of the SPIFFE principal builder (docs/adr/0006-kafka-spiffe-principals.md). */
export const SPIFFE_PRINCIPAL_BUILDER_SOURCE = new URL(
  '../../java/dev/trellis/kafka/SpiffePrincipalBuilder.java',
  import.meta.url,
).pathname;

/** `principal.builder.class` that maps a peer certificate's SPIFFE URI SAN to `User:<SPIFFE ID>`. */
export const SPIFFE_PRINCIPAL_BUILDER = 'dev.trellis.kafka.SpiffePrincipalBuilder';

/**
 * Compile the SPIFFE principal builder against the pinned kafka-clients with the machine's JDK, once
 * per source and Kafka version, into the per-user cache; resolves the classes directory to add to the
 * broker's classpath.
 */
export async function ensureSpiffePrincipalBuilder(): Promise<string> {
  const source = readFileSync(SPIFFE_PRINCIPAL_BUILDER_SOURCE, 'utf8');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = toolDir('kafka-spiffe-principal', `${KAFKA_VERSION}-${digest}`);
  const classes = join(dir, 'classes');
  if (existsSync(join(classes, 'dev', 'trellis', 'kafka', 'SpiffePrincipalBuilder.class')))
    return classes;
  const home = await kafkaTool.ensure();
  const jdk = javaHome(KAFKA_JAVA_MIN);
  const javac = join(jdk, 'bin', 'javac');
  if (!existsSync(javac))
    throw new Error(
      `kafka: ${jdk} has no javac to compile ${SPIFFE_PRINCIPAL_BUILDER}; install a full JDK ` +
        '(Debian: openjdk-17-jdk-headless) or set TRELLIS_JAVA_HOME to one',
    );
  await installAtomically(dir, async (staging) => {
    progress(`compiling ${SPIFFE_PRINCIPAL_BUILDER} against kafka-clients ${KAFKA_VERSION}`);
    await run(
      javac,
      [
        '--release',
        String(KAFKA_JAVA_MIN),
        '-cp',
        join(home, 'lib', '*'),
        '-d',
        join(staging, 'classes'),
        SPIFFE_PRINCIPAL_BUILDER_SOURCE,
      ],
      { what: `javac ${SPIFFE_PRINCIPAL_BUILDER}`, timeoutMs: 180_000 },
    );
  });
  return classes;
}

/** The broker's `-cp`: Kafka's jars, plus the principal builder when `spiffePrincipals` is on. */
export async function kafkaClasspath(
  opts: Pick<KafkaOptions, 'spiffePrincipals'>,
): Promise<string> {
  const home = await kafkaTool.ensure();
  const parts = [join(home, 'lib', '*')];
  if (opts.spiffePrincipals) parts.push(await ensureSpiffePrincipalBuilder());
  return parts.join(delimiter);
}

/** The java binary that runs Kafka. */
export function kafkaJava(): string {
  return join(javaHome(KAFKA_JAVA_MIN), 'bin', 'java');
}

/** Where a node under `dir` keeps its config files: `conf/server.properties`, `conf/log4j2.properties`. */
export function kafkaConfFiles(dir: string): { properties: string; log4j2: string } {
  return {
    properties: join(dir, 'conf', 'server.properties'),
    log4j2: join(dir, 'conf', 'log4j2.properties'),
  };
}

/** The broker's JVM command line (after `java`), reading the files of {@link kafkaConfFiles}. */
export function kafkaServerArgs(o: { dir: string; heapMb: number; classpath: string }): string[] {
  const files = kafkaConfFiles(o.dir);
  return [
    `-Xms${o.heapMb}m`,
    `-Xmx${o.heapMb}m`,
    ...KAFKA_JVM_OPTIONS,
    `-Dlog4j2.configurationFile=${files.log4j2}`,
    `-Dkafka.logs.dir=${join(o.dir, 'logs')}`,
    '-cp',
    o.classpath,
    KAFKA_MAIN,
    files.properties,
  ];
}

/**
 * Format the node's storage under `dir` (`kafka-storage format`), once: a no-op that resolves the
 * existing cluster id when `data/meta.properties` exists. `properties` is the rendered server.properties.
 */
export async function formatKafkaStorage(o: {
  dir: string;
  properties: string;
  classpath: string;
  clusterId?: string;
}): Promise<{ clusterId: string; formatMs: number }> {
  const files = kafkaConfFiles(o.dir);
  for (const d of [join(o.dir, 'conf'), join(o.dir, 'data'), join(o.dir, 'logs')])
    mkdirSync(d, { recursive: true });
  writeFileSync(files.properties, o.properties);
  writeFileSync(files.log4j2, KAFKA_LOG4J2);
  // The cluster id lives beside the data: a restart reuses the formatted storage.
  const idFile = join(o.dir, 'cluster-id');
  const clusterId = existsSync(idFile)
    ? readFileSync(idFile, 'utf8').trim()
    : (o.clusterId ?? newClusterId());
  if (existsSync(join(o.dir, 'data', 'meta.properties'))) return { clusterId, formatMs: 0 };
  const t0 = Date.now();
  await run(
    kafkaJava(),
    [
      '-Xmx256m',
      `-Dlog4j2.configurationFile=${files.log4j2}`,
      '-cp',
      o.classpath,
      KAFKA_STORAGE_TOOL,
      'format',
      '-t',
      clusterId,
      '-c',
      files.properties,
    ],
    { what: 'kafka-storage format', timeoutMs: 120_000 },
  );
  writeFileSync(idFile, `${clusterId}\n`);
  return { clusterId, formatMs: Date.now() - t0 };
}

/**
 * Start one Kafka node (KRaft, broker + controller) on loopback (free ports unless `opts.ports`), with
 * its own data and logs under `opts.dir`: format the storage when new, then wait until a metadata
 * request answers. Fails fast with the log tail if the process dies first.
 */
export async function startKafka(opts: KafkaOptions): Promise<KafkaServer> {
  const heapMb = opts.heapMb ?? 512;
  if (!Number.isInteger(heapMb) || heapMb < 128 || heapMb > 16_384)
    throw new Error(`startKafka: heapMb must be an integer in [128, 16384], got ${heapMb}`);
  if (opts.tls && (opts.tls.requireClientAuth ?? true) && !opts.probe?.cert)
    throw new Error('startKafka: tls requires client certificates, so probe.cert must be given');
  const classpath = await kafkaClasspath(opts);
  const host = '127.0.0.1';
  const ports: Ports = opts.ports
    ? {
        port: opts.ports.client,
        brokerPort: opts.ports.broker,
        controllerPort: opts.ports.controller,
      }
    : {
        port: await freePort(host),
        brokerPort: await freePort(host),
        controllerPort: await freePort(host),
      };
  const { clusterId, formatMs } = await formatKafkaStorage({
    dir: opts.dir,
    properties: renderProperties(kafkaProperties(opts, host, ports)),
    classpath,
  });

  const started = Date.now();
  const proc = ManagedProcess.start({
    name: 'kafka',
    command: kafkaJava(),
    args: kafkaServerArgs({ dir: opts.dir, heapMb, classpath }),
    dir: opts.dir,
    stopGraceMs: 20_000,
  });
  const server: KafkaServer = {
    host,
    ...ports,
    bootstrap: `${host}:${ports.port}`,
    clusterId,
    tls: opts.tls !== undefined,
    version: KAFKA_VERSION,
    startupMs: 0,
    formatMs,
    dir: opts.dir,
    logFile: proc.logFile,
    process: proc,
    stop: () => proc.stop(),
  };
  try {
    const id = await waitUntil(() => probeKafka(server, opts.probe), {
      what: `Kafka metadata on ${server.bootstrap}`,
      timeoutMs: opts.startupTimeoutMs ?? 180_000,
      intervalMs: 500,
      proc,
    });
    if (id !== clusterId)
      throw new Error(`Kafka on ${server.bootstrap} reports cluster ${id}, expected ${clusterId}`);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  server.startupMs = Date.now() - started;
  return server;
}
