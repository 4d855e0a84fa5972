import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { charts } from '@trellis/components/k8s/versions';
import { isSecretValue, RecordingMocks } from '@trellis/components/testing/mocks';
import type { RecordedResource } from '@trellis/components/testing/mocks';
import { policyViolations } from '@trellis/components/testing/policyCheck';
import { runStack, stackConfig } from '@trellis/components/testing/stack';
import type { StackRun } from '@trellis/components/testing/stack';
import { privateKeyState, selfSignedCertState } from '@trellis/components/testing/tlsMock';
import { beforeAll, describe, expect, it } from 'vitest';

const dir = resolve(import.meta.dirname, '..');
const dbPassword = 'db-password-never-in-outputs-7f3a';
let root: { certPem: string; keyPem: string };
let program: () => Promise<Record<string, unknown>>;
const runs = new Map<string, StackRun>();

/** Mocks for a cluster stack: the PKI stack's outputs come back through the StackReference. */
function mocksFor(): RecordingMocks {
  return new RecordingMocks({
    states: {
      'pulumi:pulumi:StackReference': (_name, inputs) => ({
        name: inputs.name,
        outputs: { rootCertPem: root.certPem, rootKeyPem: root.keyPem },
        secretOutputNames: ['rootKeyPem'],
      }),
    },
  });
}

async function run(stack: string): Promise<StackRun> {
  const r = await runStack({
    project: 'trellis-k8s',
    stack,
    config: stackConfig(dir, stack),
    secrets: { 'trellis:keycloakDbPassword': dbPassword },
    mocks: mocksFor(),
    program,
  });
  runs.set(stack, r);
  return r;
}

const kind = (r: StackRun, k: string): RecordedResource[] => r.mocks.kind(k);
const spec = (r: RecordedResource): Record<string, unknown> =>
  r.inputs.spec as Record<string, unknown>;

beforeAll(async () => {
  const key = privateKeyState();
  const cert = await selfSignedCertState({
    privateKeyPem: key.privateKeyPem,
    isCaCertificate: true,
    allowedUses: ['cert_signing', 'crl_signing'],
    subject: { commonName: 'trellis.local root CA', organization: 'Trellis' },
    validityPeriodHours: 87600,
  });
  root = { certPem: cert.certPem as string, keyPem: key.privateKeyPem as string };
  program = (await import('../index.ts')).default as unknown as () => Promise<
    Record<string, unknown>
  >;
  for (const stack of ['dev', 'prod-us', 'prod-eu']) await run(stack);
}, 60_000);

describe.each(['dev', 'prod-us', 'prod-eu'])('infra/k8s stack %s', (stack) => {
  it('makes no provider call it did not expect', () => {
    expect(runs.get(stack)?.mocks.unexpectedCalls).toEqual([]);
  });

  it('plugs in an intermediate CA signed by the root (real X.509), as a secret', () => {
    const r = runs.get(stack) as StackRun;
    const secret = r.mocks.resources.find(
      (x) =>
        x.type === 'kubernetes:core/v1:Secret' &&
        (x.inputs.metadata as { name: string }).name === 'cacerts',
    ) as RecordedResource;
    expect((secret.inputs.metadata as { namespace: string }).namespace).toBe('istio-system');
    expect(isSecretValue(secret.raw.stringData)).toBe(true);
    const data = secret.inputs.stringData as Record<string, string>;
    const rootCert = new X509Certificate(data['root-cert.pem'] as string);
    const inter = new X509Certificate(data['ca-cert.pem'] as string);
    expect(inter.ca).toBe(true);
    expect(inter.verify(rootCert.publicKey)).toBe(true);
    expect(inter.subject).toContain(stack);
    if (stack !== 'dev') {
      // prod stacks use the shared root from the PKI stack.
      expect(rootCert.fingerprint256).toBe(new X509Certificate(root.certPem).fingerprint256);
    }
    expect(data['ca-key.pem']).toMatch(/PRIVATE KEY/);
  });

  it('enforces mesh-wide STRICT mTLS and holds apps until the proxy is ready', () => {
    const r = runs.get(stack) as StackRun;
    const pas = kind(r, 'PeerAuthentication');
    const meshWide = pas.find(
      (p) => (p.inputs.metadata as { namespace: string }).namespace === 'istio-system',
    );
    expect(meshWide && spec(meshWide)).toEqual({ mtls: { mode: 'STRICT' } });
    expect(pas.every((p) => (spec(p).mtls as { mode: string }).mode === 'STRICT')).toBe(true);
    const istiod = r.mocks.one('kubernetes:helm.sh/v3:Release', '-istiod');
    const values = istiod.inputs.values as { meshConfig: Record<string, unknown> };
    expect(values.meshConfig.trustDomain).toBe('trellis.local');
    expect(values.meshConfig.defaultConfig).toEqual({ holdApplicationUntilProxyStarts: true });
  });

  it('pins every Helm chart to the versions in versions.ts', () => {
    const r = runs.get(stack) as StackRun;
    const releases = r.mocks.ofType('kubernetes:helm.sh/v3:Release');
    expect(releases.length).toBe(8);
    const pins = new Map<string, string>(Object.values(charts).map((c) => [c.chart, c.version]));
    for (const rel of releases) {
      expect(rel.inputs.version, String(rel.inputs.chart)).toBe(pins.get(String(rel.inputs.chart)));
    }
  });

  it('runs Kafka with TLS client auth only, and ACLs from the model', () => {
    const r = runs.get(stack) as StackRun;
    const [kafka] = kind(r, 'Kafka');
    const k = spec(kafka as RecordedResource).kafka as {
      listeners: Record<string, unknown>[];
      authorization: unknown;
    };
    expect(k.listeners).toEqual([
      { name: 'tls', port: 9093, type: 'internal', tls: true, authentication: { type: 'tls' } },
    ]);
    expect(k.authorization).toEqual({ type: 'simple' });
    const users = Object.fromEntries(
      kind(r, 'KafkaUser').map((u) => [(u.inputs.metadata as { name: string }).name, spec(u)]),
    );
    expect(Object.keys(users).sort()).toEqual(['ledger', 'orders-api']);
    const aclsOf = (u: string) =>
      (
        users[u] as {
          authorization: { acls: { resource: { name: string }; operations: string[] }[] };
        }
      ).authorization.acls;
    expect(aclsOf('orders-api')).toEqual([
      {
        host: '*',
        resource: { type: 'topic', name: 'orders.v1', patternType: 'literal' },
        operations: ['Write', 'Describe'],
      },
    ]);
    expect(aclsOf('ledger').flatMap((a) => a.operations)).not.toContain('Write');
  });

  it('runs Cassandra 5 with client and internode encryption, gossip declared to the mesh', () => {
    const r = runs.get(stack) as StackRun;
    const [cluster] = kind(r, 'K8ssandraCluster');
    const cassandra = spec(cluster as RecordedResource).cassandra as Record<string, unknown>;
    expect(cassandra.serverVersion).toMatch(/^5\./);
    const yaml = (cassandra.config as { cassandraYaml: Record<string, Record<string, unknown>> })
      .cassandraYaml;
    expect(yaml.server_encryption_options).toMatchObject({
      internode_encryption: 'all',
      require_client_auth: true,
    });
    expect(yaml.client_encryption_options).toMatchObject({
      enabled: true,
      optional: false,
      require_client_auth: true,
    });
    expect(cassandra.serverEncryptionStores).toBeDefined();
    expect(cassandra.clientEncryptionStores).toBeDefined();
    const internode = r.mocks.one('kubernetes:core/v1:Service', '-internode');
    expect(spec(internode)).toMatchObject({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      ports: [{ name: 'tcp-internode', port: 7000, targetPort: 7000, appProtocol: 'tcp' }],
    });
  });

  it('checks JWTs in the mesh with the issuer the stack publishes', () => {
    const r = runs.get(stack) as StackRun;
    const issuer = r.outputs.issuer as string;
    expect(issuer).toMatch(/^https:\/\/auth\.[a-z.]+\/realms\/trellis$/);
    const ras = kind(r, 'RequestAuthentication');
    expect(ras.length).toBeGreaterThan(0);
    for (const ra of ras) {
      for (const rule of spec(ra).jwtRules as { issuer: string; audiences: string[] }[]) {
        expect(rule.issuer).toBe(issuer);
        expect(rule.audiences).toEqual(['trellis-api']);
      }
    }
    const [realm] = kind(r, 'KeycloakRealmImport');
    expect((spec(realm as RecordedResource).realm as { realm: string }).realm).toBe('trellis');
  });

  it('deploys smoke services by digest, with limits, probes and a PDB, as their SPIFFE identity', () => {
    const r = runs.get(stack) as StackRun;
    const deployments = r.mocks.ofType('kubernetes:apps/v1:Deployment');
    expect(deployments.map((d) => (d.inputs.metadata as { name: string }).name).sort()).toEqual([
      'ledger',
      'orders-api',
    ]);
    for (const d of deployments) {
      const pod = (spec(d).template as { spec: Record<string, unknown> }).spec;
      const [c] = pod.containers as Record<string, unknown>[];
      expect(pod.serviceAccountName).toBe((d.inputs.metadata as { name: string }).name);
      expect(String(c?.image)).toMatch(/@sha256:[a-f0-9]{64}$/);
      expect(c?.readinessProbe).toBeDefined();
      expect(c?.livenessProbe).toBeDefined();
    }
    expect(r.mocks.ofType('kubernetes:policy/v1:PodDisruptionBudget')).toHaveLength(2);
  });

  it('passes every rule of the policy pack', async () => {
    expect(await policyViolations((runs.get(stack) as StackRun).mocks.resources)).toEqual([]);
  });

  it('puts no secret value in a non-secret output', () => {
    const r = runs.get(stack) as StackRun;
    const secrets = [
      dbPassword,
      root.keyPem,
      ...r.mocks
        .ofType('tls:index/privateKey:PrivateKey')
        .map((k) => k.state.privateKeyPem as string),
    ];
    expect(secrets.length).toBeGreaterThan(2);
    expect(r.secretOutputs).toEqual([]);
    const text = JSON.stringify(r.outputs);
    for (const s of secrets) expect(text.includes(s.trim().split('\n')[1] as string)).toBe(false);
    expect(text).not.toContain(dbPassword);
    expect(text).not.toMatch(/PRIVATE KEY/);
  });
});

describe('multi-region', () => {
  /** Authorization-relevant objects of a run, keyed by kind/namespace/name. */
  const authz = (r: StackRun): Record<string, unknown> =>
    Object.fromEntries(
      ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'HTTPRoute']
        .flatMap((k) => kind(r, k))
        .map((x) => {
          const m = x.inputs.metadata as { name: string; namespace: string };
          return [`${x.type.split(':').pop()}/${m.namespace}/${m.name}`, spec(x)];
        }),
    );

  it('prod-us and prod-eu produce identical policy, differing only in region-scoped names', () => {
    const us = runs.get('prod-us') as StackRun;
    const eu = runs.get('prod-eu') as StackRun;
    const regionScoped = (v: unknown) =>
      JSON.parse(
        JSON.stringify(v)
          .replaceAll('auth.us.', 'auth.<region>.')
          .replaceAll('auth.eu.', 'auth.<region>.'),
      );
    const usPolicy = authz(us);
    expect(Object.keys(usPolicy).length).toBeGreaterThanOrEqual(6);
    expect(regionScoped(authz(eu))).toEqual(regionScoped(usPolicy));
    expect(JSON.stringify(authz(eu))).toContain('auth.eu.');
  });

  it('prod-us and prod-eu intermediates differ and both chain to the one shared root', () => {
    const cert = (r: StackRun) => new X509Certificate(r.outputs.meshIntermediateCertPem as string);
    const us = cert(runs.get('prod-us') as StackRun);
    const eu = cert(runs.get('prod-eu') as StackRun);
    const rootCert = new X509Certificate(root.certPem);
    expect(us.fingerprint256).not.toBe(eu.fingerprint256);
    expect(us.verify(rootCert.publicKey)).toBe(true);
    expect(eu.verify(rootCert.publicKey)).toBe(true);
  });
});

describe('config validation', () => {
  const bad = async (stack: string, patch: Record<string, string>, secrets = true) =>
    runStack({
      project: 'trellis-k8s',
      stack,
      config: { ...stackConfig(dir, stack), ...patch },
      secrets: secrets ? { 'trellis:keycloakDbPassword': dbPassword } : {},
      mocks: mocksFor(),
      program,
    });

  it('rejects an image that is not pinned by digest, naming the key', async () => {
    const services = JSON.stringify({
      'orders-api': { image: 'ghcr.io/x/orders-api:1.0' },
      ledger: { image: 'x' },
    });
    await expect(bad('dev', { 'trellis:services': services })).rejects.toThrow(
      /trellis:services\.orders-api\.image: must be pinned by digest/,
    );
  });

  it('rejects an unknown rootCa source, naming the key', async () => {
    await expect(
      bad('prod-us', { 'trellis:rootCa': JSON.stringify({ source: 'vault' }) }),
    ).rejects.toThrow(/trellis:rootCa\.source/);
  });

  it('rejects a bad dataplane, naming the key', async () => {
    await expect(bad('dev', { 'trellis:dataplane': 'magic' })).rejects.toThrow(/trellis:dataplane/);
  });

  it('requires the Keycloak database password as a secret', async () => {
    await expect(bad('dev', {}, false)).rejects.toThrow(/trellis:keycloakDbPassword: required/);
  });

  it('rejects a region the model does not have', async () => {
    await expect(bad('dev', { 'trellis:region': 'mars' })).rejects.toThrow(
      /region "mars" is not one of the model's regions/,
    );
  });

  it('rejects a missing service image for a model workload', async () => {
    const services = JSON.stringify({ 'orders-api': { image: `r/o@sha256:${'a'.repeat(64)}` } });
    await expect(bad('dev', { 'trellis:services': services })).rejects.toThrow(
      /services\.ledger is missing/,
    );
  });
});
