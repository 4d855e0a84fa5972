/** The pinned toolchain: each component installs itself into the per-user cache. */
import { buildah, buildahInstall } from './buildah.ts';
import { cassandra } from './cassandra.ts';
import { crds } from './crds.ts';
import { elasticmq } from './elasticmq.ts';
import { envoy } from './envoy.ts';
import { etcd, etcdBinary } from './etcd.ts';
import { jaeger, jaegerBinary } from './jaeger.ts';
import { java } from './java.ts';
import { jmxExporter, jmxExporterJar, JMX_EXPORTER_VERSION } from './jmx-exporter.ts';
import { k6, k6Env } from './k6.ts';
import { kafka } from './kafka.ts';
import { keycloak } from './keycloak.ts';
import { kubernetes, kubeBinary, KUBE_BINARIES } from './kubernetes.ts';
import { kubernetesProvider, kubernetesProviderBinary } from './kubernetes-provider.ts';
import { kwok, kwokBinary, kwokStagesDir, KWOK_STAGE_FILES } from './kwok.ts';
import { progress } from './log.ts';
import { nginx } from './nginx.ts';
import { otelcol, otelcolBinary } from './otelcol.ts';
import { ensurePrometheus, prometheus, type PrometheusLayout } from './prometheus.ts';
import { pulumi, pulumiEnv } from './pulumi.ts';
import type { Tool } from './spec.ts';

export type { Tool, ToolCheck } from './spec.ts';
export { cacheRoot, toolDir } from './cache.ts';
export { FetchError, CommandError } from './errors.ts';
export { progress } from './log.ts';
export { KEYCLOAK_LOG_LEVEL } from './keycloak.ts';
export {
  buildah,
  buildahInstall,
  cassandra,
  elasticmq,
  envoy,
  ensurePrometheus,
  jaeger,
  jaegerBinary,
  java,
  jmxExporter,
  jmxExporterJar,
  JMX_EXPORTER_VERSION,
  k6,
  k6Env,
  kafka,
  keycloak,
  nginx,
  otelcol,
  otelcolBinary,
  prometheus,
  pulumi,
  pulumiEnv,
};
export type { PrometheusLayout };
export { crds };
export { crdSet, loadCrdSet } from './crds.ts';
export {
  CERT_MANAGER,
  GATEWAY_API,
  ISTIO_API,
  ISTIO_CHARTS,
  PLATFORM_KINDS,
  STAND_INS,
  STRIMZI,
} from './crd-pins.ts';
export type { CrdSet } from './crds.ts';
export type { ChartRole } from './crd-pins.ts';
export { formatManifest, missingKinds, splitApiVersion } from './crd-documents.ts';
export type { CrdKind, CustomResourceDefinition, GroupVersionKind } from './crd-documents.ts';
export { etcd, etcdBinary, kubernetes, kubeBinary, KUBE_BINARIES, kwok, kwokBinary, kwokStagesDir };
export { KWOK_STAGE_FILES, kubernetesProvider, kubernetesProviderBinary };
export type { KubeBinary } from './kubernetes.ts';

/**
 * What `./trellis up` needs to run the local stack, in install order (cheap checks first, then the
 * long builds).
 */
export const stackTools: readonly Tool[] = [
  java,
  nginx,
  envoy,
  kafka,
  cassandra,
  keycloak,
  k6,
  // The stack's metrics scraper (ADR 0020), and the JMX exporter agent Cassandra's and Kafka's
  // metrics come from (one jar, in their JVMs).
  prometheus,
  jmxExporter,
  // The trace pipeline (ADR 0023): the collector every sidecar exports to, and Jaeger behind it. Both
  // are Go builds from one module (packages/local/go-kube/tracing); docs/toolchain.md has the figures.
  otelcol,
  jaeger,
  pulumi,
];

/**
 * Every component: the stack's, then what only the tests use. `./trellis test` and `doctor` take all
 * of them; `up` does not build the test control plane (Kubernetes alone is ~26 min cold, see
 * docs/toolchain.md "the tiers").
 */
export const tools: readonly Tool[] = [
  ...stackTools,
  buildah,
  // The SQS-compatible server the SQS order queue is tested against (about 20 s cold, docs/toolchain.md).
  elasticmq,
  // The CRDs and charts of the Kubernetes platform, for the cluster tests (about a minute cold).
  crds,
  // The test control plane (kube.component.test.ts and the cluster tests): kwok and etcd are quick, the
  // Kubernetes build is the longest after Pulumi's (docs/toolchain.md has the figures).
  etcd,
  kwok,
  kubernetes,
];

/**
 * What only the cluster test project needs on top of {@link tools}: the Pulumi Kubernetes provider
 * (36 min cold on two cores, docs/toolchain.md), so that runs without `--project cluster` never pay for it.
 */
export const clusterTools: readonly Tool[] = [kubernetesProvider];

/** Install whatever of `set` is missing, with progress; fast when everything is cached. */
export async function ensureAll(set: readonly Tool[] = tools): Promise<void> {
  const started = Date.now();
  for (const t of set) {
    const t0 = Date.now();
    const where = await t.ensure();
    const secs = (Date.now() - t0) / 1000;
    if (secs > 2) progress(`${t.name} ${t.pinned} ready in ${secs.toFixed(0)} s (${where})`);
  }
  progress(`toolchain ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
