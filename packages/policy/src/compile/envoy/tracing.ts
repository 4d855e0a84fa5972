/**
 * Tracing in a sidecar (ADR 0023), when the model declares `tracing` and the options carry `tracing`:
 * - every HTTP connection manager of the sidecar's inbound listeners (the edge's too) traces with
 *   Envoy's OpenTelemetry tracer (`envoy.tracers.opentelemetry`) at the model's sampling rate, and
 *   exports its spans over OTLP/HTTP to the cluster `trace_collector`, which originates mTLS to the
 *   collector with the sidecar's own SVID (SDS) and checks the collector's SPIFFE ID;
 * - a telemetry egress listener on the pod's loopback (plaintext, pod-local, like the app's other
 *   egress) takes the app's own OTLP/HTTP export, `POST /v1/traces` only, and forwards it to the same
 *   cluster; anything else is a 404.
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/trace/v3/opentelemetry.proto
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto#extensions-filters-network-http-connection-manager-v3-httpconnectionmanager-tracing
 */
import { collectorSpiffeId, otlpTracesPath } from '../../identity.ts';
import type { Model } from '../../schema.ts';
import type { EnvoyOptions } from '../envoy.ts';
import type {
  EnvoyCluster,
  EnvoyListener,
  HcmTracing,
  HttpConnectionManager,
} from '../envoy-types.ts';
import type { HcmBuilder } from './ir.ts';
import type { Sidecar } from './listeners.ts';
import { addCluster, cluster, endpoint, upstreamTls } from './resources.ts';

/** The cluster spans (Envoy's and the app's) go to: mTLS to the collector. */
export const traceCollectorCluster = 'trace_collector';
/** The telemetry egress listener's name and stat prefix. */
export const telemetryEgressListenerName = 'telemetry_egress';

/** The `service.name` of a sidecar's spans: `<workload>-sidecar` (the app's is `<workload>`). */
export function sidecarServiceName(workload: string): string {
  return `${workload}-sidecar`;
}

/**
 * The DNS name the collector's SVID carries beside its SPIFFE ID, `<service account>.<namespace>.svc`:
 * the SNI and the `:authority` of the export (Envoy checks the URI SAN; the name is for logs and for
 * clients that check DNS names).
 */
export function collectorServerName(model: Model): string | undefined {
  const c = model.tracing?.collector;
  if (!c) return undefined;
  return `${c.serviceAccount}.${c.namespace ?? model.namespace}.svc`;
}

/** Whether this sidecar traces: the model declares a collector and the options say where it is. */
function tracingOn(
  model: Model,
  o: EnvoyOptions,
): o is EnvoyOptions & Required<Pick<EnvoyOptions, 'tracing'>> {
  return model.tracing !== undefined && o.tracing !== undefined;
}

/** The collector cluster: the front's address, mTLS with the sidecar's SVID, the collector's SPIFFE ID. */
function collectorCluster(model: Model, o: EnvoyOptions): EnvoyCluster {
  const id = collectorSpiffeId(model);
  if (id === undefined || o.tracing === undefined)
    throw new Error('compileEnvoy: tracing is set but the model declares no tracing.collector');
  return cluster(
    traceCollectorCluster,
    o.tracing.collector,
    upstreamTls(o.sds.dir, id, collectorServerName(model)),
  );
}

/** The HCM `tracing` block of a sidecar's listeners. */
export function hcmTracing(model: Model, o: EnvoyOptions): HcmTracing {
  const server = collectorServerName(model) ?? 'collector';
  return {
    // Envoy's Percent is 0-100; the model's sampling is a fraction.
    random_sampling: { value: (model.tracing?.sampling ?? 1) * 100 },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
        http_service: {
          http_uri: {
            uri: `https://${server}${otlpTracesPath}`,
            cluster: traceCollectorCluster,
            timeout: '5s',
          },
        },
        service_name: o.tracing?.serviceName ?? sidecarServiceName(o.workload),
      },
    },
  };
}

/** Sets `tracing` on every inbound HCM and adds the collector cluster, when tracing is on. */
export const tracing: HcmBuilder = {
  patchHcm(h, l) {
    if (tracingOn(l.model, l.options)) h.tracing = hcmTracing(l.model, l.options);
  },
  patchResources(clusters, l) {
    if (tracingOn(l.model, l.options)) addCluster(clusters, collectorCluster(l.model, l.options));
  },
};

/**
 * The telemetry egress listener, or undefined when tracing is off or the options give it no port:
 * plaintext on 127.0.0.1 (the pod's loopback), `POST /v1/traces` to the collector, else 404. It
 * does not trace itself (exports would beget exports).
 */
export function telemetryEgressListener(s: Sidecar): EnvoyListener | undefined {
  if (!tracingOn(s.model, s.o) || s.o.tracing.egressPort === undefined) return undefined;
  addCluster(s.clusters, collectorCluster(s.model, s.o));
  const h: HttpConnectionManager = {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: telemetryEgressListenerName,
    codec_type: 'AUTO',
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    forward_client_cert_details: 'SANITIZE',
    route_config: {
      name: telemetryEgressListenerName,
      virtual_hosts: [
        {
          name: telemetryEgressListenerName,
          domains: ['*'],
          routes: [
            {
              name: 'otlp-traces',
              match: {
                path: otlpTracesPath,
                headers: [{ name: ':method', string_match: { exact: 'POST' } }],
              },
              route: { cluster: traceCollectorCluster, timeout: '10s' },
            },
            { name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } },
          ],
        },
      ],
    },
    http_filters: [
      {
        name: 'envoy.filters.http.router',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
        },
      },
    ],
  };
  return {
    name: telemetryEgressListenerName,
    address: endpoint('127.0.0.1', s.o.tracing.egressPort),
    filter_chains: [
      { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: h }] },
    ],
  };
}
