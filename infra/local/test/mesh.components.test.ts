// The request path's components refuse bad arguments before creating anything, with a message
// that names the field (Pulumi mocks; nothing starts).
import * as pulumi from '@pulumi/pulumi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalMeshCa } from '@trellis/components/local/pki';
import { RecordingMocks } from '@trellis/components/testing/mocks';
import { bindOrThrow, parseModel, type BoundModel } from '@trellis/policy';
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
    const r = parseModel(
      readFileSync(join(import.meta.dirname, '../../../trellis.yaml'), 'utf8')
        .replace(/^metrics:\n {2}scraper: .*\n/m, '')
        .replace(/^ {4}metrics: \{ port: http.*\n/m, ''),
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const none = bindOrThrow(r.model, localEnvironment(8000, '/stack'), 'no scraper');
    expect(none.binding.metrics).toBeUndefined();
    expect(() => new LocalPrometheus('prom1', { model: none, ca: ca(), dir: '/run/p' })).toThrow(
      'prom1: model.binding.metrics must give the scraper SVID files and a listener',
    );
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
      ['envoy-orders-api', 'https', ['127.0.0.1:8552']],
      ['app-orders-api', 'https', ['127.0.0.1:8552']],
      ['envoy-orders-writer', 'https', ['127.0.0.1:8553']],
      ['prometheus', 'http', ['127.0.0.1:8090']],
    ]);
    expect(JSON.parse(f['slo-rules.yaml'])).toHaveProperty('groups');
  });
});
