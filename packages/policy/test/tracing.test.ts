/**
 * Traces (ADR 0023): the `tracing` block and its validation, the oracle's `trace-export` rule, the
 * sidecar's tracing (every inbound HCM, the edge's too) and telemetry egress listener, the
 * collector's mTLS front (oracle ≡ compiled front, on generated models), and the collector's and
 * Jaeger's configurations.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allowed,
  bindOrThrow,
  collectorFrontListenerName,
  collectorSpiffeId,
  compileCollectorFront,
  compileEnvoy,
  compileJaegerConfig,
  compileOtelCollectorConfig,
  envoyOptions,
  evaluateEnvoy,
  scraperSpiffeId,
  spiffeId,
  telemetryEgressListenerName,
  traceCollectorCluster,
  validateModel,
} from '../src/index.ts';
import type {
  BoundModel,
  EnvoyListener,
  Peer,
  TraceExportRequest,
  ValidModel,
} from '../src/index.ts';
import type { HttpConnectionManager, TlsTransportSocket } from '../src/compile/envoy-types.ts';
import { modelArb } from './arbitraries.ts';
import { referenceData, referenceModel } from './fixtures.ts';

const collector = 'spiffe://trellis.local/ns/trellis/sa/otel-collector';

function errorsOf(edit: (d: ReturnType<typeof referenceData>) => void) {
  const d = referenceData();
  edit(d);
  const r = validateModel(d);
  return r.ok ? [] : r.errors;
}

function local(model: ValidModel = referenceModel()): BoundModel {
  return bindOrThrow(
    model,
    {
      kind: 'local',
      basePort: 8000,
      stackDir: '/stack',
      keycloak: { baseUrl: 'https://localhost:8180' },
    },
    'local',
  );
}

const sds = {
  dir: '/f/sds',
  certChain: '/f/cert.pem',
  privateKey: '/f/key.pem',
  trustBundle: '/f/ca.pem',
};

/** The URI SAN matchers of a mesh TLS context, and its certificate's SDS secret name. */
function meshTls(ts: TlsTransportSocket | undefined): { sans: unknown[]; certSecret?: string } {
  const ctx = ts?.typed_config.common_tls_context;
  if (!ctx || !('combined_validation_context' in ctx)) throw new Error('no mesh TLS context');
  return {
    sans: ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names,
    certSecret: ctx.tls_certificate_sds_secret_configs[0]?.name,
  };
}

/** The HCMs of a bootstrap's listeners, by listener name. */
function hcms(listeners: EnvoyListener[]): Record<string, HttpConnectionManager> {
  const out: Record<string, HttpConnectionManager> = {};
  for (const l of listeners)
    for (const f of l.filter_chains[0]?.filters ?? [])
      if (f.name === 'envoy.filters.network.http_connection_manager') out[l.name] = f.typed_config;
  return out;
}

describe('the tracing block in the model', () => {
  it('is accepted as in trellis.yaml, with the collector an identity of its own', () => {
    const m = referenceModel();
    expect(m.tracing).toEqual({ collector: { serviceAccount: 'otel-collector' }, sampling: 1 });
    expect(collectorSpiffeId(m)).toBe(collector);
  });

  it('refuses a sampling rate outside [0, 1], naming the field', () => {
    for (const sampling of [1.5, -0.1])
      expect(
        errorsOf((d) => {
          (d.tracing as { sampling: number }).sampling = sampling;
        }),
      ).toContainEqual({
        path: 'tracing.sampling',
        reason: `must be a number from 0 to 1, got ${sampling}`,
      });
  });

  it("refuses a collector with a workload's, the scraper's or a data service's identity", () => {
    const as = (serviceAccount: string) =>
      errorsOf((d) => {
        (d.tracing as { collector: { serviceAccount: string } }).collector.serviceAccount =
          serviceAccount;
      });
    expect(as('ledger')).toContainEqual({
      path: 'tracing.collector.serviceAccount',
      reason:
        "SPIFFE ID spiffe://trellis.local/ns/trellis/sa/ledger is workloads.ledger's: the collector needs an identity of its own",
    });
    expect(as('prometheus')).toContainEqual({
      path: 'tracing.collector.serviceAccount',
      reason:
        "SPIFFE ID spiffe://trellis.local/ns/trellis/sa/prometheus is the metrics scraper's: the collector needs an identity of its own",
    });
    expect(as('kafka').map((e) => e.path)).toContain('tracing.collector.serviceAccount');
  });

  it('refuses unknown fields in the block', () => {
    const errors = errorsOf((d) => {
      (d.tracing as Record<string, unknown>).endpoint = 'http://x';
    });
    expect(errors.map((e) => e.path)).toContain('tracing.endpoint');
  });
});

describe('the oracle: trace export', () => {
  const m = referenceModel();
  const req = (peer: Peer, method = 'POST', path = '/v1/traces'): TraceExportRequest => ({
    kind: 'trace-export',
    peer,
    method,
    path,
  });
  const cert = (id: string, trusted = true): Peer => ({ kind: 'cert', spiffeId: id, trusted });

  it('admits every workload, POST /v1/traces only', () => {
    for (const w of Object.keys(m.workloads))
      expect(allowed(m, req(cert(spiffeId(m, w)))).allowed).toBe(true);
    expect(allowed(m, req(cert(spiffeId(m, 'ledger')), 'GET')).allowed).toBe(false);
    expect(allowed(m, req(cert(spiffeId(m, 'ledger')), 'POST', '/v1/metrics')).allowed).toBe(false);
  });

  it('refuses the collector, the scraper, a data service, another CA and no certificate', () => {
    expect(allowed(m, req(cert(collector))).reason).toBe(
      `${collector} is no workload of the model`,
    );
    expect(allowed(m, req(cert(scraperSpiffeId(m) ?? ''))).allowed).toBe(false);
    expect(allowed(m, req(cert('spiffe://trellis.local/ns/trellis/sa/kafka'))).allowed).toBe(false);
    expect(allowed(m, req(cert(spiffeId(m, 'ledger'), false))).allowed).toBe(false);
    expect(allowed(m, req({ kind: 'none' })).allowed).toBe(false);
  });

  it('refuses everyone when the model declares no tracing', () => {
    const n = referenceModel();
    delete (n as { tracing?: unknown }).tracing;
    expect(allowed(n, req(cert(spiffeId(n, 'ledger')))).reason).toBe(
      'the model declares no tracing collector',
    );
  });
});

describe('a sidecar with tracing', () => {
  const b = local();

  it('traces on every inbound HCM (the edge too) with the OpenTelemetry tracer at the model rate', () => {
    for (const w of ['ingress', 'orders-api', 'ledger']) {
      const a = compileEnvoy(b, envoyOptions(b, w));
      const inbound = Object.entries(hcms(a.bootstrap.static_resources.listeners)).filter(([n]) =>
        n.startsWith('inbound_'),
      );
      expect(inbound.length).toBeGreaterThan(0);
      for (const [, h] of inbound)
        expect(h.tracing).toEqual({
          random_sampling: { value: 100 },
          provider: {
            name: 'envoy.tracers.opentelemetry',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
              http_service: {
                http_uri: {
                  uri: 'https://otel-collector.trellis.svc/v1/traces',
                  cluster: traceCollectorCluster,
                  timeout: '5s',
                },
              },
              service_name: `${w}-sidecar`,
            },
          },
        });
    }
  });

  it('exports over mTLS with its own SVID, checking the collector’s SPIFFE ID', () => {
    const a = compileEnvoy(b, envoyOptions(b, 'orders-api'));
    const c = a.bootstrap.static_resources.clusters.find((x) => x.name === traceCollectorCluster);
    expect(c?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8420 },
    });
    expect(c?.transport_socket?.typed_config['@type']).toBe(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    );
    expect(meshTls(c?.transport_socket)).toEqual({
      sans: [{ san_type: 'URI', matcher: { exact: collector } }],
      certSecret: 'svid',
    });
  });

  it('has a plaintext telemetry egress on loopback: POST /v1/traces to the collector, else 404', () => {
    const a = compileEnvoy(b, envoyOptions(b, 'orders-api'));
    const l = a.bootstrap.static_resources.listeners.find(
      (x) => x.name === telemetryEgressListenerName,
    );
    expect(l?.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 8452 } });
    expect(l?.filter_chains[0]?.transport_socket).toBeUndefined();
    const h = hcms(l ? [l] : [])[telemetryEgressListenerName];
    // No spans of its own: the export would trace itself.
    expect(h?.tracing).toBeUndefined();
    expect(h?.route_config.virtual_hosts[0]?.routes).toEqual([
      {
        name: 'otlp-traces',
        match: {
          path: '/v1/traces',
          headers: [{ name: ':method', string_match: { exact: 'POST' } }],
        },
        route: { cluster: traceCollectorCluster, timeout: '10s' },
      },
      { name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } },
    ]);
    // The edge has no app: no telemetry egress.
    const edge = compileEnvoy(b, envoyOptions(b, 'ingress'));
    expect(edge.bootstrap.static_resources.listeners.map((x) => x.name)).not.toContain(
      telemetryEgressListenerName,
    );
  });

  it('neither traces nor exports without a tracing block', () => {
    const n = referenceModel();
    delete (n as { tracing?: unknown }).tracing;
    const bn = local(n);
    const a = compileEnvoy(bn, envoyOptions(bn, 'orders-api'));
    for (const h of Object.values(hcms(a.bootstrap.static_resources.listeners)))
      expect(h.tracing).toBeUndefined();
    expect(a.bootstrap.static_resources.clusters.map((c) => c.name)).not.toContain(
      traceCollectorCluster,
    );
    // And options that ask for it without a model block are ignored, not half-applied.
    const o = {
      ...envoyOptions(bn, 'orders-api'),
      tracing: { collector: { address: '127.0.0.1', port: 1 }, egressPort: 2 },
    };
    const names = compileEnvoy(bn, o).bootstrap.static_resources.listeners.map((x) => x.name);
    expect(names).not.toContain(telemetryEgressListenerName);
  });

  it('samples at the model rate (Envoy percent)', () => {
    const m = referenceModel();
    (m.tracing as { sampling: number }).sampling = 0.25;
    const bm = local(m);
    const h = hcms(
      compileEnvoy(bm, envoyOptions(bm, 'ledger')).bootstrap.static_resources.listeners,
    );
    expect(h.inbound_http?.tracing?.random_sampling).toEqual({ value: 25 });
  });
});

describe("the collector's front", () => {
  const m = referenceModel();
  const front = compileCollectorFront(m, {
    listen: { address: '127.0.0.1', port: 9420 },
    receiverPort: 9421,
    sds,
  });

  it('admits the workloads by URI SAN, and originates mTLS to the receiver as the collector', () => {
    const l = front.bootstrap.static_resources.listeners[0];
    expect(l?.name).toBe(collectorFrontListenerName);
    expect(meshTls(l?.filter_chains[0]?.transport_socket).sans).toEqual(
      Object.keys(m.workloads)
        .sort()
        .map((w) => ({ san_type: 'URI', matcher: { exact: spiffeId(m, w) } })),
    );
    const c = front.bootstrap.static_resources.clusters[0];
    expect(meshTls(c?.transport_socket)).toEqual({
      sans: [{ san_type: 'URI', matcher: { exact: collector } }],
      certSecret: 'svid',
    });
  });

  it('throws naming the field when the model has no collector or a port is out of range', () => {
    const n = referenceModel();
    delete (n as { tracing?: unknown }).tracing;
    expect(() =>
      compileCollectorFront(n, { listen: { address: '127.0.0.1', port: 1 }, receiverPort: 2, sds }),
    ).toThrow('compileCollectorFront: tracing.collector: the model declares no trace collector');
    expect(() =>
      compileCollectorFront(m, { listen: { address: '127.0.0.1', port: 0 }, receiverPort: 2, sds }),
    ).toThrow('compileCollectorFront: listen.port must be an integer in [1, 65535], got 0');
  });

  it('decides as the oracle on generated models (TLS SAN + RBAC + routes)', () => {
    let allowedCount = 0;
    let deniedCount = 0;
    const seed = fc.record({
      who: fc.nat(6),
      // Weighted so an allowed export (workload × POST × /v1/traces) is about 1 in 10 draws: about
      // 115 of the 1,200, well clear of the non-vacuity floor below (a 1-in-20 mix missed it by chance).
      peer: fc.constantFrom(
        'workload',
        'workload',
        'workload',
        'collector',
        'scraper',
        'data',
        'untrusted',
        'none',
      ),
      method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT'),
      path: fc.constantFrom(
        '/v1/traces',
        '/v1/traces',
        '/v1/traces',
        '/v1/metrics',
        '/v1/logs',
        '/',
        '/v1/traces/x',
      ),
    });
    fc.assert(
      fc.property(modelArb, fc.array(seed, { minLength: 6, maxLength: 6 }), (base, seeds) => {
        const model: ValidModel = {
          ...base,
          tracing: { collector: { serviceAccount: 'otel-collector-x' }, sampling: 1 },
        };
        const names = Object.keys(model.workloads).sort();
        const f = compileCollectorFront(model, {
          listen: { address: '127.0.0.1', port: 9420 },
          receiverPort: 9421,
          sds,
        });
        for (const s of seeds) {
          const w = names[s.who % names.length] ?? 'edge';
          const id = {
            workload: spiffeId(model, w),
            collector: collectorSpiffeId(model) ?? '',
            scraper: `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/prometheus-x`,
            data: `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/kafka`,
            untrusted: spiffeId(model, w),
            none: '',
          }[s.peer];
          const peer: Peer =
            s.peer === 'none'
              ? { kind: 'none' }
              : { kind: 'cert', spiffeId: id, trusted: s.peer !== 'untrusted' };
          const want = allowed(model, {
            kind: 'trace-export',
            peer,
            method: s.method,
            path: s.path,
          });
          const got = evaluateEnvoy(f.bootstrap, {
            listenerPort: 9420,
            peer,
            http: { method: s.method, path: s.path, now: 0 },
          });
          expect({ ...s, allowed: got.allowed }).toEqual({ ...s, allowed: want.allowed });
          if (want.allowed) allowedCount++;
          else deniedCount++;
        }
      }),
      { numRuns: 200 },
    );
    // Non-vacuity: both answers occur often.
    expect(allowedCount).toBeGreaterThan(50);
    expect(deniedCount).toBeGreaterThan(200);
  });
});

describe("the collector's and Jaeger's configurations", () => {
  const m = referenceModel();
  const pem = { cert: '/p/cert.pem', key: '/p/key.pem', ca: '/p/bundle.pem' };

  it('the collector: OTLP/HTTP on loopback with client certificates from the Mesh CA, mTLS to Jaeger', () => {
    const c = compileOtelCollectorConfig(m, {
      receiverPort: 8421,
      jaeger: { address: '127.0.0.1', port: 8423 },
      pem: { cert: '/c/cert.pem', key: '/c/key.pem', ca: '/c/bundle.pem' },
    });
    expect(c).toMatchObject({
      receivers: {
        otlp: {
          protocols: {
            http: {
              endpoint: '127.0.0.1:8421',
              tls: {
                cert_file: '/c/cert.pem',
                key_file: '/c/key.pem',
                client_ca_file: '/c/bundle.pem',
              },
            },
          },
        },
      },
      exporters: {
        otlp: {
          endpoint: '127.0.0.1:8423',
          tls: { ca_file: '/c/bundle.pem', server_name_override: 'jaeger.trellis.svc' },
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
        telemetry: { metrics: { level: 'none' } },
      },
    });
    // No gRPC receiver: the front speaks OTLP/HTTP only.
    expect(Object.keys((c.receivers as { otlp: { protocols: object } }).otlp.protocols)).toEqual([
      'http',
    ]);
  });

  it('Jaeger: OTLP/gRPC over mTLS, the memory store, every listener on 127.0.0.1', () => {
    const j = compileJaegerConfig(m, {
      otlpGrpcPort: 8423,
      queryHttpPort: 8424,
      queryGrpcPort: 8425,
      pem,
    });
    expect(j).toMatchObject({
      extensions: {
        jaeger_storage: { backends: { memstore: { memory: { max_traces: 100_000 } } } },
        jaeger_query: {
          storage: { traces: 'memstore' },
          http: { endpoint: '127.0.0.1:8424' },
          grpc: { endpoint: '127.0.0.1:8425' },
        },
      },
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: '127.0.0.1:8423', tls: { client_ca_file: '/p/bundle.pem' } },
          },
        },
      },
    });
    const endpoints = JSON.stringify(j).match(/"endpoint":"[^"]*"/g) ?? [];
    expect(endpoints.length).toBe(3);
    for (const e of endpoints) expect(e).toMatch(/"endpoint":"127\.0\.0\.1:\d+"/);
  });
});
