// The request path's components refuse bad arguments before creating anything, with a message
// that names the field (Pulumi mocks; nothing starts).
import * as pulumi from '@pulumi/pulumi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalMeshCa } from '@trellis/components/local/pki';
import { RecordingMocks } from '@trellis/components/testing/mocks';
import { bindOrThrow, localPortsAt, parseModel, type BoundModel } from '@trellis/policy';
import { localEnvironment } from '../src/context.ts';

const mocks = new RecordingMocks({ fallback: () => ({}) });
let keycloak: typeof import('@trellis/components/local/keycloak');
let sidecar: typeof import('@trellis/components/local/sidecar');
let service: typeof import('@trellis/components/local/service');
let ingress: typeof import('@trellis/components/local/ingress');
let model: BoundModel;

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, 'trellis-mesh-test', 'unit', false);
  keycloak = await import('@trellis/components/local/keycloak');
  sidecar = await import('@trellis/components/local/sidecar');
  service = await import('@trellis/components/local/service');
  ingress = await import('@trellis/components/local/ingress');
  const r = parseModel(readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  model = bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'the local stack');
});

/** trellis.yaml without its metrics scraper (and the app metrics that need one), bound locally. */
function noScraper(): BoundModel {
  const r = parseModel(
    readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8')
      .replace(/^metrics:\n {2}scraper: .*\n/m, '')
      .replace(/^ {4}metrics: \{ port: http.*\n/gm, ''),
  );
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'no scraper');
}

// Never used: every case throws before a child (a dynamic resource, which vitest cannot serialize).
const ca = () => ({}) as LocalMeshCa;

describe('LocalKeycloak', () => {
  const base = () => ({
    model,
    provider: 'keycloak',
    dir: '/run/keycloak',
    ca: ca(),
    certDir: '/pki/keycloak',
    ports: { https: 8180, management: 8190 },
    hostname: 'https://localhost:8180',
  });

  it('refuses a provider the model does not have', () => {
    expect(() => new keycloak.LocalKeycloak('kc1', { ...base(), provider: 'okta' })).toThrow(
      "kc1: provider 'okta' is not an identity provider of the model (have keycloak)",
    );
  });

  it('refuses a hostname that does not serve the model issuer, and a plaintext hostname', () => {
    expect(
      () => new keycloak.LocalKeycloak('kc2', { ...base(), hostname: 'https://localhost:9999' }),
    ).toThrow(
      "kc2: hostname https://localhost:9999 does not serve the issuer of provider 'keycloak' (https://localhost:8180/realms/trellis); the issuer must be <hostname>/realms/<realm>",
    );
    expect(
      () => new keycloak.LocalKeycloak('kc5', { ...base(), hostname: 'http://localhost:8180' }),
    ).toThrow(
      "kc5: hostname must be an https URL (Keycloak serves TLS only), got 'http://localhost:8180'",
    );
  });

  it('refuses a user with a role the provider does not declare, and a bad port', () => {
    expect(
      () =>
        new keycloak.LocalKeycloak('kc3', {
          ...base(),
          users: [{ username: 'alice', roles: ['admin'] }],
        }),
    ).toThrow(
      "kc3: users[0].roles: 'admin' is not a role of provider 'keycloak' (have order-writer, order-reader)",
    );
    expect(
      () => new keycloak.LocalKeycloak('kc4', { ...base(), ports: { https: 8180, management: 0 } }),
    ).toThrow('kc4: ports.management must be a TCP port, got 0');
  });

  it('refuses a pod address on loopback or not IPv4', () => {
    const pod = (address: string) => ({
      launch: { netns: 'trellis.t.keycloak', uid: 1000, gid: 1000 },
      address,
      relayDir: '/run/keycloak-relay',
    });
    expect(() => new keycloak.LocalKeycloak('kc6', { ...base(), pod: pod('127.0.0.2') })).toThrow(
      "kc6: pod.address must be an IPv4 address off loopback, got '127.0.0.2'",
    );
    expect(() => new keycloak.LocalKeycloak('kc7', { ...base(), pod: pod('localhost') })).toThrow(
      "kc7: pod.address must be an IPv4 address off loopback, got 'localhost'",
    );
  });
});

describe('LocalSidecar', () => {
  const base = () => ({
    model,
    workload: 'orders-api',
    ca: ca(),
    certDir: '/pki/orders-api',
    dir: '/run/orders-api-sidecar',
    adminPort: 8502,
    inbound: { http: 8620 },
    app: { http: { address: '127.0.0.1', port: 8820 } },
    outbound: {
      cassandra: { address: '127.0.0.1', port: 8042, listenPort: 8720 },
      kafka: { address: '127.0.0.1', port: 8303, listenPort: 8721 },
    },
  });

  it('refuses a workload the model does not have', () => {
    expect(() => new sidecar.LocalSidecar('sc1', { ...base(), workload: 'billing' })).toThrow(
      "sc1: workload 'billing' is not in the model (have ingress, orders-api, ledger, orders-writer)",
    );
  });

  it('refuses a bad port, naming the field', () => {
    expect(
      () =>
        new sidecar.LocalSidecar('sc2', {
          ...base(),
          outbound: {
            ...base().outbound,
            kafka: { address: '127.0.0.1', port: 8303, listenPort: 70_000 },
          },
        }),
    ).toThrow('sc2: outbound.kafka.listenPort must be a TCP port, got 70000');
  });

  it('refuses options the compiler needs but did not get, naming them', () => {
    expect(() => new sidecar.LocalSidecar('sc3', { ...base(), outbound: {} })).toThrow(
      'sc3: compileEnvoy: missing option outbound.cassandra',
    );
  });
});

describe('LocalService and LocalIngress', () => {
  it('refuses a relative entry and a bad readiness path', () => {
    const args = { workload: 'orders-api', entry: 'server.ts', dir: '/run/o', port: 8820 };
    expect(() => new service.LocalService('svc1', args)).toThrow(
      "svc1: entry must be an absolute path, got 'server.ts'",
    );
    expect(
      () =>
        new service.LocalService('svc2', { ...args, entry: '/srv/server.ts', readyPath: 'readyz' }),
    ).toThrow("svc2: readyPath must start with '/', got 'readyz'");
  });

  it('refuses a body size nginx would not parse, and a bad port', () => {
    const args = {
      model,
      ca: ca(),
      certDir: '/pki/edge',
      dir: '/run/nginx',
      listen: { port: 8443 },
      upstream: { address: '127.0.0.1', port: 8600 },
    };
    expect(() => new ingress.LocalIngress('in1', { ...args, clientMaxBodySize: '1 MB' })).toThrow(
      "in1: clientMaxBodySize must be a size such as 1m or 512k, got '1 MB'",
    );
    expect(
      () =>
        new ingress.LocalIngress('in2', { ...args, upstream: { address: '127.0.0.1', port: -1 } }),
    ).toThrow('in2: upstream.port must be a TCP port, got -1');
  });
});

describe('the metrics scraper (ADR 0020)', () => {
  it('LocalSidecar refuses a metrics listener whose stats route misses its admin port', () => {
    expect(
      () =>
        new sidecar.LocalSidecar('sc-metrics', {
          workload: 'orders-api',
          model,
          ca: ca(),
          certDir: '/pki/orders-api',
          dir: '/run/orders-api-sidecar',
          adminPort: 8502,
          inbound: { http: 8620 },
          app: { http: { address: '127.0.0.1', port: 8820 } },
          metrics: { port: 8552, statsPort: 8501 },
        }),
    ).toThrow('sc-metrics: metrics.statsPort must be the adminPort (8502), got 8501');
  });

  it('LocalPrometheus refuses a model bound without a scraper', async () => {
    const { LocalPrometheus } = await import('@trellis/components/local/prometheus');
    const none = noScraper();
    expect(none.binding.metrics).toBeUndefined();
    expect(() => new LocalPrometheus('prom1', { model: none, ca: ca(), dir: '/run/p' })).toThrow(
      'prom1: model.binding.metrics must give the scraper SVID files and a listener',
    );
  });

  it('LocalPrometheus refuses a time scale its scrapes cannot follow, naming sloTimeScale (ADR 0025)', async () => {
    const { LocalPrometheus, prometheusFiles } =
      await import('@trellis/components/local/prometheus');
    expect(
      () =>
        new LocalPrometheus('prom2', {
          model,
          ca: ca(),
          dir: '/run/p',
          scrapeInterval: '15s',
          sloTimeScale: 30,
        }),
    ).toThrow(
      'prom2: sloTimeScale: 30 shrinks the 5m window to 10s, under 4 intervals of a 15s scrape (1m): use at most 5, or scrape more often',
    );
    // The e2e stack's settings: scaled windows, judged by the ci budgets' buckets.
    const rules = prometheusFiles(model, '2s', {}, 30, 'ci')['slo-rules.yaml'];
    expect(rules).toContain('ratio_rate2m');
    expect(rules).toContain('le=\\"30\\"');
    expect(prometheusFiles(model, '15s')['slo-rules.yaml']).not.toContain('time_scale');
  });

  it('compiles its files: every sidecar and the declared app metrics over https, and the SLO rules', async () => {
    const { prometheusFiles } = await import('@trellis/components/local/prometheus');
    const f = prometheusFiles(model, '15s');
    const cfg = JSON.parse(f['prometheus.yml']) as {
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        scheme: string;
        static_configs: { targets: string[] }[];
      }[];
    };
    expect(cfg.rule_files).toEqual(['slo-rules.yaml']);
    expect(
      cfg.scrape_configs.map((j) => [j.job_name, j.scheme, j.static_configs[0]?.targets]),
    ).toEqual([
      ['envoy-ingress', 'https', ['127.0.0.1:8550']],
      ['envoy-ledger', 'https', ['127.0.0.1:8551']],
      ['app-ledger', 'https', ['127.0.0.1:8551']],
      ['envoy-orders-api', 'https', ['127.0.0.1:8552']],
      ['app-orders-api', 'https', ['127.0.0.1:8552']],
      ['envoy-orders-writer', 'https', ['127.0.0.1:8553']],
      ['app-orders-writer', 'https', ['127.0.0.1:8553']],
      ['prometheus', 'http', ['127.0.0.1:8090']],
    ]);
    expect(JSON.parse(f['slo-rules.yaml'])).toHaveProperty('groups');
  });

  it('compiles the data nodes’ jobs from the plan: each front over https, checked by its DNS name', async () => {
    const { prometheusFiles } = await import('@trellis/components/local/prometheus');
    const { planDataMetrics } = await import('../src/data-metrics.ts');
    const plan = planDataMetrics(model, localPortsAt(8000), { cassandra: '198.18.8.22' });
    expect(plan).toEqual([
      {
        service: 'cassandra',
        listen: { address: '198.18.8.22', port: 8560 },
        adminPort: 8570,
        exporterPort: 8580,
      },
      {
        service: 'kafka',
        listen: { address: '127.0.0.1', port: 8561 },
        adminPort: 8571,
        exporterPort: 8581,
      },
    ]);
    const f = prometheusFiles(
      model,
      '15s',
      Object.fromEntries(plan.map((p) => [p.service, p.listen])),
    );
    const jmx = f.scrape.scrape_configs.filter((j) => j.job_name.startsWith('jmx-'));
    expect(
      jmx.map((j) => [
        j.job_name,
        j.scheme,
        j.metrics_path,
        j.tls_config?.server_name,
        j.tls_config?.cert_file,
        j.static_configs[0]?.targets,
      ]),
    ).toEqual([
      [
        'jmx-cassandra',
        'https',
        '/metrics',
        'cassandra.trellis.svc',
        '/stack/pki/prometheus/cert.pem',
        ['198.18.8.22:8560'],
      ],
      [
        'jmx-kafka',
        'https',
        '/metrics',
        'kafka.trellis.svc',
        '/stack/pki/prometheus/cert.pem',
        ['127.0.0.1:8561'],
      ],
    ]);
  });

  it('plans no data metrics without a scraper', async () => {
    const { planDataMetrics, planKeycloakMetrics } = await import('../src/data-metrics.ts');
    expect(planDataMetrics(noScraper(), localPortsAt(8000))).toEqual([]);
    expect(planKeycloakMetrics(noScraper(), localPortsAt(8000))).toBeUndefined();
  });

  it('plans Keycloak’s front in slot 2, reading its management port, and its job (ADR 0024)', async () => {
    const { prometheusFiles } = await import('@trellis/components/local/prometheus');
    const { planKeycloakMetrics } = await import('../src/data-metrics.ts');
    const plan = planKeycloakMetrics(model, localPortsAt(8000), '198.18.8.24');
    expect(plan).toEqual({
      service: 'keycloak',
      listen: { address: '198.18.8.24', port: 8562 },
      adminPort: 8572,
      exporterPort: 8190,
    });
    const f = prometheusFiles(model, '15s', { keycloak: { address: '198.18.8.24', port: 8562 } });
    const kc = f.scrape.scrape_configs.find((j) => j.job_name === 'keycloak');
    expect([kc?.tls_config?.server_name, kc?.static_configs[0]?.targets]).toEqual([
      'keycloak.trellis.svc',
      ['198.18.8.24:8562'],
    ]);
    // The consoles compiled from the same jobs: Keycloak's hop among them, and the library.
    expect(Object.keys(f.consoles).sort()).toEqual([
      'console_libraries/trellis.lib',
      'consoles/hop-ingress.html',
      'consoles/hop-keycloak.html',
      'consoles/hop-ledger.html',
      'consoles/hop-orders-api.html',
      'consoles/hop-orders-writer.html',
      'consoles/index.html',
      'consoles/route-create-order.html',
      'consoles/route-get-order.html',
    ]);
  });
});

describe('the data nodes’ metrics (ADR 0020)', () => {
  const front = () => ({
    model,
    service: 'cassandra' as const,
    ca: ca(),
    certDir: '/pki/cassandra-metrics',
    dir: '/run/cassandra-metrics',
    listen: { address: '127.0.0.1', port: 8560 },
    adminPort: 8570,
    exporterPort: 8580,
  });

  it('LocalDataMetricsFront refuses a bad port and an admin on the exporter’s port, naming the field', async () => {
    const { LocalDataMetricsFront } = await import('@trellis/components/local/data-metrics');
    expect(
      () =>
        new LocalDataMetricsFront('dm1', { ...front(), listen: { address: '127.0.0.1', port: 0 } }),
    ).toThrow('dm1: listen.port must be a TCP port, got 0');
    expect(() => new LocalDataMetricsFront('dm2', { ...front(), exporterPort: 70_000 })).toThrow(
      'dm2: exporterPort must be a TCP port, got 70000',
    );
    expect(() => new LocalDataMetricsFront('dm3', { ...front(), adminPort: 8580 })).toThrow(
      "dm3: adminPort and exporterPort are both 8580 on the node's loopback",
    );
  });

  it('LocalDataMetricsFront refuses a model without a scraper, and a pod on loopback', async () => {
    const { LocalDataMetricsFront } = await import('@trellis/components/local/data-metrics');
    expect(() => new LocalDataMetricsFront('dm4', { ...front(), model: noScraper() })).toThrow(
      "dm4: metrics.scraper: the model declares no metrics scraper, so nobody may read cassandra's metrics",
    );
    const launch = { netns: 'trellis.t.cassandra', uid: 1000, gid: 1000 };
    expect(
      () =>
        new LocalDataMetricsFront('dm5', {
          ...front(),
          pod: { launch, address: '127.0.0.5' },
        }),
    ).toThrow("dm5: pod.address must be an IPv4 address off loopback, got '127.0.0.5'");
  });

  it('the front compiles to one mTLS listener for the scraper, routed to the agent on loopback', async () => {
    const { dataMetricsFrontArtefacts } = await import('@trellis/components/local/data-metrics');
    const a = dataMetricsFrontArtefacts(
      model,
      'kafka',
      { listen: { address: '198.18.8.23', port: 8561 }, adminPort: 8571, exporterPort: 8581 },
      '/run/kafka-metrics',
      { cert: '/pki/k/cert.pem', key: '/pki/k/key.pem', bundle: '/pki/k/bundle.pem' },
    );
    const b = a.bootstrap;
    expect(b.admin?.address).toEqual({
      socket_address: { address: '127.0.0.1', port_value: 8571 },
    });
    expect(b.static_resources.listeners.map((l) => l.address)).toEqual([
      { socket_address: { address: '198.18.8.23', port_value: 8561 } },
    ]);
    expect(JSON.stringify(b.static_resources.clusters)).toContain(
      '{"socket_address":{"address":"127.0.0.1","port_value":8581}}',
    );
    expect(JSON.stringify(b)).toContain('spiffe://trellis.local/ns/trellis/sa/prometheus');
    expect(Object.keys(a.sdsFiles).every((p) => p.startsWith('/run/kafka-metrics/sds/'))).toBe(
      true,
    );
  });

  it('LocalCassandra and LocalKafka refuse an exporter port that is not a port or is one of theirs', async () => {
    const { LocalCassandra } = await import('@trellis/components/local/cassandra');
    const { LocalKafka } = await import('@trellis/components/local/kafka');
    const admin = {
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/platform-admin',
      certificate: {} as never,
    };
    const c = {
      model,
      ca: ca(),
      dir: '/run/cassandra',
      certDir: '/pki/cassandra',
      admin,
      ports: { native: 8042, storage: 8070, jmx: 8071 },
    };
    expect(() => new LocalCassandra('cx1', { ...c, jmxExporter: { port: 0 } })).toThrow(
      'cx1: jmxExporter.port must be a TCP port, got 0',
    );
    expect(() => new LocalCassandra('cx2', { ...c, jmxExporter: { port: 8071 } })).toThrow(
      "cx2: jmxExporter.port 8071 is one of the node's own ports",
    );
    const k = {
      model,
      ca: ca(),
      dir: '/run/kafka',
      certDir: '/pki/kafka',
      admin,
      ports: { direct: 8300, broker: 8094, controller: 8093 },
      workloadListeners: [{ workload: 'ledger', port: 8302, advertised: '127.0.0.1:8711' }],
    };
    expect(() => new LocalKafka('kx1', { ...k, jmxExporter: { port: 8302 } })).toThrow(
      "kx1: jmxExporter.port 8302 is one of the node's own ports",
    );
  });
});
