// Frozen copy of compile/envoy.ts before the builder refactor: the golden reference of envoy-golden.test.ts.
// Temporary: deleted once the refactor is merged.
/**
 * Envoy sidecars: one static bootstrap per workload, plus the SDS files it watches.
 *
 * Inbound (per model port): TLS that requires a client certificate from the mesh CA, with the SAN matched
 * against the workload's callers; on http ports with routes, `jwt_authn` (issuer, audiences,
 * `require_expiration`, one catch-all rule so that no path is left without a token), then RBAC on the
 * SPIFFE principal plus the token's issuer, scopes and claims, then a per-route local rate limit. Ports
 * without routes: RBAC on the principal only. Outbound (per `calls` entry): a loopback listener that
 * originates TLS with the workload SVID and checks the upstream's SPIFFE ID. The edge workload's inbound
 * listener is plaintext on loopback (nginx terminates TLS in front of it) and routes the model's routes
 * to the backends over mTLS.
 *
 * Field references (Envoy v3 API): listeners/clusters https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener.proto,
 * TLS https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/tls.proto,
 * SDS from files https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret,
 * jwt_authn https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto,
 * RBAC https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto,
 * local rate limit https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/local_rate_limit_filter.
 */
import { own } from '../../src/identity.ts';
import {
  callersOf,
  dataServiceSpiffeId,
  dataServices,
  routesOf,
  spiffeId,
  workloadProviders,
} from '../../src/identity.ts';
import type { DataService } from '../../src/identity.ts';
import { jwtClockSkewSeconds, spaceDelimitedClaims } from '../../src/request.ts';
import type { Model, Route } from '../../src/schema.ts';
import type { ValidModel } from '../../src/validate.ts';
import { templateSegments } from '../../src/compile/common.ts';
import type {
  CommonTlsContext,
  EnvoyBootstrap,
  EnvoyCluster,
  EnvoyListener,
  EnvoyRoute,
  HttpConnectionManager,
  HttpFilter,
  JwtProvider,
  JwtRequirement,
  LocalRateLimit,
  RbacPermission,
  RbacPolicy,
  RbacPrincipal,
  ResponseMapper,
  RouteMatch,
  SdsFile,
  SdsSecretConfig,
  StringMatcher,
  TlsTransportSocket,
} from '../../src/compile/envoy-types.ts';

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
  /** JWKS source per provider: a file, or an endpoint (default: host and port of the model's jwksUri). */
  jwks?: Record<string, { file: string } | (EnvoyEndpoint & { tls?: boolean; caFile?: string })>;
  /** Node id. @default the workload name */
  nodeId?: string;
  /**
   * Header that carries the verified JWT payload (`base64url(JSON)`) to the app
   * (`JwtProvider.forward_payload_header`); lower case. Omit it to send the token only.
   */
  payloadHeader?: string;
}

/** What `compileEnvoy` returns: the bootstrap and the SDS files, keyed by their absolute path. */
export interface EnvoyArtefacts {
  bootstrap: EnvoyBootstrap;
  sdsFiles: Record<string, SdsFile>;
}

/** The filter name jwt_authn writes verified payloads under, in dynamic metadata. */
export const jwtMetadataFilter = 'envoy.filters.http.jwt_authn';
/** Key (under `jwtMetadataFilter`) where jwt_authn leaves a failed verification's `{code, message}`. */
export const jwtFailureKey = 'jwt_failure';
const svidSecret = 'svid';
const allowMissing: JwtRequirement = { allow_missing: {} };
const bundleSecret = 'trust_bundle';

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function endpoint(address: string, port: number) {
  return { socket_address: { address, port_value: port } };
}

function cluster(
  name: string,
  ep: EnvoyEndpoint,
  tls?: TlsTransportSocket,
  http2 = false,
): EnvoyCluster {
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(ep.address) || ep.address.includes(':');
  const c: EnvoyCluster = {
    name,
    type: ip ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '2s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: endpoint(ep.address, ep.port) } }] }],
    },
  };
  if (!ip) c.dns_lookup_family = 'V4_ONLY';
  if (tls) c.transport_socket = tls;
  if (http2)
    c.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  return c;
}

/** Escapes a literal for RE2. */
function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A path template as a StringMatcher: exact for literal paths, an anchored RE2 regex otherwise. */
export function pathMatcher(template: string): StringMatcher {
  const segs = templateSegments(template);
  if (segs.every((s) => s !== null)) return { exact: template };
  return {
    safe_regex: { regex: `^/${segs.map((s) => (s === null ? '[^/]+' : reEscape(s))).join('/')}$` },
  };
}

function routeMatch(r: Route): RouteMatch {
  const m = pathMatcher(r.path);
  const headers = [{ name: ':method', string_match: { exact: r.method } }];
  return 'exact' in m
    ? { path: m.exact, headers }
    : { safe_regex: { regex: 'safe_regex' in m ? m.safe_regex.regex : '' }, headers };
}

function tlsContext(o: EnvoyOptions, sans: string[], alpn?: string[]): CommonTlsContext {
  const sds = (name: string, file: string): SdsSecretConfig => ({
    name,
    sds_config: {
      path_config_source: { path: `${o.sds.dir}/${file}`, watched_directory: { path: o.sds.dir } },
      resource_api_version: 'V3',
    },
  });
  const ctx: CommonTlsContext = {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    tls_certificate_sds_secret_configs: [sds(svidSecret, 'svid.yaml')],
    combined_validation_context: {
      default_validation_context: {
        match_typed_subject_alt_names: sans.map((s) => ({
          san_type: 'URI',
          matcher: { exact: s },
        })),
      },
      validation_context_sds_secret_config: sds(bundleSecret, 'trust-bundle.yaml'),
    },
  };
  if (alpn) ctx.alpn_protocols = alpn;
  return ctx;
}

/** A metadata principal on the verified JWT payload of `provider`. */
function claimPrincipal(provider: string, claim: string, value: StringMatcher): RbacPrincipal {
  return {
    sourced_metadata: {
      metadata_matcher: {
        filter: jwtMetadataFilter,
        path: [{ key: provider }, ...claim.split('.').map((key) => ({ key }))],
        value: { string_match: value },
      },
    },
  };
}

/** The claim carries `value`: as a list element, or (string claim) whole, or space-separated for scope. */
function claimHas(provider: string, claim: string, value: string): RbacPrincipal {
  const asString: StringMatcher = (spaceDelimitedClaims as readonly string[]).includes(claim)
    ? { safe_regex: { regex: `^(.* )?${reEscape(value)}( .*)?$` } }
    : { exact: value };
  return {
    or_ids: {
      ids: [
        claimPrincipal(provider, claim, asString),
        {
          sourced_metadata: {
            metadata_matcher: {
              filter: jwtMetadataFilter,
              path: [{ key: provider }, ...claim.split('.').map((key) => ({ key }))],
              value: { list_match: { one_of: { string_match: { exact: value } } } },
            },
          },
        },
      ],
    },
  };
}

function peersPrincipal(model: Model, callers: string[]): RbacPrincipal {
  return {
    or_ids: {
      ids: callers.map((c) => ({
        authenticated: { principal_name: { exact: spiffeId(model, c) } },
      })),
    },
  };
}

function routePolicy(model: Model, callers: string[], r: Route): RbacPolicy | undefined {
  const auth = r.auth;
  const idp = auth ? own(model.identityProviders, auth.provider) : undefined;
  if (!auth || !idp) return undefined;
  const ids: RbacPrincipal[] = [
    peersPrincipal(model, callers),
    claimPrincipal(auth.provider, 'iss', { exact: idp.issuer }),
    ...auth.scopes.map((s) => claimHas(auth.provider, idp.scopeClaim, s)),
    ...Object.entries(auth.claims).map(([claim, values]): RbacPrincipal => ({
      or_ids: { ids: values.map((v) => claimHas(auth.provider, claim, v)) },
    })),
  ];
  const permission: RbacPermission = {
    and_rules: {
      rules: [
        { header: { name: ':method', string_match: { exact: r.method } } },
        { url_path: { path: pathMatcher(r.path) } },
      ],
    },
  };
  return { permissions: [permission], principals: [{ and_ids: { ids } }] };
}

function rateLimit(name: string, r: Route): LocalRateLimit | undefined {
  if (!r.rateLimit) return undefined;
  const pct = (key: string) => ({
    runtime_key: `${name}_${key}`,
    default_value: { numerator: 100, denominator: 'HUNDRED' as const },
  });
  return {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
    stat_prefix: `route_${name}`,
    token_bucket: {
      max_tokens: r.rateLimit.burst,
      tokens_per_fill: r.rateLimit.requestsPerSecond,
      fill_interval: '1s',
    },
    filter_enabled: pct('rate_limit_enabled'),
    filter_enforced: pct('rate_limit_enforced'),
  };
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`compileEnvoy: missing option ${what}`);
  return value;
}

function jwksProvider(
  model: Model,
  o: EnvoyOptions,
  provider: string,
  clusters: EnvoyCluster[],
): JwtProvider {
  const idp = need(own(model.identityProviders, provider), `provider ${provider}`);
  const base = {
    issuer: idp.issuer,
    audiences: [...idp.audiences],
    require_expiration: true as const,
    clock_skew_seconds: jwtClockSkewSeconds,
    forward: true,
    payload_in_metadata: provider,
    failed_status_in_metadata: jwtFailureKey,
    ...(o.payloadHeader !== undefined ? { forward_payload_header: o.payloadHeader } : {}),
  };
  const src = o.jwks?.[provider];
  if (src && 'file' in src) return { ...base, local_jwks: { filename: src.file } };
  const u = new URL(idp.jwksUri);
  const tls = src?.tls ?? u.protocol === 'https:';
  const ep = src ?? { address: u.hostname, port: Number(u.port || (tls ? 443 : 80)) };
  const name = `jwks_${provider}`;
  if (!clusters.some((c) => c.name === name))
    clusters.push(
      cluster(
        name,
        ep,
        tls
          ? {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type':
                  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                sni: u.hostname,
                common_tls_context: {
                  validation_context: {
                    trusted_ca: { filename: src?.caFile ?? '/etc/ssl/certs/ca-certificates.crt' },
                  },
                },
              },
            }
          : undefined,
      ),
    );
  return {
    ...base,
    remote_jwks: {
      http_uri: { uri: idp.jwksUri, cluster: name, timeout: '5s' },
      cache_duration: '300s',
      // Fetch the keys on the main thread before the listener opens and again in the background
      // when they expire, so no request waits for a JWKS round trip (without it, the first
      // request after each expiry blocked on the fetch: a 100+ ms outlier every 5 minutes).
      async_fetch: { fast_listener: false, failed_refetch_duration: '1s' },
    },
  };
}

/**
 * jwt_authn's failed-status message for a verified token whose `aud` is not allowed (jwt_verify_lib
 * `Status::JwtAudienceNotAllowed`, the only failure jwt_authn answers with 403).
 */
export const jwtAudienceFailure = 'Audiences in Jwt are not allowed';

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

function hcm(
  name: string,
  routes: EnvoyRoute[],
  filters: HttpFilter[],
  edge: boolean,
): HttpConnectionManager {
  const h: HttpConnectionManager = {
    '@type':
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: name,
    codec_type: 'AUTO',
    // Authorization matches paths: normalize them first, and refuse %2F tricks.
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    forward_client_cert_details: edge ? 'SANITIZE' : 'SANITIZE_SET',
    route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes }] },
    http_filters: [
      ...filters,
      {
        name: 'envoy.filters.http.router',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
        },
      },
    ],
  };
  // Pass the caller's SPIFFE ID to the app in x-forwarded-client-cert.
  if (!edge) h.set_current_client_cert_details = { uri: true };
  if (filters.some((f) => f.name === 'envoy.filters.http.jwt_authn'))
    h.local_reply_config = { mappers: [jwtAudienceMapper()] };
  return h;
}

function upstreamTls(o: EnvoyOptions, san: string, sni: string | undefined): TlsTransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      ...(sni !== undefined ? { sni } : {}),
      common_tls_context: tlsContext(o, [san]),
    },
  };
}

/** Compiles the Envoy bootstrap of one workload's sidecar, and its SDS files. */
export function compileEnvoy(model: ValidModel, o: EnvoyOptions): EnvoyArtefacts {
  const w = own(model.workloads, o.workload);
  if (!w) throw new Error(`compileEnvoy: no workload '${o.workload}' in the model`);
  if (o.payloadHeader !== undefined && !/^[a-z0-9-]+$/.test(o.payloadHeader))
    throw new Error(
      `compileEnvoy: payloadHeader must be a lower-case header name, got '${o.payloadHeader}'`,
    );
  const addr = o.inboundAddress ?? '127.0.0.1';
  const listeners: EnvoyListener[] = [];
  const clusters: EnvoyCluster[] = [];
  const callers = callersOf(model, o.workload);

  // Outbound clusters (and listeners) for each callee.
  for (const target of w.calls) {
    const up = need(o.outbound?.[target], `outbound.${target}`);
    const isData = (dataServices as readonly string[]).includes(target);
    const san =
      up.spiffeId ??
      (isData ? dataServiceSpiffeId(model, target as DataService) : spiffeId(model, target));
    clusters.push(cluster(`outbound_${target}`, up, upstreamTls(o, san, up.sni)));
    if (up.listenPort !== undefined)
      listeners.push({
        name: `outbound_${target}`,
        address: endpoint('127.0.0.1', up.listenPort),
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.tcp_proxy',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                  stat_prefix: `outbound_${target}`,
                  cluster: `outbound_${target}`,
                },
              },
            ],
          },
        ],
      });
  }

  for (const port of w.ports) {
    const listenPort = need(o.inbound[port.name], `inbound.${port.name}`);
    const name = `inbound_${port.name}`;
    if (w.edge) {
      // The edge: plaintext HTTP from nginx on loopback, routed to the backends over mTLS.
      const routes: EnvoyRoute[] = [];
      for (const [rname, r] of Object.entries(model.routes))
        if (w.calls.includes(r.backend))
          routes.push({
            name: rname,
            match: routeMatch(r),
            route: { cluster: `outbound_${r.backend}`, timeout: '15s' },
          });
      routes.push({ name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } });
      listeners.push({
        name,
        address: endpoint(addr, listenPort),
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: hcm(name, routes, [], true),
              },
            ],
          },
        ],
      });
      continue;
    }

    const app = need(o.app?.[port.name], `app.${port.name}`);
    const appCluster = `app_${port.name}`;
    clusters.push(cluster(appCluster, app, undefined, port.protocol === 'grpc'));
    const downstream: TlsTransportSocket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type':
          'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        require_client_certificate: true,
        common_tls_context: tlsContext(
          o,
          callers.map((c) => spiffeId(model, c)),
          port.protocol === 'tcp' ? undefined : ['h2', 'http/1.1'],
        ),
      },
    };
    const peersOnly: RbacPolicy = {
      permissions: [{ any: true }],
      principals: [peersPrincipal(model, callers)],
    };
    const policies: Record<string, RbacPolicy> = {};

    if (port.protocol === 'tcp') {
      if (callers.length > 0) policies[`peers_${port.name}`] = peersOnly;
      listeners.push({
        name,
        address: endpoint(addr, listenPort),
        filter_chains: [
          {
            transport_socket: downstream,
            filters: [
              {
                name: 'envoy.filters.network.rbac',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
                  stat_prefix: name,
                  rules: { action: 'ALLOW', policies },
                },
              },
              {
                name: 'envoy.filters.network.tcp_proxy',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                  stat_prefix: name,
                  cluster: appCluster,
                },
              },
            ],
          },
        ],
      });
      continue;
    }

    const portRoutes = routesOf(model, o.workload, port.name);
    const filters: HttpFilter[] = [];
    const routes: EnvoyRoute[] = [];
    // Providers of the whole workload (Istio's RequestAuthentication is per workload, too).
    const providers = workloadProviders(model, o.workload);
    if (providers.length > 0) {
      const any = providers.map((p): JwtRequirement => ({ provider_name: p }));
      // Ports with routes: a valid token is required. Other ports: a token is optional, but an
      // invalid one is refused.
      const requires: JwtRequirement =
        portRoutes.length === 0
          ? { requires_any: { requirements: [...any, allowMissing] } }
          : any.length === 1 && any[0]
            ? any[0]
            : { requires_any: { requirements: any } };
      filters.push({
        name: 'envoy.filters.http.jwt_authn',
        typed_config: {
          '@type':
            'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
          providers: Object.fromEntries(
            providers.map((p) => [p, jwksProvider(model, o, p, clusters)]),
          ),
          // One catch-all rule, so that no path on this port escapes the requirement.
          rules: [{ match: { prefix: '/' }, requires }],
        },
      });
    }
    if (portRoutes.length === 0) {
      if (callers.length > 0) policies[`peers_${port.name}`] = peersOnly;
    } else {
      for (const [rname, r] of portRoutes) {
        if (callers.length > 0) {
          const p = routePolicy(model, callers, r);
          if (p) policies[`route_${rname}`] = p;
        }
        const rl = rateLimit(rname, r);
        routes.push({
          name: rname,
          match: routeMatch(r),
          route: { cluster: appCluster, timeout: '15s' },
          ...(rl ? { typed_per_filter_config: { 'envoy.filters.http.local_ratelimit': rl } } : {}),
        });
      }
    }
    filters.push({
      name: 'envoy.filters.http.rbac',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
        rules: { action: 'ALLOW', policies },
      },
    });
    if (portRoutes.some(([, r]) => r.rateLimit))
      // Disabled here (no token bucket); each route enables it through typed_per_filter_config.
      filters.push({
        name: 'envoy.filters.http.local_ratelimit',
        typed_config: {
          '@type':
            'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
          stat_prefix: 'http_local_rate_limiter',
        },
      });
    routes.push({
      name: 'default',
      match: { prefix: '/' },
      route: { cluster: appCluster, timeout: '15s' },
    });
    listeners.push({
      name,
      address: endpoint(addr, listenPort),
      filter_chains: [
        {
          transport_socket: downstream,
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: hcm(name, routes, filters, false),
            },
          ],
        },
      ],
    });
  }

  const certDir = dirname(o.sds.certChain);
  const sdsFiles: Record<string, SdsFile> = {
    [`${o.sds.dir}/svid.yaml`]: {
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
          name: svidSecret,
          tls_certificate: {
            certificate_chain: { filename: o.sds.certChain },
            private_key: { filename: o.sds.privateKey },
            // Rotation: write new PEMs elsewhere, then move them into this directory.
            watched_directory: { path: certDir },
          },
        },
      ],
    },
    [`${o.sds.dir}/trust-bundle.yaml`]: {
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
          name: bundleSecret,
          validation_context: {
            trusted_ca: { filename: o.sds.trustBundle },
            watched_directory: { path: dirname(o.sds.trustBundle) },
          },
        },
      ],
    },
  };

  return {
    bootstrap: {
      node: { id: o.nodeId ?? o.workload, cluster: o.workload },
      ...(o.adminPort !== undefined
        ? { admin: { address: endpoint('127.0.0.1', o.adminPort) } }
        : {}),
      static_resources: { listeners, clusters },
    },
    sdsFiles,
  };
}
