/**
 * The pins of the platform's CRD set (crds.ts): upstream modules, charts and versions, Strimzi's
 * generator runs, the stand-ins, and the kinds the platform creates. Data only: crds.ts installs them,
 * and the hash of all of it names the install.
 */
import type { GroupVersionKind, StandInSpec } from './crd-documents.ts';
import { coordinatesLabel } from './maven.ts';
/** A Go module at one version. */
export interface GoModulePin {
  module: string;
  version: string;
}

/**
 * Gateway API v1.4.1, standard channel: the version NGINX Gateway Fabric 2.4.0 (versions.ts) supports
 * (docs.nginx.com/nginx-gateway-fabric/overview/technical-specifications). Standard serves Gateway,
 * HTTPRoute and GatewayClass as v1 and ReferenceGrant as v1beta1, the versions gateway.ts creates.
 */
export const GATEWAY_API = {
  module: 'sigs.k8s.io/gateway-api',
  version: 'v1.4.1',
  dir: 'config/crd/standard',
} as const;

/**
 * Istio's CRDs as istio.io/api generates them. v1.30.8: the proxy refuses v1.30.5 (the chart pin in
 * versions.ts); a patch release of the same minor serves the same API versions.
 */
export const ISTIO_API = {
  module: 'istio.io/api',
  version: 'v1.30.8',
  file: 'kubernetes/customresourcedefinitions.gen.yaml',
} as const;

/**
 * Istio's Helm charts from istio.io/istio `manifests/charts`. Istio tags releases without a `v`, so the Go
 * proxy serves istio.io/istio only as pseudo-versions, and here only this one (main, 2026-08-27, which
 * requires istio.io/api v1.31.0-rc): the charts are one minor ahead of the 1.30 pin, with Istio's
 * placeholder chart version 1.0.0 and test image tags. Keys are the roles of `charts` in versions.ts.
 */
export const ISTIO_CHARTS = {
  module: 'istio.io/istio',
  version: 'v0.0.0-20260827124520-eed52ebb66ad',
  charts: {
    istioBase: 'manifests/charts/base',
    istiod: 'manifests/charts/istio-control/istio-discovery',
    istioCni: 'manifests/charts/istio-cni',
    ztunnel: 'manifests/charts/ztunnel',
  },
} as const;

/** Where Istio's base chart keeps the CRDs it templates. */
export const ISTIO_BASE_CRD_FILE = 'files/crd-all.gen.yaml';

/** cert-manager v1.19.1 (the chart pin in versions.ts): `deploy/crds` and the chart in `deploy/charts`. */
export const CERT_MANAGER = {
  module: 'github.com/cert-manager/cert-manager',
  version: 'v1.19.1',
  crds: 'deploy/crds',
  chart: 'deploy/charts/cert-manager',
} as const;

/** One run of Strimzi's CRD generator: its flags and the classes it turns into CRD files. */
export interface StrimziRun {
  /** `--api-versions`. */
  apiVersions: string;
  /** `--storage-version`. */
  storageVersion: string;
  /** `--describe-api-versions`, when the POM sets it (the Kafka CRD is too big with descriptions). */
  describeApiVersions?: string;
  /** Model class → output file name (the names of Strimzi's packaging/install/cluster-operator). */
  classes: Readonly<Record<string, string>>;
}

/**
 * Strimzi 0.50.1 (versions.ts). Its `io.strimzi:api` classes carry Strimzi's own `@Crd` annotations and no
 * fabric8 `@Group`/`@Version`, so fabric8's crd-generator cannot read them; Strimzi's generator can. The
 * generator of the same version is not on Maven Central; 1.2.0 is (a shaded jar, Java 21 bytecode), and
 * reads the 0.50.1 annotations. The runs repeat the exec-maven-plugin executions of api-0.50.1.pom
 * (generate-crd-co-install-v1, -v1-no-desc, -v1-eo) for the kinds the platform creates.
 */
export const STRIMZI = {
  api: { groupId: 'io.strimzi', artifactId: 'api', version: '0.50.1' },
  generator: { groupId: 'io.strimzi', artifactId: 'crd-generator', version: '1.2.0' },
  generatorMain: 'io.strimzi.crdgenerator.CrdGenerator',
  /** Class file version 65 in the generator jar. */
  javaMinimum: 21,
  labels: ['app:strimzi', 'strimzi.io/crd-install:true'],
  runs: [
    {
      apiVersions: 'v1beta2,v1',
      storageVersion: 'v1beta2',
      classes: {
        'io.strimzi.api.kafka.model.nodepool.KafkaNodePool': '045-Crd-kafkanodepool.yaml',
      },
    },
    {
      apiVersions: 'v1beta2,v1',
      storageVersion: 'v1beta2',
      describeApiVersions: 'v1alpha1',
      classes: { 'io.strimzi.api.kafka.model.kafka.Kafka': '040-Crd-kafka.yaml' },
    },
    {
      apiVersions: 'v1alpha1,v1beta1,v1beta2,v1',
      storageVersion: 'v1beta2',
      classes: {
        'io.strimzi.api.kafka.model.topic.KafkaTopic': '043-Crd-kafkatopic.yaml',
        'io.strimzi.api.kafka.model.user.KafkaUser': '044-Crd-kafkauser.yaml',
      },
    },
  ] as readonly StrimziRun[],
} as const;

/**
 * Kinds the platform creates whose CRDs no reachable registry serves: K8ssandra (neither
 * github.com/k8ssandra/k8ssandra-operator nor cass-operator on the Go proxy, nothing on Maven Central) and
 * the Keycloak operator (org.keycloak:keycloak-operator is not on Maven Central; the manifests are only in
 * keycloak/keycloak-k8s-resources). NGINX Gateway Fabric's own kinds are created by its chart only, which is
 * an OCI chart on ghcr.io, so the platform needs none of them.
 */
export const STAND_INS: readonly StandInSpec[] = [
  {
    group: 'k8ssandra.io',
    kind: 'K8ssandraCluster',
    versions: ['v1alpha1'],
    upstream: 'k8ssandra-operator 1.32.2',
    reason: 'served by no registry reachable here (not on the Go module proxy)',
  },
  {
    group: 'k8s.keycloak.org',
    kind: 'Keycloak',
    versions: ['v2alpha1'],
    upstream: 'keycloak/keycloak-k8s-resources 26.2.0',
    reason: 'served by no registry reachable here (no keycloak-operator on Maven Central)',
  },
  {
    group: 'k8s.keycloak.org',
    kind: 'KeycloakRealmImport',
    versions: ['v2alpha1'],
    upstream: 'keycloak/keycloak-k8s-resources 26.2.0',
    reason: 'served by no registry reachable here (no keycloak-operator on Maven Central)',
  },
];

/** The chart roles (the keys of `charts` in packages/components/src/k8s/versions.ts) this set provides. */
export type ChartRole = keyof typeof ISTIO_CHARTS.charts | 'certManager';

/**
 * Kinds the platform creates, by source: an install fails when upstream stops serving one, and the
 * components' test checks every kind they use is listed here.
 */
export const PLATFORM_KINDS: Readonly<Record<CrdSourceId, readonly GroupVersionKind[]>> = {
  'gateway-api': [
    { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'GatewayClass' },
    { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'Gateway' },
    { group: 'gateway.networking.k8s.io', version: 'v1', kind: 'HTTPRoute' },
    { group: 'gateway.networking.k8s.io', version: 'v1beta1', kind: 'ReferenceGrant' },
  ],
  istio: [
    { group: 'security.istio.io', version: 'v1', kind: 'PeerAuthentication' },
    { group: 'security.istio.io', version: 'v1', kind: 'RequestAuthentication' },
    { group: 'security.istio.io', version: 'v1', kind: 'AuthorizationPolicy' },
    { group: 'telemetry.istio.io', version: 'v1', kind: 'Telemetry' },
  ],
  'cert-manager': [
    { group: 'cert-manager.io', version: 'v1', kind: 'Certificate' },
    { group: 'cert-manager.io', version: 'v1', kind: 'Issuer' },
    { group: 'cert-manager.io', version: 'v1', kind: 'ClusterIssuer' },
  ],
  strimzi: [
    { group: 'kafka.strimzi.io', version: 'v1', kind: 'Kafka' },
    { group: 'kafka.strimzi.io', version: 'v1', kind: 'KafkaNodePool' },
    { group: 'kafka.strimzi.io', version: 'v1', kind: 'KafkaTopic' },
    { group: 'kafka.strimzi.io', version: 'v1', kind: 'KafkaUser' },
  ],
  'stand-ins': STAND_INS.flatMap((s) =>
    s.versions.map((version) => ({ group: s.group, version, kind: s.kind })),
  ),
};

/** The sources of a CRD set, one directory each under `crds/`. */
export type CrdSourceId = 'gateway-api' | 'istio' | 'cert-manager' | 'strimzi' | 'stand-ins';

/** How the manifest names each source: registry, artefact and version. */
export function sourceLabel(id: CrdSourceId): string {
  switch (id) {
    case 'gateway-api':
      return `Go module ${GATEWAY_API.module}@${GATEWAY_API.version} (${GATEWAY_API.dir})`;
    case 'istio':
      return `Go module ${ISTIO_API.module}@${ISTIO_API.version} (${ISTIO_API.file})`;
    case 'cert-manager':
      return `Go module ${CERT_MANAGER.module}@${CERT_MANAGER.version} (${CERT_MANAGER.crds})`;
    case 'strimzi':
      return (
        `Maven Central ${coordinatesLabel(STRIMZI.api)}, generated by ` +
        `${coordinatesLabel(STRIMZI.generator)}`
      );
    case 'stand-ins':
      return 'stand-in (no schema)';
  }
}
