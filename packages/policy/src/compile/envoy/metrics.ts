/**
 * The metrics listener of a sidecar (ADR 0020): a listener of its own, mTLS that admits only the
 * model's metrics scraper (`metrics.scraper`), then RBAC on the scraper's SPIFFE principal, GET and the
 * exact metrics paths. It routes `/stats/prometheus` to the sidecar's own admin interface (on
 * loopback, never reachable from outside) and the workload's declared `metrics.path` to its app; any
 * other path is a 404 after RBAC has already refused it (403).
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto
 */
import { scraperSpiffeId, sidecarStatsPath } from '../../identity.ts';
import type {
  EnvoyListener,
  EnvoyRoute,
  HttpConnectionManager,
  RbacPolicy,
} from '../envoy-types.ts';
import type { Sidecar } from './listeners.ts';
import { addCluster, cluster, downstreamTls, endpoint } from './resources.ts';

/** The listener's name and its HCM's stat prefix. */
export const metricsListenerName = 'metrics';
/** The cluster of the sidecar's own admin interface (`/stats/prometheus`). */
export const adminStatsCluster = 'metrics_admin';

/** The metrics listener, or undefined when `o.metrics` is not set. Throws when it cannot be built. */
export function metricsListener(s: Sidecar): EnvoyListener | undefined {
  const m = s.o.metrics;
  if (m === undefined) return undefined;
  const scraper = scraperSpiffeId(s.model);
  if (scraper === undefined)
    throw new Error(`compileEnvoy: metrics is set but the model declares no metrics.scraper`);
  addCluster(s.clusters, cluster(adminStatsCluster, { address: '127.0.0.1', port: m.statsPort }));
  const targets: { name: string; path: string; cluster: string }[] = [
    { name: 'sidecar-stats', path: sidecarStatsPath, cluster: adminStatsCluster },
  ];
  const app = s.w.metrics;
  if (app !== undefined && !s.w.edge) {
    const at = s.o.app?.[app.port];
    if (at === undefined)
      throw new Error(
        `compileEnvoy: app.${app.port} is needed for workloads.${s.o.workload}.metrics`,
      );
    const name = `app_${app.port}`;
    addCluster(s.clusters, cluster(name, at));
    targets.push({ name: 'app-metrics', path: app.path, cluster: name });
  }
  const policy: RbacPolicy = {
    permissions: targets.map((t) => ({
      and_rules: {
        rules: [
          { header: { name: ':method', string_match: { exact: 'GET' } } },
          { url_path: { path: { exact: t.path } } },
        ],
      },
    })),
    principals: [{ authenticated: { principal_name: { exact: scraper } } }],
  };
  const routes: EnvoyRoute[] = targets.map((t) => ({
    name: t.name,
    match: { path: t.path },
    route: { cluster: t.cluster, timeout: '10s' },
  }));
  routes.push({ name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } });
  return {
    name: metricsListenerName,
    address: endpoint(m.address ?? s.o.inboundAddress ?? '127.0.0.1', m.port),
    filter_chains: [
      {
        transport_socket: downstreamTls(s.o.sds.dir, [scraper], ['h2', 'http/1.1']),
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: hcm(routes, policy),
          },
        ],
      },
    ],
  };
}

/**
 * The HCM of a listener that admits one set of peers to a few exact paths: RBAC (`policy`, by
 * default the scraper's: GET and the metrics paths), then the router. `name` is the stat prefix and
 * route configuration's name, `policyName` the RBAC policy's.
 */
export function hcm(
  routes: EnvoyRoute[],
  policy: RbacPolicy,
  name: string = metricsListenerName,
  policyName = 'scraper',
): HttpConnectionManager {
  return {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: name,
    codec_type: 'AUTO',
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    forward_client_cert_details: 'SANITIZE',
    route_config: {
      name,
      virtual_hosts: [{ name, domains: ['*'], routes }],
    },
    http_filters: [
      {
        name: 'envoy.filters.http.rbac',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
          rules: { action: 'ALLOW', policies: { [policyName]: policy } },
        },
      },
      {
        name: 'envoy.filters.http.router',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
        },
      },
    ],
  };
}
