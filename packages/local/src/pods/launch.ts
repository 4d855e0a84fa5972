/**
 * The launcher: the argv that runs a command inside a pod's network namespace as the pod's user.
 * nsenter joins only the network namespace (unlike `ip netns exec`, which also unshares the mount
 * namespace and remounts /sys, hiding /sys/fs/cgroup from the JVMs); setpriv then drops root.
 */
import { existsSync } from 'node:fs';
import { netnsPath } from './names.ts';
import { tool } from './exec.ts';

/** Where and as whom a process of a pod runs. Serialisable: the supervisor gets it in its spec. */
export interface PodLaunch {
  /** The pod's named network namespace (`trellis.<stack>.<pod>`). */
  netns: string;
  uid: number;
  gid: number;
}

/** Throw unless `pod` is a usable launch target; the message names the field (`<field>.netns`…). */
export function checkPodLaunch(pod: PodLaunch, field = 'pod'): void {
  if (typeof pod.netns !== 'string' || !/^trellis\.[a-z0-9.-]+$/.test(pod.netns))
    throw new Error(`${field}.netns: "${String(pod.netns)}" is not a Trellis pod namespace name`);
  if (!existsSync(netnsPath(pod.netns)))
    throw new Error(`${field}.netns: namespace ${pod.netns} does not exist (create the pod first)`);
  for (const key of ['uid', 'gid'] as const) {
    const v = pod[key];
    // Never 0: a pod process must not be root, that is the point of the pod.
    if (!Number.isInteger(v) || v <= 0 || v >= 2 ** 32 - 1)
      throw new Error(`${field}.${key}: ${v} is not a non-root id`);
  }
  podArgvPrefix(pod); // throws naming the package when nsenter or setpriv is missing
}

/**
 * The argv prefix that enters the pod and becomes its user: no supplementary groups, no
 * capabilities (inheritable, ambient via the uid change, and bounding set emptied), and
 * no_new_privs, so a setuid binary cannot give root back.
 */
export function podArgvPrefix(pod: PodLaunch): string[] {
  return [
    tool('nsenter'),
    `--net=${netnsPath(pod.netns)}`,
    '--',
    tool('setpriv'),
    `--reuid=${pod.uid}`,
    `--regid=${pod.gid}`,
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
  ];
}

/** `command args…` wrapped to run in the pod: what to pass to spawn. */
export function podCommand(
  pod: PodLaunch,
  command: string,
  args: readonly string[],
): { command: string; args: string[] } {
  const [first = '', ...rest] = podArgvPrefix(pod);
  return { command: first, args: [...rest, command, ...args] };
}
