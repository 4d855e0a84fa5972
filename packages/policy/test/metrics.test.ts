/**
 * The metrics scraper (ADR 0020): its identity and rules in the model, the oracle's decisions, the
 * binding's metrics listeners, each sidecar's metrics listener, and the compiled Prometheus scrape
 * configuration.
 */
import { describe, expect, it } from 'vitest';
import {
  adminStatsCluster,
  allowed,
  bindOrThrow,
  compileEnvoy,
  compilePrometheusScrape,
  envoyOptions,
  localPortOffsets,
  localServerMetricsSlots,
  metricsListenerName,
  metricsServerName,
  scraperSpiffeId,
  spiffeId,
  validateModel,
} from '../src/index.ts';
import type { BoundModel, EnvoyListener, Peer, ScrapeRequest, ValidModel } from '../src/index.ts';
import { localAllocator } from '../src/bind/local.ts';
import { referenceBound, referenceData, referenceModel } from './fixtures.ts';

const scraper = 'spiffe://trellis.local/ns/trellis/sa/prometheus';

function errorsOf(edit: (d: ReturnType<typeof referenceData>) => void) {
  const d = referenceData();
  edit(d);
  const r = validateModel(d);
  return r.ok ? [] : r.errors;
}

function local(model: ValidModel = referenceModel(), pods = false): BoundModel {
  return bindOrThrow(
    model,
    {
      kind: 'local',
      basePort: 8000,
      stackDir: '/stack',
      keycloak: { baseUrl: 'https://localhost:8180' },
      ...(pods
        ? {
            pods: {
              hostAddress: '198.18.8.1',
              addresses: {
                ingress: '198.18.8.2',
                'orders-api': '198.18.8.3',
                ledger: '198.18.8.4',
              },
            },
          }
        : {}),
    },
    'local',
  );
}

describe('the metrics scraper in the model', () => {
  it('has a SPIFFE ID of its own in the reference model', () => {
    expect(scraperSpiffeId(referenceModel())).toBe(scraper);
    expect(metricsServerName(referenceModel(), 'orders-api')).toBe('orders-api.trellis.svc');
  });

  it('refuses app metrics without a scraper, naming the field', () => {
    expect(
      errorsOf((d) => {
        delete (d as { metrics?: unknown }).metrics;
      }),
    ).toEqual(
      ['orders-api', 'ledger', 'orders-writer'].map((w) => ({
        path: `workloads.${w}.metrics`,
        reason: 'declare metrics.scraper: nobody may read these metrics without one',
      })),
    );
  });

  it('refuses a scraper that shares a workload identity', () => {
    expect(
      errorsOf((d) => {
        (d as { metrics: unknown }).metrics = { scraper: { serviceAccount: 'ledger' } };
      }),
    ).toEqual([
      {
        path: 'metrics.scraper.serviceAccount',
        reason:
          "SPIFFE ID spiffe://trellis.local/ns/trellis/sa/ledger is workloads.ledger's: the scraper needs an identity of its own",
      },
    ]);
  });

  it('refuses a bad metrics port or path, and metrics on the edge', () => {
    const ws = (d: ReturnType<typeof referenceData>) =>
      d.workloads as Record<string, Record<string, unknown>>;
    expect(
      errorsOf((d) => {
        (ws(d)['orders-api'] as Record<string, unknown>).metrics = {
          port: 'nope',
          path: '/metrics',
        };
      }),
    ).toEqual([
      {
        path: 'workloads.orders-api.metrics.port',
        reason: "unknown reference: the workload has no port named 'nope'",
      },
    ]);
    expect(
      errorsOf((d) => {
        (ws(d)['orders-api'] as Record<string, unknown>).metrics = {
          port: 'http',
          path: '/m/{id}',
        };
      }),
    ).toEqual([
      {
        path: 'workloads.orders-api.metrics.path',
        reason: "must be a literal path starting with '/' (no {param}, no dot segment)",
      },
    ]);
    expect(
      errorsOf((d) => {
        (ws(d)['orders-api'] as Record<string, unknown>).metrics = {
          port: 'http',
          path: '/stats/prometheus',
        };
      }),
    ).toEqual([
      {
        path: 'workloads.orders-api.metrics.path',
        reason: "/stats/prometheus is the sidecar's own statistics",
      },
    ]);
    expect(
      errorsOf((d) => {
        (ws(d)['ingress'] as Record<string, unknown>).metrics = { port: 'http', path: '/metrics' };
      }),
    ).toEqual([
      { path: 'workloads.ingress.metrics', reason: 'an edge workload has no app to serve metrics' },
    ]);
  });
});

describe('the oracle on scrapes', () => {
  const model = referenceModel();
  const scrape = (to: string, peer: Peer, path: string, method = 'GET'): ScrapeRequest => ({
    kind: 'scrape',
    to,
    peer,
    method,
    path,
  });
  const asScraper: Peer = { kind: 'cert', spiffeId: scraper, trusted: true };

  it('lets the scraper GET every sidecar’s stats and the declared app metrics', () => {
    for (const w of ['ingress', 'orders-api', 'ledger', 'orders-writer'])
      expect(allowed(model, scrape(w, asScraper, '/stats/prometheus')).allowed).toBe(true);
    expect(allowed(model, scrape('orders-api', asScraper, '/metrics'))).toEqual({
      allowed: true,
      reason: 'the scraper reads workloads.orders-api.metrics',
    });
  });

  it('refuses every other caller, method and path', () => {
    const ingress: Peer = { kind: 'cert', spiffeId: spiffeId(model, 'ingress'), trusted: true };
    expect(allowed(model, scrape('orders-api', ingress, '/stats/prometheus'))).toEqual({
      allowed: false,
      reason: `${spiffeId(model, 'ingress')} is not the metrics scraper`,
    });
    expect(allowed(model, scrape('orders-api', { kind: 'none' }, '/metrics')).allowed).toBe(false);
    expect(
      allowed(model, scrape('orders-api', { ...asScraper, trusted: false }, '/metrics')).allowed,
    ).toBe(false);
    expect(allowed(model, scrape('orders-api', asScraper, '/metrics', 'POST')).allowed).toBe(false);
    // ingress declares no app metrics; the scraper reaches no route of the app either.
    expect(allowed(model, scrape('ingress', asScraper, '/metrics')).allowed).toBe(false);
    expect(allowed(model, scrape('orders-api', asScraper, '/orders/1')).allowed).toBe(false);
    // The scraper is no workload: the mesh ports refuse it.
    expect(
      allowed(model, {
        kind: 'http',
        to: 'orders-api',
        port: 'http',
        peer: asScraper,
        method: 'GET',
        path: '/metrics',
        now: 1_800_000_000,
      }).allowed,
    ).toBe(false);
  });
});

describe('binding the metrics listeners', () => {
  it('puts each sidecar’s metrics listener at basePort + 550 + its position, and the scraper on loopback', () => {
    const b = local();
    expect(localPortOffsets.sidecarMetricsFrom).toBe(550);
    expect(b.binding.workloads['ingress']?.metrics).toEqual({ address: '127.0.0.1', port: 8550 });
    expect(b.binding.workloads['ledger']?.metrics).toEqual({ address: '127.0.0.1', port: 8551 });
    expect(b.binding.metrics).toEqual({
      spiffeId: scraper,
      svid: {
        kind: 'files',
        dir: '/stack/pki/prometheus',
        cert: '/stack/pki/prometheus/cert.pem',
        key: '/stack/pki/prometheus/key.pem',
        bundle: '/stack/pki/prometheus/bundle.pem',
      },
      listen: { address: '127.0.0.1', port: 8090 },
    });
  });

  it('binds a pod’s metrics listener on the pod’s address, the edge’s too (the host’s Prometheus dials it)', () => {
    const b = local(referenceModel(), true);
    expect(b.binding.workloads['orders-api']?.metrics).toEqual({
      address: '198.18.8.3',
      port: 8552,
    });
    expect(b.binding.workloads['ingress']?.metrics).toEqual({ address: '198.18.8.2', port: 8550 });
    // The edge's inbound stays on its pod's loopback: only the metrics listener moves.
    expect(envoyOptions(b, 'ingress').metrics).toEqual({
      port: 8550,
      address: '198.18.8.2',
      statsPort: 8500,
    });
  });

  it('reserves the data nodes’ metrics ports (front, its admin, the JMX exporter) only with a scraper', () => {
    const env = {
      kind: 'local' as const,
      basePort: 8000,
      stackDir: '/stack',
      keycloak: { baseUrl: 'https://localhost:8180' },
    };
    const ports = (m: ValidModel) => {
      const a = localAllocator(m, env);
      if ('errors' in a) throw new Error(JSON.stringify(a.errors));
      return a
        .reserved()
        .filter((l) => /serverMetrics|jmxExporter/.test(l.path))
        .map((l) => `${l.endpoint.address}:${l.endpoint.port} ${l.what}`);
    };
    expect(localServerMetricsSlots).toEqual({ cassandra: 0, kafka: 1, keycloak: 2, nginx: 3 });
    expect(ports(referenceModel())).toEqual([
      "127.0.0.1:8560 the stack's serverMetricsFrom listener of cassandra",
      "127.0.0.1:8570 the stack's serverMetricsAdminFrom listener of cassandra",
      "127.0.0.1:8580 the stack's jmxExporterFrom listener of cassandra",
      "127.0.0.1:8561 the stack's serverMetricsFrom listener of kafka",
      "127.0.0.1:8571 the stack's serverMetricsAdminFrom listener of kafka",
      "127.0.0.1:8581 the stack's jmxExporterFrom listener of kafka",
      "127.0.0.1:8562 the stack's serverMetricsFrom listener of keycloak",
      "127.0.0.1:8572 the stack's serverMetricsAdminFrom listener of keycloak",
      "127.0.0.1:8563 the stack's serverMetricsFrom listener of nginx",
      "127.0.0.1:8573 the stack's serverMetricsAdminFrom listener of nginx",
      "127.0.0.1:8583 the stack's jmxExporterFrom listener of nginx",
    ]);
    const d = referenceData();
    delete (d as { metrics?: unknown }).metrics;
    for (const w of ['orders-api', 'ledger', 'orders-writer'])
      delete (d.workloads as Record<string, Record<string, unknown>>)[w]?.metrics;
    const r = validateModel(d);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(ports(r.model)).toEqual([]);
  });

  it('gives no metrics listener without a scraper', () => {
    const d = referenceData();
    delete (d as { metrics?: unknown }).metrics;
    for (const w of ['orders-api', 'ledger', 'orders-writer'])
      delete (d.workloads as Record<string, Record<string, unknown>>)[w]?.metrics;
    const r = validateModel(d);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const b = local(r.model);
    expect(b.binding.metrics).toBeUndefined();
    expect(b.binding.workloads['orders-api']?.metrics).toBeUndefined();
    expect(envoyOptions(b, 'orders-api').metrics).toBeUndefined();
    const names = compileEnvoy(
      b,
      envoyOptions(b, 'orders-api'),
    ).bootstrap.static_resources.listeners.map((l) => l.name);
    expect(names).not.toContain(metricsListenerName);
    expect(() => compilePrometheusScrape(b)).toThrow(
      'metrics.scraper: the model declares no metrics scraper to compile for',
    );
  });
});

describe('the sidecar metrics listener', () => {
  const b = referenceBound();
  const bootstrap = (w: string) => compileEnvoy(b, envoyOptions(b, w)).bootstrap;
  const listener = (w: string, name: string): EnvoyListener => {
    const l = bootstrap(w).static_resources.listeners.find((x) => x.name === name);
    if (!l) throw new Error(`${w} has no listener ${name}`);
    return l;
  };

  it('requires a client certificate with the scraper’s SPIFFE ID, and no other', () => {
    const ts = listener('orders-api', metricsListenerName).filter_chains[0]?.transport_socket;
    expect(ts?.typed_config).toMatchObject({ require_client_certificate: true });
    const ctx = (ts?.typed_config as { common_tls_context: Record<string, unknown> })
      .common_tls_context as {
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: unknown[] };
      };
    };
    expect(ctx.combined_validation_context.default_validation_context).toMatchObject({
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: scraper } }],
    });
    // The app's own inbound listener does not admit the scraper.
    expect(JSON.stringify(listener('orders-api', 'inbound_http'))).not.toContain(scraper);
  });

  it('routes the stats to the admin interface and the app path to the app, all else 404', () => {
    const l = listener('orders-api', metricsListenerName);
    const f = l.filter_chains[0]?.filters[0];
    if (f?.name !== 'envoy.filters.network.http_connection_manager') throw new Error('no HCM');
    const routes = f.typed_config.route_config.virtual_hosts[0]?.routes;
    expect(routes).toEqual([
      {
        name: 'sidecar-stats',
        match: { path: '/stats/prometheus' },
        route: { cluster: adminStatsCluster, timeout: '10s' },
      },
      {
        name: 'app-metrics',
        match: { path: '/metrics' },
        route: { cluster: 'app_http', timeout: '10s' },
      },
      { name: 'no-route', match: { prefix: '/' }, direct_response: { status: 404 } },
    ]);
    expect(f.typed_config.http_filters.map((h) => h.name)).toEqual([
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
    const admin = bootstrap('orders-api').static_resources.clusters.find(
      (c) => c.name === adminStatsCluster,
    );
    expect(admin?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 9902 },
    });
    // ingress declares no app metrics: only its stats.
    const lf = listener('ingress', metricsListenerName).filter_chains[0]?.filters[0];
    if (lf?.name !== 'envoy.filters.network.http_connection_manager') throw new Error('no HCM');
    expect(lf.typed_config.route_config.virtual_hosts[0]?.routes.map((r) => r.name)).toEqual([
      'sidecar-stats',
      'no-route',
    ]);
  });
});

describe('compilePrometheusScrape', () => {
  it('scrapes every sidecar and the declared app metrics over mTLS with the scraper’s SVID', () => {
    const cfg = compilePrometheusScrape(local(referenceModel(), true), { scrapeInterval: '5s' });
    expect(cfg.global).toEqual({
      scrape_interval: '5s',
      scrape_timeout: '5s',
      evaluation_interval: '5s',
    });
    expect(cfg.scrape_configs.map((j) => j.job_name)).toEqual([
      'envoy-ingress',
      'envoy-ledger',
      'app-ledger',
      'envoy-orders-api',
      'app-orders-api',
      'envoy-orders-writer',
      'app-orders-writer',
      'prometheus',
    ]);
    const byName = Object.fromEntries(cfg.scrape_configs.map((j) => [j.job_name, j]));
    expect(byName['app-orders-api']).toEqual({
      job_name: 'app-orders-api',
      scheme: 'https',
      metrics_path: '/metrics',
      tls_config: {
        ca_file: '/stack/pki/prometheus/bundle.pem',
        cert_file: '/stack/pki/prometheus/cert.pem',
        key_file: '/stack/pki/prometheus/key.pem',
        server_name: 'orders-api.trellis.svc',
        min_version: 'TLS12',
      },
      static_configs: [{ targets: ['198.18.8.3:8552'], labels: { workload: 'orders-api' } }],
    });
    expect(byName['envoy-ingress']).toMatchObject({
      scheme: 'https',
      metrics_path: '/stats/prometheus',
      tls_config: { server_name: 'ingress.trellis.svc' },
      static_configs: [{ targets: ['198.18.8.2:8550'] }],
    });
    // Only Prometheus's own /metrics is plaintext, on its loopback listener.
    expect(byName['prometheus']).toEqual({
      job_name: 'prometheus',
      scheme: 'http',
      metrics_path: '/metrics',
      static_configs: [{ targets: ['127.0.0.1:8090'] }],
    });
    for (const j of cfg.scrape_configs)
      if (j.job_name !== 'prometheus') expect(j.scheme).toBe('https');
  });

  it('refuses an environment that gives the scraper no SVID files (Kubernetes: Istio’s sidecars)', () => {
    const issuer = 'https://auth.us.example.com/realms/trellis';
    const k8s = bindOrThrow(
      referenceModel(),
      {
        kind: 'kubernetes',
        issuers: { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } },
        hosts: { localhost: 'api.us.example.com' },
        gateway: { namespace: 'trellis-gateway', serviceAccount: 'trellis-nginx', port: 443 },
        dataServices: {
          cassandra: { address: 'cassandra.data.svc.cluster.local', port: 9042 },
          kafka: { address: 'kafka.data.svc.cluster.local', port: 9093 },
        },
      },
      'k8s',
    );
    expect(k8s.binding.metrics).toEqual({ spiffeId: scraper });
    expect(() => compilePrometheusScrape(k8s)).toThrow(
      'metrics.scraper: the kubernetes environment gives the scraper no SVID files',
    );
  });

  it('renders the example plan: every sidecar on 15090 (each its own pod), Prometheus on 9090', () => {
    const cfg = compilePrometheusScrape(referenceBound());
    expect(cfg.scrape_configs.map((j) => [j.job_name, j.static_configs[0]?.targets])).toEqual([
      ['envoy-ingress', ['127.0.0.1:15090']],
      ['envoy-ledger', ['127.0.0.1:15090']],
      ['app-ledger', ['127.0.0.1:15090']],
      ['envoy-orders-api', ['127.0.0.1:15090']],
      ['app-orders-api', ['127.0.0.1:15090']],
      ['envoy-orders-writer', ['127.0.0.1:15090']],
      ['app-orders-writer', ['127.0.0.1:15090']],
      ['prometheus', ['127.0.0.1:9090']],
    ]);
    expect(cfg.scrape_configs[0]?.tls_config?.cert_file).toBe('/srv/prometheus/certs/cert.pem');
  });
});
