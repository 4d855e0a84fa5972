/**
 * The metrics front of a server (ADR 0020 for Cassandra and Kafka, ADR 0024 for Keycloak): an Envoy
 * with one listener, the same as a sidecar's metrics listener. mTLS admits only the model's metrics
 * scraper (its SPIFFE ID as the client certificate's URI SAN), RBAC allows it `GET /metrics` and
 * nothing else, and the route goes to the server's metrics on its own loopback
 * (`127.0.0.1:<exporterPort>`), which nothing outside the server's pod can reach: a data node's JMX
 * exporter agent (plain HTTP), or Keycloak's management interface, which serves HTTPS (it inherits
 * the server's TLS), so the front originates TLS to it and checks its certificate against the trust
 * bundle and the IP address 127.0.0.1; or nginx's stub_status gauges, which the ingress nginx renders
 * on its own loopback (plain HTTP, `compileNginxHttp`'s `metrics`). The Envoy presents the server's own SVID (its SPIFFE ID plus
 * the DNS name Prometheus checks, {@link dataMetricsServerName}).
 */
import { scraperSpiffeId, serverMetricsPath, type MetricsServer } from '../../identity.ts';
import type { Model } from '../../schema.ts';
import type { EnvoyEndpoint, EnvoyOptions } from '../envoy.ts';
import type { EnvoyBootstrap, EnvoyRoute, RbacPolicy, SdsFile } from '../envoy-types.ts';
import { idleSettings } from './idle.ts';
import { hcm, metricsListenerName } from './metrics.ts';
import { cluster, downstreamTls, endpoint, sdsFiles, upstreamServerTls } from './resources.ts';

/** The path the JMX exporter serves, and the only one the front admits. */
export const dataMetricsPath = serverMetricsPath;

/** The cluster of the node's JMX exporter (on 127.0.0.1). */
export const jmxExporterCluster = 'jmx_exporter';

/** The cluster of Keycloak's management interface (HTTPS on 127.0.0.1). */
export const keycloakManagementCluster = 'keycloak_management';

/** The cluster of nginx's loopback metrics server (plain HTTP on 127.0.0.1; `compileNginxHttp`). */
export const nginxMetricsCluster = 'nginx_metrics';

/** The address Keycloak's management interface binds and its certificate names (IP SAN). */
const loopback = '127.0.0.1';

/** Options of {@link compileDataMetricsProxy}. */
export interface DataMetricsProxyOptions {
  /** The server this fronts: a data service's node, Keycloak, or the ingress nginx. */
  service: MetricsServer;
  /** Where the mTLS listener binds (the node's pod address, or a loopback port). */
  listen: EnvoyEndpoint;
  /**
   * The metrics source's port on the server's 127.0.0.1: the JMX exporter agent (plain HTTP), or
   * Keycloak's management interface (HTTPS, verified against `sds.trustBundle` and 127.0.0.1).
   */
  exporterPort: number;
  /** The node's SVID and trust bundle, as SDS files (as a sidecar's). */
  sds: EnvoyOptions['sds'];
  /** Admin port on 127.0.0.1; omit to leave `admin` out of the bootstrap. */
  adminPort?: number;
}

/** The DNS name a data node's SVID carries for Prometheus's `server_name`: `<service>.<ns>.svc`. */
export function dataMetricsServerName(model: Model, service: MetricsServer): string {
  return `${service}.${model.namespace}.svc`;
}

/** Each server's metrics source: its cluster and the front's route to it. */
const metricsSource: Record<MetricsServer, { cluster: string; route: string }> = {
  cassandra: { cluster: jmxExporterCluster, route: 'jmx-metrics' },
  kafka: { cluster: jmxExporterCluster, route: 'jmx-metrics' },
  keycloak: { cluster: keycloakManagementCluster, route: 'keycloak-metrics' },
  nginx: { cluster: nginxMetricsCluster, route: 'nginx-metrics' },
};

const port = (what: string, p: number): void => {
  if (!Number.isInteger(p) || p < 1 || p > 65_535)
    throw new Error(`compileDataMetricsProxy: ${what} must be an integer in [1, 65535], got ${p}`);
};

/**
 * The Envoy bootstrap in front of a data node's JMX exporter, and its SDS files. Throws, naming the
 * field, when the model has no metrics scraper or a port is out of range.
 */
export function compileDataMetricsProxy(
  model: Model,
  o: DataMetricsProxyOptions,
): { bootstrap: EnvoyBootstrap; sdsFiles: Record<string, SdsFile> } {
  const scraper = scraperSpiffeId(model);
  if (scraper === undefined)
    throw new Error(
      `metrics.scraper: the model declares no metrics scraper, so nobody may read ${o.service}'s metrics`,
    );
  port('listen.port', o.listen.port);
  port('exporterPort', o.exporterPort);
  if (o.adminPort !== undefined) port('adminPort', o.adminPort);
  const policy: RbacPolicy = {
    permissions: [
      {
        and_rules: {
          rules: [
            { header: { name: ':method', string_match: { exact: 'GET' } } },
            { url_path: { path: { exact: dataMetricsPath } } },
          ],
        },
      },
    ],
    principals: [{ authenticated: { principal_name: { exact: scraper } } }],
  };
  const keycloak = o.service === 'keycloak';
  const { cluster: upstream, route: routeName } = metricsSource[o.service];
  const routes: EnvoyRoute[] = [
    {
      name: routeName,
      match: { path: dataMetricsPath },
      route: { cluster: upstream, timeout: '10s' },
    },
    { name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } },
  ];
  const node = `${o.service}-metrics`;
  return {
    bootstrap: {
      node: { id: node, cluster: node },
      ...(o.adminPort !== undefined
        ? { admin: { address: endpoint('127.0.0.1', o.adminPort) } }
        : {}),
      static_resources: {
        listeners: [
          {
            name: metricsListenerName,
            address: endpoint(o.listen.address, o.listen.port),
            filter_chains: [
              {
                transport_socket: downstreamTls(o.sds.dir, [scraper], ['h2', 'http/1.1']),
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: hcm(routes, policy),
                  },
                ],
              },
            ],
          },
        ],
        clusters: [
          cluster(
            upstream,
            { address: loopback, port: o.exporterPort },
            keycloak
              ? upstreamServerTls(o.sds.dir, {
                  san_type: 'IP_ADDRESS',
                  matcher: { exact: loopback },
                })
              : undefined,
          ),
        ],
      },
      ...idleSettings(),
    },
    sdsFiles: sdsFiles(o.sds),
  };
}
