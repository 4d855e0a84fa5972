/**
 * Access logs: one JSON line per request (HTTP listeners) or per connection (TCP proxies), written to
 * `EnvoyOptions.accessLog`, with who called (the peer's SPIFFE ID, the token's subject, client and
 * scopes), what they asked for (route, method, path without its query), what was decided (RBAC's
 * enforced result and policy, the response code details) and the request id every hop keeps. The
 * token itself is never logged: only claims jwt_authn verified and left in dynamic metadata; the
 * query string is dropped (a bearer token may ride there, RFC 6750 §2.3).
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

const meta = (namespace: string, ...keys: string[]) =>
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

/** The JSON format of an HTTP listener's access log (pure; exported for the audit reader's tests). */
export function httpAccessLogFormat(workload: string, l: HttpListenerIr): AccessLogJson {
  return {
    time: '%START_TIME%',
    source: envoyAccessLogSource,
    workload,
    listener: l.name,
    requestId: `%REQ(${requestIdHeader})%`,
    method: '%REQ(:METHOD)%',
    // NQ: without the query string.
    path: '%PATH(NQ)%',
    route: '%ROUTE_NAME%',
    status: '%RESPONSE_CODE%',
    details: '%RESPONSE_CODE_DETAILS%',
    flags: '%RESPONSE_FLAGS%',
    peer: '%DOWNSTREAM_PEER_URI_SAN%',
    rbac: meta('envoy.filters.http.rbac', 'enforced_engine_result'),
    rbacPolicy: meta('envoy.filters.http.rbac', 'enforced_effective_policy_id'),
    jwt: jwtClaims(l),
    jwtFailure: meta(jwtMetadataFilter, jwtFailureKey, 'message'),
    upstream: '%UPSTREAM_HOST%',
    durationMs: '%DURATION%',
  };
}

/** The JSON format of a TCP proxy's access log: one line per connection, when it closes. */
export function tcpAccessLogFormat(workload: string, listener: string): AccessLogJson {
  return {
    time: '%START_TIME%',
    source: envoyAccessLogSource,
    workload,
    listener,
    peer: '%DOWNSTREAM_PEER_URI_SAN%',
    upstreamPeer: '%UPSTREAM_PEER_URI_SAN%',
    upstream: '%UPSTREAM_HOST%',
    details: '%CONNECTION_TERMINATION_DETAILS%',
    rbac: meta('envoy.filters.network.rbac', 'enforced_engine_result'),
    rbacPolicy: meta('envoy.filters.network.rbac', 'enforced_effective_policy_id'),
    bytesIn: '%BYTES_RECEIVED%',
    bytesOut: '%BYTES_SENT%',
    durationMs: '%DURATION%',
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
