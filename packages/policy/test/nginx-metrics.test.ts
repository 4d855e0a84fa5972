/**
 * nginx's own metrics (issue 15): the compiled nginx config renders the stub_status gauges as
 * Prometheus text on its loopback only when asked and only with a scraper; the metrics front of
 * nginx admits only the scraper (GET /metrics) and reads that server over plain HTTP on 127.0.0.1;
 * the scrape config gains the job `nginx`; a workload or scraper cannot take the front's identity.
 */
import { describe, expect, it } from 'vitest';
import {
  allowed,
  compileDataMetricsProxy,
  compileNginxHttp,
  compilePrometheusScrape,
  evaluateEnvoy,
  nginxMetricsGauges,
  validateModel,
} from '../src/index.ts';
import type { EnvoyRequest } from '../src/index.ts';
import { example, referenceBound, referenceData, referenceModel } from './fixtures.ts';

const opts = {
  listen: { address: '127.0.0.1', port: 8443 },
  tls: { certificate: '/run/t/tls.crt', key: '/run/t/tls.key' },
  upstream: { address: '127.0.0.1', port: 15443 },
};
const scraper = 'spiffe://trellis.local/ns/trellis/sa/prometheus';

/** The reference model without its metrics scraper (nor the apps' metrics it reads), bound. */
function withoutScraper() {
  const d = referenceData() as unknown as Record<string, unknown>;
  delete d.metrics;
  for (const w of Object.values(d.workloads as Record<string, Record<string, unknown>>))
    delete w.metrics;
  const r = validateModel(d);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return example(r.model);
}

describe('compileNginxHttp with metrics', () => {
  const conf = compileNginxHttp(referenceBound(), { ...opts, metrics: { port: 8583 } });
  const server = conf.slice(conf.indexOf('listen 127.0.0.1:8583;'));

  it('adds a loopback server answering GET /metrics with the four stub_status gauges', () => {
    expect(server).toContain('location = /metrics {');
    expect(server).toContain('limit_except GET { deny all; }');
    expect(server).toContain('location / { return 404; }');
    expect(server).toContain('access_log off;');
    for (const [g] of nginxMetricsGauges)
      expect(server).toContain(
        `# TYPE nginx_connections_${g} gauge\\nnginx_connections_${g} $connections_${g}\\n`,
      );
    expect(nginxMetricsGauges.map(([g]) => g)).toEqual(['active', 'reading', 'writing', 'waiting']);
    // One line: compileNginx indents every line of the http block, which would land in the body.
    const ret = server.split('\n').find((l) => l.includes('return 200'));
    expect(ret).toMatch(/^ {4}return 200 "# HELP nginx_connections_active .*\\n";$/);
  });

  it('has no metrics server unless asked', () => {
    expect(compileNginxHttp(referenceBound(), opts)).not.toContain('/metrics');
  });

  it('refuses metrics without a scraper, and a bad port, naming the field', () => {
    expect(() => compileNginxHttp(withoutScraper(), { ...opts, metrics: { port: 8583 } })).toThrow(
      /^metrics\.scraper: /,
    );
    expect(() => compileNginxHttp(referenceBound(), { ...opts, metrics: { port: 0 } })).toThrow(
      'metrics.port must be an integer in [1, 65535], got 0',
    );
  });
});

describe("nginx's metrics front", () => {
  const front = compileDataMetricsProxy(referenceModel(), {
    service: 'nginx',
    listen: { address: '198.18.8.2', port: 8563 },
    exporterPort: 8583,
    sds: {
      dir: '/run/nginx-metrics/sds',
      certChain: '/pki/nginx/cert.pem',
      privateKey: '/pki/nginx/key.pem',
      trustBundle: '/pki/nginx/bundle.pem',
    },
  });
  const cert = (spiffeId: string, trusted = true) => ({ kind: 'cert', spiffeId, trusted }) as const;
  const request = (peer: EnvoyRequest['peer'], method: string, path: string): EnvoyRequest => ({
    listenerPort: 8563,
    peer,
    http: { method, path, now: 0 },
  });

  it('decides as the oracle: the scraper may GET /metrics, nobody else anything', () => {
    const model = referenceModel();
    let admitted = 0;
    for (const peer of [
      cert(scraper),
      cert('spiffe://trellis.local/ns/trellis/sa/ingress'),
      cert('spiffe://trellis.local/ns/trellis/sa/nginx'),
      cert(scraper, false),
      { kind: 'none' } as const,
    ])
      for (const [method, path] of [
        ['GET', '/metrics'],
        ['POST', '/metrics'],
        ['GET', '/orders'],
        ['GET', '/'],
      ] as const) {
        const oracle = allowed(model, { kind: 'scrape', to: 'nginx', peer, method, path });
        expect(
          evaluateEnvoy(front.bootstrap, request(peer, method, path)).allowed,
          `${method} ${path}`,
        ).toBe(oracle.allowed);
        if (oracle.allowed) admitted++;
      }
    expect(admitted).toBe(1);
  });

  it("reads nginx's metrics server over plain HTTP on 127.0.0.1", () => {
    const c = front.bootstrap.static_resources.clusters;
    expect(c.map((x) => x.name)).toEqual(['nginx_metrics']);
    expect(c[0]?.load_assignment.endpoints[0]?.lb_endpoints[0]?.endpoint.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8583 },
    });
    expect(c[0]?.transport_socket).toBeUndefined();
    expect(front.bootstrap.node).toEqual({ id: 'nginx-metrics', cluster: 'nginx-metrics' });
  });

  it('gives Prometheus the job nginx, checking the name nginx.<ns>.svc', () => {
    const cfg = compilePrometheusScrape(referenceBound(), {
      dataTargets: { nginx: { address: '198.18.8.2', port: 8563 } },
    });
    const j = cfg.scrape_configs.filter((x) => x.job_name === 'nginx');
    expect(j.map((x) => [x.scheme, x.metrics_path, x.static_configs])).toEqual([
      ['https', '/metrics', [{ targets: ['198.18.8.2:8563'], labels: { service: 'nginx' } }]],
    ]);
    expect(j[0]?.tls_config?.server_name).toBe('nginx.trellis.svc');
  });

  it("refuses a workload or a scraper with the front's name or SPIFFE ID, naming the field", () => {
    const errors = (mutate: (d: Record<string, unknown>) => void) => {
      const d = referenceData();
      mutate(d as unknown as Record<string, unknown>);
      const r = validateModel(d);
      return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
    };
    expect(
      errors((d) => {
        (d.metrics as { scraper: { serviceAccount: string } }).scraper.serviceAccount = 'nginx';
      }),
    ).toContain(
      "metrics.scraper.serviceAccount: the SPIFFE ID of the ingress nginx's metrics front cannot be the scraper",
    );
    expect(
      errors((d) => {
        const w = d.workloads as Record<string, Record<string, unknown>>;
        w.ledger = { ...w.ledger, serviceAccount: 'nginx' };
      }),
    ).toContain(
      "workloads.ledger.serviceAccount: SPIFFE ID spiffe://trellis.local/ns/trellis/sa/nginx is the ingress nginx's metrics front's: a workload needs an identity of its own",
    );
  });
});
