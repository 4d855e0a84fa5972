/**
 * The metrics front of a data node (ADR 0020, Cassandra's and Kafka's JMX exporter): the compiled
 * Envoy admits only the scraper's SPIFFE ID, GET and `/metrics`, routes to the exporter on
 * 127.0.0.1, and the scrape config reads it with the scraper's SVID, checking the node's DNS name.
 */
import { describe, expect, it } from 'vitest';
import {
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
const front = (service: 'cassandra' | 'kafka' = 'cassandra') =>
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

  it('adds none without data targets', () => {
    expect(
      compilePrometheusScrape(referenceBound()).scrape_configs.some((j) =>
        j.job_name.startsWith('jmx-'),
      ),
    ).toBe(false);
  });
});
