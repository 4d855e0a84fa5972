/** The pinned toolchain: each component installs itself into the per-user cache. */
import { cassandra } from './cassandra.ts';
import { envoy } from './envoy.ts';
import { etcd, etcdBinary } from './etcd.ts';
import { java } from './java.ts';
import { k6, k6Env } from './k6.ts';
import { kafka } from './kafka.ts';
import { keycloak } from './keycloak.ts';
import { kubernetes, kubeBinary, KUBE_BINARIES } from './kubernetes.ts';
import { kubernetesProvider, kubernetesProviderBinary } from './kubernetes-provider.ts';
import { kwok, kwokBinary, kwokStagesDir, KWOK_STAGE_FILES } from './kwok.ts';
import { progress } from './log.ts';
import { nginx } from './nginx.ts';
import { pulumi, pulumiEnv } from './pulumi.ts';
import type { Tool } from './spec.ts';

export type { Tool, ToolCheck } from './spec.ts';
export { cacheRoot, toolDir } from './cache.ts';
export { FetchError, CommandError } from './errors.ts';
export { cassandra, envoy, java, k6, k6Env, kafka, keycloak, nginx, pulumi, pulumiEnv };
export { etcd, etcdBinary, kubernetes, kubeBinary, KUBE_BINARIES, kwok, kwokBinary, kwokStagesDir };
export { KWOK_STAGE_FILES, kubernetesProvider, kubernetesProviderBinary };
export type { KubeBinary } from './kubernetes.ts';

/** Every component, in install order (cheap checks first, then the long builds). */
export const tools: readonly Tool[] = [
  java,
  nginx,
  envoy,
  kafka,
  cassandra,
  keycloak,
  k6,
  pulumi,
  // The test control plane (kube.component.test.ts and the cluster tests): kwok and etcd are quick, the
  // Kubernetes build is the longest after Pulumi's (docs/toolchain.md has the figures).
  etcd,
  kwok,
  kubernetes,
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
