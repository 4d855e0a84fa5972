/**
 * Access logs: one JSON line per request (HTTP listeners) or per connection (TCP proxies), written to
 * `EnvoyOptions.accessLog`, with who called (the peer's SPIFFE ID, the token's subject, client and
 * scopes), what they asked for (route, method, path without its query), what was decided (RBAC's
 * enforced result and policy, the response code details) and the request id every hop keeps. The
 * token itself is never logged: only claims jwt_authn verified and left in dynamic metadata; the
 * query string is dropped (a bearer token may ride there, RFC 6750 §2.3). The audit fields are
 * defined once ({@link httpAuditFields}, {@link tcpAuditFields}); Istio's sidecars in the Kubernetes
 * stack log the same ones (compile/istio-telemetry.ts).
 * Command operators: https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage,
 * RBAC metadata: https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rbac_filter
 * (`enforced_engine_result`, `enforced_effective_policy_id`).
 */
import { requestIdHeader } from '@trellis/contracts';
import { own } from '../../identity.ts';
import type { EnvoyOptions } from '../envoy.ts';
import type { AccessLogJson, FileAccessLog } from '../envoy-types.ts';
import type { HcmBuilder, HttpListenerIr } from './ir.ts';
import { jwtFailureKey, jwtMetadataFilter } from './jwt.ts';

/** The `source` every sidecar line carries, so a reader can tell them from other JSON logs. */
export const envoyAccessLogSource = 'envoy';

/** The metadata namespaces of Envoy's RBAC filters (their `enforced_*` results). */
export const httpRbacFilter = 'envoy.filters.http.rbac';
export const networkRbacFilter = 'envoy.filters.network.rbac';

/** `%DYNAMIC_METADATA(<namespace>:<key>:…)%`. */
export const meta = (namespace: string, ...keys: string[]): string =>
  `%DYNAMIC_METADATA(${[namespace, ...keys].join(':')})%`;

/** The claims logged per provider: subject, client (azp) and scopes (the provider's scope claim). */
function jwtClaims(l: HttpListenerIr): AccessLogJson {
  const out: AccessLogJson = {};
  for (const p of l.providers) {
    const idp = own(l.model.identityProviders, p);
    out[p] = {
      sub: meta(jwtMetadataFilter, p, 'sub'),
      azp: meta(jwtMetadataFilter, p, 'azp'),
      scope: meta(jwtMetadataFilter, p, idp?.scopeClaim ?? 'scope'),
    };
  }
  return out;
}

/** Where an Envoy keeps the request's verified claims and jwt_authn's refusal, for {@link httpAuditFields}. */
export interface HttpAuditSources {
  /** The `jwt` object: a key per claim set (provider) → its `sub`, `azp` and scopes. */
  jwt: AccessLogJson;
  /** jwt_authn's refusal message, where the filter records one (`failed_status_in_metadata`). */
  jwtFailure?: string;
}

/**
 * The audit fields of an HTTP request's access log line, one definition for every Envoy Trellis
 * configures: its own sidecars (below) and Istio's (`istioAccessLogFormat`, compile/istio-telemetry.ts).
 * Only the claims' source differs between them. Who called (the peer's SPIFFE ID and the verified
 * claims), what was asked (method, path without its query, route), what was decided (the HTTP RBAC
 * filter's enforced result and policy, the response code details) and the request id every hop keeps.
 */
export function httpAuditFields(src: HttpAuditSources): AccessLogJson {
  return {
    requestId: `%REQ(${requestIdHeader})%`,
    method: '%REQ(:METHOD)%',
    // NQ: without the query string.
    path: '%PATH(NQ)%',
    route: '%ROUTE_NAME%',
    status: '%RESPONSE_CODE%',
    details: '%RESPONSE_CODE_DETAILS%',
    flags: '%RESPONSE_FLAGS%',
    peer: '%DOWNSTREAM_PEER_URI_SAN%',
    rbac: meta(httpRbacFilter, 'enforced_engine_result'),
    rbacPolicy: meta(httpRbacFilter, 'enforced_effective_policy_id'),
    jwt: src.jwt,
    ...(src.jwtFailure === undefined ? {} : { jwtFailure: src.jwtFailure }),
    upstream: '%UPSTREAM_HOST%',
    durationMs: '%DURATION%',
  };
}

/** The audit fields of a TCP connection's line (written when it closes), shared like {@link httpAuditFields}. */
export function tcpAuditFields(): AccessLogJson {
  return {
    peer: '%DOWNSTREAM_PEER_URI_SAN%',
    upstreamPeer: '%UPSTREAM_PEER_URI_SAN%',
    upstream: '%UPSTREAM_HOST%',
    details: '%CONNECTION_TERMINATION_DETAILS%',
    rbac: meta(networkRbacFilter, 'enforced_engine_result'),
    rbacPolicy: meta(networkRbacFilter, 'enforced_effective_policy_id'),
    bytesIn: '%BYTES_RECEIVED%',
    bytesOut: '%BYTES_SENT%',
    durationMs: '%DURATION%',
  };
}

/** The JSON format of an HTTP listener's access log (pure; exported for the audit reader's tests). */
export function httpAccessLogFormat(workload: string, l: HttpListenerIr): AccessLogJson {
  return {
    time: '%START_TIME%',
    source: envoyAccessLogSource,
    workload,
    listener: l.name,
    ...httpAuditFields({
      jwt: jwtClaims(l),
      jwtFailure: meta(jwtMetadataFilter, jwtFailureKey, 'message'),
    }),
  };
}

/** The JSON format of a TCP proxy's access log: one line per connection, when it closes. */
export function tcpAccessLogFormat(workload: string, listener: string): AccessLogJson {
  return {
    time: '%START_TIME%',
    source: envoyAccessLogSource,
    workload,
    listener,
    ...tcpAuditFields(),
  };
}

/** A file access log at `path` with `format`. */
export function fileAccessLog(path: string, format: AccessLogJson): FileAccessLog {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path,
      log_format: { json_format: format },
    },
  };
}

/** The access logs of a TCP proxy named `listener`, when the options ask for a log. */
export function tcpAccessLogs(o: EnvoyOptions, listener: string): FileAccessLog[] | undefined {
  return o.accessLog === undefined
    ? undefined
    : [fileAccessLog(o.accessLog, tcpAccessLogFormat(o.workload, listener))];
}

/** Adds the HTTP access log to every HTTP listener, when the options ask for one. */
export const accessLog: HcmBuilder = {
  patchHcm(hcm, l) {
    if (l.options.accessLog === undefined) return;
    hcm.access_log = [
      fileAccessLog(l.options.accessLog, httpAccessLogFormat(l.options.workload, l)),
    ];
  },
};
