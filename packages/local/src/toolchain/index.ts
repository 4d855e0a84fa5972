/** The pinned toolchain: each component installs itself into the per-user cache. */
import { buildah, buildahInstall } from './buildah.ts';
import { cassandra } from './cassandra.ts';
import { crds } from './crds.ts';
import { envoy } from './envoy.ts';
import { java } from './java.ts';
import { k6, k6Env } from './k6.ts';
import { kafka } from './kafka.ts';
import { keycloak } from './keycloak.ts';
import { progress } from './log.ts';
import { nginx } from './nginx.ts';
import { ensurePrometheus, prometheus, type PrometheusLayout } from './prometheus.ts';
import { pulumi, pulumiEnv } from './pulumi.ts';
import type { Tool } from './spec.ts';

export type { Tool, ToolCheck } from './spec.ts';
export { cacheRoot, toolDir } from './cache.ts';
export { FetchError, CommandError } from './errors.ts';
export { progress } from './log.ts';
export {
  buildah,
  buildahInstall,
  cassandra,
  envoy,
  ensurePrometheus,
  java,
  k6,
  k6Env,
  kafka,
  keycloak,
  nginx,
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

/** Every component, in install order (cheap checks first, then the long builds). */
export const tools: readonly Tool[] = [
  java,
  nginx,
  buildah,
  prometheus,
  envoy,
  kafka,
  cassandra,
  keycloak,
  k6,
  pulumi,
  // The CRDs and charts of the Kubernetes platform, for the cluster tests (about a minute cold).
  crds,
];

/** Install whatever is missing, with progress; fast when everything is cached. */
export async function ensureAll(): Promise<void> {
  const started = Date.now();
  for (const t of tools) {
    const t0 = Date.now();
    const where = await t.ensure();
    const secs = (Date.now() - t0) / 1000;
    if (secs > 2) progress(`${t.name} ${t.pinned} ready in ${secs.toFixed(0)} s (${where})`);
  }
  progress(`toolchain ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
