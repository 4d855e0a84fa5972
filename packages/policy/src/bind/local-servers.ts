/**
 * The servers of a local stack (Cassandra, Kafka, Keycloak): which may run as pods of their own,
 * and where their metrics are (ADR 0020, ADR 0024).
 */
import type { Listener } from './allocator.ts';

/** The stack's servers that can run as pods of their own (`environment.pods.servers`). */
export const localServers = ['cassandra', 'kafka', 'keycloak'] as const;

/** A server of the stack that can run as a pod. */
export type LocalServer = (typeof localServers)[number];

/**
 * Each server's slot in the metrics blocks (`serverMetricsFrom`, `serverMetricsAdminFrom`,
 * `jmxExporterFrom`): fixed, so that a port never moves when another server gains metrics.
 */
export const localServerMetricsSlots = { cassandra: 0, kafka: 1, keycloak: 2, nginx: 3 } as const;

/**
 * The loopback listeners of the servers' metrics: a front and its admin for each of Cassandra,
 * Kafka, Keycloak and the ingress nginx, the JMX exporter agent of Cassandra and of Kafka (Keycloak
 * serves its own metrics on its management interface, `keycloakManagement`) and nginx's own metrics
 * server (`jmxExporterFrom` + its slot), at a stack's `ports`: reserved whether or not the servers
 * are pods (without pods, that is where they are).
 */
export function serverMetricsListeners(
  ports: Record<'serverMetricsFrom' | 'serverMetricsAdminFrom' | 'jmxExporterFrom', number>,
): Listener[] {
  const blocks = {
    cassandra: ['serverMetricsFrom', 'serverMetricsAdminFrom', 'jmxExporterFrom'],
    kafka: ['serverMetricsFrom', 'serverMetricsAdminFrom', 'jmxExporterFrom'],
    keycloak: ['serverMetricsFrom', 'serverMetricsAdminFrom'],
    nginx: ['serverMetricsFrom', 'serverMetricsAdminFrom', 'jmxExporterFrom'],
  } as const;
  return ([...localServers, 'nginx'] as const).flatMap((server) =>
    blocks[server].map((name) => ({
      network: 'loopback',
      endpoint: { address: '127.0.0.1', port: ports[name] + localServerMetricsSlots[server] },
      path: `environment.ports.${name}`,
      what: `the stack's ${name} listener of ${server}`,
    })),
  );
}
