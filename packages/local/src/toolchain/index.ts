/** The pinned toolchain: each component installs itself into the per-user cache. */
import { buildah, buildahInstall } from './buildah.ts';
import { cassandra } from './cassandra.ts';
import { envoy } from './envoy.ts';
import { java } from './java.ts';
import { k6, k6Env } from './k6.ts';
import { kafka } from './kafka.ts';
import { keycloak } from './keycloak.ts';
import { progress } from './log.ts';
import { nginx } from './nginx.ts';
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
  java,
  k6,
  k6Env,
  kafka,
  keycloak,
  nginx,
  pulumi,
  pulumiEnv,
};

/** Every component, in install order (cheap checks first, then the long builds). */
export const tools: readonly Tool[] = [
  java,
  nginx,
  buildah,
  envoy,
  kafka,
  cassandra,
  keycloak,
  k6,
  pulumi,
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
