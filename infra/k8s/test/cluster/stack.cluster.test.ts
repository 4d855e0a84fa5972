// infra/k8s applied for real: a loopback control plane (etcd, kube-apiserver 1.37, kwok), the CRDs of the
// cached set, and `pulumi up` of a test stack with the Pulumi Kubernetes provider 4.25.0 built into the
// cache. The assertions read the live objects back from the API server: what was admitted, not what the
// program meant to send. Operators are preinstalled (trellis:operators), so no chart, operator or webhook
// runs, and nothing leaves loopback.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityHeaders } from '@trellis/contracts';
import { compileForCluster } from '@trellis/components/k8s/compile';
import { strimziKafkaLog4j2 } from '@trellis/components/k8s/kafka';
import { dataTls } from '@trellis/components/k8s/dataTls';
import { clusterIssuers } from '@trellis/components/k8s/issuers';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { serviceEnvSchemas } from '@trellis/components/services';
import { testBuildOutput } from '@trellis/components/testing/images';
import type { TestBuildOutput } from '@trellis/components/testing/images';
import { ledgerEnvSchema } from '@trellis/ledger/env';
import { startKubeControlPlane } from '@trellis/local/harness';
import type { KubeControlPlane } from '@trellis/local/harness';
import { crdSet, formatManifest } from '@trellis/local/toolchain';
import type { CrdSet } from '@trellis/local/toolchain';
import { ordersApiEnvSchema } from '@trellis/orders-api/env';
import { allowed, evaluateIstio, namespaceOf, spiffeId } from '@trellis/policy';
import type { AccessRequest, IstioResource, IstioTracing, Peer, Token } from '@trellis/policy';
import { envProblems } from '@trellis/service-platform/env-schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ClusterArtefacts } from '@trellis/components/k8s/compile';
import { apiPrefix, applyCrds, projectDir, pulumiWorkspace } from './support.ts';
import type { PulumiResult, PulumiWorkspace } from './support.ts';

const STACK = 'cluster-test';
/** The repository's policy pack (packages/policy-pack). */
const policyPack = join(projectDir, '../../packages/policy-pack');
const committed = (
  parse(readFileSync(join(import.meta.dirname, `Pulumi.${STACK}.yaml`), 'utf8')) as {
    config: Record<string, unknown>;
  }
).config;

let cp: KubeControlPlane;
let crds: CrdSet;
let build: TestBuildOutput;
let dir = '';
let ws: PulumiWorkspace;
let firstUp: PulumiResult;
let compiled: ClusterArtefacts;
const timings: Record<string, number> = {};

/** Wait until `check` is true (polling); fails naming `what`. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Every object of a kind across namespaces. */
async function list(apiVersion: string, plural: string): Promise<Obj[]> {
  const r = await cp.client.get<{ items: Obj[] }>(`${apiPrefix(apiVersion)}/${plural}`);
  return r.items;
}

const key = (o: { metadata: { name: string; namespace?: string } }): string =>
  `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

beforeAll(async () => {
  const t0 = Date.now();
  cp = await startKubeControlPlane({ readyTimeoutMs: 180_000 });
  timings.controlPlane = cp.startupMs;
  crds = await crdSet();
  const t1 = Date.now();
  const applied = await applyCrds(cp.client, crds, (what, check) => waitFor(what, check));
  timings.crds = Date.now() - t1;
  // Which kinds the API server validates against their real schema, and which are stand-ins.
  process.stderr.write(
    `[cluster] ${applied} CRDs applied (${crds.versionSet}):\n${formatManifest(crds.manifest)}\n`,
  );
  build = testBuildOutput(['orders-api', 'ledger', 'orders-writer']);
  dir = mkdtempSync(join(tmpdir(), 'trellis-cluster-'));
  const images = committed['trellis:images'] as Record<string, unknown>;
  ws = await pulumiWorkspace({
    dir,
    stack: STACK,
    kubeconfig: cp.kubeconfig,
    passphrase: 'cluster-test-only',
    config: {
      ...committed,
      'kubernetes:kubeconfig': cp.kubeconfig,
      'trellis:images': { ...images, buildDir: build.dir },
    },
  });
  await ws.ok(['config', 'set', '--secret', 'trellis:keycloakDbPassword', 'cluster-test-db-pw']);
  const model = loadModelFile(referenceModelPath, 'model');
  const idp = committed['trellis:idp'] as { mode: 'keycloak'; hostname: string };
  compiled = compileForCluster(model, {
    region: committed['trellis:region'] as string,
    issuers: clusterIssuers(model, idp),
    hosts: committed['trellis:hosts'] as Record<string, string>,
    inClusterKeycloak: true,
    tracing: committed['trellis:tracing'] as IstioTracing,
  });
  firstUp = await ws.ok(['up', '--yes', '--skip-preview']);
  process.stderr.write(
    `[cluster] first up: ${/\+ (\d+) created/.exec(firstUp.stdout)?.[1]} created\n`,
  );
  timings.firstUp = firstUp.ms;
  timings.beforeAll = Date.now() - t0;
}, 60 * 60_000);

afterAll(async () => {
  process.stderr.write(`[cluster] timings (ms): ${JSON.stringify(timings)}\n`);
  // Best effort after a failure; the destroy test asserts the clean path.
  if (ws) await ws.run(['destroy', '--yes', '--skip-preview']);
  await cp?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (build) rmSync(build.dir, { recursive: true, force: true });
}, 20 * 60_000);

describe(`infra/k8s on a real API server (stack ${STACK})`, () => {
  it('applies every CRD of the set; the platform kinds without an upstream schema are the stand-ins', () => {
    const standIns = crds.manifest.filter((k) => !k.schemaValidated).map((k) => k.kind);
    expect([...new Set(standIns)].sort()).toEqual([
      'K8ssandraCluster',
      'Keycloak',
      'KeycloakRealmImport',
    ]);
    const validated = new Set(crds.manifest.filter((k) => k.schemaValidated).map((k) => k.kind));
    for (const k of [
      'PeerAuthentication',
      'AuthorizationPolicy',
      'RequestAuthentication',
      'Telemetry',
      'HTTPRoute',
      'Gateway',
      'Certificate',
      'ClusterIssuer',
      'Kafka',
      'KafkaUser',
      'KafkaTopic',
      'KafkaNodePool',
    ])
      expect(validated, k).toContain(k);
    expect(firstUp.stdout).toMatch(/Resources:\s*\n\s*\+ \d+ created/);
  });

  it('holds mesh-wide STRICT mTLS in the root namespace, and STRICT everywhere else', async () => {
    const pas = await list('security.istio.io/v1', 'peerauthentications');
    const meshWide = pas.filter((p) => p.metadata.namespace === 'istio-system');
    expect(meshWide).toHaveLength(1);
    expect(meshWide[0]?.spec).toEqual({ mtls: { mode: 'STRICT' } });
    expect(pas.length).toBeGreaterThan(1);
    for (const p of pas) expect((p.spec?.mtls as { mode: string }).mode, key(p)).toBe('STRICT');
  });

  it('admits exactly the compiled mesh policy: allow-nothing per namespace, an ALLOW per called workload', async () => {
    const live = await liveMesh();
    const byKey = (xs: readonly (IstioResource | Obj)[]) =>
      Object.fromEntries(xs.map((x) => [`${x.kind} ${key(x)}`, x.spec]));
    expect(byKey(live)).toEqual(byKey(compiled.mesh));
    const aps = live.filter((o) => o.kind === 'AuthorizationPolicy');
    const apps = Object.entries(compiled.model.workloads).filter(([, w]) => !w.edge);
    for (const [w] of apps) {
      const ns = namespaceOf(compiled.model, w);
      // Deny by default in the workload's namespace, whoever its callers are.
      expect(
        aps.some((a) => key(a) === `${ns}/allow-nothing`),
        w,
      ).toBe(true);
    }
    // orders-api is called (from the gateway): its own ALLOW policy selects it.
    const selected = aps
      .map((a) => (a.spec as { selector?: { matchLabels?: Record<string, string> } }).selector)
      .map((s) => s?.matchLabels?.app)
      .filter((a): a is string => a !== undefined);
    expect(selected).toContain('orders-api');
    // Nobody calls ledger or the batch writer: allow-nothing alone applies to them.
    expect(selected).not.toContain('ledger');
    expect(selected).not.toContain('orders-writer');
  });

  it('checks JWTs with the issuer, audiences and the payload header the services read', async () => {
    const ras = await list('security.istio.io/v1', 'requestauthentications');
    expect(ras.map(key)).toEqual(['trellis/orders-api']);
    const [rule] = (ras[0]?.spec as { jwtRules: Record<string, unknown>[] }).jwtRules;
    expect(rule).toMatchObject({
      issuer: 'https://auth.cluster-test.trellis.test/realms/trellis',
      audiences: ['trellis-api'],
      jwksUri:
        'https://auth.cluster-test.trellis.test/realms/trellis/protocol/openid-connect/certs',
      outputPayloadToHeader: identityHeaders.jwtPayload,
      forwardOriginalToken: true,
    });
  });

  it('decides every enumerated request like the oracle, on the admitted Istio objects', async () => {
    const live = (await liveMesh()) as IstioResource[];
    const { checked, allowedCount } = compareWithOracle(live);
    process.stderr.write(
      `[cluster] Istio on the live objects ≡ oracle: ${checked} requests, ${allowedCount} allowed\n`,
    );
    expect(checked).toBeGreaterThan(200);
    // Both outcomes occur, so the comparison is not vacuous.
    expect(allowedCount).toBeGreaterThan(0);
    expect(allowedCount).toBeLessThan(checked);
  });

  it("admits the audit trail and tracing as compiled: the mesh Telemetry (Istio schema), Kafka's authorizer logging (Strimzi schema)", async () => {
    // Read back, so a field the schema does not know (pruned on admission) would show as missing.
    const telemetries = await list('telemetry.istio.io/v1', 'telemetries');
    const t = compiled.telemetry.telemetry;
    expect(telemetries.map(key)).toEqual([key(t)]);
    expect(telemetries[0]?.spec).toEqual(t.spec);
    expect(t.spec.tracing?.[0]?.randomSamplingPercentage).toBe(10);
    const [kafka] = await list('kafka.strimzi.io/v1', 'kafkas');
    const logging = (kafka?.spec?.kafka as { logging?: unknown }).logging;
    expect(logging).toEqual({
      type: 'external',
      valueFrom: { configMapKeyRef: { name: 'trellis-kafka-logging', key: 'log4j2.properties' } },
    });
    const cms = await list('v1', 'configmaps');
    const cm = cms.find((c) => key(c) === 'trellis-kafka/trellis-kafka-logging') as
      (Obj & { data?: Record<string, string> }) | undefined;
    expect(cm?.data?.['log4j2.properties']).toBe(strimziKafkaLog4j2());
    // Stand-ins (no schema): stored as sent, checked by the mock tests only.
    const [k8ssandra] = await list('k8ssandra.io/v1alpha1', 'k8ssandraclusters');
    const yaml = (
      k8ssandra?.spec?.cassandra as { config: { cassandraYaml: Record<string, unknown> } }
    ).config.cassandraYaml;
    expect(yaml.audit_logging_options).toMatchObject({ enabled: true });
  });

  it('creates the Gateway and the compiled HTTPRoutes (no controller runs, so none is Accepted)', async () => {
    const routes = await list('gateway.networking.k8s.io/v1', 'httproutes');
    const expected = compiled.routes.map(key);
    // The in-cluster Keycloak's issuer route (withIssuerRoute) comes on top of the model's routes.
    for (const k of expected) expect(routes.map(key)).toContain(k);
    expect(routes.length).toBe(expected.length + 1);
    const gateways = await list('gateway.networking.k8s.io/v1', 'gateways');
    expect(gateways.map(key)).toEqual([key(compiled.gateway)]);
    for (const r of routes) {
      const parents = (r.spec as { parentRefs: { name: string }[] }).parentRefs;
      expect(parents.map((p) => p.name)).toEqual([compiled.gateway.metadata.name]);
      // Accepted is written by NGINX Gateway Fabric, which is not installed here: no status yet.
      expect((r.status as { parents?: unknown[] } | undefined)?.parents ?? []).toEqual([]);
    }
  });

  it('runs each service as the ServiceAccount its SPIFFE ID names', async () => {
    const sas = await list('v1', 'serviceaccounts');
    const deployments = await list('apps/v1', 'deployments');
    for (const w of ['orders-api', 'ledger', 'orders-writer']) {
      const ns = namespaceOf(compiled.model, w);
      const sa = sas.find((s) => key(s) === `${ns}/${w}`);
      expect(sa, w).toBeDefined();
      expect(spiffeId(compiled.model, w)).toBe(
        `spiffe://${compiled.model.trustDomain}/ns/${ns}/sa/${sa?.metadata.name}`,
      );
      const d = deployments.find((x) => key(x) === `${ns}/${w}`);
      const pod = podSpec(d);
      expect(pod.serviceAccountName).toBe(w);
      expect((d?.status as { readyReplicas?: number }).readyReplicas).toBe(1);
    }
  });

  it('gives each service an environment its exported schema accepts, and mounts its data-client certificate', async () => {
    const deployments = await list('apps/v1', 'deployments');
    const certs = await list('cert-manager.io/v1', 'certificates');
    const schemas = {
      'orders-api': ordersApiEnvSchema,
      ledger: ledgerEnvSchema,
      'orders-writer': serviceEnvSchemas['orders-writer'],
    };
    for (const [w, schema] of Object.entries(schemas)) {
      const ns = namespaceOf(compiled.model, w);
      const pod = podSpec(deployments.find((x) => key(x) === `${ns}/${w}`));
      const [c] = pod.containers;
      const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? '']));
      expect(envProblems(schema, env), w).toEqual([]);
      expect(c?.image).toBe(`registry.cluster-test.trellis.test/trellis/${w}@${build.digests[w]}`);
      // The certificate cert-manager issues into <sa>-client-tls, projected read-only where the env says.
      expect(c?.volumeMounts).toContainEqual({
        name: 'data-tls',
        mountPath: dataTls.mountPath,
        readOnly: true,
      });
      const volume = pod.volumes?.find((v) => v.name === 'data-tls');
      const secret = volume?.projected?.sources.find((s) => s.secret)?.secret?.name;
      expect(secret).toBe(`${w}-client-tls`);
      const cert = certs.find((x) => key(x) === `${ns}/${w}-client`);
      expect(cert?.spec).toMatchObject({
        secretName: secret,
        uris: [spiffeId(compiled.model, w)],
        usages: ['client auth', 'digital signature'],
      });
      for (const v of Object.values(env)) expect(v).not.toMatch(/<|TODO|placeholder/i);
    }
  });

  it('passes the policy pack through the engine (--policy-pack), and nothing called out of loopback', async () => {
    const r = await ws.run(['preview', '--policy-pack', policyPack]);
    timings.policyPreview = r.ms;
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Policies:[\s\S]*trellis@v/);
    expect(r.stdout).not.toMatch(/mandatory/);
    // No operator runs, so no webhook exists, and the API server never tried to reach the cluster.
    for (const k of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'])
      expect(await list('admissionregistration.k8s.io/v1', k), k).toEqual([]);
    expect(cp.egressAttempts).toEqual([]);
  });

  it('refuses a deliberately bad change (a PERMISSIVE PeerAuthentication): nothing is created', async () => {
    const bad = await pulumiWorkspace({
      dir: join(dir, 'bad'),
      stack: 'relax-mtls',
      kubeconfig: cp.kubeconfig,
      passphrase: 'cluster-test-only',
      config: { 'kubernetes:kubeconfig': cp.kubeconfig },
      program: {
        name: 'trellis-relax-mtls',
        main: 'index.mjs',
        files: {
          'package.json': JSON.stringify({ name: 'trellis-relax-mtls', type: 'module' }),
          // What someone debugging a plaintext client might try: PERMISSIVE for the app namespace.
          'index.mjs': [
            "import * as k8s from '@pulumi/kubernetes';",
            "new k8s.apiextensions.CustomResource('relax', {",
            "  apiVersion: 'security.istio.io/v1',",
            "  kind: 'PeerAuthentication',",
            "  metadata: { name: 'relax', namespace: 'trellis' },",
            "  spec: { mtls: { mode: 'PERMISSIVE' } },",
            '});',
            '',
          ].join('\n'),
        },
      },
    });
    const r = await bad.run(['up', '--yes', '--skip-preview', '--policy-pack', policyPack]);
    expect(r.code).not.toBe(0);
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out).toMatch(/peer-authentication-strict/);
    expect(out).toMatch(/spec\.mtls\.mode is PERMISSIVE, must be STRICT/);
    const pas = await list('security.istio.io/v1', 'peerauthentications');
    expect(pas.map(key)).not.toContain('trellis/relax');
    for (const p of pas) expect((p.spec?.mtls as { mode: string }).mode, key(p)).toBe('STRICT');
  });

  it('a second up changes nothing (--expect-no-changes)', async () => {
    const again = await ws.run(['up', '--yes', '--skip-preview', '--expect-no-changes']);
    timings.secondUp = again.ms;
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(again.stdout).toMatch(/\d+ unchanged/);
    expect(again.stdout).not.toMatch(/[+~-] \d+ (created|updated|deleted|replaced)/);
  });

  it('destroy removes every object it made', async () => {
    const r = await ws.ok(['destroy', '--yes', '--skip-preview']);
    timings.destroy = r.ms;
    expect(await list('security.istio.io/v1', 'peerauthentications')).toEqual([]);
    expect(await list('security.istio.io/v1', 'authorizationpolicies')).toEqual([]);
    expect(await list('telemetry.istio.io/v1', 'telemetries')).toEqual([]);
    expect(await list('gateway.networking.k8s.io/v1', 'httproutes')).toEqual([]);
    expect(await list('cert-manager.io/v1', 'certificates')).toEqual([]);
    const namespaces = (await list('v1', 'namespaces')).map((n) => n.metadata.name);
    for (const ns of ['trellis', 'trellis-gateway', 'istio-system', 'cert-manager'])
      expect(namespaces, ns).not.toContain(ns);
    const state = await ws.ok(['stack', 'export']);
    const resources = (JSON.parse(state.stdout) as { deployment: { resources?: unknown[] } })
      .deployment.resources;
    expect(resources ?? []).toEqual([]);
  });
});

/** The live PeerAuthentications, AuthorizationPolicies and RequestAuthentications, as the compiler's type. */
async function liveMesh(): Promise<IstioResource[]> {
  const kinds = [
    ['peerauthentications', 'PeerAuthentication'],
    ['authorizationpolicies', 'AuthorizationPolicy'],
    ['requestauthentications', 'RequestAuthentication'],
  ] as const;
  const out: IstioResource[] = [];
  for (const [plural, kind] of kinds) {
    for (const o of await list('security.istio.io/v1', plural)) {
      // Only what the evaluator reads; server-set metadata (uid, managedFields) is left out.
      out.push({
        apiVersion: o.apiVersion,
        kind,
        metadata: {
          name: o.metadata.name,
          namespace: o.metadata.namespace ?? '',
          ...(o.metadata.labels ? { labels: o.metadata.labels } : {}),
        },
        spec: o.spec ?? {},
      } as IstioResource);
    }
  }
  return out;
}

interface PodSpec {
  serviceAccountName?: string;
  containers: {
    image: string;
    env?: { name: string; value?: string }[];
    volumeMounts?: unknown[];
  }[];
  volumes?: {
    name: string;
    projected?: { sources: { secret?: { name: string } }[] };
  }[];
}

function podSpec(d: Obj | undefined): PodSpec {
  return (d?.spec as { template: { spec: PodSpec } }).template.spec;
}

/**
 * Every request of a small grid, decided by the oracle on the bound model and by the Istio evaluator
 * on the live objects: each non-edge workload and port; no certificate, an untrusted one, a stranger's,
 * and each workload's; the routes' methods and paths and a few others; no token, a token with each
 * route's scopes, one without, one for another audience, an expired one and one of another issuer.
 */
function compareWithOracle(live: IstioResource[]): { checked: number; allowedCount: number } {
  const model = compiled.model;
  const now = Math.floor(Date.now() / 1000);
  const issuer = Object.values(model.identityProviders)[0]?.issuer as string;
  const token = (claims: Record<string, string | number>): Token => ({
    alg: 'RS256',
    signatureValid: true,
    claims: { iss: issuer, aud: 'trellis-api', sub: 'user-1', exp: now + 300, ...claims },
  });
  const tokens: (Token | undefined)[] = [
    undefined,
    token({ scope: 'orders:read orders:write' }),
    token({ scope: 'orders:read' }),
    token({ scope: 'profile' }),
    token({ scope: 'orders:read orders:write', aud: 'another-api' }),
    token({ scope: 'orders:read orders:write', exp: now - 60 }),
    token({ scope: 'orders:read orders:write', iss: 'https://localhost:8180/realms/trellis' }),
  ];
  const peers: Peer[] = [
    { kind: 'none' },
    { kind: 'cert', spiffeId: spiffeId(model, 'ingress'), trusted: false },
    { kind: 'cert', spiffeId: `spiffe://${model.trustDomain}/ns/elsewhere/sa/x`, trusted: true },
    ...Object.keys(model.workloads).map((w): Peer => ({
      kind: 'cert',
      spiffeId: spiffeId(model, w),
      trusted: true,
    })),
  ];
  const routes = Object.values(model.routes);
  const calls = [
    ...routes.map((r) => ({ method: r.method, path: r.path.replace('{id}', '42') })),
    { method: 'DELETE', path: '/orders/42' },
    { method: 'GET', path: '/' },
    { method: 'GET', path: '/orders/42/extra' },
  ];
  let checked = 0;
  let allowedCount = 0;
  for (const [to, w] of Object.entries(model.workloads)) {
    if (w.edge) continue;
    for (const port of w.ports) {
      for (const peer of peers) {
        for (const call of calls) {
          for (const t of tokens) {
            const http = { method: call.method, path: call.path, now, ...(t ? { token: t } : {}) };
            const oracleReq: AccessRequest = { kind: 'http', to, port: port.name, peer, ...http };
            const oracle = allowed(model, oracleReq);
            const got = evaluateIstio(live, {
              namespace: namespaceOf(model, to),
              labels: { app: to },
              port: port.port,
              peer,
              http,
            });
            if (got.allowed !== oracle.allowed)
              throw new Error(
                `Istio on the live objects says ${got.allowed ? 'allow' : 'deny'} (${got.reason}), the oracle ${oracle.allowed ? 'allow' : 'deny'} (${oracle.reason}): ${JSON.stringify(oracleReq)}`,
              );
            checked++;
            if (oracle.allowed) allowedCount++;
          }
        }
      }
    }
  }
  return { checked, allowedCount };
}
