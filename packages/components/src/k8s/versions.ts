/**
 * Every pinned Helm chart and upstream manifest of the Kubernetes platform, in one place. Each was
 * looked up in the project's release notes or chart source (see docs/environments.md, "Versions");
 * bump them together with a `pulumi preview` on a dev cluster.
 */

/** A Helm chart pinned to one version. */
export interface PinnedChart {
  chart: string;
  version: string;
  /** Chart repository URL; empty when `chart` is an OCI reference. */
  repo: string;
}

/** Istio 1.30.5 (istio.io/latest/news/releases/1.30.x/announcing-1.30.5). */
const istioRepo = 'https://istio-release.storage.googleapis.com/charts';
const istioVersion = '1.30.5';

/** The charts, by role. */
export const charts = {
  istioBase: { chart: 'base', version: istioVersion, repo: istioRepo },
  istiod: { chart: 'istiod', version: istioVersion, repo: istioRepo },
  istioCni: { chart: 'cni', version: istioVersion, repo: istioRepo },
  ztunnel: { chart: 'ztunnel', version: istioVersion, repo: istioRepo },
  /** charts/nginx-gateway-fabric/Chart.yaml version 2.4.0. */
  nginxGatewayFabric: {
    chart: 'oci://ghcr.io/nginx/charts/nginx-gateway-fabric',
    version: '2.4.0',
    repo: '',
  },
  /** strimzi.io/downloads: 0.50.x supports Kafka 4.0.0-4.1.1; 0.50.1 fixes CVE-2026-27133/27134. */
  strimzi: {
    chart: 'strimzi-kafka-operator',
    version: '0.50.1',
    repo: 'https://strimzi.io/charts/',
  },
  /** k8ssandra-operator CHANGELOG-1.32: v1.32.2 (2026-06-03), cass-operator v1.30.2. */
  k8ssandra: {
    chart: 'k8ssandra-operator',
    version: '1.32.2',
    repo: 'https://helm.k8ssandra.io/stable',
  },
  /** Required by k8ssandra-operator's webhooks, and issues the Cassandra keystores. */
  certManager: { chart: 'cert-manager', version: 'v1.19.1', repo: 'https://charts.jetstack.io' },
} as const satisfies Record<string, PinnedChart>;

/** Kafka version run by Strimzi 0.50.1. */
export const kafkaVersion = '4.1.1';

/** Cassandra 5 release run by cass-operator (K8ssandraCluster `serverVersion`). */
export const cassandraVersion = '5.0.6';

/** Keycloak operator manifests, pinned by tag (keycloak/keycloak-k8s-resources). */
export const keycloakOperator = {
  version: '26.2.0',
  manifests: (v: string): string[] => [
    `https://raw.githubusercontent.com/keycloak/keycloak-k8s-resources/${v}/kubernetes/keycloaks.k8s.keycloak.org-v1.yml`,
    `https://raw.githubusercontent.com/keycloak/keycloak-k8s-resources/${v}/kubernetes/keycloakrealmimports.k8s.keycloak.org-v1.yml`,
    `https://raw.githubusercontent.com/keycloak/keycloak-k8s-resources/${v}/kubernetes/kubernetes.yml`,
  ],
} as const;

/** Gateway API CRDs (standard channel) as NGINX Gateway Fabric 2.4.0 ships them (kustomize). */
export const gatewayApiCrds =
  'https://github.com/nginx/nginx-gateway-fabric/config/crd/gateway-api/standard?ref=v2.4.0';
