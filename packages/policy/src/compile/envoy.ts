/**
 * Envoy sidecars: one static bootstrap per workload, plus the SDS files it watches.
 *
 * Laid out like envoyproxy/gateway's translator (internal/xds/translator): `envoy/listeners.ts` builds
 * the outbound listeners (mTLS to each callee) and one inbound listener per model port; an HTTP
 * listener's filter chain comes from one builder per filter (`envoy/jwt.ts`, `rbac.ts`,
 * `ratelimit.ts`, `router.ts`, plus `identity-headers.ts` for what the app learns of the caller), each
 * adding its own clusters and per-route configuration, in the order of `httpFilterOrder`
 * (`envoy/filters.ts`). Inbound: TLS that requires a client certificate from the mesh CA, with the SAN
 * matched against the workload's callers; on http ports, `jwt_authn`, then RBAC on the SPIFFE principal
 * plus the token's issuer, scopes and claims, then a per-route local rate limit. Ports without routes:
 * RBAC on the principal only.
 *
 * Field references (Envoy v3 API): listeners/clusters https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener.proto,
 * TLS https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/tls.proto,
 * SDS from files https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret.
 */
import { own } from '../identity.ts';
import type { BoundModel } from '../bind/types.ts';
import type { EnvoyBootstrap, SdsFile } from './envoy-types.ts';
import { idleSettings } from './envoy/idle.ts';
import { checkPayloadHeader } from './envoy/identity-headers.ts';
import { inboundListener, outboundListeners, sidecar } from './envoy/listeners.ts';
import { metricsListener } from './envoy/metrics.ts';
import { telemetryEgressListener } from './envoy/tracing.ts';
import { endpoint, sdsFiles } from './envoy/resources.ts';

export {
  envoyAccessLogSource,
  httpAccessLogFormat,
  httpAuditFields,
  tcpAccessLogFormat,
  tcpAuditFields,
} from './envoy/access-log.ts';
export { faultDefaultDelay, faultDelayRuntime } from './envoy/fault.ts';
export { httpFilterOrder } from './envoy/filters.ts';
export { jwtAudienceFailure, jwtFailureKey, jwtMetadataFilter } from './envoy/jwt.ts';
export { pathMatcher } from './envoy/match.ts';
export { adminStatsCluster, metricsListenerName } from './envoy/metrics.ts';
export {
  collectorServerName,
  hcmTracing,
  sidecarServiceName,
  telemetryEgressListenerName,
  traceCollectorCluster,
} from './envoy/tracing.ts';

/** A host and port. */
export interface EnvoyEndpoint {
  address: string;
  port: number;
}

/** Options of `compileEnvoy`: the concrete addresses and files of one sidecar. */
export interface EnvoyOptions {
  /** The workload this sidecar fronts. */
  workload: string;
  /** Inbound listener port for each of the workload's model ports (by port name). */
  inbound: Record<string, number>;
  /** Address the inbound listeners bind to. @default '127.0.0.1' */
  inboundAddress?: string;
  /** Where the application listens, for each model port (not needed for the edge workload). */
  app?: Record<string, EnvoyEndpoint>;
  /**
   * Upstreams, one per `calls` entry (a workload or cassandra/kafka): where its TLS endpoint is (for a
   * workload: its sidecar's inbound port), an optional loopback `listenPort` the app connects to in
   * plaintext, the SNI, and the SPIFFE ID to expect (default: the workload's or data service's).
   */
  outbound?: Record<
    string,
    EnvoyEndpoint & { listenPort?: number; sni?: string; spiffeId?: string }
  >;
  /**
   * Admin port; the admin interface is always bound to 127.0.0.1. Omit it to leave `admin` out of the
   * bootstrap (for a supervisor that binds the admin interface itself).
   */
  adminPort?: number;
  /**
   * File SDS. `dir` holds the SDS files this compiler returns (Envoy watches it for moves); the PEM paths
   * are where the mesh CA writes the SVID and the trust bundle (their directory is watched too).
   */
  sds: { dir: string; certChain: string; privateKey: string; trustBundle: string };
  /**
   * JWKS source per provider: a file, or an endpoint (default: host and port of the model's jwksUri).
   * An endpoint speaks TLS when the jwksUri is https (`tls: false` is refused then), trusting the
   * roots in `caFile` (default: the system's) and requiring the jwksUri's host in the certificate.
   */
  jwks?: Record<string, { file: string } | (EnvoyEndpoint & { tls?: boolean; caFile?: string })>;
  /** Node id. @default the workload name */
  nodeId?: string;
  /**
   * Header that carries the verified JWT payload (`base64url(JSON)`) to the app
   * (`JwtProvider.forward_payload_header`); lower case. Omit it to send the token only.
   */
  payloadHeader?: string;
  /**
   * Where Envoy appends its JSON access log (`envoy/access-log.ts`): a line per request on HTTP
   * listeners, per connection on TCP proxies. Omit it for no access log.
   */
  accessLog?: string;
  /**
   * The metrics listener (ADR 0020): its port, its address (default: `inboundAddress`), and the
   * admin port its `/stats/prometheus` route reaches on 127.0.0.1. Only the model's metrics scraper
   * may use it. Omit it for no metrics listener.
   */
  metrics?: { port: number; address?: string; statsPort: number };
  /**
   * Test stacks only (ADR 0025): a fault filter on the non-edge inbound HTTP listeners that delays
   * 0 % of requests until the admin runtime (`faultDelayRuntime`) says otherwise, and an admin
   * runtime layer for `/runtime_modify`. @default false
   */
  faultInjection?: boolean;
  /**
   * The bucket boundaries (ms) of the per-route `upstream_rq_time` histograms, when Envoy's defaults
   * cannot count a budget the SLO rules judge (`sloBucketsMs`; e.g. the `ci` environment's 30 ms
   * p99). For the edge sidecar, whose routes the rules measure. @default Envoy's defaults
   */
  routeHistogramBucketsMs?: readonly number[];
  /**
   * Tracing (ADR 0023), when the model declares `tracing`: where the collector's mTLS front is, the
   * telemetry egress listener's port on 127.0.0.1 for the app's OTLP/HTTP export (none when
   * omitted), and the `service.name` of the sidecar's spans (default `<workload>-sidecar`). Omit it
   * for no tracing.
   */
  tracing?: { collector: EnvoyEndpoint; egressPort?: number; serviceName?: string };
}

/**
 * The stat names of the per-route request-time histograms
 * (`vhost.<virtual host>.route.<stat_prefix>.upstream_rq_time`).
 */
export const routeTimeHistogramRegex = String.raw`^vhost\.(.+\.)?route\.(.+\.)?upstream_rq_time$`;

/** What `compileEnvoy` returns: the bootstrap and the SDS files, keyed by their absolute path. */
export interface EnvoyArtefacts {
  bootstrap: EnvoyBootstrap;
  sdsFiles: Record<string, SdsFile>;
}

/** Compiles the Envoy bootstrap of one workload's sidecar, and its SDS files. */
export function compileEnvoy(model: BoundModel, o: EnvoyOptions): EnvoyArtefacts {
  const w = own(model.workloads, o.workload);
  if (!w) throw new Error(`compileEnvoy: no workload '${o.workload}' in the model`);
  checkPayloadHeader(o);
  if (o.accessLog !== undefined && !/^\/[^\n\r%]*$/.test(o.accessLog))
    throw new Error(
      `compileEnvoy: accessLog must be an absolute path (no newline or '%'), got '${o.accessLog}'`,
    );
  const s = sidecar(model, o, w);
  const listeners = outboundListeners(s);
  for (const port of w.ports) listeners.push(inboundListener(s, port));
  const metrics = metricsListener(s);
  if (metrics) listeners.push(metrics);
  const telemetry = telemetryEgressListener(s);
  if (telemetry) listeners.push(telemetry);
  return {
    bootstrap: {
      node: { id: o.nodeId ?? o.workload, cluster: o.workload },
      ...(o.adminPort !== undefined
        ? { admin: { address: endpoint('127.0.0.1', o.adminPort) } }
        : {}),
      static_resources: { listeners, clusters: s.clusters },
      ...idleSettings(),
      ...(o.faultInjection === true
        ? { layered_runtime: { layers: [{ name: 'admin', admin_layer: {} }] } }
        : {}),
      ...(o.routeHistogramBucketsMs !== undefined
        ? {
            stats_config: {
              histogram_bucket_settings: [
                {
                  match: { safe_regex: { regex: routeTimeHistogramRegex } },
                  buckets: [...o.routeHistogramBucketsMs],
                },
              ],
            },
          }
        : {}),
    },
    sdsFiles: sdsFiles(o.sds),
  };
}
