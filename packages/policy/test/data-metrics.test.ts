/**
 * The metrics front of a data node (ADR 0020, Cassandra's and Kafka's JMX exporter): the compiled
 * Envoy admits only the scraper's SPIFFE ID, GET and `/metrics`, routes to the exporter on
 * 127.0.0.1, and the scrape config reads it with the scraper's SVID, checking the node's DNS name.
 */
import { describe, expect, it } from 'vitest';
import {
  allowed,
  compileDataMetricsProxy,
  compilePrometheusScrape,
  dataMetricsServerName,
  evaluateEnvoy,
  validateModel,
} from '../src/index.ts';
import type { EnvoyRequest } from '../src/index.ts';
import { referenceBound, referenceData, referenceModel } from './fixtures.ts';

const scraper = 'spiffe://trellis.local/ns/trellis/sa/prometheus';
const sds = {
  dir: '/run/cassandra-metrics/sds',
  certChain: '/pki/cassandra/cert.pem',
  privateKey: '/pki/cassandra/key.pem',
  trustBundle: '/pki/cassandra/bundle.pem',
};
const front = (service: 'cassandra' | 'kafka' | 'keycloak' = 'cassandra') =>
  compileDataMetricsProxy(referenceModel(), {
    service,
    listen: { address: '198.18.8.22', port: 8560 },
    exporterPort: 8561,
    sds,
  });

function request(peer: EnvoyRequest['peer'], method = 'GET', path = '/metrics'): EnvoyRequest {
  return { listenerPort: 8560, peer, http: { method, path, now: 0 } };
}

describe('compileDataMetricsProxy', () => {
  it('admits the scraper: GET /metrics', () => {
    const d = evaluateEnvoy(
      front().bootstrap,
      request({ kind: 'cert', spiffeId: scraper, trusted: true }),
    );
    expect(d.allowed).toBe(true);
  });

  it('refuses another identity, the node’s own, an untrusted certificate and no certificate', () => {
    const b = front().bootstrap;
    for (const peer of [
      { kind: 'cert', spiffeId: 'spiffe://trellis.local/ns/trellis/sa/ledger', trusted: true },
      { kind: 'cert', spiffeId: 'spiffe://trellis.local/ns/trellis/sa/cassandra', trusted: true },
      { kind: 'cert', spiffeId: scraper, trusted: false },
      { kind: 'none' },
    ] as const)
      expect(evaluateEnvoy(b, request(peer)).allowed).toBe(false);
  });

  it('refuses the scraper on another method or path', () => {
    const b = front().bootstrap;
    const peer = { kind: 'cert', spiffeId: scraper, trusted: true } as const;
    expect(evaluateEnvoy(b, request(peer, 'POST')).allowed).toBe(false);
    expect(evaluateEnvoy(b, request(peer, 'GET', '/')).allowed).toBe(false);
    expect(evaluateEnvoy(b, request(peer, 'GET', '/metrics/x')).allowed).toBe(false);
  });

  it('listens on the given address with mTLS, and dials the exporter on 127.0.0.1 only', () => {
    const { bootstrap, sdsFiles } = front('kafka');
    const l = bootstrap.static_resources.listeners;
    expect(l).toHaveLength(1);
    expect(l[0]?.address).toEqual({ socket_address: { address: '198.18.8.22', port_value: 8560 } });
    const tls = l[0]?.filter_chains[0]?.transport_socket?.typed_config as {
      require_client_certificate: boolean;
    };
    expect(tls.require_client_certificate).toBe(true);
    expect(
      bootstrap.static_resources.clusters.map((c) => [
        c.name,
        c.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address,
      ]),
    ).toEqual([['jmx_exporter', { socket_address: { address: '127.0.0.1', port_value: 8561 } }]]);
    expect(bootstrap.admin).toBeUndefined();
    expect(bootstrap.node).toEqual({ id: 'kafka-metrics', cluster: 'kafka-metrics' });
    expect(Object.keys(sdsFiles).sort()).toEqual([
      '/run/cassandra-metrics/sds/svid.yaml',
      '/run/cassandra-metrics/sds/trust-bundle.yaml',
    ]);
  });

  it('refuses a model without a scraper, and bad ports, naming the field', () => {
    const d = referenceData();
    delete (d as { metrics?: unknown }).metrics;
    for (const w of Object.values(d.workloads as Record<string, { metrics?: unknown }>))
      delete w.metrics;
    const r = validateModel(d);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(() =>
      compileDataMetricsProxy(r.model, {
        service: 'kafka',
        listen: { address: '127.0.0.1', port: 1 },
        exporterPort: 2,
        sds,
      }),
    ).toThrow(
      "metrics.scraper: the model declares no metrics scraper, so nobody may read kafka's metrics",
    );
    expect(() =>
      compileDataMetricsProxy(referenceModel(), {
        service: 'kafka',
        listen: { address: '127.0.0.1', port: 1 },
        exporterPort: 70_000,
        sds,
      }),
    ).toThrow('compileDataMetricsProxy: exporterPort must be an integer in [1, 65535], got 70000');
  });
});

describe('compileDataMetricsProxy for Keycloak (ADR 0024)', () => {
  const cert = (spiffeId: string, trusted = true) => ({ kind: 'cert', spiffeId, trusted }) as const;
  const peers = [
    cert(scraper),
    cert('spiffe://trellis.local/ns/trellis/sa/ledger'),
    cert('spiffe://trellis.local/ns/trellis/sa/keycloak'),
    cert(scraper, false),
    { kind: 'none' } as const,
  ];

  it('decides as the oracle: the scraper may GET /metrics, nobody else anything', () => {
    const b = front('keycloak').bootstrap;
    const model = referenceModel();
    let admitted = 0;
    for (const peer of peers)
      for (const [method, path] of [
        ['GET', '/metrics'],
        ['POST', '/metrics'],
        ['GET', '/health/ready'],
        ['GET', '/'],
      ] as const) {
        const oracle = allowed(model, { kind: 'scrape', to: 'keycloak', peer, method, path });
        expect(evaluateEnvoy(b, request(peer, method, path)).allowed, `${method} ${path}`).toBe(
          oracle.allowed,
        );
        if (oracle.allowed) admitted++;
      }
    expect(admitted).toBe(1);
    expect(
      allowed(model, {
        kind: 'scrape',
        to: 'keycloak',
        peer: cert(scraper),
        method: 'GET',
        path: '/metrics',
      }).reason,
    ).toBe("the scraper reads keycloak's metrics through its metrics front");
  });

  it('originates TLS to the management interface on 127.0.0.1, checking its IP SAN', () => {
    const { bootstrap } = front('keycloak');
    const c = bootstrap.static_resources.clusters;
    expect(c.map((x) => x.name)).toEqual(['keycloak_management']);
    expect(c[0]?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8561 },
    });
    const tls = c[0]?.transport_socket?.typed_config as {
      '@type': string;
      common_tls_context: {
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: unknown[] };
          validation_context_sds_secret_config: { name: string };
        };
      };
    };
    expect(tls['@type']).toBe(
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    );
    const v = tls.common_tls_context.combined_validation_context;
    expect(v.default_validation_context.match_typed_subject_alt_names).toEqual([
      { san_type: 'IP_ADDRESS', matcher: { exact: '127.0.0.1' } },
    ]);
    expect(v.validation_context_sds_secret_config.name).toBe('trust_bundle');
    expect(bootstrap.node).toEqual({ id: 'keycloak-metrics', cluster: 'keycloak-metrics' });
    // The data nodes' exporters stay plain HTTP on loopback.
    expect(front('kafka').bootstrap.static_resources.clusters[0]?.transport_socket).toBeUndefined();
  });

  it("refuses a workload or a scraper with Keycloak's front's name or SPIFFE ID, naming the field", () => {
    const errors = (mutate: (d: Record<string, unknown>) => void) => {
      const d = referenceData();
      mutate(d as unknown as Record<string, unknown>);
      const r = validateModel(d);
      return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
    };
    expect(
      errors((d) => {
        (d.metrics as { scraper: { serviceAccount: string } }).scraper.serviceAccount = 'keycloak';
      }),
    ).toContain(
      "metrics.scraper.serviceAccount: the SPIFFE ID of Keycloak's metrics front cannot be the scraper",
    );
    expect(
      errors((d) => {
        const w = d.workloads as Record<string, Record<string, unknown>>;
        w.ledger = { ...w.ledger, serviceAccount: 'keycloak' };
      }),
    ).toContain(
      "workloads.ledger.serviceAccount: SPIFFE ID spiffe://trellis.local/ns/trellis/sa/keycloak is Keycloak's metrics front's: a workload needs an identity of its own",
    );
  });
});

describe('compilePrometheusScrape with data targets', () => {
  it('adds one https job per data node, with the node’s DNS name as server_name', () => {
    const cfg = compilePrometheusScrape(referenceBound(), {
      dataTargets: {
        kafka: { address: '198.18.8.23', port: 8560 },
        cassandra: { address: '198.18.8.22', port: 8560 },
      },
    });
    const jmx = cfg.scrape_configs.filter((j) => j.job_name.startsWith('jmx-'));
    expect(jmx.map((j) => [j.job_name, j.scheme, j.metrics_path, j.static_configs])).toEqual([
      [
        'jmx-cassandra',
        'https',
        '/metrics',
        [{ targets: ['198.18.8.22:8560'], labels: { service: 'cassandra' } }],
      ],
      [
        'jmx-kafka',
        'https',
        '/metrics',
        [{ targets: ['198.18.8.23:8560'], labels: { service: 'kafka' } }],
      ],
    ]);
    expect(jmx[0]?.tls_config?.server_name).toBe('cassandra.trellis.svc');
    expect(jmx[1]?.tls_config?.server_name).toBe(dataMetricsServerName(referenceModel(), 'kafka'));
    expect(jmx[0]?.tls_config?.min_version).toBe('TLS12');
  });

  it('adds the job keycloak for Keycloak’s front', () => {
    const cfg = compilePrometheusScrape(referenceBound(), {
      dataTargets: { keycloak: { address: '198.18.8.24', port: 8562 } },
    });
    const kc = cfg.scrape_configs.filter((j) => j.job_name === 'keycloak');
    expect(kc.map((j) => [j.scheme, j.metrics_path, j.static_configs])).toEqual([
      ['https', '/metrics', [{ targets: ['198.18.8.24:8562'], labels: { service: 'keycloak' } }]],
    ]);
    expect(kc[0]?.tls_config?.server_name).toBe('keycloak.trellis.svc');
  });

  it('adds none without data targets', () => {
    expect(
      compilePrometheusScrape(referenceBound()).scrape_configs.some((j) =>
        j.job_name.startsWith('jmx-'),
      ),
    ).toBe(false);
  });
});
