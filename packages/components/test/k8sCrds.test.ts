/**
 * Every custom kind the Kubernetes components create has a CRD in the toolchain's CRD set, and the set's
 * versions follow the pins of versions.ts. Component-free: it reads the components' sources and runs the
 * compilers, and needs neither Pulumi nor an installed set.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseModel } from '@trellis/policy';
import type { ValidModel } from '@trellis/policy';
import {
  CERT_MANAGER,
  GATEWAY_API,
  ISTIO_API,
  PLATFORM_KINDS,
  STAND_INS,
  STRIMZI,
  missingKinds,
  splitApiVersion,
} from '@trellis/local/toolchain';
import type { CrdKind, GroupVersionKind } from '@trellis/local/toolchain';
import { describe, expect, it } from 'vitest';
import { compileForCluster } from '../src/k8s/compile.ts';
import { charts, gatewayApiCrds, keycloakOperator } from '../src/k8s/versions.ts';

const k8sDir = resolve(import.meta.dirname, '../src/k8s');

/**
 * Kinds whose CRD the cluster's own monitoring stack brings, not Trellis: PrometheusRule objects are
 * created only with `trellis:sloRules`, for a Prometheus Operator the cluster already runs.
 */
const fromTheClustersOperators: GroupVersionKind[] = [
  { group: 'monitoring.coreos.com', version: 'v1', kind: 'PrometheusRule' },
];

/** API groups the API server serves itself: no CRD needed. */
const builtInGroups = new Set(['', 'apps', 'batch', 'policy', 'rbac.authorization.k8s.io']);

/** Each `apiVersion: '<g>/<v>',` directly followed by `kind: '<K>'` in `source`. */
function literalKinds(source: string): GroupVersionKind[] {
  const pairs = source.matchAll(/apiVersion:\s*'([^']+)',\s*\n\s*kind:\s*'([^']+)'/g);
  return [...pairs].map((m) => ({ ...splitApiVersion(m[1] ?? ''), kind: m[2] ?? '' }));
}

const sources = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(k8sDir, f), 'utf8') }));

const reference = (): ValidModel => {
  const r = parseModel(readFileSync(resolve(import.meta.dirname, '../../../trellis.yaml'), 'utf8'));
  if (!r.ok) throw new Error('the reference model is invalid');
  return r.model;
};

/** The objects the compilers hand to NginxGateway and MeshPolicy, for an in-cluster Keycloak. */
function compiledKinds(): GroupVersionKind[] {
  const issuer = 'https://auth.us.example.com/realms/trellis';
  const a = compileForCluster(reference(), {
    region: 'us',
    issuers: { keycloak: { issuer, jwksUri: `${issuer}/protocol/openid-connect/certs` } },
    hosts: { localhost: 'api.us.example.com' },
    inClusterKeycloak: true,
    sloRules: {},
  });
  return [...a.mesh, a.telemetry.telemetry, a.gateway, ...a.routes, ...(a.sloRules ?? [])].map(
    (o) => ({
      ...splitApiVersion(o.apiVersion),
      kind: o.kind,
    }),
  );
}

function unique(kinds: GroupVersionKind[]): GroupVersionKind[] {
  const seen = new Map(kinds.map((k) => [`${k.group}/${k.version}/${k.kind}`, k]));
  return [...seen.values()].sort((a, b) =>
    `${a.group}/${a.kind}/${a.version}`.localeCompare(`${b.group}/${b.kind}/${b.version}`),
  );
}

/** The CRD set's kinds as the installer will list them, by the source each is expected from. */
const setKinds: CrdKind[] = Object.entries(PLATFORM_KINDS).flatMap(([id, kinds]) =>
  kinds.map((k) => ({ ...k, source: id, schemaValidated: id !== 'stand-ins', storage: false })),
);

describe('the CRD set covers the Kubernetes components', () => {
  const used = unique([...sources.flatMap((s) => literalKinds(s.text)), ...compiledKinds()]).filter(
    (k) => !builtInGroups.has(k.group),
  );

  it('finds the custom kinds the components create', () => {
    // A floor, so a scanner that stopped matching cannot pass vacuously.
    expect(used.map((k) => `${k.group}/${k.version} ${k.kind}`)).toEqual(
      expect.arrayContaining([
        'cert-manager.io/v1 Certificate',
        'gateway.networking.k8s.io/v1 Gateway',
        'gateway.networking.k8s.io/v1 HTTPRoute',
        'gateway.networking.k8s.io/v1beta1 ReferenceGrant',
        'k8s.keycloak.org/v2alpha1 Keycloak',
        'k8ssandra.io/v1alpha1 K8ssandraCluster',
        'kafka.strimzi.io/v1 KafkaUser',
        'monitoring.coreos.com/v1 PrometheusRule',
        'security.istio.io/v1 AuthorizationPolicy',
        'security.istio.io/v1 PeerAuthentication',
        'security.istio.io/v1 RequestAuthentication',
        'telemetry.istio.io/v1 Telemetry',
      ]),
    );
  });

  it('has a CRD for every one of them, and says which are stand-ins', () => {
    expect(missingKinds(setKinds, used)).toEqual(fromTheClustersOperators);
    const rows = used.map((k) => {
      const row = setKinds.find(
        (s) => s.group === k.group && s.version === k.version && s.kind === k.kind,
      );
      return `${k.kind.padEnd(22)} ${`${k.group}/${k.version}`.padEnd(34)} ${
        row
          ? row.schemaValidated
            ? 'schema-validated'
            : 'stand-in (no schema)'
          : "the cluster's operator (opt-in)"
      } [${row?.source ?? 'not in the set'}]`;
    });
    process.stdout.write(`kinds the k8s components create:\n${rows.join('\n')}\n`);
    expect(
      used.filter(
        (k) =>
          !fromTheClustersOperators.some((o) => o.kind === k.kind) &&
          !setKinds.find((s) => s.kind === k.kind && s.group === k.group)?.schemaValidated,
      ),
    ).toEqual([
      { group: 'k8s.keycloak.org', version: 'v2alpha1', kind: 'Keycloak' },
      { group: 'k8s.keycloak.org', version: 'v2alpha1', kind: 'KeycloakRealmImport' },
      { group: 'k8ssandra.io', version: 'v1alpha1', kind: 'K8ssandraCluster' },
    ]);
  });

  it('would report a kind the set lacks', () => {
    const extra = literalKinds(
      "new k8s.apiextensions.CustomResource('x', {\n  apiVersion: 'example.com/v1',\n  kind: 'Widget',\n});",
    );
    expect(extra).toEqual([{ group: 'example.com', version: 'v1', kind: 'Widget' }]);
    expect(missingKinds(setKinds, extra)).toEqual(extra);
  });

  it('sees every CustomResource: each without a literal kind takes a compiled object', () => {
    // Sites whose apiVersion and kind come from the compilers (covered by compiledKinds above): the Gateway
    // and its HTTPRoutes in gateway.ts, the Istio security policy in meshPolicy.ts, the SLO rules in
    // sloRules.ts, the mesh's Telemetry in telemetry.ts.
    const dynamic = Object.fromEntries(
      sources
        .map((s) => [
          s.file,
          (s.text.match(/apiextensions\.CustomResource\(/g) ?? []).length -
            literalKinds(s.text).length,
        ])
        .filter(([, n]) => (n as number) > 0),
    );
    expect(dynamic).toEqual({
      'gateway.ts': 2,
      'meshPolicy.ts': 1,
      'sloRules.ts': 1,
      'telemetry.ts': 1,
    });
  });
});

describe('the CRD set follows versions.ts', () => {
  it('takes cert-manager and Strimzi at the chart versions', () => {
    expect(CERT_MANAGER.version).toBe(charts.certManager.version);
    expect(STRIMZI.api.version).toBe(charts.strimzi.version);
  });

  it('takes Istio CRDs of the same minor as the charts', () => {
    const minor = (v: string): string => v.replace(/^v/, '').split('.').slice(0, 2).join('.');
    expect(minor(ISTIO_API.version)).toBe(minor(charts.istioBase.version));
  });

  it('takes the Gateway API release that the pinned NGINX Gateway Fabric supports', () => {
    // docs.nginx.com/nginx-gateway-fabric/overview/technical-specifications; add a row when NGF moves.
    const supported: Record<string, string> = { '2.3.0': 'v1.4.1', '2.4.0': 'v1.4.1' };
    expect(supported[charts.nginxGatewayFabric.version]).toBe(GATEWAY_API.version);
    expect(gatewayApiCrds).toContain(`ref=v${charts.nginxGatewayFabric.version}`);
  });

  it('names the pinned operator releases its stand-ins replace', () => {
    const upstream = STAND_INS.map((s) => s.upstream);
    expect(upstream).toContain(`k8ssandra-operator ${charts.k8ssandra.version}`);
    expect(upstream).toContain(`keycloak/keycloak-k8s-resources ${keycloakOperator.version}`);
  });
});
