/**
 * The listeners of a sidecar and the clusters they route to. Outbound (per `calls` entry): a loopback
 * listener that originates mTLS with the workload SVID and checks the upstream's SPIFFE ID. Inbound
 * (per model port): mTLS that requires a caller's certificate, then RBAC and a TCP proxy (tcp ports) or
 * an HTTP connection manager whose filters come from the builders in `filters.ts`. The edge's inbound
 * listener is plaintext on loopback (nginx terminates TLS in front of it) and routes the model's routes
 * to the backends over mTLS.
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener.proto
 */
import {
  callersOf,
  dataServiceSpiffeId,
  dataServices,
  routesOf,
  spiffeId,
  workloadProviders,
} from '../../identity.ts';
import type { DataService } from '../../identity.ts';
import type { Model, PortSpec, Route, Workload } from '../../schema.ts';
import type { EnvoyOptions } from '../envoy.ts';
import type {
  EnvoyCluster,
  EnvoyListener,
  EnvoyRoute,
  HttpConnectionManager,
  NetworkFilter,
  RbacPolicy,
  TlsTransportSocket,
} from '../envoy-types.ts';
import { tcpAccessLogs } from './access-log.ts';
import { hcmBuilders, httpFilters } from './filters.ts';
import { need } from './ir.ts';
import type { HttpListenerIr } from './ir.ts';
import { routeMatch } from './match.ts';
import { peersOnly } from './rbac.ts';
import { cluster, downstreamTls, endpoint, upstreamTls } from './resources.ts';

/** What every listener builder of one sidecar reads; `clusters` collects what they route to. */
export interface Sidecar {
  model: Model;
  o: EnvoyOptions;
  w: Workload;
  callers: string[];
  clusters: EnvoyCluster[];
}

/** The sidecar of `o.workload`, with no clusters yet. */
export function sidecar(model: Model, o: EnvoyOptions, w: Workload): Sidecar {
  return { model, o, w, callers: callersOf(model, o.workload), clusters: [] };
}

const routeTimeout = '15s';

function tcpProxy(o: EnvoyOptions, name: string, clusterName: string): NetworkFilter {
  const logs = tcpAccessLogs(o, name);
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
      stat_prefix: name,
      cluster: clusterName,
      ...(logs ? { access_log: logs } : {}),
    },
  };
}

/** One cluster per callee, and a loopback listener for the callees the app reaches in plaintext. */
export function outboundListeners(s: Sidecar): EnvoyListener[] {
  const listeners: EnvoyListener[] = [];
  for (const target of s.w.calls) {
    const up = need(s.o.outbound?.[target], `outbound.${target}`);
    const isData = (dataServices as readonly string[]).includes(target);
    const san =
      up.spiffeId ??
      (isData ? dataServiceSpiffeId(s.model, target as DataService) : spiffeId(s.model, target));
    const name = `outbound_${target}`;
    s.clusters.push(cluster(name, up, upstreamTls(s.o.sds.dir, san, up.sni)));
    if (up.listenPort !== undefined)
      listeners.push({
        name,
        address: endpoint('127.0.0.1', up.listenPort),
        filter_chains: [{ filters: [tcpProxy(s.o, name, name)] }],
      });
  }
  return listeners;
}

/** The HTTP connection manager of a listener: base settings, the filter chain, then each builder's patch. */
function hcm(l: HttpListenerIr, routes: EnvoyRoute[]): HttpConnectionManager {
  const h: HttpConnectionManager = {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: l.name,
    codec_type: 'AUTO',
    // Authorization matches paths: normalize them first, and refuse %2F tricks.
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    // Never pass on a client's own x-forwarded-client-cert; identity-headers may set it instead.
    forward_client_cert_details: 'SANITIZE',
    route_config: { name: l.name, virtual_hosts: [{ name: l.name, domains: ['*'], routes }] },
    http_filters: httpFilters(l),
  };
  for (const b of hcmBuilders) b.patchHcm?.(h, l);
  return h;
}

/** The Envoy route of a model route, to `clusterName`, with each builder's per-route configuration. */
function modelRoute(
  l: HttpListenerIr,
  name: string,
  route: Route,
  clusterName: string,
): EnvoyRoute {
  const envoy: EnvoyRoute = {
    name,
    match: routeMatch(route),
    route: { cluster: clusterName, timeout: routeTimeout },
  };
  for (const b of hcmBuilders) b.patchRoute?.({ name, route, envoy }, l);
  return envoy;
}

/** An HTTP listener: the IR's routes plus a last route, one HCM, and the builders' clusters. */
function httpListener(
  s: Sidecar,
  l: HttpListenerIr,
  listenPort: number,
  routes: EnvoyRoute[],
  tls: TlsTransportSocket | undefined,
): EnvoyListener {
  const typedConfig = hcm(l, routes);
  for (const b of hcmBuilders) b.patchResources?.(s.clusters, l);
  const filters: NetworkFilter[] = [
    { name: 'envoy.filters.network.http_connection_manager', typed_config: typedConfig },
  ];
  return {
    name: l.name,
    address: endpoint(s.o.inboundAddress ?? '127.0.0.1', listenPort),
    filter_chains: [tls ? { transport_socket: tls, filters } : { filters }],
  };
}

/** The edge: plaintext HTTP from nginx on loopback, the model's routes to the backends over mTLS. */
function edgeListener(s: Sidecar, port: PortSpec, listenPort: number): EnvoyListener {
  const l: HttpListenerIr = {
    name: `inbound_${port.name}`,
    port: port.name,
    edge: true,
    routes: Object.entries(s.model.routes).filter(([, r]) => s.w.calls.includes(r.backend)),
    providers: [],
    callers: s.callers,
    model: s.model,
    options: s.o,
  };
  const routes = l.routes.map(([n, r]) => modelRoute(l, n, r, `outbound_${r.backend}`));
  routes.push({ name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } });
  return httpListener(s, l, listenPort, routes, undefined);
}

/** A TCP port: the callers by SPIFFE ID (network RBAC), then a TCP proxy to the app. */
function tcpListener(
  s: Sidecar,
  port: PortSpec,
  listenPort: number,
  tls: TlsTransportSocket,
  appCluster: string,
): EnvoyListener {
  const name = `inbound_${port.name}`;
  const policies: Record<string, RbacPolicy> = {};
  if (s.callers.length > 0) policies[`peers_${port.name}`] = peersOnly(s.model, s.callers);
  const rbac: NetworkFilter = {
    name: 'envoy.filters.network.rbac',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
      stat_prefix: name,
      rules: { action: 'ALLOW', policies },
    },
  };
  return {
    name,
    address: endpoint(s.o.inboundAddress ?? '127.0.0.1', listenPort),
    filter_chains: [{ transport_socket: tls, filters: [rbac, tcpProxy(s.o, name, appCluster)] }],
  };
}

/** The inbound listener of one model port (and the clusters it needs). */
export function inboundListener(s: Sidecar, port: PortSpec): EnvoyListener {
  const listenPort = need(s.o.inbound[port.name], `inbound.${port.name}`);
  if (s.w.edge) return edgeListener(s, port, listenPort);
  const app = need(s.o.app?.[port.name], `app.${port.name}`);
  const appCluster = `app_${port.name}`;
  s.clusters.push(cluster(appCluster, app, undefined, port.protocol === 'grpc'));
  const tls = downstreamTls(
    s.o.sds.dir,
    s.callers.map((c) => spiffeId(s.model, c)),
    port.protocol === 'tcp' ? undefined : ['h2', 'http/1.1'],
  );
  if (port.protocol === 'tcp') return tcpListener(s, port, listenPort, tls, appCluster);
  const l: HttpListenerIr = {
    name: `inbound_${port.name}`,
    port: port.name,
    edge: false,
    routes: routesOf(s.model, s.o.workload, port.name),
    providers: workloadProviders(s.model, s.o.workload),
    callers: s.callers,
    model: s.model,
    options: s.o,
  };
  const routes = l.routes.map(([n, r]) => modelRoute(l, n, r, appCluster));
  routes.push({
    name: 'default',
    match: { prefix: '/' },
    route: { cluster: appCluster, timeout: routeTimeout },
  });
  return httpListener(s, l, listenPort, routes, tls);
}
