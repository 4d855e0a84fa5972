/**
 * The Prometheus JMX exporter as a Java agent in a data node's JVM (Cassandra, Kafka): its rules
 * and the `-javaagent` argument. The agent's HTTP server binds the node's own loopback only
 * (`127.0.0.1:<port>`, the `<HOST>:<PORT>:<EXPORTER_YAML>` argument form of the agent), so in a pod
 * nothing outside the pod reaches it; the scraper reads it through an mTLS listener in front
 * (`compileDataMetricsProxy` in @trellis/policy, ADR 0020).
 *
 * The rules are kept short on purpose: `includeObjectNames` limits the MBean query of every scrape
 * to the few MBeans below (a scrape of every MBean of Cassandra walks thousands), and the rules name
 * what they export. The agent also exports its JVM's `jvm_*` and `process_*` series. Keys checked
 * against the 1.0.1 jar's `JmxCollector` (`includeObjectNames`, `lowercaseOutputName`, `rules` with
 * `pattern`, `name`, `type`, `labels`, `valueFactor`, `help`).
 */
import { join } from 'node:path';
import { stringify } from 'yaml';
import { jmxExporter } from '../toolchain/jmx-exporter.ts';

/** Where the agent's HTTP server binds: the node's (pod's) own loopback, never a public address. */
export const JMX_EXPORTER_HOST = '127.0.0.1';

/** The data nodes that carry the agent. */
export type JmxExporterTarget = 'cassandra' | 'kafka';

/** Options of the agent in a node: the loopback port its HTTP server listens on. */
export interface JmxExporterOptions {
  /** Port on 127.0.0.1 (inside the node's pod when it has one) for `/metrics`. */
  port: number;
}

interface Rule {
  pattern: string;
  name: string;
  type: 'COUNTER' | 'GAUGE';
  help: string;
  labels?: Record<string, string>;
  valueFactor?: number;
}

interface ExporterConfig {
  lowercaseOutputName: boolean;
  includeObjectNames: string[];
  rules: Rule[];
}

const cassandraLatency =
  'org.apache.cassandra.metrics<type=ClientRequest, scope=(Read|Write), name=Latency>';
const kafkaRequestTime =
  'kafka.network<type=RequestMetrics, name=TotalTimeMs, request=(Produce|FetchConsumer)>';

/**
 * The exporter configuration of each data node. Cassandra's client-request timers are in
 * microseconds (as `nodetool proxyhistograms` prints them; hence the `valueFactor` to seconds);
 * Kafka's request times are in milliseconds (kept, named `_ms`).
 */
export const JMX_EXPORTER_CONFIGS: Readonly<Record<JmxExporterTarget, ExporterConfig>> = {
  cassandra: {
    lowercaseOutputName: true,
    includeObjectNames: [
      'org.apache.cassandra.metrics:type=ClientRequest,scope=Read,name=Latency',
      'org.apache.cassandra.metrics:type=ClientRequest,scope=Write,name=Latency',
    ],
    rules: [
      {
        pattern: `${cassandraLatency}<>Count`,
        name: 'cassandra_client_requests',
        type: 'COUNTER',
        help: 'Client requests the coordinator served, by scope (read, write)',
        labels: { scope: '$1' },
      },
      {
        pattern: `${cassandraLatency}<>99thPercentile`,
        name: 'cassandra_client_request_latency_seconds',
        type: 'GAUGE',
        help: 'Coordinator latency of client requests, by quantile of the recent window',
        labels: { scope: '$1', quantile: '0.99' },
        valueFactor: 0.000001,
      },
      {
        pattern: `${cassandraLatency}<>50thPercentile`,
        name: 'cassandra_client_request_latency_seconds',
        type: 'GAUGE',
        help: 'Coordinator latency of client requests, by quantile of the recent window',
        labels: { scope: '$1', quantile: '0.5' },
        valueFactor: 0.000001,
      },
    ],
  },
  kafka: {
    lowercaseOutputName: true,
    includeObjectNames: [
      'kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec',
      'kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce',
      'kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchConsumer',
      'kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions',
    ],
    rules: [
      {
        pattern: 'kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec><>Count',
        name: 'kafka_server_messages_in',
        type: 'COUNTER',
        help: 'Messages appended to this broker, all topics',
      },
      {
        pattern: `${kafkaRequestTime}<>Count`,
        name: 'kafka_network_requests',
        type: 'COUNTER',
        help: 'Requests handled, by request type',
        labels: { request: '$1' },
      },
      {
        pattern: `${kafkaRequestTime}<>99thPercentile`,
        name: 'kafka_network_request_total_time_ms',
        type: 'GAUGE',
        help: 'Total time of a request in the broker, 99th percentile of the recent window',
        labels: { request: '$1', quantile: '0.99' },
      },
      {
        pattern: 'kafka.server<type=ReplicaManager, name=UnderReplicatedPartitions><>Value',
        name: 'kafka_server_under_replicated_partitions',
        type: 'GAUGE',
        help: 'Partitions led by this broker whose ISR is smaller than their replica set',
      },
    ],
  },
};

/** The exporter YAML of a data node. */
export function jmxExporterConfig(target: JmxExporterTarget): string {
  return `# Generated by Trellis (packages/local/src/harness/jmx-exporter.ts).\n${stringify(JMX_EXPORTER_CONFIGS[target])}`;
}

/** The config file's path under a node's `dir`. */
export function jmxExporterConfigFile(dir: string): string {
  return join(dir, 'conf', 'jmx-exporter.yaml');
}

/** Throws naming the field when the port is not a TCP port. */
export function checkJmxExporterPort(what: string, opts: JmxExporterOptions): void {
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65_535)
    throw new Error(`${what}: jmxExporter.port must be an integer in [1, 65535], got ${opts.port}`);
}

/** The `-javaagent:<jar>=127.0.0.1:<port>:<config>` argument for an agent jar (pure). */
export function jmxExporterAgentArgFor(jar: string, dir: string, opts: JmxExporterOptions): string {
  return `-javaagent:${jar}=${JMX_EXPORTER_HOST}:${opts.port}:${jmxExporterConfigFile(dir)}`;
}

/**
 * The agent argument of {@link jmxExporterAgentArgFor}, installing the agent when missing; it reads
 * the config at {@link jmxExporterConfigFile}, which the caller writes.
 */
export async function jmxExporterAgentArg(dir: string, opts: JmxExporterOptions): Promise<string> {
  return jmxExporterAgentArgFor(await jmxExporter.ensure(), dir, opts);
}
