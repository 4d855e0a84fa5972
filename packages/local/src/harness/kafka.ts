import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../toolchain/exec.ts';
import { javaHome } from '../toolchain/java.ts';
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
  /** @default 180_000 */
  startupTimeoutMs?: number;
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
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // A static one-voter quorum: no dynamic-quorum bootstrap step (`--standalone`) to get wrong.
    'controller.quorum.voters': `1@${host}:${ports.controllerPort}`,
    listeners: `CLIENT://${host}:${ports.port},BROKER://${host}:${ports.brokerPort},CONTROLLER://${host}:${ports.controllerPort}`,
    'advertised.listeners': `CLIENT://${host}:${ports.port},BROKER://${host}:${ports.brokerPort}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'BROKER',
    'listener.security.protocol.map': `CLIENT:${proto},BROKER:${proto},CONTROLLER:${proto}`,
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
const LOG4J2 = `status = warn
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

/**
 * Start one Kafka node (KRaft, broker + controller) on free loopback ports, with its own data and logs
 * under `opts.dir`: format the storage when new, then wait until a metadata request answers. Fails fast
 * with the log tail if the process dies first.
 */
export async function startKafka(opts: KafkaOptions): Promise<KafkaServer> {
  const heapMb = opts.heapMb ?? 512;
  if (!Number.isInteger(heapMb) || heapMb < 128 || heapMb > 16_384)
    throw new Error(`startKafka: heapMb must be an integer in [128, 16384], got ${heapMb}`);
  if (opts.tls && (opts.tls.requireClientAuth ?? true) && !opts.probe?.cert)
    throw new Error('startKafka: tls requires client certificates, so probe.cert must be given');
  const home = await kafkaTool.ensure();
  const java = join(javaHome(KAFKA_JAVA_MIN), 'bin', 'java');
  const classpath = join(home, 'lib', '*');
  const host = '127.0.0.1';
  const ports: Ports = {
    port: await freePort(host),
    brokerPort: await freePort(host),
    controllerPort: await freePort(host),
  };
  const conf = join(opts.dir, 'conf');
  for (const d of [conf, join(opts.dir, 'data'), join(opts.dir, 'logs')])
    mkdirSync(d, { recursive: true });
  const propsFile = join(conf, 'server.properties');
  writeFileSync(propsFile, renderProperties(kafkaProperties(opts, host, ports)));
  writeFileSync(join(conf, 'log4j2.properties'), LOG4J2);
  const log4j = `-Dlog4j2.configurationFile=${join(conf, 'log4j2.properties')}`;

  // The cluster id lives beside the data: a restart reuses the formatted storage.
  const idFile = join(opts.dir, 'cluster-id');
  const clusterId = existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : newClusterId();
  let formatMs = 0;
  if (!existsSync(join(opts.dir, 'data', 'meta.properties'))) {
    const t0 = Date.now();
    await run(
      java,
      [
        '-Xmx256m',
        log4j,
        '-cp',
        classpath,
        KAFKA_STORAGE_TOOL,
        'format',
        '-t',
        clusterId,
        '-c',
        propsFile,
      ],
      {
        what: 'kafka-storage format',
        timeoutMs: 120_000,
      },
    );
    writeFileSync(idFile, `${clusterId}\n`);
    formatMs = Date.now() - t0;
  }

  const started = Date.now();
  const proc = ManagedProcess.start({
    name: 'kafka',
    command: java,
    args: [
      `-Xms${heapMb}m`,
      `-Xmx${heapMb}m`,
      ...KAFKA_JVM_OPTIONS,
      log4j,
      `-Dkafka.logs.dir=${join(opts.dir, 'logs')}`,
      '-cp',
      classpath,
      KAFKA_MAIN,
      propsFile,
    ],
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
