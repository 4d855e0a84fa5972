/**
 * The launcher: the argv that runs a command inside a pod's network namespace as the pod's user.
 * nsenter joins only the network namespace (unlike `ip netns exec`, which also unshares the mount
 * namespace and remounts /sys, hiding /sys/fs/cgroup from the JVMs); setpriv then drops root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { netnsPath } from './names.ts';
import { tool } from './exec.ts';

/** Where and as whom a process of a pod runs. Serialisable: the supervisor gets it in its spec. */
export interface PodLaunch {
  /** The pod's named network namespace (`trellis.<stack>.<pod>`). */
  netns: string;
  uid: number;
  gid: number;
  /**
   * Directories (absolute, e.g. the toolchain cache `/root/.cache/trellis`) to show read-only at the
   * same path although a parent is closed to the pod's user (`/root` is 0700). The command then runs
   * in a private mount namespace whose top-level directory of each path (`/root`) is a fresh tmpfs
   * holding only these directories: the pod sees them and nothing else of that tree. All must share
   * one top-level directory; an empty list is none.
   * @default none (no mount namespace)
   */
  reveal?: string[];
  /**
   * Let the process lock memory (mlock, mlockall) past its RLIMIT_MEMLOCK: it keeps the one
   * capability CAP_IPC_LOCK (inheritable, ambient and bounding set; every other one is still
   * dropped), as Kubernetes' `securityContext.capabilities.add: [IPC_LOCK]` does. For Cassandra,
   * which locks its JVM and warns when it cannot. Raising the limit instead needs
   * CAP_SYS_RESOURCE, which root in a container often lacks (docs/adr/0012). Ignored when the
   * launcher itself lacks CAP_IPC_LOCK (the process then runs unlocked, as without it).
   * @default false
   */
  lockMemory?: boolean;
}

/** CAP_IPC_LOCK's bit (linux/capability.h). */
const CAP_IPC_LOCK = 14;

/** Whether a `CapEff:` hex mask holds CAP_IPC_LOCK. */
export function hasIpcLock(capEffHex: string): boolean {
  return (BigInt(`0x${capEffHex.trim() || '0'}`) & (1n << BigInt(CAP_IPC_LOCK))) !== 0n;
}

/** This process's effective capabilities, as the hex mask of /proc/self/status. */
function ownCapEff(): string {
  return /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
}

const revealPath = /^(\/[A-Za-z0-9._-]+){2,}$/;

/** The top-level directory (`/root`) `reveal` covers; throws naming the field. */
function revealTop(reveal: readonly string[], field: string): string {
  let top: string | undefined;
  reveal.forEach((p, i) => {
    if (!revealPath.test(p) || p.split('/').includes('..') || p.split('/').includes('.'))
      throw new Error(
        `${field}.reveal[${i}]: "${p}" must be an absolute path below a top-level dir`,
      );
    const t = `/${p.split('/')[1] ?? ''}`;
    if (top !== undefined && t !== top)
      throw new Error(`${field}.reveal[${i}]: "${p}" is not under ${top} like the others`);
    top = t;
  });
  if (top === undefined) throw new Error(`${field}.reveal: must name at least one directory`);
  return top;
}

/**
 * Builds the tmpfs in a scratch mount on /tmp (uncovered again by the move), binds each directory
 * into it read-only from the real tree, then moves it over the top-level directory. Paths come as
 * arguments, never inside the script text: `$1` is the top, the rest are the directories, `--`
 * ends them and the command follows.
 */
const REVEAL_SCRIPT = [
  'set -e',
  'top=$1; shift',
  'mount -t tmpfs -o mode=0755,size=1m trellis-pod /tmp',
  'while [ "$1" != -- ]; do mkdir -p "/tmp${1#$top}"; mount --bind -o ro "$1" "/tmp${1#$top}"; shift; done',
  'shift',
  'mount --move /tmp "$top"',
  'exec "$@"',
].join('\n');

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
  if (pod.reveal !== undefined && pod.reveal.length > 0) revealTop(pod.reveal, field);
  if (pod.lockMemory !== undefined && typeof pod.lockMemory !== 'boolean')
    throw new Error(`${field}.lockMemory: ${String(pod.lockMemory)} is not true or false`);
  podArgvPrefix(pod); // throws naming the package when nsenter or setpriv is missing
}

/**
 * The argv prefix that enters the pod and becomes its user: no supplementary groups, no
 * capabilities (inheritable, ambient via the uid change, and bounding set emptied; CAP_IPC_LOCK
 * alone kept with {@link PodLaunch.lockMemory}), and
 * no_new_privs, so a setuid binary cannot give root back. With `reveal`, it first enters a private
 * mount namespace (see {@link PodLaunch.reveal}); the mounts die with the namespace's last process.
 */
export function podArgvPrefix(pod: PodLaunch, capEff: () => string = ownCapEff): string[] {
  // setpriv would fail to keep a capability the launcher does not have; then run without it.
  const keep = pod.lockMemory === true && hasIpcLock(capEff()) ? ',+ipc_lock' : '';
  const mountNs =
    pod.reveal === undefined || pod.reveal.length === 0
      ? []
      : [
          tool('unshare'),
          '--mount',
          '--propagation',
          'private',
          '--',
          tool('sh'),
          '-c',
          REVEAL_SCRIPT,
          'trellis-pod-reveal',
          revealTop(pod.reveal, 'pod'),
          ...pod.reveal,
          '--',
        ];
  return [
    ...mountNs,
    tool('nsenter'),
    `--net=${netnsPath(pod.netns)}`,
    '--',
    tool('setpriv'),
    `--reuid=${pod.uid}`,
    `--regid=${pod.gid}`,
    '--clear-groups',
    '--no-new-privs',
    `--inh-caps=-all${keep}`,
    ...(keep ? [`--ambient-caps=-all${keep}`] : []),
    `--bounding-set=-all${keep}`,
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
