import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { charts } from '@trellis/components/k8s/versions';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { serviceEnvSchemas } from '@trellis/components/services';
import { withMountedDataTls } from '@trellis/components/testing/dataTls';
import {
  bindOrThrow,
  compileCassandra,
  compilePrometheusRules,
  evaluateIstio,
  istioAccessLogFormat,
  istioAuditLogProvider,
  istioTracingProvider,
  istioUpstreamHeaders,
} from '@trellis/policy';
import { cassandraAuditLogging, KAFKA_AUTHORIZER_LOGGING } from '@trellis/local/harness';
import { KEYCLOAK_LOG_LEVEL } from '@trellis/local/toolchain';
import type { IstioRequest, IstioResource, PrometheusRuleFile, Token } from '@trellis/policy';
import { generatedPasswordType } from '@trellis/components/k8s/password';
import { intermediateCaType, rootCaType } from '@trellis/components/pki/meshCa';
import { isSecretValue, RecordingMocks } from '@trellis/components/testing/mocks';
import type { RecordedResource } from '@trellis/components/testing/mocks';
import { policyAdvisories, policyViolations } from '@trellis/components/testing/policyCheck';
import { pkiStackReference, testRootCa } from '@trellis/components/testing/rootCa';
import type { PemRoot } from '@trellis/components/testing/rootCa';
import { stackConfig, stackRunner } from '@trellis/components/testing/stack';
import type { StackRun } from '@trellis/components/testing/stack';
import { testBuildOutput } from '@trellis/components/testing/images';
import type { TestBuildOutput } from '@trellis/components/testing/images';
import { loadConfig as loadLedgerConfig } from '@trellis/ledger/config';
import { ledgerEnvSchema } from '@trellis/ledger/env';
import { loadConfig as loadOrdersApiConfig } from '@trellis/orders-api/config';
import { ordersApiEnvSchema } from '@trellis/orders-api/env';
import { identityFromEnv } from '@trellis/service-platform/config';
import { Env } from '@trellis/service-platform/env';
import { envProblems, type IdentityEnv } from '@trellis/service-platform/env-schema';
import { parsePayloadHeader, peerFromXfcc } from '@trellis/service-platform/identity';
import { beforeAll, describe, expect, it } from 'vitest';

const dir = resolve(import.meta.dirname, '..');
const dbPassword = 'db-password-never-in-outputs-7f3a';
let root: PemRoot;
let build: TestBuildOutput;
const runs = new Map<string, StackRun>();

/** Mocks for a cluster stack: the PKI stack's outputs come back through the StackReference. */
function mocksFor(): RecordingMocks {
  return new RecordingMocks({
    states: { 'pulumi:pulumi:StackReference': pkiStackReference(root) },
  });
}

const runProject = stackRunner({
  project: 'trellis-k8s',
  dir,
  load: () => import('../index.ts'),
  mocks: mocksFor,
  secrets: { 'trellis:keycloakDbPassword': dbPassword },
  // The committed trellis:images, with the build output of this test run.
  config: (stack) => ({
    'trellis:images': JSON.stringify({
      ...(JSON.parse(stackConfig(dir, stack)['trellis:images'] as string) as object),
      buildDir: build.dir,
    }),
  }),
});

/** A container's environment variable as the Deployment declares it. */
interface EnvVar {
  name: string;
  value?: string;
}

const kind = (r: StackRun, k: string): RecordedResource[] => r.mocks.kind(k);
const spec = (r: RecordedResource): Record<string, unknown> =>
  r.inputs.spec as Record<string, unknown>;

/** The environment part of each stack's host names (Pulumi.<stack>.yaml: trellis:hosts, trellis:idp). */
const hostsRegion: Record<string, string> = { dev: 'dev', 'prod-us': 'us', 'prod-eu': 'eu' };
const hosts: Record<string, string> = Object.fromEntries(
  Object.entries(hostsRegion).map(([s, r]) => [s, `api.${r}.trellis.example`]),
);
const now = Math.floor(Date.now() / 1000);

/** A token that verifies, from `iss`, for the model's audience. */
const jwt = (iss: string, scope: string): Token => ({
  alg: 'RS256',
  signatureValid: true,
  claims: { iss, aud: 'trellis-api', sub: 'user-1', scope, exp: now + 300 },
});

/** The ClusterIssuer of the data intermediate (DataCaIssuer). */
const dataIssuerRef = { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'trellis-data-ca' };

/** A cert-manager Certificate's spec, as recorded. */
interface CertificateSpec {
  secretName: string;
  issuerRef: Record<string, string>;
  commonName?: string;
  uris: string[];
  dnsNames?: string[];
  usages?: string[];
}

/** The parts of a pod spec the client-certificate checks read. */
interface PodSpec {
  containers: {
    env: EnvVar[];
    volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
  volumes?: {
    name: string;
    projected?: {
      sources: {
        secret?: { name: string; items: { key: string; path: string }[] };
        configMap?: { name: string; items: { key: string; path: string }[] };
      }[];
    };
  }[];
}

const certificates = (r: StackRun): CertificateSpec[] =>
  kind(r, 'Certificate').map((c) => spec(c) as unknown as CertificateSpec);

/** The one Secret named `name` (in `namespace`, when given). */
function secretNamed(r: StackRun, name: string, namespace?: string): RecordedResource {
  const found = r.mocks.ofType('kubernetes:core/v1:Secret').filter((x) => {
    const m = x.inputs.metadata as { name: string; namespace?: string };
    return m.name === name && (namespace === undefined || m.namespace === namespace);
  });
  expect(found, name).toHaveLength(1);
  return found[0] as RecordedResource;
}

/** Every certificate of a PEM bundle. */
const pemCerts = (pem: string | undefined): X509Certificate[] =>
  (pem ?? '')
    .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)
    ?.map((p) => new X509Certificate(p)) ?? [];

/** The data intermediate of a run (its IntermediateCa key pair), then the root it was signed with. */
function dataCaChain(r: StackRun): X509Certificate[] {
  const ca = r.mocks.ofType(intermediateCaType).find((x) => x.name === 'trellis-data-ca-keypair');
  expect(ca).toBeDefined();
  return [
    new X509Certificate(ca?.state.certPem as string),
    new X509Certificate(ca?.inputs.rootCertPem as string),
  ];
}

const model = loadModelFile(referenceModelPath);
/** The model bound to a cluster (what the scope claims of the access log are compiled from). */
const bound = bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan');

/** The Istio security objects a run applies, as the evaluator reads them. */
const istioObjects = (r: StackRun): IstioResource[] =>
  ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication']
    .flatMap((k) => kind(r, k))
    .map(
      (x) =>
        ({
          apiVersion: x.inputs.apiVersion,
          kind: x.inputs.kind,
          metadata: x.inputs.metadata,
          spec: x.inputs.spec,
        }) as IstioResource,
    );

beforeAll(async () => {
  build = testBuildOutput(['orders-api', 'ledger', 'orders-writer']);
  root = await testRootCa();
  for (const stack of ['dev', 'prod-us', 'prod-eu']) runs.set(stack, await runProject(stack));
}, 60_000);

describe.each(['dev', 'prod-us', 'prod-eu'])('infra/k8s stack %s', (stack) => {
  it('makes no provider call it did not expect', () => {
    expect(runs.get(stack)?.mocks.unexpectedCalls).toEqual([]);
  });

  it('needs no provider plugin but kubernetes: PKI and passwords are dynamic resources', () => {
    const r = runs.get(stack) as StackRun;
    // The package of each type token is the plugin the engine would load for it; `pulumi` (stack
    // references) and `trellis` (components) need none, `pulumi-nodejs` is the dynamic-provider host.
    const packages = new Set(r.mocks.resources.map((x) => x.type.split(':')[0]));
    expect([...packages].sort()).toEqual(
      ['kubernetes', 'pulumi', 'pulumi-nodejs', 'trellis'].filter((p) => packages.has(p)),
    );
    expect(packages.has('kubernetes') && packages.has('pulumi-nodejs')).toBe(true);
    for (const t of [intermediateCaType, generatedPasswordType]) {
      for (const x of r.mocks.ofType(t)) {
        // The provider travels in state with every resource: small, and never with key material.
        const provider = x.inputs.__provider as string;
        expect(provider.length).toBeLessThan(8_000);
        expect(provider).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
      }
    }
    // The root key reaches the intermediates as a secret input only.
    const inters = r.mocks.ofType(intermediateCaType);
    expect(inters.map((x) => x.name).sort()).toEqual([
      'trellis-data-ca-keypair',
      'trellis-mesh-ca-keypair',
    ]);
    for (const x of inters) expect(isSecretValue(x.raw.rootKeyPem)).toBe(true);
    const [password] = r.mocks.ofType(generatedPasswordType);
    expect(password?.inputs.length).toBe(32);
    const stores = r.mocks
      .ofType('kubernetes:core/v1:Secret')
      .find((x) => (x.inputs.metadata as { name: string }).name === 'cassandra-store-password');
    expect(isSecretValue(stores?.raw.stringData)).toBe(true);
    expect((stores?.inputs.stringData as { password: string }).password).toBe(
      password?.state.value,
    );
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

  it('applies mesh-wide STRICT mTLS from the compiler and holds apps until the proxy is ready', () => {
    const r = runs.get(stack) as StackRun;
    const pas = kind(r, 'PeerAuthentication');
    const meshWide = pas.filter(
      (p) => (p.inputs.metadata as { namespace: string }).namespace === 'istio-system',
    );
    expect(meshWide).toHaveLength(1);
    expect(spec(meshWide[0] as RecordedResource)).toEqual({ mtls: { mode: 'STRICT' } });
    expect(pas.every((p) => (spec(p).mtls as { mode: string }).mode === 'STRICT')).toBe(true);
    expect(pas.map((p) => (p.inputs.metadata as { namespace: string }).namespace).sort()).toEqual([
      'istio-system',
      'trellis',
      'trellis-gateway',
    ]);
    // Data services start under STRICT: their namespaces wait for the mesh-wide policy.
    expect(r.outputs.mtlsMode).toBe('STRICT');
    const istiod = r.mocks.one('kubernetes:helm.sh/v3:Release', '-istiod');
    const values = istiod.inputs.values as { meshConfig: Record<string, unknown> };
    expect(values.meshConfig.trustDomain).toBe('trellis.local');
    expect(values.meshConfig.defaultConfig).toEqual({ holdApplicationUntilProxyStarts: true });
  });

  it('denies by default and allows each route only from the gateway, with its scopes', () => {
    const r = runs.get(stack) as StackRun;
    const allowNothing = kind(r, 'AuthorizationPolicy').filter(
      (p) => (p.inputs.metadata as { name: string }).name === 'allow-nothing',
    );
    expect(
      allowNothing.map((p) => (p.inputs.metadata as { namespace: string }).namespace).sort(),
    ).toEqual(['trellis', 'trellis-gateway']);
    for (const p of allowNothing) expect(spec(p)).toEqual({});
    for (const p of kind(r, 'AuthorizationPolicy')) {
      for (const rule of (spec(p).rules ?? []) as { from?: unknown[] }[])
        expect(rule.from?.length ?? 0).toBeGreaterThan(0);
    }
    // Decide requests against exactly what the stack applies, with Istio's documented semantics.
    const mesh = istioObjects(r);
    const issuer = r.outputs.issuer as string;
    const gateway = 'spiffe://trellis.local/ns/trellis-gateway/sa/trellis-nginx';
    const ordersApi = { namespace: 'trellis', labels: { app: 'orders-api' }, port: 8080 };
    const call = (
      from: string | null,
      method: string,
      path: string,
      token?: Token,
      to: { namespace: string; labels: Record<string, string>; port: number } = ordersApi,
    ): boolean => {
      const req: IstioRequest = {
        ...to,
        peer: from === null ? { kind: 'none' } : { kind: 'cert', spiffeId: from, trusted: true },
        http: { method, path, now, ...(token ? { token } : {}) },
      };
      return evaluateIstio(mesh, req).allowed;
    };
    const writer = jwt(issuer, 'orders:read orders:write');
    const reader = jwt(issuer, 'orders:read');
    expect(call(gateway, 'POST', '/orders', writer)).toBe(true);
    expect(call(gateway, 'GET', '/orders/42', reader)).toBe(true);
    // The mesh enforces each route's scopes, not just a valid token.
    expect(call(gateway, 'POST', '/orders', reader)).toBe(false);
    expect(call(gateway, 'GET', '/orders/42', jwt(issuer, 'profile'))).toBe(false);
    expect(call(gateway, 'GET', '/orders/42')).toBe(false);
    expect(call(gateway, 'DELETE', '/orders/42', writer)).toBe(false);
    // Tokens of another issuer (the local stack's) are not accepted in the cluster.
    expect(
      call(
        gateway,
        'GET',
        '/orders/42',
        jwt('https://localhost:8180/realms/trellis', 'orders:read'),
      ),
    ).toBe(false);
    // Only the gateway's identity may call, and never in plaintext.
    expect(call('spiffe://trellis.local/ns/trellis/sa/ledger', 'GET', '/orders/42', reader)).toBe(
      false,
    );
    expect(call(null, 'GET', '/orders/42', reader)).toBe(false);
    // Nobody calls the ledger or the batch writer over the mesh: allow-nothing closes them.
    const ledger = { namespace: 'trellis', labels: { app: 'ledger' }, port: 8081 };
    expect(call(gateway, 'GET', '/orders/42', reader, ledger)).toBe(false);
    const ordersWriter = { namespace: 'trellis', labels: { app: 'orders-writer' }, port: 8082 };
    expect(call(gateway, 'POST', '/orders', writer, ordersWriter)).toBe(false);
    expect(
      call(
        'spiffe://trellis.local/ns/trellis/sa/orders-api',
        'GET',
        '/healthz',
        writer,
        ordersWriter,
      ),
    ).toBe(false);
  });

  it('checks JWTs in the mesh with the issuer and JWKS the stack publishes', () => {
    const r = runs.get(stack) as StackRun;
    const issuer = r.outputs.issuer as string;
    expect(issuer).toMatch(/^https:\/\/auth\.[a-z.]+\/realms\/trellis$/);
    const ras = kind(r, 'RequestAuthentication');
    expect(ras.map((x) => (x.inputs.metadata as { name: string }).name)).toEqual(['orders-api']);
    expect(spec(ras[0] as RecordedResource)).toEqual({
      selector: { matchLabels: { app: 'orders-api' } },
      jwtRules: [
        {
          issuer,
          audiences: ['trellis-api'],
          jwksUri: r.outputs.jwksUri,
          outputPayloadToHeader: 'x-jwt-payload',
          forwardOriginalToken: true,
        },
      ],
    });
    // A request the mesh lets through reaches orders-api with the caller in the header its env names,
    // and from the gateway's identity in XFCC (which the env requires).
    const [d] = r.mocks
      .ofType('kubernetes:apps/v1:Deployment')
      .filter((x) => (x.inputs.metadata as { name: string }).name === 'orders-api');
    const pod = (spec(d as RecordedResource).template as { spec: PodSpec }).spec;
    const env = Object.fromEntries(pod.containers[0]?.env.map((e) => [e.name, e.value]) ?? []);
    const identity = identityFromEnv(new Env<IdentityEnv>(env));
    const gateway = 'spiffe://trellis.local/ns/trellis-gateway/sa/trellis-nginx';
    const headers = istioUpstreamHeaders(istioObjects(r), {
      namespace: 'trellis',
      labels: { app: 'orders-api' },
      port: 8080,
      peer: { kind: 'cert', spiffeId: gateway, trusted: true },
      http: { method: 'GET', path: '/orders/42', now, token: jwt(issuer, 'orders:read') },
    });
    const caller = parsePayloadHeader(identity.payloadHeader, headers?.[identity.payloadHeader]);
    expect(caller).toMatchObject({ subject: 'user-1', issuer, scopes: ['orders:read'] });
    expect(identity.requirePeer).toBe(true);
    expect(peerFromXfcc(headers?.[identity.xfccHeader])).toBe(gateway);
  });

  it('routes the model at the gateway with the compiled Gateway API objects, over TLS', () => {
    const r = runs.get(stack) as StackRun;
    const host = hosts[stack] as string;
    const [gw] = kind(r, 'Gateway');
    const gwSpec = spec(gw as RecordedResource) as {
      gatewayClassName: string;
      listeners: Record<string, unknown>[];
      infrastructure: { annotations: Record<string, string> };
    };
    expect(gw?.inputs.metadata).toMatchObject({ name: 'trellis', namespace: 'trellis-gateway' });
    expect(gwSpec.gatewayClassName).toBe('nginx');
    const authHost = `auth.${hostsRegion[stack]}.trellis.example`;
    const listener = (name: string, hostname: string) => ({
      name,
      hostname,
      port: 443,
      protocol: 'HTTPS',
      tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'trellis-edge-tls' }] },
      allowedRoutes: { namespaces: { from: 'Same' } },
    });
    // The compiled listener for the model's routes, and one for the in-cluster issuer.
    expect(gwSpec.listeners).toEqual([
      listener('https-0', host),
      listener('https-issuer', authHost),
    ]);
    // Outside traffic reaches NGINX without meeting the gateway namespace's STRICT policy.
    expect(gwSpec.infrastructure.annotations).toEqual({
      'ambient.istio.io/bypass-inbound-capture': 'true',
    });
    const routes = Object.fromEntries(
      kind(r, 'HTTPRoute').map((x) => [(x.inputs.metadata as { name: string }).name, x.inputs]),
    );
    expect(Object.keys(routes).sort()).toEqual(['create-order', 'get-order', 'keycloak']);
    // Only the issuer's public paths reach Keycloak; the admin console is not routed.
    expect(routes.keycloak?.spec).toEqual({
      parentRefs: [{ name: 'trellis', namespace: 'trellis-gateway' }],
      hostnames: [authHost],
      rules: [
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/realms/' }, method: 'GET' },
            { path: { type: 'PathPrefix', value: '/realms/' }, method: 'POST' },
            { path: { type: 'PathPrefix', value: '/resources/' }, method: 'GET' },
          ],
          backendRefs: [{ name: 'keycloak-service', namespace: 'keycloak', port: 8080 }],
        },
      ],
    });
    expect(routes['create-order']).toMatchObject({
      metadata: { namespace: 'trellis-gateway' },
      spec: {
        parentRefs: [{ name: 'trellis', namespace: 'trellis-gateway' }],
        hostnames: [host],
        rules: [
          {
            matches: [{ path: { type: 'Exact', value: '/orders' }, method: 'POST' }],
            backendRefs: [{ name: 'orders-api', namespace: 'trellis', port: 8080 }],
          },
        ],
      },
    });
    expect(
      (routes['get-order']?.spec as { rules: { matches: unknown[] }[] }).rules[0]?.matches,
    ).toEqual([{ path: { type: 'PathPrefix', value: '/orders' }, method: 'GET' }]);
    const grants = Object.fromEntries(
      kind(r, 'ReferenceGrant').map((g) => [
        (g.inputs.metadata as { namespace: string }).namespace,
        g,
      ]),
    );
    expect(Object.keys(grants).sort()).toEqual(['keycloak', 'trellis']);
    expect(grants.keycloak?.inputs.spec).toMatchObject({
      to: [{ group: '', kind: 'Service', name: 'keycloak-service' }],
    });
    expect(grants.trellis?.inputs).toMatchObject({
      metadata: { namespace: 'trellis' },
      spec: {
        from: [
          { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'trellis-gateway' },
        ],
        to: [{ group: '', kind: 'Service', name: 'orders-api' }],
      },
    });
    const [cert] = kind(r, 'Certificate').filter(
      (c) => (c.inputs.metadata as { namespace: string }).namespace === 'trellis-gateway',
    );
    expect(spec(cert as RecordedResource)).toMatchObject({
      secretName: 'trellis-edge-tls',
      dnsNames: [host, authHost],
      issuerRef: { group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'letsencrypt-dns01' },
    });
    const ns = (name: string) =>
      r.mocks
        .ofType('kubernetes:core/v1:Namespace')
        .find((x) => (x.inputs.metadata as { name: string }).name === name)?.inputs.metadata;
    expect(ns('trellis-gateway')).toMatchObject({
      labels: { 'istio.io/dataplane-mode': 'ambient' },
    });
    expect(ns('trellis')).toMatchObject({ labels: { 'istio-injection': 'enabled' } });
    expect(ns('nginx-gateway')).toMatchObject({ labels: { 'istio-injection': 'disabled' } });
    expect(r.outputs.edgeHosts).toEqual([host, authHost]);
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
    // The listener serves a certificate from the data CA, which the services verify brokers against.
    const listenerSecret = 'trellis-kafka-tls-listener';
    expect(k.listeners).toEqual([
      {
        name: 'tls',
        port: 9093,
        type: 'internal',
        tls: true,
        authentication: { type: 'tls' },
        configuration: {
          brokerCertChainAndKey: {
            secretName: listenerSecret,
            certificate: 'tls.crt',
            key: 'tls.key',
          },
        },
      },
    ]);
    expect(k.authorization).toEqual({ type: 'simple' });
    const listenerCert = certificates(r).find((c) => c.secretName === listenerSecret);
    expect(listenerCert?.issuerRef).toEqual(dataIssuerRef);
    expect(listenerCert?.dnsNames).toEqual(
      expect.arrayContaining([
        'trellis-kafka-bootstrap.trellis-kafka.svc.cluster.local',
        '*.trellis-kafka-brokers.trellis-kafka.svc',
      ]),
    );
    // Clients are authenticated against the data CA (Strimzi's clients CA is ours, not generated).
    expect(spec(kafka as RecordedResource).clientsCa).toEqual({
      generateCertificateAuthority: false,
    });
    const clientsCa = secretNamed(r, 'trellis-clients-ca-cert');
    expect(clientsCa.inputs.metadata).toMatchObject({
      namespace: 'trellis-kafka',
      labels: { 'strimzi.io/kind': 'Kafka', 'strimzi.io/cluster': 'trellis' },
      annotations: { 'strimzi.io/ca-cert-generation': '0' },
    });
    const chain = pemCerts((clientsCa.inputs.stringData as Record<string, string>)['ca.crt']);
    expect(chain.map((c) => c.fingerprint256)).toEqual(dataCaChain(r).map((c) => c.fingerprint256));
    expect(isSecretValue(secretNamed(r, 'trellis-clients-ca').raw.stringData)).toBe(true);
    const users = Object.fromEntries(
      kind(r, 'KafkaUser').map((u) => [(u.inputs.metadata as { name: string }).name, spec(u)]),
    );
    expect(Object.keys(users).sort()).toEqual(['ledger', 'orders-api', 'orders-writer']);
    // The User Operator issues no certificate: each service brings its own (see "mounts ...").
    for (const u of Object.values(users))
      expect((u as { authentication: unknown }).authentication).toEqual({ type: 'tls-external' });
    const aclsOf = (u: string) =>
      (
        users[u] as {
          authorization: { acls: { resource: { name: string }; operations: string[] }[] };
        }
      ).authorization.acls;
    // compileKafkaAcls: WRITE for the producer; READ on the topic and the group for the consumer.
    // orders-api only produces the order queue; it can neither read it nor produce orders.v1.
    expect(aclsOf('orders-api')).toEqual([
      {
        type: 'allow',
        host: '*',
        resource: { type: 'topic', name: 'orders.intake.v1', patternType: 'literal' },
        operations: ['Write'],
      },
    ]);
    // The batch writer reads the queue as group orders-writer, and alone produces orders.v1.
    expect(aclsOf('orders-writer')).toEqual([
      {
        type: 'allow',
        host: '*',
        resource: { type: 'group', name: 'orders-writer', patternType: 'literal' },
        operations: ['Read'],
      },
      {
        type: 'allow',
        host: '*',
        resource: { type: 'topic', name: 'orders.intake.v1', patternType: 'literal' },
        operations: ['Read'],
      },
      {
        type: 'allow',
        host: '*',
        resource: { type: 'topic', name: 'orders.v1', patternType: 'literal' },
        operations: ['Write'],
      },
    ]);
    expect(aclsOf('ledger')).toEqual([
      {
        type: 'allow',
        host: '*',
        resource: { type: 'group', name: 'ledger', patternType: 'literal' },
        operations: ['Read'],
      },
      {
        type: 'allow',
        host: '*',
        resource: { type: 'topic', name: 'orders.v1', patternType: 'literal' },
        operations: ['Read'],
      },
    ]);
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

  it('imports the realm compiled from the model into the in-cluster Keycloak', () => {
    const r = runs.get(stack) as StackRun;
    const [imp] = kind(r, 'KeycloakRealmImport');
    const realm = spec(imp as RecordedResource).realm as {
      realm: string;
      clients: {
        clientId: string;
        directAccessGrantsEnabled: boolean;
        defaultClientScopes: string[];
      }[];
      clientScopes: { name: string; protocolMappers: { config: Record<string, string> }[] }[];
      scopeMappings: { clientScope: string; roles: string[] }[];
    };
    expect(realm.realm).toBe('trellis');
    expect(`https://auth.${hostsRegion[stack]}.trellis.example/realms/${realm.realm}`).toBe(
      r.outputs.issuer,
    );
    const clients = Object.fromEntries(realm.clients.map((c) => [c.clientId, c]));
    // The agent gets only its narrow scopes; no password grant in a cloud environment.
    expect(clients['reporting-bot']?.defaultClientScopes).toEqual([
      'basic',
      'keycloak-audience',
      'orders:read',
    ]);
    expect(clients['trellis-cli']?.directAccessGrantsEnabled).toBe(false);
    const audience = realm.clientScopes.find((c) => c.name === 'keycloak-audience');
    expect(audience?.protocolMappers.map((m) => m.config['included.custom.audience'])).toEqual([
      'trellis-api',
    ]);
    expect(realm.scopeMappings).toContainEqual({
      clientScope: 'orders:write',
      roles: ['order-writer'],
    });
  });

  it("logs every sidecar's requests as JSON with the peer SPIFFE ID, verified claims, RBAC result, route and request id (Istio Telemetry)", () => {
    const r = runs.get(stack) as StackRun;
    const istiod = r.mocks.one('kubernetes:helm.sh/v3:Release', '-istiod');
    const providers = (
      istiod.inputs.values as { meshConfig: { extensionProviders: Record<string, unknown>[] } }
    ).meshConfig.extensionProviders;
    // The committed stacks name no collector: the audit log only, no tracer.
    expect(providers.map((p) => p.name)).toEqual([istioAuditLogProvider]);
    const log = providers[0] as {
      envoyFileAccessLog: { path: string; logFormat: { labels: Record<string, unknown> } };
    };
    expect(log.envoyFileAccessLog.path).toBe('/dev/stdout');
    const labels = log.envoyFileAccessLog.logFormat.labels;
    // The local sidecars' audit fields, from the one definition, with the claims where Istio keeps them.
    expect(labels).toEqual(istioAccessLogFormat(bound));
    expect(labels).toMatchObject({
      peer: '%DOWNSTREAM_PEER_URI_SAN%',
      requestId: '%REQ(x-request-id)%',
      route: '%ROUTE_NAME%',
      rbac: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_engine_result)%',
      rbacPolicy: '%DYNAMIC_METADATA(envoy.filters.http.rbac:enforced_effective_policy_id)%',
      jwt: {
        payload: {
          sub: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:sub)%',
          azp: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:azp)%',
          scope: '%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:payload:scope)%',
        },
      },
      path: '%PATH(NQ)%',
    });
    // Nothing that carries a token: no Authorization, no forwarded payload header, no query string.
    const text = JSON.stringify(labels).toLowerCase();
    for (const never of ['authorization', 'x-jwt-payload', '%req(:path)%'])
      expect(text).not.toContain(never);
    // The mesh-wide Telemetry (root namespace, no selector) turns it on, inbound.
    const telemetries = kind(r, 'Telemetry');
    expect(telemetries.map((t) => t.type)).toEqual(['kubernetes:telemetry.istio.io/v1:Telemetry']);
    const [t] = telemetries as [RecordedResource];
    expect(t.inputs.metadata).toMatchObject({ name: 'mesh-default', namespace: 'istio-system' });
    expect(spec(t)).toEqual({
      accessLogging: [{ providers: [{ name: istioAuditLogProvider }], match: { mode: 'SERVER' } }],
    });
  });

  it("audits Cassandra with the local stack's settings: FileAuditLogger, DML/DDL/DCL/AUTH, system keyspaces excluded", () => {
    const r = runs.get(stack) as StackRun;
    const [cluster] = kind(r, 'K8ssandraCluster');
    const yaml = (
      (spec(cluster as RecordedResource).cassandra as Record<string, unknown>).config as {
        cassandraYaml: Record<string, unknown>;
      }
    ).cassandraYaml;
    expect(yaml.audit_logging_options).toEqual(cassandraAuditLogging());
    const audit = yaml.audit_logging_options as Record<string, unknown>;
    expect(audit).toMatchObject({
      enabled: true,
      logger: [{ class_name: 'FileAuditLogger' }],
      included_categories: 'DML,DDL,DCL,AUTH',
    });
    // Excluding the system keyspaces, not including the apps': an include list would drop logins.
    expect(String(audit.excluded_keyspaces).split(',')).toEqual(
      expect.arrayContaining(['system', 'system_auth', 'system_schema']),
    );
    expect(String(audit.excluded_keyspaces)).not.toMatch(/orders|ledger/);
    expect(audit).not.toHaveProperty('included_keyspaces');
  });

  it("logs Kafka's authorizer decisions, allowed ones included (DEBUG), into their own appender", () => {
    const r = runs.get(stack) as StackRun;
    const [kafka] = kind(r, 'Kafka');
    const k = spec(kafka as RecordedResource).kafka as { logging: unknown };
    const cm = r.mocks.one('kubernetes:core/v1:ConfigMap', '-kafka-logging');
    const name = (cm.inputs.metadata as { name: string; namespace: string }).name;
    expect(cm.inputs.metadata).toMatchObject({ namespace: 'trellis-kafka' });
    expect(k.logging).toEqual({
      type: 'external',
      valueFrom: { configMapKeyRef: { name, key: 'log4j2.properties' } },
    });
    const props = new Map(
      String((cm.inputs.data as Record<string, string>)['log4j2.properties'])
        .split('\n')
        .filter((l) => l.includes(' = '))
        .map((l) => l.split(' = ') as [string, string]),
    );
    expect(props.get('logger.authorizer.name')).toBe('kafka.authorizer.logger');
    expect(props.get('logger.authorizer.level')).toBe('DEBUG');
    expect(props.get('logger.authorizer.additivity')).toBe('false');
    expect(props.get('logger.authorizer.appenderRef.authorizer.ref')).toBe('AUTHORIZER');
    expect(props.get('appender.authorizer.name')).toBe('AUTHORIZER');
    // The local authorizer log's layout, which `./trellis audit` parses.
    expect(props.get('appender.authorizer.layout.pattern')).toBe(KAFKA_AUTHORIZER_LOGGING.pattern);
    expect(props.get('rootLogger.level')).toBe('INFO');
    // Every appender a logger refers to is defined.
    const appenders = new Set(
      [...props].filter(([k]) => /^appender\.[^.]+\.name$/.test(k)).map(([, v]) => v),
    );
    for (const [key, ref] of props)
      if (/\.appenderRef\.[^.]+\.ref$/.test(key)) expect(appenders, key).toContain(ref);
  });

  it("logs Keycloak's login and token events: realm events to jboss-logging, org.keycloak.events at DEBUG", () => {
    const r = runs.get(stack) as StackRun;
    const [kc] = kind(r, 'Keycloak');
    expect(spec(kc as RecordedResource).additionalOptions).toEqual([
      { name: 'log-level', value: KEYCLOAK_LOG_LEVEL },
    ]);
    expect(KEYCLOAK_LOG_LEVEL.split(',')).toContain('org.keycloak.events:debug');
    const [imp] = kind(r, 'KeycloakRealmImport');
    const realm = spec(imp as RecordedResource).realm as Record<string, unknown>;
    expect(realm).toMatchObject({ eventsEnabled: true, eventsListeners: ['jboss-logging'] });
    expect(realm.enabledEventTypes).toEqual(
      expect.arrayContaining([
        'LOGIN',
        'LOGIN_ERROR',
        'CLIENT_LOGIN',
        'CODE_TO_TOKEN',
        'REFRESH_TOKEN',
      ]),
    );
  });

  it('deploys smoke services by digest, with limits, probes and a PDB, as their SPIFFE identity', () => {
    const r = runs.get(stack) as StackRun;
    const deployments = r.mocks.ofType('kubernetes:apps/v1:Deployment');
    expect(deployments.map((d) => (d.inputs.metadata as { name: string }).name).sort()).toEqual([
      'ledger',
      'orders-api',
      'orders-writer',
    ]);
    for (const d of deployments) {
      const pod = (spec(d).template as { spec: Record<string, unknown> }).spec;
      const [c] = pod.containers as Record<string, unknown>[];
      expect(pod.serviceAccountName).toBe((d.inputs.metadata as { name: string }).name);
      // The digest ./trellis images recorded, pulled from the team registry of the stack config.
      const name = (d.inputs.metadata as { name: string }).name;
      expect(c?.image).toBe(`ghcr.io/trellis-platform/${name}@${build.digests[name]}`);
      expect(c?.readinessProbe).toBeDefined();
      expect(c?.livenessProbe).toBeDefined();
    }
    expect(r.mocks.ofType('kubernetes:policy/v1:PodDisruptionBudget')).toHaveLength(3);
  });

  it("gives each service the environment its exported schema declares, which the service's loader accepts", () => {
    const r = runs.get(stack) as StackRun;
    const services = {
      'orders-api': { schema: ordersApiEnvSchema, load: loadOrdersApiConfig },
      ledger: { schema: ledgerEnvSchema, load: loadLedgerConfig },
    };
    // trellis:region of each stack (Pulumi.<stack>.yaml): the Cassandra datacenter's name.
    const region = ({ dev: 'us', 'prod-us': 'us', 'prod-eu': 'eu' } as Record<string, string>)[
      stack
    ];
    for (const d of r.mocks.ofType('kubernetes:apps/v1:Deployment')) {
      const pod = (spec(d).template as { spec: { containers: { env: EnvVar[] }[] } }).spec;
      const env = Object.fromEntries(pod.containers[0]?.env.map((e) => [e.name, e.value]) ?? []);
      // The order queue is the Kafka intake topic in Kubernetes (SQS only in the AWS stack).
      expect(Object.keys(env).filter((k) => /^(ORDERS_QUEUE|SQS_)/.test(k))).toEqual([]);
      if ((d.inputs.metadata as { name: string }).name === 'orders-writer') {
        // Its loader (@trellis/orders-writer/config) lands with the service; its schema meanwhile.
        expect(envProblems(serviceEnvSchemas['orders-writer'], env)).toEqual([]);
        expect(env).toMatchObject({
          HOST: '0.0.0.0',
          PORT: '8082',
          KAFKA_CLIENT_ID: 'orders-writer',
          KAFKA_GROUP_ID: 'orders-writer',
          CASSANDRA_LOCAL_DC: region,
          IDENTITY_REQUIRE_PEER: 'true',
        });
        continue;
      }
      const name = (d.inputs.metadata as { name: keyof typeof services }).name;
      expect(envProblems(services[name].schema, env)).toEqual([]);
      const config = services[name].load(withMountedDataTls(env as Record<string, string>));
      // Reachable by the sidecar and the kubelet on the pod IP, on the port the model declares.
      expect(config.server).toMatchObject({
        host: '0.0.0.0',
        port: name === 'ledger' ? 8081 : 8080,
      });
      expect(config.app.kafka.brokers).toEqual([
        expect.stringMatching(/-kafka-bootstrap\.[a-z-]+\.svc\.cluster\.local:9093$/),
      ]);
      expect(config.app.cassandra).toMatchObject({
        contactPoints: [expect.stringMatching(/\.svc\.cluster\.local:9042$/)],
        localDataCenter: region,
      });
      expect(config.app.identity?.payloadHeader).toBe('x-jwt-payload');
      expect(config.app.identity?.requirePeer).toBe(true);
      // Both data clients use the mounted certificate (paths checked in "mounts ..." below).
      expect(config.app.cassandra.tls).toMatchObject({
        caFile: expect.stringMatching(/\/data-tls\/bundle\.pem$/),
        certFile: expect.stringMatching(/\/data-tls\/cert\.pem$/),
        keyFile: expect.stringMatching(/\/data-tls\/key\.pem$/),
        serverName: expect.stringMatching(
          /^trellis-[a-z]+-service\.trellis-cassandra\.svc\.cluster\.local$/,
        ),
      });
      expect(config.app.kafka.tls).toMatchObject({
        certFile: expect.stringMatching(/\/data-tls\/cert\.pem$/),
        keyFile: expect.stringMatching(/\/data-tls\/key\.pem$/),
      });
    }
  });

  it('mounts into each service a client certificate with the identities Cassandra and Kafka map', () => {
    const r = runs.get(stack) as StackRun;
    // Grants are the model's, whatever the environment: the example plan stands in.
    const cql = compileCassandra(
      bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan'),
    ).cql;
    const kafkaUsers = kind(r, 'KafkaUser').map(
      (u) => (u.inputs.metadata as { name: string }).name,
    );
    const deployments = r.mocks.ofType('kubernetes:apps/v1:Deployment');
    expect(deployments).toHaveLength(3);
    for (const d of deployments) {
      const name = (d.inputs.metadata as { name: string }).name;
      const pod = (spec(d).template as { spec: PodSpec }).spec;
      const [c] = pod.containers;
      const mount = c?.volumeMounts?.find((m) => m.name === 'data-tls');
      expect(mount, name).toMatchObject({ readOnly: true });
      const sources = pod.volumes?.find((v) => v.name === 'data-tls')?.projected?.sources ?? [];
      const secret = sources.find((x) => x.secret)?.secret;
      const cert = certificates(r).find((x) => x.secretName === secret?.name);
      expect(cert, `${name}: the mounted Secret is a Certificate's`).toBeDefined();
      // Cassandra: the URI SAN is the identity the compiled CQL maps to the workload's role.
      expect(cert?.uris).toEqual([`spiffe://trellis.local/ns/trellis/sa/${name}`]);
      expect(cql).toContain(`ADD IDENTITY IF NOT EXISTS '${cert?.uris[0]}' TO ROLE '${name}';`);
      // Kafka: the subject is only the CN, so the principal is User:CN=<KafkaUser> of the ACLs.
      expect(cert?.commonName).toBe(name);
      expect(cert).not.toHaveProperty('subject');
      expect(kafkaUsers).toContain(cert?.commonName);
      expect(cert?.issuerRef).toEqual(dataIssuerRef);
      expect(cert?.usages).toContain('client auth');
      // The env names files that the projection puts under the mount.
      const env = Object.fromEntries(c?.env.map((e) => [e.name, e.value]) ?? []);
      const projected = [
        ...(secret?.items ?? []),
        ...(sources.find((x) => x.configMap)?.configMap?.items ?? []),
      ].map((i) => `${mount?.mountPath}/${i.path}`);
      for (const v of ['CASSANDRA', 'KAFKA'].flatMap((s) =>
        ['CA', 'CERT', 'KEY'].map((f) => `${s}_TLS_${f}_FILE`),
      ))
        expect(projected, `${name} ${v}`).toContain(env[v]);
      expect(secret?.items).toEqual([
        { key: 'tls.crt', path: 'cert.pem' },
        { key: 'tls.key', path: 'key.pem' },
      ]);
    }
  });

  it('issues the client certificates from the CA both data stores trust', () => {
    const r = runs.get(stack) as StackRun;
    const [issuer] = kind(r, 'ClusterIssuer');
    expect(issuer?.inputs.metadata).toEqual({ name: dataIssuerRef.name });
    const caSecret = secretNamed(
      r,
      (spec(issuer as RecordedResource).ca as { secretName: string }).secretName,
      'cert-manager',
    );
    expect((caSecret.inputs.metadata as { namespace: string }).namespace).toBe('cert-manager');
    expect(isSecretValue(caSecret.raw.stringData)).toBe(true);
    const data = caSecret.inputs.stringData as Record<string, string>;
    const chain = pemCerts(data['tls.crt']);
    expect(chain.map((c) => c.fingerprint256)).toEqual(dataCaChain(r).map((c) => c.fingerprint256));
    const [dataCa, rootCert] = chain as [X509Certificate, X509Certificate];
    expect(dataCa.ca).toBe(true);
    expect(dataCa.subject).toContain('data intermediate');
    expect(dataCa.verify(rootCert.publicKey)).toBe(true);
    // Cassandra's truststore is the CA of its own Issuer: the same data intermediate.
    const cassandraCa = secretNamed(r, 'trellis-data-ca', 'trellis-cassandra');
    const cassandraData = cassandraCa.inputs.stringData as Record<string, string>;
    expect(pemCerts(cassandraData['tls.crt'])[0]?.fingerprint256).toBe(dataCa.fingerprint256);
    // The trust bundle mounted beside the key anchors on the same root.
    for (const cm of r.mocks
      .ofType('kubernetes:core/v1:ConfigMap')
      .filter((x) => (x.inputs.metadata as { name: string }).name.endsWith('-data-trust')))
      expect(
        pemCerts((cm.inputs.data as Record<string, string>)['bundle.pem']).map(
          (c) => c.fingerprint256,
        ),
      ).toEqual(chain.map((c) => c.fingerprint256));
  });

  it('passes every rule of the policy pack', async () => {
    expect(await policyViolations((runs.get(stack) as StackRun).mocks.resources)).toEqual([]);
  });

  it('reports, as advisories, exactly the chart images still pulled by tag', async () => {
    const found = await policyAdvisories((runs.get(stack) as StackRun).mocks.resources);
    const byChart = (chart: string) => found.filter((f) => f.includes(`(${chart})`));
    for (const chart of [
      'base',
      'istiod',
      'cni',
      'ztunnel',
      'nginx-gateway-fabric',
      'k8ssandra-operator',
    ])
      expect(byChart(chart), chart).toEqual([expect.stringContaining('takes no image digest')]);
    expect(byChart('cert-manager')).toEqual([
      expect.stringContaining('values.image.digest, values.webhook.image.digest'),
    ]);
    expect(byChart('strimzi-kafka-operator')).toEqual([
      expect.stringContaining('values.kafka.image.digest'),
    ]);
    expect(found).toHaveLength(8);
  });

  it('puts no secret value in a non-secret output', () => {
    const r = runs.get(stack) as StackRun;
    const secrets = [
      dbPassword,
      root.keyPem,
      ...[rootCaType, intermediateCaType]
        .flatMap((t) => r.mocks.ofType(t))
        .map((k) => k.state.keyPem as string),
      ...r.mocks.ofType(generatedPasswordType).map((p) => p.state.value as string),
    ];
    // The shared root's key, the database password, the mesh and data intermediates' keys (plus a
    // self-signed root's in dev) and the Cassandra keystore password.
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    expect(r.secretOutputs).toEqual([]);
    const text = JSON.stringify(r.outputs);
    for (const s of secrets) expect(text.includes(s.trim().split('\n')[1] as string)).toBe(false);
    expect(text).not.toContain(dbPassword);
    expect(text).not.toMatch(/PRIVATE KEY/);
  });
});

describe('multi-region', () => {
  /** Every policy object of a run (mesh, edge, Kafka, realm), whole, keyed by kind/namespace/name. */
  const policyOf = (r: StackRun): Record<string, unknown> =>
    Object.fromEntries(
      [
        'PeerAuthentication',
        'AuthorizationPolicy',
        'RequestAuthentication',
        'Gateway',
        'HTTPRoute',
        'ReferenceGrant',
        'KafkaUser',
        'KeycloakRealmImport',
      ]
        .flatMap((k) => kind(r, k))
        .map((x) => {
          const m = x.inputs.metadata as { name: string; namespace: string };
          return [`${x.type.split(':').pop()}/${m.namespace}/${m.name}`, x.inputs];
        }),
    );
  /** Region-scoped names → a placeholder: host names and the region label. */
  const unscoped = (v: unknown, region: string) =>
    JSON.parse(
      JSON.stringify(v)
        .replaceAll(`auth.${region}.`, 'auth.<region>.')
        .replaceAll(`api.${region}.`, 'api.<region>.')
        .replaceAll(`"trellis.dev/region":"${region}"`, '"trellis.dev/region":"<region>"'),
    );

  it('prod-us and prod-eu produce identical policy, differing only in region-scoped names', () => {
    const us = policyOf(runs.get('prod-us') as StackRun);
    const eu = policyOf(runs.get('prod-eu') as StackRun);
    expect(Object.keys(us).length).toBeGreaterThanOrEqual(12);
    expect(Object.keys(eu).sort()).toEqual(Object.keys(us).sort());
    // They do differ as deployed (issuer, hosts, region label) ...
    expect(JSON.stringify(eu)).not.toEqual(JSON.stringify(us));
    expect(JSON.stringify(eu)).toContain('auth.eu.');
    expect(JSON.stringify(eu)).toContain('"trellis.dev/region":"eu"');
    // ... and only there.
    expect(unscoped(eu, 'eu')).toEqual(unscoped(us, 'us'));
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

describe('external issuer (Okta, Cognito)', () => {
  it('deploys no Keycloak and checks tokens of the configured issuer everywhere', async () => {
    const issuer = 'https://trellis.okta.example.com/oauth2/default';
    const idp = { mode: 'external', provider: 'keycloak', issuer, jwksUri: `${issuer}/v1/keys` };
    const r = await runProject('prod-us', {
      config: { 'trellis:idp': JSON.stringify(idp) },
      secrets: {},
    });
    expect(r.outputs.issuer).toBe(issuer);
    expect(kind(r, 'Keycloak')).toEqual([]);
    expect(kind(r, 'KeycloakRealmImport')).toEqual([]);
    const [ra] = kind(r, 'RequestAuthentication');
    expect(spec(ra as RecordedResource).jwtRules).toEqual([
      {
        issuer,
        audiences: ['trellis-api'],
        jwksUri: `${issuer}/v1/keys`,
        outputPayloadToHeader: 'x-jwt-payload',
        forwardOriginalToken: true,
      },
    ]);
    expect(kind(r, 'HTTPRoute').map((x) => (x.inputs.metadata as { name: string }).name)).toEqual([
      'create-order',
      'get-order',
    ]);
    const when = kind(r, 'AuthorizationPolicy').flatMap((p) =>
      ((spec(p).rules ?? []) as { when?: { key: string; values: string[] }[] }[]).flatMap(
        (rule) => rule.when ?? [],
      ),
    );
    expect(when.filter((w) => w.key === 'request.auth.claims[iss]').map((w) => w.values)).toEqual([
      [issuer],
      [issuer],
    ]);
    expect(r.mocks.unexpectedCalls).toEqual([]);
  });
});

describe("SLO rules for the cluster's Prometheus Operator (trellis:sloRules)", () => {
  const selector = { release: 'kube-prometheus-stack' };

  it('are compiled from the route budgets into one PrometheusRule per route, with the selector label', async () => {
    // The committed stacks ask for none: Trellis installs no Prometheus Operator, so no CRD is there.
    for (const stack of ['dev', 'prod-us', 'prod-eu'])
      expect(kind(runs.get(stack) as StackRun, 'PrometheusRule'), stack).toEqual([]);
    const r = await runProject('prod-eu', {
      config: { 'trellis:sloRules': JSON.stringify({ labels: selector }) },
    });
    const rules = kind(r, 'PrometheusRule');
    expect(rules.map((x) => x.type)).toEqual([
      'kubernetes:monitoring.coreos.com/v1:PrometheusRule',
      'kubernetes:monitoring.coreos.com/v1:PrometheusRule',
    ]);
    const meta = (x: RecordedResource) =>
      x.inputs.metadata as { name: string; namespace: string; labels: Record<string, string> };
    expect(rules.map((x) => `${meta(x).namespace}/${meta(x).name}`).sort()).toEqual([
      'trellis/trellis-slo-create-order',
      'trellis/trellis-slo-get-order',
    ]);
    for (const x of rules) {
      expect(meta(x).labels).toMatchObject({ ...selector, 'trellis.dev/region': 'eu' });
    }
    // The spec is the compiler's, for the model as bound to this cluster.
    const eu = bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan');
    const compiled = compilePrometheusRules(eu, { region: 'eu', labels: selector });
    const byName = (n: string) => rules.find((x) => meta(x).name === n);
    for (const c of compiled) expect(byName(c.metadata.name)?.inputs.spec).toEqual(c.spec);
    // get-order's fast-burn page: p99 5 ms, 1 % budget, 14.4x over 1h and 5m.
    const groups = (byName('trellis-slo-get-order')?.inputs.spec as PrometheusRuleFile).groups;
    const page = groups[0]?.rules.find(
      (x) =>
        'alert' in x &&
        x.alert === 'TrellisRouteLatencyBudgetBurn' &&
        x.labels.long_window === '1h',
    );
    expect(page?.expr).toBe(
      'route:trellis_slo_slow:ratio_rate1h{route="get-order"} > (14.4 * 0.01)\nand\n' +
        'route:trellis_slo_slow:ratio_rate5m{route="get-order"} > (14.4 * 0.01)',
    );
  });

  it('rejects a label the Operator could not select on, naming the key', async () => {
    await expect(
      runProject('dev', {
        config: { 'trellis:sloRules': JSON.stringify({ labels: { 'bad key!': 'x' } }) },
      }),
    ).rejects.toThrow(/trellis:sloRules\.labels\.bad key!: must be a Kubernetes label key/);
  });
});

describe("tracing to the cluster's OpenTelemetry collector (trellis:tracing)", () => {
  const tracing = {
    service: 'otel-collector.observability.svc.cluster.local',
    port: 4317,
    samplingPercentage: 2.5,
  };

  it('adds the OpenTelemetry provider to istiod and samples mesh-wide at the configured rate', async () => {
    const r = await runProject('prod-us', {
      config: { 'trellis:tracing': JSON.stringify(tracing) },
    });
    const istiod = r.mocks.one('kubernetes:helm.sh/v3:Release', '-istiod');
    const providers = (
      istiod.inputs.values as { meshConfig: { extensionProviders: Record<string, unknown>[] } }
    ).meshConfig.extensionProviders;
    expect(providers.map((p) => p.name)).toEqual([istioAuditLogProvider, istioTracingProvider]);
    expect(providers[1]).toEqual({
      name: istioTracingProvider,
      opentelemetry: { service: tracing.service, port: 4317 },
    });
    const [t] = kind(r, 'Telemetry') as [RecordedResource];
    expect(spec(t).tracing).toEqual([
      { providers: [{ name: istioTracingProvider }], randomSamplingPercentage: 2.5 },
    ]);
    // The access log stays on, and no unexpected provider call was made.
    expect((spec(t).accessLogging as unknown[]).length).toBe(1);
    expect(r.mocks.unexpectedCalls).toEqual([]);
  });

  it.each([
    [{ ...tracing, samplingPercentage: 101 }, /trellis:tracing\.samplingPercentage: /],
    [{ ...tracing, port: 0 }, /trellis:tracing\.port: /],
    [
      { ...tracing, service: 'http://collector:4317' },
      /trellis:tracing\.service: must be a host name, optionally <namespace>\/<hostname>/,
    ],
    [{ service: tracing.service, port: 4317 }, /trellis:tracing\.samplingPercentage: /],
  ])('refuses %o, naming the key', async (bad, message) => {
    await expect(
      runProject('dev', { config: { 'trellis:tracing': JSON.stringify(bad) } }),
    ).rejects.toThrow(message);
  });
});

describe('config validation', () => {
  const bad = async (stack: string, patch: Record<string, string>, secrets = true) =>
    runProject(stack, { config: patch, secrets: secrets ? undefined : {} });

  /** The message a run fails with. */
  const failure = async (run: Promise<unknown>): Promise<string> => {
    try {
      await run;
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('the run succeeded');
  };
  const withImages = (images: Record<string, unknown>) =>
    JSON.stringify({
      'orders-api': { image: images['orders-api'] ?? { build: 'orders-api' } },
      ledger: { image: images.ledger ?? { build: 'ledger' } },
      'orders-writer': { image: images['orders-writer'] ?? { build: 'orders-writer' } },
    });
  // The made-up digests the stack configs used to carry (issue 12).
  const madeUp = {
    ordersApi: '5f1d4c9a0b8e7f6a3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c',
    ledger: '8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b',
  };
  const registry = 'ghcr.io/trellis-platform';

  it('rejects a bare image reference, whatever its digest: it has no provenance', async () => {
    const services = withImages({
      'orders-api': `${registry}/orders-api@sha256:${createHash('sha256').update('x').digest('hex')}`,
    });
    expect(await failure(bad('dev', { 'trellis:services': services }))).toBe(
      'invalid stack config:\ntrellis:services.orders-api.image: must be { build: <image> } (the digest ./trellis images recorded) or { registry: <repository>@sha256:<digest> } (an image in trellis:images.registry); a bare reference does not say where its digest came from',
    );
  });

  it('rejects the made-up digests the stack configs carried, even declared as registry images', async () => {
    const services = withImages({
      'orders-api': { registry: `${registry}/orders-api@sha256:${madeUp.ordersApi}` },
      ledger: { registry: `${registry}/ledger@sha256:${madeUp.ledger}` },
    });
    expect(await failure(bad('prod-us', { 'trellis:services': services }))).toBe(
      [
        'invalid stack config:',
        'trellis:services.orders-api.image.registry: digest counts down by one over 16 digits (fedcba9876543210, every other digit): a made-up value, not a SHA-256 digest',
        'trellis:services.ledger.image.registry: digest counts down by one over 10 digits (9876543210, every other digit): a made-up value, not a SHA-256 digest',
      ].join('\n'),
    );
  });

  it('rejects placeholders: repeated patterns, all zeros, template syntax and TODO', async () => {
    const cases: [string, string][] = [
      [
        `${registry}/orders-api@sha256:${'0'.repeat(64)}`,
        'digest repeats "0": a placeholder, not a SHA-256 digest',
      ],
      [
        `${registry}/orders-api@sha256:${'deadbeef'.repeat(8)}`,
        'digest repeats "deadbeef": a placeholder, not a SHA-256 digest',
      ],
      [
        `${registry}/orders-api@sha256:${'0123456789abcdef'.repeat(4)}`,
        'digest repeats "0123456789abcdef": a placeholder, not a SHA-256 digest',
      ],
      [
        `${registry}/orders-api@sha256:${'a1b2c3d4'.repeat(7)}a1b2c3d5`,
        'digest uses only 9 distinct hex digits: a made-up value, not a SHA-256 digest',
      ],
      [`${registry}/orders-api@sha256:<digest>`, 'is a placeholder ("<"), not an image reference'],
      [`${registry}/orders-api@sha256:TODO`, 'is a placeholder ("TODO"), not an image reference'],
      [
        `${registry}/changeme@sha256:${createHash('sha256').update('y').digest('hex')}`,
        'is a placeholder ("changeme"), not an image reference',
      ],
    ];
    for (const [ref, reason] of cases) {
      const services = withImages({ 'orders-api': { registry: ref } });
      expect(await failure(bad('dev', { 'trellis:services': services })), ref).toBe(
        `invalid stack config:\ntrellis:services.orders-api.image.registry: ${reason}`,
      );
    }
  });

  it('rejects a registry image that is not pinned by digest or not in the team registry', async () => {
    const unpinned = withImages({ 'orders-api': { registry: `${registry}/orders-api:1.0` } });
    expect(await failure(bad('dev', { 'trellis:services': unpinned }))).toBe(
      'invalid stack config:\ntrellis:services.orders-api.image.registry: must be pinned by digest (<repository>@sha256:<64 hex>)',
    );
    const hex = createHash('sha256').update('orders-api').digest('hex');
    const elsewhere = withImages({
      'orders-api': { registry: `quay.io/someone/orders-api@sha256:${hex}` },
    });
    expect(await failure(bad('dev', { 'trellis:services': elsewhere }))).toBe(
      'invalid stack config:\ntrellis:services.orders-api.image.registry: quay.io/someone/orders-api is not in the team registry trellis:images.registry (ghcr.io/trellis-platform)',
    );
  });

  it('deploys a declared registry image by its digest, and a built one from the team registry', async () => {
    const hex = createHash('sha256').update('orders-api 1.4.2').digest('hex');
    const ref = `${registry}/orders-api@sha256:${hex}`;
    const r = await runProject('prod-eu', {
      config: { 'trellis:services': withImages({ 'orders-api': { registry: ref } }) },
    });
    const images = Object.fromEntries(
      r.mocks
        .ofType('kubernetes:apps/v1:Deployment')
        .map((d) => [
          (d.inputs.metadata as { name: string }).name,
          (
            (spec(d).template as { spec: { containers: { image: string }[] } }).spec
              .containers[0] as { image: string }
          ).image,
        ]),
    );
    expect(images).toEqual({
      'orders-api': ref,
      ledger: `${registry}/ledger@${build.digests.ledger}`,
      'orders-writer': `${registry}/orders-writer@${build.digests['orders-writer']}`,
    });
  });

  it('takes a build digest only when the OCI archive beside the record hashes to it', async () => {
    const out = testBuildOutput(['orders-api', 'ledger', 'orders-writer']);
    const images = JSON.stringify({ registry, buildDir: out.dir });
    rmSync(join(out.dir, 'ledger.json'));
    const record = JSON.parse(readFileSync(join(out.dir, 'orders-api.json'), 'utf8')) as {
      digest: string;
    };
    const forged = `sha256:${createHash('sha256').update('forged').digest('hex')}`;
    writeFileSync(join(out.dir, 'orders-api.json'), JSON.stringify({ ...record, digest: forged }));
    expect(await failure(bad('dev', { 'trellis:images': images }))).toBe(
      [
        'invalid stack config:',
        `trellis:services.orders-api.image.build: ${join(out.dir, 'orders-api.json')} says ${forged}, but the manifest in orders-api.oci.tar is ${record.digest}; run ./trellis images`,
        `trellis:services.ledger.image.build: no build output ${join(out.dir, 'ledger.json')}; run ./trellis images`,
      ].join('\n'),
    );
  });

  it('requires the team registry, and refuses a placeholder for it', async () => {
    expect(
      await failure(
        bad('dev', { 'trellis:images': JSON.stringify({ registry: 'registry.example/<team>' }) }),
      ),
    ).toBe(
      'invalid stack config:\ntrellis:images.registry: must be a registry host and path, e.g. ghcr.io/trellis-platform\ntrellis:images.registry: is a placeholder ("<"), not an image reference',
    );
    expect(
      await failure(bad('dev', { 'trellis:images': JSON.stringify({ registry: 'ghcr.io/todo' }) })),
    ).toBe(
      'invalid stack config:\ntrellis:images.registry: is a placeholder ("todo"), not an image reference',
    );
  });

  it('rejects an unknown rootCa source, naming the key', async () => {
    await expect(
      bad('prod-us', { 'trellis:rootCa': JSON.stringify({ source: 'vault' }) }),
    ).rejects.toThrow(/trellis:rootCa\.source/);
  });

  it('rejects an unknown operators mode, naming the key', async () => {
    await expect(bad('dev', { 'trellis:operators': 'helmfile' })).rejects.toThrow(
      /trellis:operators/,
    );
  });

  it('with operators preinstalled, installs no chart or manifest but creates the same platform objects', async () => {
    const r = await runProject('dev', { config: { 'trellis:operators': 'preinstalled' } });
    const full = runs.get('dev') as StackRun;
    const installers = [
      'kubernetes:helm.sh/v3:Release',
      'kubernetes:kustomize/v2:Directory',
      'kubernetes:yaml/v2:ConfigFile',
    ];
    // The committed stack installs them; the preinstalled one none.
    expect(installers.reduce((n, t) => n + full.mocks.ofType(t).length, 0)).toBeGreaterThan(0);
    for (const t of installers) expect(r.mocks.ofType(t), t).toEqual([]);
    const names = (x: StackRun) =>
      x.mocks.resources
        .filter((o) => !installers.includes(o.type))
        .map((o) => `${o.type} ${o.name}`)
        .sort();
    expect(names(r)).toEqual(names(full));
  });

  it('rejects a bad dataplane, naming the key', async () => {
    await expect(bad('dev', { 'trellis:dataplane': 'magic' })).rejects.toThrow(/trellis:dataplane/);
  });

  it('requires the Keycloak database password as a secret', async () => {
    await expect(bad('dev', {}, false)).rejects.toThrow(/trellis:keycloakDbPassword: required/);
  });

  it('rejects a region the model does not have, naming the key', async () => {
    await expect(bad('dev', { 'trellis:region': 'mars' })).rejects.toThrow(
      /trellis:region: "mars" is not one of the model's regions \(local, us, eu\)/,
    );
  });

  it('rejects a missing service image for a model workload, naming the key', async () => {
    const services = JSON.stringify({ 'orders-api': { image: { build: 'orders-api' } } });
    await expect(bad('dev', { 'trellis:services': services })).rejects.toThrow(
      /trellis:services\.ledger: missing/,
    );
  });

  it('requires an environment host for every route host of the model', async () => {
    await expect(
      bad('dev', { 'trellis:hosts': JSON.stringify({ 'api.example.com': 'api.example.com' }) }),
    ).rejects.toThrow(/trellis:hosts\.localhost: missing/);
    await expect(
      bad('dev', { 'trellis:hosts': JSON.stringify({ localhost: 'https://api.example.com' }) }),
    ).rejects.toThrow(/trellis:hosts\.localhost: must be a DNS name without scheme/);
  });

  it('rejects an edge TLS issuer kind cert-manager does not have, naming the key', async () => {
    await expect(
      bad('dev', {
        'trellis:edgeTls': JSON.stringify({ issuerKind: 'Vault', issuerName: 'x' }),
      }),
    ).rejects.toThrow(/trellis:edgeTls\.issuerKind/);
  });
});
