/**
 * A network partition of one pod (ADR 0012): its link taken down inside its own network namespace,
 * which cuts it off from its peers and its clients while its processes keep running; and the pods of
 * a 3-node cluster that such cuts act on. Shared by the pod clusters (kafka-pod-cluster.ts,
 * cassandra-pod-cluster.ts). Needs root, like every pod.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, createPods, teardownPods, type PodStack } from '../pods/index.ts';
import { POD_IF, stackSubnet } from '../pods/names.ts';

/** A timed cut of one node ({@link cutPod}). */
export interface NodeCut {
  /** When the link went down (ms since the epoch). */
  readonly at: number;
  /** When it came back up; 0 while still cut. */
  readonly healedAt: number;
  /** Bring the link up now, if it is not already. */
  heal(): void;
}

/** `ip -n <netns> link set eth0 up|down`: the cable between the pod and the bridge. */
export function podLink(netns: string, state: 'up' | 'down'): void {
  execFileSync('ip', ['-n', netns, 'link', 'set', POD_IF, state], { stdio: 'pipe' });
}

/**
 * Cut the pod of `netns` off now and heal it after `ms` on a timer of its own, so a call hanging on
 * the cut node cannot stretch the cut; `heal()` heals at once (call it in a `finally`), and only once.
 */
export function cutPod(netns: string, ms: number): NodeCut {
  podLink(netns, 'down');
  const at = Date.now();
  let healedAt = 0;
  const heal = (): void => {
    clearTimeout(timer);
    if (healedAt === 0) {
      podLink(netns, 'up');
      healedAt = Date.now();
    }
  };
  const timer = setTimeout(heal, ms);
  return {
    at,
    get healedAt() {
      return healedAt;
    },
    heal,
  };
}

/** The pods `<kind>-1`, `-2`, `-3` of a cluster's nodes, a scratch directory, and their links. */
export interface NodePods {
  pods: PodStack;
  /** A scratch directory (mode 0711: each pod user passes through to its own files only). */
  dir: string;
  /** Node `i`'s pod (1-based). */
  podOf(i: number): PodStack['pods'][string];
  /** `ip -n <node's namespace> link set eth0 up|down`. */
  link(i: number, state: 'up' | 'down'): void;
  /** {@link cutPod} on node `i`'s pod. */
  cut(i: number, ms: number): NodeCut;
  /** Every link up, then `stopNodes`, then the pods and the directory removed; never throws. */
  stop(stopNodes?: () => Promise<void>): Promise<void>;
}

/**
 * Remove what an earlier, killed run of `stack` left, then create one pod per node (`<kind>-1..3`,
 * slots 0..2) on the stack's /24 ({@link stackSubnet} of `subnetBasePort`) and a scratch directory.
 */
export async function createNodePods(
  kind: string,
  opts: { stack: string; subnetBasePort: number },
): Promise<NodePods> {
  const ids = [1, 2, 3];
  await cleanupStale(opts.stack);
  const pods = await createPods({
    stack: opts.stack,
    subnet: stackSubnet(opts.subnetBasePort),
    pods: ids.map((i) => ({ name: `${kind}-${i}`, slot: i - 1 })),
  });
  const dir = mkdtempSync(join(tmpdir(), `trellis-${opts.stack}-`));
  chmodSync(dir, 0o711);
  const podOf = (i: number): PodStack['pods'][string] => {
    const p = pods.pods[`${kind}-${i}`];
    if (!p) throw new Error(`no pod for ${kind} node ${i}`);
    return p;
  };
  const link = (i: number, state: 'up' | 'down'): void => podLink(podOf(i).netns, state);
  return {
    pods,
    dir,
    podOf,
    link,
    cut: (i, ms) => cutPod(podOf(i).netns, ms),
    stop: async (stopNodes) => {
      for (const i of ids) {
        try {
          link(i, 'up'); // never leave a node cut off, whatever failed
        } catch {
          // the pod is gone already
        }
      }
      await stopNodes?.().catch(() => undefined);
      await teardownPods(opts.stack).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
