/**
 * Istio's side of the audit trail and of tracing: the mesh config's extension providers (a JSON access
 * log with the audit fields every Trellis Envoy logs, and an OpenTelemetry tracer) and the mesh-wide
 * `telemetry.istio.io/v1` Telemetry that turns them on.
 *
 * Fields: the MeshConfig `ExtensionProvider` messages `EnvoyFileAccessLogProvider` (`path`,
 * `logFormat.labels`: a JSON format whose values are Envoy command operators) and
 * `OpenTelemetryTracingProvider` (`service` `[<namespace>/]<hostname>`, `port`) of istio.io/api
 * mesh/v1alpha1/config.proto; Telemetry `accessLogging[].providers`, `.match.mode`,
 * `tracing[].providers`, `.randomSamplingPercentage` (0–100) of istio.io/docs/reference/config/telemetry.
 *
 * Where Istio's Envoy keeps what the log reads (istio.io/istio pilot/pkg): the RBAC filter of every
 * ALLOW/DENY AuthorizationPolicy is `envoy.filters.http.rbac` (TCP: `envoy.filters.network.rbac`)
 * without a rules stat prefix, so its results are the plain `enforced_engine_result` and
 * `enforced_effective_policy_id`; jwt_authn puts each verified payload in its metadata under the key
 * `payload` (`filters.EnvoyJwtFilterPayload`), with `scope` split into a list.
 */
import { own } from '../identity.ts';
import type { BoundModel } from '../bind/types.ts';
import { meta as objectMeta } from './common.ts';
import type { ObjectMeta } from './common.ts';
import type { AccessLogJson } from './envoy-types.ts';
import {
  envoyAccessLogSource,
  httpAuditFields,
  meta,
  networkRbacFilter,
} from './envoy/access-log.ts';
import { jwtMetadataFilter } from './envoy/jwt.ts';

/** The extension provider of the audit access log (meshConfig.extensionProviders[].name). */
export const istioAuditLogProvider = 'trellis-audit-log';
/** The extension provider of the OpenTelemetry tracer. */
export const istioTracingProvider = 'trellis-otel';
/** Istio's key for the verified JWT payload in jwt_authn's metadata. */
const istioJwtPayloadKey = 'payload';

/** A `meshConfig.extensionProviders[]` entry, the two kinds compiled here. */
export type IstioExtensionProvider =
  | {
      name: string;
      envoyFileAccessLog: { path: string; logFormat: { labels: AccessLogJson } };
    }
  | { name: string; opentelemetry: { service: string; port: number } };

/** telemetry.istio.io/v1 Telemetry (the fields set here). */
export interface Telemetry {
  apiVersion: 'telemetry.istio.io/v1';
  kind: 'Telemetry';
  metadata: ObjectMeta;
  spec: {
    accessLogging: { providers: { name: string }[]; match: { mode: 'SERVER' } }[];
    tracing?: { providers: { name: string }[]; randomSamplingPercentage: number }[];
  };
}

/** Where spans go and how many requests start a trace. */
export interface IstioTracing {
  /** The OTLP/gRPC collector: a Service's host name (`[<namespace>/]<hostname>`) and port. */
  service: string;
  port: number;
  /** Share of requests that start a trace when the caller made no sampling decision, 0–100. */
  samplingPercentage: number;
}

/** Options of {@link compileIstioTelemetry}. */
export interface IstioTelemetryOptions {
  /** Istio's root namespace: a Telemetry there without a selector applies to the whole mesh. */
  rootNamespace: string;
  /** Region label of the object. */
  region?: string;
  /** Tracing; none when absent (the access log is always on). */
  tracing?: IstioTracing;
}

/** What one cluster's Istio gets: the providers for istiod's mesh config and the Telemetry naming them. */
export interface IstioTelemetryArtefacts {
  extensionProviders: IstioExtensionProvider[];
  telemetry: Telemetry;
}

/**
 * The verified claims Istio's sidecars log: the payload's issuer (which provider), subject, client
 * (azp) and the scope claim of each of the model's providers (`scope` for the first; another claim
 * name under its own name).
 */
function istioJwtClaims(model: BoundModel): AccessLogJson {
  const claim = (c: string) => meta(jwtMetadataFilter, istioJwtPayloadKey, c);
  const scopeClaims = [
    ...new Set(
      Object.keys(model.identityProviders).map(
        (p) => own(model.identityProviders, p)?.scopeClaim ?? 'scope',
      ),
    ),
  ];
  const [first = 'scope', ...others] = scopeClaims;
  return {
    [istioJwtPayloadKey]: {
      iss: claim('iss'),
      sub: claim('sub'),
      azp: claim('azp'),
      scope: claim(first),
      ...Object.fromEntries(others.map((c) => [c, claim(c)])),
    },
  };
}

/**
 * The JSON format of Istio's access log: the local sidecars' audit fields ({@link httpAuditFields})
 * with the claims where Istio keeps them, plus what one mesh-wide format needs to say for itself:
 * which workload's sidecar wrote the line (the injected `ISTIO_META_WORKLOAD_NAME` and `POD_NAMESPACE`
 * environment variables) and, for a TCP connection, the network RBAC's result and the bytes moved.
 * An HTTP line leaves the TCP fields `null` and a TCP line the HTTP ones.
 */
export function istioAccessLogFormat(model: BoundModel): AccessLogJson {
  return {
    time: '%START_TIME%',
    source: envoyAccessLogSource,
    workload: '%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%',
    namespace: '%ENVIRONMENT(POD_NAMESPACE)%',
    ...httpAuditFields({ jwt: istioJwtClaims(model) }),
    upstreamPeer: '%UPSTREAM_PEER_URI_SAN%',
    tcpRbac: meta(networkRbacFilter, 'enforced_engine_result'),
    tcpRbacPolicy: meta(networkRbacFilter, 'enforced_effective_policy_id'),
    bytesIn: '%BYTES_RECEIVED%',
    bytesOut: '%BYTES_SENT%',
  };
}

const dnsName =
  /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\/)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

function checkTracing(t: IstioTracing): void {
  const bad = (field: string, why: string, got: unknown) => {
    throw new Error(`compileIstioTelemetry: tracing.${field} ${why}, got ${JSON.stringify(got)}`);
  };
  if (!dnsName.test(t.service))
    bad('service', 'must be a host name, optionally <namespace>/<hostname>', t.service);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65_535)
    bad('port', 'must be a port number (1-65535)', t.port);
  // Istio takes the percentage with a precision of 0.01 (istio.io docs, "Configure trace sampling").
  const p = t.samplingPercentage;
  if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 100)
    bad('samplingPercentage', 'must be a number from 0 to 100', p);
}

/**
 * Compiles the mesh's telemetry: the access log on every sidecar's inbound side (SERVER: the hop that
 * decides, with the caller's SPIFFE ID and claims; the client side would log every request twice),
 * written to the proxy's stdout, and, when asked, tracing to the collector with the given sampling.
 */
export function compileIstioTelemetry(
  model: BoundModel,
  opts: IstioTelemetryOptions,
): IstioTelemetryArtefacts {
  if (opts.tracing) checkTracing(opts.tracing);
  const extensionProviders: IstioExtensionProvider[] = [
    {
      name: istioAuditLogProvider,
      envoyFileAccessLog: {
        path: '/dev/stdout',
        logFormat: { labels: istioAccessLogFormat(model) },
      },
    },
    ...(opts.tracing
      ? [
          {
            name: istioTracingProvider,
            opentelemetry: { service: opts.tracing.service, port: opts.tracing.port },
          },
        ]
      : []),
  ];
  const telemetry: Telemetry = {
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: objectMeta('mesh-default', opts.rootNamespace, opts.region),
    spec: {
      accessLogging: [{ providers: [{ name: istioAuditLogProvider }], match: { mode: 'SERVER' } }],
      ...(opts.tracing
        ? {
            tracing: [
              {
                providers: [{ name: istioTracingProvider }],
                randomSamplingPercentage: opts.tracing.samplingPercentage,
              },
            ],
          }
        : {}),
    },
  };
  return { extensionProviders, telemetry };
}
