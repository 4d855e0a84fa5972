/**
 * Start one local Kafka node (KRaft, broker + controller), alone or as a member of a cluster
 * (kafka-cluster.ts): its classpath, the storage format, and the process with a metadata readiness
 * probe. Configuration is in kafka-config.ts, clients in kafka-client.ts, the SPIFFE principal builder
 * in kafka-principal.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { podCommand } from '../pods/launch.ts';
import { run } from '../toolchain/exec.ts';
import { javaHome } from '../toolchain/java.ts';
import {
  KAFKA_JAVA_MIN,
  KAFKA_STORAGE_TOOL,
  KAFKA_VERSION,
  kafka as kafkaTool,
} from '../toolchain/kafka.ts';
import { probeKafka, type KafkaServer } from './kafka-client.ts';
import {
  KAFKA_LOG4J2,
  checkLoopback,
  kafkaConfFiles,
  kafkaProperties,
  kafkaServerArgs,
  newClusterId,
  renderProperties,
  type KafkaOptions,
  type KafkaServerPorts,
} from './kafka-config.ts';
import { ensureSpiffePrincipalBuilder } from './kafka-principal.ts';
import {
  checkJmxExporterPort,
  jmxExporterAgentArg,
  jmxExporterConfig,
  jmxExporterConfigFile,
} from './jmx-exporter.ts';
import { givePodHome, type TreeOwner } from './pod-files.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitUntil } from './wait.ts';

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

/**
 * Format the node's storage under `dir` (`kafka-storage format`), once: a no-op that resolves the
 * existing cluster id when `data/meta.properties` exists. `properties` is the rendered server.properties.
 */
export async function formatKafkaStorage(o: {
  dir: string;
  properties: string;
  classpath: string;
  clusterId?: string;
  /**
   * The pod user the node runs as: `dir` (made 0700, with a `tmp` for the JVM's temporary files)
   * and everything the format wrote become its. The format itself binds nothing, so it runs here.
   */
  owner?: TreeOwner;
}): Promise<{ clusterId: string; formatMs: number }> {
  const files = kafkaConfFiles(o.dir);
  for (const d of ['conf', 'data', 'logs', ...(o.owner ? ['tmp'] : [])])
    mkdirSync(join(o.dir, d), { recursive: true });
  try {
    return await format(o, files);
  } finally {
    if (o.owner) givePodHome(o.dir, o.owner);
  }
}

async function format(
  o: { dir: string; properties: string; classpath: string; clusterId?: string },
  files: ReturnType<typeof kafkaConfFiles>,
): Promise<{ clusterId: string; formatMs: number }> {
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
      // The config names its authorizer file under kafka.logs.dir: without it log4j2 would create
      // a directory literally called `${sys:kafka.logs.dir}` in the caller's working directory.
      `-Dkafka.logs.dir=${join(o.dir, 'logs')}`,
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
  const server = await launchKafka(opts);
  await awaitKafka(server, opts);
  return server;
}

/**
 * Format (when new) and spawn one node without waiting for it: the nodes of a cluster are launched
 * together, since none answers before a majority of the voters is up. Ports must be given for a
 * cluster member (its voters name them). See {@link awaitKafka}.
 */
export async function launchKafka(opts: KafkaOptions): Promise<KafkaServer> {
  const heapMb = opts.heapMb ?? 512;
  if (!Number.isInteger(heapMb) || heapMb < 128 || heapMb > 16_384)
    throw new Error(`startKafka: heapMb must be an integer in [128, 16384], got ${heapMb}`);
  if (opts.tls && (opts.tls.requireClientAuth ?? true) && !opts.probe?.cert)
    throw new Error('startKafka: tls requires client certificates, so probe.cert must be given');
  if (opts.jmxExporter) checkJmxExporterPort('startKafka', opts.jmxExporter);
  const host = opts.host ?? '127.0.0.1';
  // In a pod the node listens on the pod's address, inside a namespace this project made.
  if (!opts.pod) checkLoopback('host', host);
  if (opts.cluster && !opts.ports)
    throw new Error('startKafka: a cluster member needs fixed ports (its voters name them)');
  if (opts.pod && !opts.ports)
    throw new Error('startKafka: a node in a pod needs fixed ports (opts.ports)');
  const classpath = await kafkaClasspath(opts);
  const ports: KafkaServerPorts = opts.ports
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
    ...(opts.clusterId !== undefined ? { clusterId: opts.clusterId } : {}),
    ...(opts.pod ? { owner: { uid: opts.pod.uid, gid: opts.pod.gid } } : {}),
  });

  // A pod's JVM keeps its temporary files (and no hsperfdata) out of the shared /tmp.
  const jvmArgs: string[] = opts.pod
    ? [`-Djava.io.tmpdir=${join(opts.dir, 'tmp')}`, '-XX:+PerfDisableSharedMem']
    : [];
  if (opts.jmxExporter) {
    writeFileSync(jmxExporterConfigFile(opts.dir), jmxExporterConfig('kafka'));
    jvmArgs.push(await jmxExporterAgentArg(opts.dir, opts.jmxExporter));
  }
  const args = kafkaServerArgs({ dir: opts.dir, heapMb, classpath, jvmArgs });
  const proc = ManagedProcess.start({
    name: opts.cluster ? `kafka-${opts.cluster.nodeId}` : 'kafka',
    ...(opts.pod ? podCommand(opts.pod, kafkaJava(), args) : { command: kafkaJava(), args }),
    dir: opts.dir,
    stopGraceMs: 20_000,
  });
  return {
    host,
    nodeId: opts.cluster?.nodeId ?? 1,
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
    startedAt: Date.now(),
    stop: () => proc.stop(),
  };
}

/**
 * Wait until a node launched by {@link launchKafka} answers a metadata request with its cluster id
 * and an active controller, and set its `startupMs`. Stops the node and throws when it does not.
 */
export async function awaitKafka(
  server: KafkaServer,
  opts: Pick<KafkaOptions, 'probe' | 'startupTimeoutMs'>,
): Promise<void> {
  const proc = server.process;
  try {
    const id = await waitUntil(() => probeKafka(server, opts.probe), {
      what: `Kafka metadata on ${server.bootstrap}`,
      timeoutMs: opts.startupTimeoutMs ?? 180_000,
      intervalMs: 500,
      proc,
    });
    if (id !== server.clusterId)
      throw new Error(
        `Kafka on ${server.bootstrap} reports cluster ${id}, expected ${server.clusterId}`,
      );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  server.startupMs = Date.now() - server.startedAt;
}
