/**
 * The body of the `LocalPods` dynamic provider: the stack's pods made, reconciled and torn down by
 * the pod primitives (ADR 0012). Imported by absolute path inside Pulumi's dynamic-provider host
 * (see process.ts for why).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  bridgeNetns,
  cleanupStale,
  createPods,
  podLeftovers,
  podNetns,
  teardownPods,
} from '@trellis/local/pods';
import type { PodLaunch, PodSubnet } from '@trellis/local/pods';
import { cacheRoot } from '@trellis/local/toolchain';

/** What the provider gets. */
export interface PodsInputs {
  stack: string;
  subnet: PodSubnet;
  /** Pod name → its slot (address `.2 + slot`). */
  pods: Record<string, number>;
}

/** One pod as the stack's processes need it. */
export interface PodOutput {
  address: string;
  user: string;
  launch: PodLaunch;
}

/** What the provider keeps. */
export interface PodsOutputs extends PodsInputs {
  hostAddress: string;
  pods: Record<string, number>;
  members: Record<string, PodOutput>;
}

/**
 * The toolchain cache when a directory above it gives other users no search permission (`/root`
 * is 0700): pod processes then see it read-only through the launcher's `reveal`, so /root is never
 * loosened. Mode bits, not `access`: the provider runs as root, for whom `access` always passes.
 */
export function toolchainReveal(root = cacheRoot()): string[] {
  for (let d = dirname(root); d !== '/'; d = dirname(d))
    if ((statSync(d).mode & 0o001) === 0) return [root];
  return [];
}

/**
 * Create (or reconcile) the stack's pods. On `create` (`fresh`), whatever a crashed run left is
 * removed first, its processes included: nothing of it may survive into this run. An update keeps
 * the running pods' processes (createPods reconciles in place).
 */
export async function ensurePods(i: PodsInputs, fresh = false): Promise<PodsOutputs> {
  if (fresh) await cleanupStale(i.stack);
  const made = await createPods({
    stack: i.stack,
    subnet: i.subnet,
    pods: Object.entries(i.pods).map(([name, slot]) => ({ name, slot })),
  });
  const reveal = toolchainReveal();
  const members: Record<string, PodOutput> = {};
  for (const [name, p] of Object.entries(made.pods))
    members[name] = {
      address: p.address,
      user: p.user.name,
      launch: { ...p.launch, ...(reveal.length > 0 ? { reveal } : {}) },
    };
  return { ...i, hostAddress: i.subnet.hostAddress, members };
}

/** True when every pod of `o` and the stack's bridge namespace exist. */
export async function podsPresent(o: PodsInputs): Promise<boolean> {
  const found = new Set((await podLeftovers(o.stack)).netns);
  return (
    found.has(bridgeNetns(o.stack)) &&
    Object.keys(o.pods).every((p) => found.has(podNetns(o.stack, p)))
  );
}

/** Remove every namespace, link, user and process of the stack's pods. */
export async function removePods(stack: string): Promise<void> {
  await teardownPods(stack);
}
