/**
 * The non-filter resources of a sidecar: clusters, TLS contexts on SDS secrets, and the SDS files.
 * References: clusters https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/cluster.proto,
 * TLS https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/transport_sockets/tls/v3/tls.proto,
 * SDS from files https://www.envoyproxy.io/docs/envoy/latest/configuration/security/secret.
 */
import type { EnvoyEndpoint, EnvoyOptions } from '../envoy.ts';
import type {
  CommonTlsContext,
  EnvoyCluster,
  SdsFile,
  SdsSecretConfig,
  SocketAddress,
  SubjectAltNameMatcher,
  TlsTransportSocket,
} from '../envoy-types.ts';

const svidSecret = 'svid';
const bundleSecret = 'trust_bundle';
const svidFile = 'svid.yaml';
const bundleFile = 'trust-bundle.yaml';

function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** A socket address. */
export function endpoint(address: string, port: number): SocketAddress {
  return { socket_address: { address, port_value: port } };
}

/** A single-endpoint cluster: STATIC for an IP address, STRICT_DNS (IPv4) for a host name. */
export function cluster(
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

/** Adds a filter's cluster unless one of that name is there already (two listeners may need it). */
export function addCluster(clusters: EnvoyCluster[], c: EnvoyCluster): void {
  if (!clusters.some((x) => x.name === c.name)) clusters.push(c);
}

/** The mesh TLS context: the SVID and the trust bundle from SDS files, peers matched by URI SAN. */
function tlsContext(sdsDir: string, sans: string[], alpn?: string[]): CommonTlsContext {
  const sds = (name: string, file: string): SdsSecretConfig => ({
    name,
    sds_config: {
      path_config_source: { path: `${sdsDir}/${file}`, watched_directory: { path: sdsDir } },
      resource_api_version: 'V3',
    },
  });
  const ctx: CommonTlsContext = {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    tls_certificate_sds_secret_configs: [sds(svidSecret, svidFile)],
    combined_validation_context: {
      default_validation_context: {
        match_typed_subject_alt_names: sans.map((s) => ({
          san_type: 'URI',
          matcher: { exact: s },
        })),
      },
      validation_context_sds_secret_config: sds(bundleSecret, bundleFile),
    },
  };
  if (alpn) ctx.alpn_protocols = alpn;
  return ctx;
}

/** Upstream mTLS with the workload SVID, expecting the peer's SPIFFE ID `san`. */
export function upstreamTls(
  sdsDir: string,
  san: string,
  sni: string | undefined,
): TlsTransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      ...(sni !== undefined ? { sni } : {}),
      common_tls_context: tlsContext(sdsDir, [san]),
    },
  };
}

/**
 * Upstream TLS to a server that is no mesh peer (e.g. Keycloak's management interface, whose
 * certificate the Mesh CA issued without a SPIFFE ID): the chain against the trust bundle, and the
 * name `san` it must carry. The SVID is offered should the server ask for a client certificate.
 */
export function upstreamServerTls(sdsDir: string, san: SubjectAltNameMatcher): TlsTransportSocket {
  const ctx = tlsContext(sdsDir, []);
  ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names = [san];
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: ctx,
    },
  };
}

/** Downstream mTLS that requires a client certificate whose URI SAN is one of `sans`. */
export function downstreamTls(
  sdsDir: string,
  sans: string[],
  alpn: string[] | undefined,
): TlsTransportSocket {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: tlsContext(sdsDir, sans, alpn),
    },
  };
}

/** The SDS files the TLS contexts point at, keyed by absolute path. */
export function sdsFiles(sds: EnvoyOptions['sds']): Record<string, SdsFile> {
  return {
    [`${sds.dir}/${svidFile}`]: {
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
          name: svidSecret,
          tls_certificate: {
            certificate_chain: { filename: sds.certChain },
            private_key: { filename: sds.privateKey },
            // Rotation: write new PEMs elsewhere, then move them into this directory.
            watched_directory: { path: dirname(sds.certChain) },
          },
        },
      ],
    },
    [`${sds.dir}/${bundleFile}`]: {
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
          name: bundleSecret,
          validation_context: {
            trusted_ca: { filename: sds.trustBundle },
            watched_directory: { path: dirname(sds.trustBundle) },
          },
        },
      ],
    },
  };
}
