/**
 * The jwt_authn filter: the workload's providers (issuer, audiences, `require_expiration`), one
 * catch-all rule so that no path is left without a token, the JWKS clusters, and a local reply mapper
 * for the wrong-audience answer.
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto
 */
import { own } from '../../identity.ts';
import { jwtClockSkewSeconds } from '../../request.ts';
import type { Model } from '../../schema.ts';
import type { EnvoyEndpoint, EnvoyOptions } from '../envoy.ts';
import type {
  EnvoyCluster,
  JwtProvider,
  JwtRequirement,
  ResponseMapper,
  TlsTransportSocket,
} from '../envoy-types.ts';
import { forwardPayload } from './identity-headers.ts';
import { need } from './ir.ts';
import type { HttpFilterBuilder, HttpListenerIr } from './ir.ts';
import { addCluster, cluster } from './resources.ts';

/** The filter name jwt_authn writes verified payloads under, in dynamic metadata. */
export const jwtMetadataFilter = 'envoy.filters.http.jwt_authn';
/** Key (under `jwtMetadataFilter`) where jwt_authn leaves a failed verification's `{code, message}`. */
export const jwtFailureKey = 'jwt_failure';
/**
 * jwt_authn's failed-status message for a verified token whose `aud` is not allowed (jwt_verify_lib
 * `Status::JwtAudienceNotAllowed`, the only failure jwt_authn answers with 403).
 */
export const jwtAudienceFailure = 'Audiences in Jwt are not allowed';

const allowMissing: JwtRequirement = { allow_missing: {} };

/**
 * Verified tokens each worker keeps (`JwtProvider.jwt_cache_config`). A hit skips parsing the token
 * and its RS256 signature check; issuer, `exp`/`nbf` and audiences are checked again on every request
 * (jwt_authn `AuthenticatorImpl::startVerify`), and only tokens that passed verification are cached.
 * Envoy's default is 100; callers of one sidecar hold few tokens at once (one per user or agent
 * session), so the default is kept. ADR 0019.
 */
export const jwtCacheSize = 100;

/** Where a provider's keys come from: a file, or a cluster (and whether it speaks TLS). */
type JwksSource =
  | { file: string }
  | { uri: URL; endpoint: EnvoyEndpoint; tls: boolean; caFile: string | undefined };

function jwksSource(model: Model, o: EnvoyOptions, provider: string): JwksSource {
  const idp = need(own(model.identityProviders, provider), `provider ${provider}`);
  const src = o.jwks?.[provider];
  if (src && 'file' in src) return { file: src.file };
  const uri = new URL(idp.jwksUri);
  if (src?.tls === false && uri.protocol === 'https:')
    throw new Error(
      `compileEnvoy: jwks.${provider}.tls is false, but identityProviders.${provider}.jwksUri is https (${idp.jwksUri})`,
    );
  const tls = src?.tls ?? uri.protocol === 'https:';
  const ep = src ?? { address: uri.hostname, port: Number(uri.port || (tls ? 443 : 80)) };
  return { uri, endpoint: ep, tls, caFile: src?.caFile };
}

const jwksClusterName = (provider: string) => `jwks_${provider}`;

/**
 * The upstream TLS of a JWKS cluster: the roots in `caFile` (default: the system's) and the
 * jwksUri's host as the name the certificate must carry. Without the SAN matcher Envoy checks the
 * chain only, and any certificate from those roots would pass. SNI is sent for a DNS name only
 * (RFC 6066 §3 allows no IP literal in server_name).
 */
function jwksTls(uri: URL, caFile: string | undefined): TlsTransportSocket {
  const host = uri.hostname.replace(/^\[|\]$/g, '');
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      ...(ip ? {} : { sni: host }),
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: caFile ?? '/etc/ssl/certs/ca-certificates.crt' },
          match_typed_subject_alt_names: [
            { san_type: ip ? 'IP_ADDRESS' : 'DNS', matcher: { exact: host } },
          ],
        },
      },
    },
  };
}

function jwksCluster(provider: string, src: Extract<JwksSource, { uri: URL }>): EnvoyCluster {
  return cluster(
    jwksClusterName(provider),
    src.endpoint,
    src.tls ? jwksTls(src.uri, src.caFile) : undefined,
  );
}

function jwtProvider(model: Model, o: EnvoyOptions, provider: string): JwtProvider {
  const idp = need(own(model.identityProviders, provider), `provider ${provider}`);
  const base = {
    issuer: idp.issuer,
    audiences: [...idp.audiences],
    require_expiration: true as const,
    clock_skew_seconds: jwtClockSkewSeconds,
    forward: true,
    payload_in_metadata: provider,
    failed_status_in_metadata: jwtFailureKey,
    ...forwardPayload(o),
    jwt_cache_config: { jwt_cache_size: jwtCacheSize },
  };
  const src = jwksSource(model, o, provider);
  if ('file' in src) return { ...base, local_jwks: { filename: src.file } };
  return {
    ...base,
    remote_jwks: {
      http_uri: { uri: idp.jwksUri, cluster: jwksClusterName(provider), timeout: '5s' },
      cache_duration: '300s',
      // Fetch the keys on the main thread before the listener opens and again in the background
      // when they expire, so no request waits for a JWKS round trip (without it, the first
      // request after each expiry blocked on the fetch: a 100+ ms outlier every 5 minutes).
      async_fetch: { fast_listener: false, failed_refetch_duration: '1s' },
    },
  };
}

/**
 * Ports with routes: a valid token from any provider is required. Other ports: a token is optional,
 * but an invalid one is refused.
 */
function requirement(l: HttpListenerIr): JwtRequirement {
  const any = l.providers.map((p): JwtRequirement => ({ provider_name: p }));
  if (l.routes.length === 0) return { requires_any: { requirements: [...any, allowMissing] } };
  return any.length === 1 && any[0] ? any[0] : { requires_any: { requirements: any } };
}

/**
 * A local reply mapper that turns jwt_authn's 403 for a wrong audience (envoyproxy/envoy#7679) into
 * 401 with `WWW-Authenticate: Bearer error="invalid_token"`, as RFC 6750 §3.1 asks; every other token
 * failure is already a 401. It matches a 403 only when jwt_authn left that failure in dynamic metadata
 * (`failed_status_in_metadata`, written on failure since envoyproxy/envoy#34335). The message, not
 * mere presence, is matched: a missing token on an optional-token port also leaves a failed status
 * ("Jwt is missing"), and RBAC's 403 after it must stay a 403.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/local_reply,
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/accesslog/v3/accesslog.proto
 */
function jwtAudienceMapper(): ResponseMapper {
  return {
    filter: {
      and_filter: {
        filters: [
          {
            status_code_filter: {
              comparison: {
                op: 'EQ',
                value: { default_value: 403, runtime_key: 'trellis.jwt_audience_status' },
              },
            },
          },
          {
            metadata_filter: {
              matcher: {
                filter: jwtMetadataFilter,
                path: [{ key: jwtFailureKey }, { key: 'message' }],
                value: { string_match: { exact: jwtAudienceFailure } },
              },
              match_if_key_not_found: false,
            },
          },
        ],
      },
    },
    status_code: 401,
    headers_to_add: [
      {
        header: { key: 'www-authenticate', value: 'Bearer error="invalid_token"' },
        append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
      },
    ],
  };
}

/** Whether the listener authenticates tokens: a sidecar listener of a workload with providers. */
const enabled = (l: HttpListenerIr) => !l.edge && l.providers.length > 0;

/** The jwt_authn builder. */
export const jwtAuthn: HttpFilterBuilder<'envoy.filters.http.jwt_authn'> = {
  name: 'envoy.filters.http.jwt_authn',
  filter(l) {
    if (!enabled(l)) return undefined;
    return {
      name: 'envoy.filters.http.jwt_authn',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
        providers: Object.fromEntries(
          l.providers.map((p) => [p, jwtProvider(l.model, l.options, p)]),
        ),
        // One catch-all rule, so that no path on this port escapes the requirement.
        rules: [{ match: { prefix: '/' }, requires: requirement(l) }],
      },
    };
  },
  patchHcm(hcm, l) {
    if (enabled(l)) hcm.local_reply_config = { mappers: [jwtAudienceMapper()] };
  },
  patchResources(clusters, l) {
    if (!enabled(l)) return;
    for (const p of l.providers) {
      const src = jwksSource(l.model, l.options, p);
      if (!('file' in src)) addCluster(clusters, jwksCluster(p, src));
    }
  },
};
