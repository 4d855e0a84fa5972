/**
 * Pods for the local stack: a network namespace and an unprivileged user per workload, joined by a
 * bridge namespace the stack owns (docs/adr/0012-local-pods-network-namespaces.md).
 */
export {
  cleanupStale,
  createPods,
  ensurePod,
  isClean,
  podLeftovers,
  removePod,
  teardownPods,
} from './lifecycle.ts';
export type { Pod, PodLeftovers, PodRequest, PodStack, PodsSpec } from './lifecycle.ts';
export { checkPodLaunch, podArgvPrefix, podCommand } from './launch.ts';
export type { PodLaunch } from './launch.ts';
export { runInPod } from './run.ts';
export type { PodRun, PodRunOptions } from './run.ts';
export { assertCaKeysUnreadable, podDir, readableBy, searchableUpTo, writePodKey } from './keys.ts';
export type { FileOwner } from './keys.ts';
export { podPreflight } from './exec.ts';
export {
  DEFAULT_POD_RANGE,
  bridgeNetns,
  hostLink,
  podAddress,
  podNetns,
  podUserName,
  stackSubnet,
} from './names.ts';
export type { PodSubnet } from './names.ts';
export { netnsPids } from './procs.ts';
export type { PodUser } from './users.ts';
