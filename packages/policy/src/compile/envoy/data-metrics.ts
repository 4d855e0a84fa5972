/**
 * The metrics front of a data node (ADR 0020, for Cassandra and Kafka): an Envoy with one listener,
 * the same as a sidecar's metrics listener. mTLS admits only the model's metrics scraper (its SPIFFE
 * ID as the client certificate's URI SAN), RBAC allows it `GET /metrics` and nothing else, and the
 * route goes to the JMX exporter agent on the node's own loopback (`127.0.0.1:<exporterPort>`), which
 * nothing outside the node's pod can reach. The Envoy presents the node's own SVID (the data
 * service's SPIFFE ID plus the DNS name Prometheus checks, {@link dataMetricsServerName}).
 */
import { scraperSpiffeId, type DataService } from '../../identity.ts';
import type { Model } from '../../schema.ts';
import type { EnvoyEndpoint, EnvoyOptions } from '../envoy.ts';
import type { EnvoyBootstrap, EnvoyRoute, RbacPolicy, SdsFile } from '../envoy-types.ts';
import { idleSettings } from './idle.ts';
import { hcm, metricsListenerName } from './metrics.ts';
import { cluster, downstreamTls, endpoint, sdsFiles } from './resources.ts';

/** The path the JMX exporter serves, and the only one the front admits. */
export const dataMetricsPath = '/metrics';

/** The cluster of the node's JMX exporter (on 127.0.0.1). */
export const jmxExporterCluster = 'jmx_exporter';

/** Options of {@link compileDataMetricsProxy}. */
export interface DataMetricsProxyOptions {
  /** The data service whose node this fronts. */
  service: DataService;
  /** Where the mTLS listener binds (the node's pod address, or a loopback port). */
  listen: EnvoyEndpoint;
  /** The JMX exporter's port on the node's 127.0.0.1. */
  exporterPort: number;
  /** The node's SVID and trust bundle, as SDS files (as a sidecar's). */
  sds: EnvoyOptions['sds'];
  /** Admin port on 127.0.0.1; omit to leave `admin` out of the bootstrap. */
  adminPort?: number;
}

/** The DNS name a data node's SVID carries for Prometheus's `server_name`: `<service>.<ns>.svc`. */
export function dataMetricsServerName(model: Model, service: DataService): string {
  return `${service}.${model.namespace}.svc`;
}

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
  const routes: EnvoyRoute[] = [
    {
      name: 'jmx-metrics',
      match: { path: dataMetricsPath },
      route: { cluster: jmxExporterCluster, timeout: '10s' },
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
        clusters: [cluster(jmxExporterCluster, { address: '127.0.0.1', port: o.exporterPort })],
      },
      ...idleSettings(),
    },
    sdsFiles: sdsFiles(o.sds),
  };
}
