import type { HcmTracing, HttpFault } from './envoy-types-extra.ts';

export type { HcmTracing, HttpFault } from './envoy-types-extra.ts';

/**
 * The subset of Envoy's v3 API that the Envoy compiler emits, typed field by field. Names follow the
 * proto fields (snake_case) so the objects serialize straight to a bootstrap YAML/JSON.
 * Reference: https://www.envoyproxy.io/docs/envoy/latest/api-v3/api (v1.39+).
 */

/** `type.StringMatcher` (one of). */
export type StringMatcher =
  { exact: string } | { prefix: string } | { suffix: string } | { safe_regex: { regex: string } };

/** `type.matcher.v3.ValueMatcher` (the forms used here). */
export type ValueMatcher =
  { string_match: StringMatcher } | { list_match: { one_of: ValueMatcher } };

/** `type.matcher.v3.MetadataMatcher`. */
export interface MetadataMatcher {
  filter: string;
  path: { key: string }[];
  value: ValueMatcher;
}

/** `config.route.v3.HeaderMatcher` (string_match form). */
export interface HeaderMatcher {
  name: string;
  string_match: StringMatcher;
}

/** `config.rbac.v3.Permission`. */
export type RbacPermission =
  | { any: true }
  | { header: HeaderMatcher }
  | { url_path: { path: StringMatcher } }
  | { destination_port: number }
  | { and_rules: { rules: RbacPermission[] } }
  | { or_rules: { rules: RbacPermission[] } }
  | { not_rule: RbacPermission };

/** `config.rbac.v3.Principal`. */
export type RbacPrincipal =
  | { any: true }
  | { authenticated: { principal_name: StringMatcher } }
  | {
      sourced_metadata: {
        metadata_matcher: MetadataMatcher;
        metadata_source?: 'DYNAMIC' | 'ROUTE';
      };
    }
  | { and_ids: { ids: RbacPrincipal[] } }
  | { or_ids: { ids: RbacPrincipal[] } }
  | { not_id: RbacPrincipal };

/** `config.rbac.v3.Policy`. */
export interface RbacPolicy {
  permissions: RbacPermission[];
  principals: RbacPrincipal[];
}

/** `config.rbac.v3.RBAC`. */
export interface RbacRules {
  action: 'ALLOW' | 'DENY' | 'LOG';
  policies: Record<string, RbacPolicy>;
}

/** `config.core.v3.ConfigSource` for a file. */
export interface PathConfigSource {
  path_config_source: { path: string; watched_directory: { path: string } };
  resource_api_version: 'V3';
}

/** `extensions.transport_sockets.tls.v3.SdsSecretConfig`. */
export interface SdsSecretConfig {
  name: string;
  sds_config: PathConfigSource;
}

/** `type.matcher.v3.SubjectAltNameMatcher`. */
export interface SubjectAltNameMatcher {
  san_type: 'URI' | 'DNS' | 'EMAIL' | 'IP_ADDRESS';
  matcher: StringMatcher;
}

/** `extensions.transport_sockets.tls.v3.CommonTlsContext` (SDS form). */
export interface CommonTlsContext {
  tls_params?: { tls_minimum_protocol_version: 'TLSv1_2' | 'TLSv1_3' };
  tls_certificate_sds_secret_configs: SdsSecretConfig[];
  combined_validation_context: {
    default_validation_context: { match_typed_subject_alt_names: SubjectAltNameMatcher[] };
    validation_context_sds_secret_config: SdsSecretConfig;
  };
  alpn_protocols?: string[];
}

/** A TLS transport socket: downstream (inbound) or upstream (outbound). */
export type TlsTransportSocket =
  | {
      name: 'envoy.transport_sockets.tls';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
        require_client_certificate: true;
        common_tls_context: CommonTlsContext;
      };
    }
  | {
      name: 'envoy.transport_sockets.tls';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
        sni?: string;
        common_tls_context:
          | CommonTlsContext
          | {
              validation_context: {
                trusted_ca: { filename: string };
                match_typed_subject_alt_names?: SubjectAltNameMatcher[];
              };
            };
      };
    };

/** `extensions.filters.http.jwt_authn.v3.JwtProvider`. */
export interface JwtProvider {
  issuer: string;
  audiences: string[];
  require_expiration: true;
  clock_skew_seconds: number;
  forward: boolean;
  payload_in_metadata: string;
  /** Dynamic-metadata key (under the jwt_authn filter) for the failed status: `{code, message}`. */
  failed_status_in_metadata: string;
  /** Header the verified payload is forwarded in, as `base64url(JSON)`. */
  forward_payload_header?: string;
  /** `JwtCacheConfig`: how many verified tokens each worker keeps. */
  jwt_cache_config: { jwt_cache_size: number };
  remote_jwks?: {
    http_uri: { uri: string; cluster: string; timeout: string };
    cache_duration: string;
    /** `JwksAsyncFetch`: fetch on the main thread, refresh in the background. */
    async_fetch?: { fast_listener: boolean; failed_refetch_duration: string };
  };
  local_jwks?: { filename: string };
}

/** `extensions.filters.http.jwt_authn.v3.JwtRequirement`. */
export type JwtRequirement =
  | { provider_name: string }
  | { allow_missing: Record<string, never> }
  | { requires_any: { requirements: JwtRequirement[] } };

/** `config.route.v3.RouteMatch` (the forms used here). */
export interface RouteMatch {
  prefix?: string;
  path?: string;
  safe_regex?: { regex: string };
  headers?: HeaderMatcher[];
}

/** `extensions.filters.http.local_ratelimit.v3.LocalRateLimit`. */
export interface LocalRateLimit {
  '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
  stat_prefix: string;
  token_bucket?: { max_tokens: number; tokens_per_fill: number; fill_interval: string };
  filter_enabled?: RuntimePercent;
  filter_enforced?: RuntimePercent;
}

/** `config.core.v3.RuntimeFractionalPercent`. */
export interface RuntimePercent {
  runtime_key: string;
  default_value: { numerator: number; denominator: 'HUNDRED' };
}

/** An HTTP filter in the chain. */
export type HttpFilter =
  | {
      name: 'envoy.filters.http.jwt_authn';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
        providers: Record<string, JwtProvider>;
        rules: { match: RouteMatch; requires: JwtRequirement }[];
      };
    }
  | {
      name: 'envoy.filters.http.rbac';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
        rules: RbacRules;
      };
    }
  | { name: 'envoy.filters.http.local_ratelimit'; typed_config: LocalRateLimit }
  | { name: 'envoy.filters.http.fault'; typed_config: HttpFault }
  | {
      name: 'envoy.filters.http.router';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
      };
    };

/** `config.route.v3.Route`. */
export interface EnvoyRoute {
  name: string;
  match: RouteMatch;
  route?: { cluster: string; timeout?: string };
  direct_response?: { status: number };
  /** Per-route stats under `vhost.<vhost>.route.<stat_prefix>.`; none when unset. */
  stat_prefix?: string;
  typed_per_filter_config?: { 'envoy.filters.http.local_ratelimit': LocalRateLimit };
}

/** `config.accesslog.v3.AccessLogFilter` (the forms used by local reply mappers). */
export type AccessLogFilter =
  | { and_filter: { filters: AccessLogFilter[] } }
  | {
      status_code_filter: {
        comparison: {
          op: 'EQ' | 'GE' | 'LE';
          value: { default_value: number; runtime_key: string };
        };
      };
    }
  | {
      metadata_filter: {
        matcher: MetadataMatcher;
        match_if_key_not_found: boolean;
      };
    };

/** A value of an access log's JSON format: a command operator string, or a nested object of them. */
export type AccessLogJson = { [key: string]: string | AccessLogJson };

/**
 * `config.accesslog.v3.AccessLog` with `extensions.access_loggers.file.v3.FileAccessLog`, formatted as
 * JSON (`log_format.json_format`, a typed `config.core.v3.SubstitutionFormatString`).
 */
export interface FileAccessLog {
  name: 'envoy.access_loggers.file';
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
    path: string;
    log_format: { json_format: AccessLogJson };
  };
}

/** `extensions.filters.network.http_connection_manager.v3.ResponseMapper`. */
export interface ResponseMapper {
  filter: AccessLogFilter;
  status_code?: number;
  headers_to_add?: {
    header: { key: string; value: string };
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD';
  }[];
}

/** `extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`. */
export interface HttpConnectionManager {
  '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  stat_prefix: string;
  codec_type: 'AUTO';
  normalize_path: boolean;
  merge_slashes: boolean;
  path_with_escaped_slashes_action: 'REJECT_REQUEST';
  forward_client_cert_details: 'SANITIZE_SET' | 'SANITIZE';
  set_current_client_cert_details?: { uri: boolean };
  use_remote_address?: boolean;
  route_config: {
    name: string;
    virtual_hosts: { name: string; domains: string[]; routes: EnvoyRoute[] }[];
  };
  http_filters: HttpFilter[];
  local_reply_config?: { mappers: ResponseMapper[] };
  access_log?: FileAccessLog[];
  tracing?: HcmTracing;
}

/** A network filter. */
export type NetworkFilter =
  | { name: 'envoy.filters.network.http_connection_manager'; typed_config: HttpConnectionManager }
  | {
      name: 'envoy.filters.network.rbac';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
        stat_prefix: string;
        rules: RbacRules;
      };
    }
  | {
      name: 'envoy.filters.network.tcp_proxy';
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
        stat_prefix: string;
        cluster: string;
        access_log?: FileAccessLog[];
      };
    };

/** `config.core.v3.Address`. */
export interface SocketAddress {
  socket_address: { address: string; port_value: number };
}

/** `config.listener.v3.Listener`. */
export interface EnvoyListener {
  name: string;
  address: SocketAddress;
  filter_chains: { filters: NetworkFilter[]; transport_socket?: TlsTransportSocket }[];
}

/** `config.cluster.v3.Cluster`. */
export interface EnvoyCluster {
  name: string;
  type: 'STATIC' | 'STRICT_DNS';
  connect_timeout: string;
  dns_lookup_family?: 'V4_ONLY';
  load_assignment: {
    cluster_name: string;
    endpoints: { lb_endpoints: { endpoint: { address: SocketAddress } }[] }[];
  };
  transport_socket?: TlsTransportSocket;
  typed_extension_protocol_options?: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
      explicit_http_config: { http2_protocol_options: Record<string, never> };
    };
  };
}

/** `config.bootstrap.v3.Bootstrap` (static form). */
export interface EnvoyBootstrap {
  node: { id: string; cluster: string };
  admin?: { address: SocketAddress };
  static_resources: { listeners: EnvoyListener[]; clusters: EnvoyCluster[] };
  /** Merge histograms and latch counters only when the admin interface is asked (no flush timer). */
  stats_flush_on_admin?: true;
  /**
   * `config.bootstrap.v3.LayeredRuntime`. Without it Envoy uses a null provider (every runtime key at
   * its default) and `/runtime_modify` has no layer to write; here only an admin layer.
   */
  layered_runtime?: { layers: { name: string; admin_layer: Record<string, never> }[] };
  /**
   * `config.metrics.v3.StatsConfig`: only `histogram_bucket_settings` (`HistogramBucketSettings`:
   * a `type.matcher.v3.StringMatcher` on the stat name, and the buckets' upper bounds; the first
   * matching rule wins, Envoy's default buckets otherwise).
   */
  stats_config?: {
    histogram_bucket_settings: { match: { safe_regex: { regex: string } }; buckets: number[] }[];
  };
  /** `config.bootstrap.v3.Watchdogs`. */
  watchdogs?: { main_thread_watchdog: EnvoyWatchdog; worker_watchdog: EnvoyWatchdog };
}

/** `config.bootstrap.v3.Watchdog`: only the two stat-only timeouts (no kill action is set). */
export interface EnvoyWatchdog {
  miss_timeout: string;
  megamiss_timeout: string;
}

/** `extensions.transport_sockets.tls.v3.Secret` as found in an SDS file. */
export type SdsSecret =
  | {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
      name: string;
      tls_certificate: {
        certificate_chain: { filename: string };
        private_key: { filename: string };
        watched_directory: { path: string };
      };
    }
  | {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
      name: string;
      validation_context: { trusted_ca: { filename: string }; watched_directory: { path: string } };
    };

/** The content of an SDS file: a discovery response with one secret. */
export interface SdsFile {
  resources: SdsSecret[];
}
