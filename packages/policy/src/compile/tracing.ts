/**
 * The trace pipeline of an environment that runs it itself (ADR 0023): the collector's mTLS front
 * (an Envoy, like a data node's metrics front), the OpenTelemetry Collector's configuration, and
 * Jaeger's. Spans flow: sidecar or app (through its sidecar's telemetry egress) → front (mTLS: the
 * model's workloads only, `POST /v1/traces` only) → collector's OTLP/HTTP receiver (TLS, client
 * certificates from the Mesh CA only, on loopback) → batch → OTLP/gRPC over mTLS → Jaeger's OTLP
 * receiver (the same) → memory store → Jaeger's query API on the host's loopback.
 * Collector fields: https://github.com/open-telemetry/opentelemetry-collector (config/configtls,
 * receiver/otlpreceiver, exporter/otlpexporter, processor/*; v0.139.0). Jaeger: cmd/jaeger/internal/all-in-one.yaml.
 */
import { collectorSpiffeId, otlpTracesPath, spiffeId } from '../identity.ts';
import type { Model } from '../schema.ts';
import type { EnvoyEndpoint, EnvoyOptions } from './envoy.ts';
import type { EnvoyBootstrap, EnvoyRoute, RbacPolicy, SdsFile } from './envoy-types.ts';
import { idleSettings } from './envoy/idle.ts';
import { hcm } from './envoy/metrics.ts';
import { cluster, downstreamTls, endpoint, sdsFiles, upstreamTls } from './envoy/resources.ts';
import { collectorServerName } from './envoy/tracing.ts';

/** The front's listener name, also its HCM's stat prefix. */
export const collectorFrontListenerName = 'otlp_front';
/** The front's cluster: the collector's OTLP/HTTP receiver on loopback. */
export const collectorReceiverCluster = 'otel_collector';

/** PEM files of one identity, as the collector and Jaeger read them. */
export interface PemPaths {
  cert: string;
  key: string;
  /** The Mesh CA's bundle: client certificates must chain to it, and so must the server's. */
  ca: string;
}

/** Options of {@link compileCollectorFront}. */
export interface CollectorFrontOptions {
  /** Where the mTLS listener binds: where the sidecars reach the collector. */
  listen: EnvoyEndpoint;
  /** The collector's OTLP/HTTP receiver (TLS), on 127.0.0.1. */
  receiverPort: number;
  /** The collector's SVID and the trust bundle, as SDS files (the front is the collector's proxy). */
  sds: EnvoyOptions['sds'];
  /** Admin port on 127.0.0.1; omit to leave `admin` out of the bootstrap. */
  adminPort?: number;
}

const port = (fn: string, what: string, p: number): void => {
  if (!Number.isInteger(p) || p < 1 || p > 65_535)
    throw new Error(`${fn}: ${what} must be an integer in [1, 65535], got ${p}`);
};

function collectorIdOrThrow(model: Model, fn: string): string {
  const id = collectorSpiffeId(model);
  if (id === undefined)
    throw new Error(`${fn}: tracing.collector: the model declares no trace collector`);
  return id;
}

/**
 * The collector's front: mTLS that admits the model's workloads (their SPIFFE IDs as the client
 * certificate's URI SAN) and nobody else, RBAC `POST /v1/traces`, then mTLS again to the collector's
 * receiver on loopback with the collector's own SVID (so even a local plaintext client is refused).
 */
export function compileCollectorFront(
  model: Model,
  o: CollectorFrontOptions,
): { bootstrap: EnvoyBootstrap; sdsFiles: Record<string, SdsFile> } {
  const fn = 'compileCollectorFront';
  const collector = collectorIdOrThrow(model, fn);
  port(fn, 'listen.port', o.listen.port);
  port(fn, 'receiverPort', o.receiverPort);
  if (o.adminPort !== undefined) port(fn, 'adminPort', o.adminPort);
  const workloads = Object.keys(model.workloads)
    .sort()
    .map((w) => spiffeId(model, w));
  if (workloads.length === 0) throw new Error(`${fn}: the model has no workloads to admit`);
  const policy: RbacPolicy = {
    permissions: [
      {
        and_rules: {
          rules: [
            { header: { name: ':method', string_match: { exact: 'POST' } } },
            { url_path: { path: { exact: otlpTracesPath } } },
          ],
        },
      },
    ],
    principals: workloads.map((id) => ({ authenticated: { principal_name: { exact: id } } })),
  };
  const routes: EnvoyRoute[] = [
    {
      name: 'otlp-traces',
      match: { path: otlpTracesPath },
      route: { cluster: collectorReceiverCluster, timeout: '10s' },
    },
    { name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } },
  ];
  const typed = hcm(routes, policy, collectorFrontListenerName, 'workloads');
  return {
    bootstrap: {
      node: { id: 'otel-collector-front', cluster: 'otel-collector-front' },
      ...(o.adminPort !== undefined
        ? { admin: { address: endpoint('127.0.0.1', o.adminPort) } }
        : {}),
      static_resources: {
        listeners: [
          {
            name: collectorFrontListenerName,
            address: endpoint(o.listen.address, o.listen.port),
            filter_chains: [
              {
                transport_socket: downstreamTls(o.sds.dir, workloads, ['h2', 'http/1.1']),
                filters: [
                  { name: 'envoy.filters.network.http_connection_manager', typed_config: typed },
                ],
              },
            ],
          },
        ],
        clusters: [
          cluster(
            collectorReceiverCluster,
            { address: '127.0.0.1', port: o.receiverPort },
            upstreamTls(o.sds.dir, collector, collectorServerName(model)),
          ),
        ],
      },
      ...idleSettings(),
    },
    sdsFiles: sdsFiles(o.sds),
  };
}

/** The DNS name Jaeger's SVID carries, which the collector's exporter checks (`server_name_override`). */
export function jaegerServerName(model: Model): string {
  return `jaeger.${model.tracing?.collector.namespace ?? model.namespace}.svc`;
}

/** Options of {@link compileOtelCollectorConfig}. */
export interface OtelCollectorConfigOptions {
  /** The OTLP/HTTP receiver's port on 127.0.0.1 (the front's upstream). */
  receiverPort: number;
  /** Jaeger's OTLP/gRPC receiver. */
  jaeger: EnvoyEndpoint;
  /** The collector's SVID files. */
  pem: PemPaths;
  /** @default '1s' */
  batchTimeout?: string;
  /** @default 256 */
  memoryLimitMiB?: number;
}

/** How often the collector and Jaeger re-read their certificates (SVIDs are rotated in place). */
const tlsReload = '5m';

/** The OpenTelemetry Collector's configuration (JSON is YAML). */
export function compileOtelCollectorConfig(
  model: Model,
  o: OtelCollectorConfigOptions,
): Record<string, unknown> {
  const fn = 'compileOtelCollectorConfig';
  collectorIdOrThrow(model, fn);
  port(fn, 'receiverPort', o.receiverPort);
  port(fn, 'jaeger.port', o.jaeger.port);
  const limit = o.memoryLimitMiB ?? 256;
  return {
    receivers: {
      otlp: {
        protocols: {
          http: {
            endpoint: `127.0.0.1:${o.receiverPort}`,
            tls: {
              cert_file: o.pem.cert,
              key_file: o.pem.key,
              client_ca_file: o.pem.ca,
              client_ca_file_reload: true,
              min_version: '1.2',
              reload_interval: tlsReload,
            },
          },
        },
      },
    },
    processors: {
      memory_limiter: {
        check_interval: '1s',
        limit_mib: limit,
        spike_limit_mib: Math.floor(limit / 4),
      },
      batch: { timeout: o.batchTimeout ?? '1s' },
    },
    exporters: {
      otlp: {
        endpoint: `${o.jaeger.address}:${o.jaeger.port}`,
        tls: {
          ca_file: o.pem.ca,
          cert_file: o.pem.cert,
          key_file: o.pem.key,
          server_name_override: jaegerServerName(model),
          min_version: '1.2',
          reload_interval: tlsReload,
        },
      },
    },
    service: {
      pipelines: {
        traces: {
          receivers: ['otlp'],
          processors: ['memory_limiter', 'batch'],
          exporters: ['otlp'],
        },
      },
      // No internal metrics endpoint (the default would listen on :8888 for every stack).
      telemetry: { metrics: { level: 'none' }, logs: { level: 'info', encoding: 'json' } },
    },
  };
}

/** Options of {@link compileJaegerConfig}. */
export interface JaegerConfigOptions {
  /** The OTLP/gRPC receiver (mTLS, the Mesh CA's clients), on loopback. */
  otlpGrpcPort: number;
  /** The query API (`/api/traces/<id>`, `/api/v3/traces/<id>`), on 127.0.0.1. */
  queryHttpPort: number;
  /** The query gRPC API, on 127.0.0.1 (Jaeger always opens it). */
  queryGrpcPort: number;
  /** Jaeger's SVID files. */
  pem: PemPaths;
  /** @default 100_000 */
  maxTraces?: number;
}

/** Jaeger v2's configuration: OTLP in over mTLS, the memory store, the query API on loopback. */
export function compileJaegerConfig(model: Model, o: JaegerConfigOptions): Record<string, unknown> {
  const fn = 'compileJaegerConfig';
  collectorIdOrThrow(model, fn);
  port(fn, 'otlpGrpcPort', o.otlpGrpcPort);
  port(fn, 'queryHttpPort', o.queryHttpPort);
  port(fn, 'queryGrpcPort', o.queryGrpcPort);
  const store = 'memstore';
  return {
    service: {
      extensions: ['jaeger_storage', 'jaeger_query'],
      pipelines: {
        traces: {
          receivers: ['otlp'],
          processors: ['batch'],
          exporters: ['jaeger_storage_exporter'],
        },
      },
      telemetry: { metrics: { level: 'none' }, logs: { level: 'info', encoding: 'json' } },
    },
    extensions: {
      jaeger_storage: { backends: { [store]: { memory: { max_traces: o.maxTraces ?? 100_000 } } } },
      jaeger_query: {
        storage: { traces: store },
        // Jaeger would otherwise trace its own queries.
        enable_tracing: false,
        http: { endpoint: `127.0.0.1:${o.queryHttpPort}` },
        grpc: { endpoint: `127.0.0.1:${o.queryGrpcPort}` },
      },
    },
    receivers: {
      otlp: {
        protocols: {
          grpc: {
            endpoint: `127.0.0.1:${o.otlpGrpcPort}`,
            tls: {
              cert_file: o.pem.cert,
              key_file: o.pem.key,
              client_ca_file: o.pem.ca,
              client_ca_file_reload: true,
              min_version: '1.2',
              reload_interval: tlsReload,
            },
          },
        },
      },
    },
    processors: { batch: {} },
    exporters: { jaeger_storage_exporter: { trace_storage: store } },
  };
}
