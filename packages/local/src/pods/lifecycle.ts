/**
 * A stack's pods as one unit: create (idempotent, reconciling to the pods asked for), tear down,
 * and clean up what a crash left. Teardown works from names alone (namespace prefix, the host link
 * derived from the stack, users by their GECOS mark), never from an in-memory handle, so the
 * crash cleanup and `down` are the same code.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { podPreflight } from './exec.ts';
import type { PodLaunch } from './launch.ts';
import {
  MAX_POD_SLOT,
  bridgeNetns,
  bridgePort,
  checkName,
  hostLink,
  podNetns,
  podNetnsPrefix,
  podUserComment,
  type PodSubnet,
} from './names.ts';
import {
  deleteNetns,
  deleteRootLink,
  ensureBridge,
  ensurePodNetwork,
  linkNames,
  listNetns,
} from './network.ts';
import { killAndWait, netnsPids, uidPids } from './procs.ts';
import { ensurePodUser, listPodUsers, removePodUser, type PodUser } from './users.ts';

/** A pod to create: its name and its slot (address `.2 + slot` of the stack's subnet). */
export interface PodRequest {
  name: string;
  slot: number;
}

/** What `createPods` makes. */
export interface PodsSpec {
  stack: string;
  subnet: PodSubnet;
  pods: readonly PodRequest[];
}

/** A created pod. */
export interface Pod {
  name: string;
  netns: string;
  /** Its address on the stack's bridge; its public listeners bind here, private ones on 127.0.0.1. */
  address: string;
  user: PodUser;
  /** For `podCommand` and the supervisor's `pod` field. */
  launch: PodLaunch;
}

/** The stack's pods, by name. */
export interface PodStack {
  stack: string;
  subnet: PodSubnet;
  bridgeNetns: string;
  hostLink: string;
  pods: Record<string, Pod>;
}

/** What of a stack's pods exists on this machine. */
export interface PodLeftovers {
  netns: string[];
  links: string[];
  users: string[];
  pids: number[];
}

function checkSpec(spec: PodsSpec): void {
  checkName('stack', spec.stack);
  const names = new Set<string>();
  const ports = new Set<string>();
  const slots = new Set<number>();
  spec.pods.forEach((p, i) => {
    checkName(`pods[${i}].name`, p.name);
    if (names.has(p.name)) throw new Error(`pods[${i}].name: "${p.name}" appears twice`);
    // Long names are truncated with a short hash to fit an interface name; two may meet there.
    if (ports.has(bridgePort(p.name)))
      throw new Error(`pods[${i}].name: "${p.name}" shortens to a bridge port another pod has`);
    if (!Number.isInteger(p.slot) || p.slot < 0 || p.slot > MAX_POD_SLOT)
      throw new Error(`pods[${i}].slot: ${p.slot} is not an integer from 0 to ${MAX_POD_SLOT}`);
    if (slots.has(p.slot)) throw new Error(`pods[${i}].slot: ${p.slot} is taken by another pod`);
    names.add(p.name);
    ports.add(bridgePort(p.name));
    slots.add(p.slot);
  });
}

/** Everything of the stack's pods on this machine, found by name. */
export async function podLeftovers(stack: string): Promise<PodLeftovers> {
  const netns = listNetns().filter(
    (n) => n === bridgeNetns(stack) || n.startsWith(podNetnsPrefix(stack)),
  );
  const links = (await linkNames(null)).filter((l) => l === hostLink(stack));
  const users = await listPodUsers(stack);
  const pids = new Set(uidPids(users.map((u) => u.uid)));
  for (const n of netns) for (const p of await netnsPids(n)) pids.add(p);
  return { netns, links, users: users.map((u) => u.name), pids: [...pids].sort((a, b) => a - b) };
}

/** True when nothing of the stack's pods is left. */
export function isClean(l: PodLeftovers): boolean {
  return l.netns.length + l.links.length + l.users.length + l.pids.length === 0;
}

/** Kill the processes of `netns` and of `users`, at most three rounds (a restart may slip in). */
async function killPodProcesses(
  netns: readonly string[],
  users: readonly PodUser[],
): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = new Set(uidPids(users.map((u) => u.uid)));
    for (const n of netns) for (const p of await netnsPids(n)) pids.add(p);
    if (pids.size === 0) return;
    const stuck = await killAndWait([...pids]);
    if (stuck.length > 0) throw new Error(`pods: processes ${stuck.join(', ')} survived SIGKILL`);
  }
}

/** The machine's shared scratch directories, where a pod's processes may leave files. */
export const SCRATCH_DIRS: readonly string[] = ['/tmp', '/var/tmp', '/dev/shm'];

/**
 * Remove the top-level entries of `dirs` that `uids` own: a JVM's `hsperfdata_<user>`, Envoy's
 * shared memory after a SIGKILL, anything else a pod process wrote there. The owner is the entry's
 * own (lstat: a link is judged, and removed, as a link); a directory goes with its contents. The
 * users' processes must be gone first, so nothing can swap an entry meanwhile. Returns the paths
 * removed.
 */
export function removeScratchFiles(
  uids: readonly number[],
  dirs: readonly string[] = SCRATCH_DIRS,
): string[] {
  // Never root's (or a made-up id's) files: a pod user is never root.
  const bad = uids.find((u) => !(Number.isInteger(u) && u > 0));
  if (bad !== undefined) throw new Error(`uids: ${bad} is not a pod user's id`);
  const owners = new Set(uids);
  const removed: string[] = [];
  if (owners.size === 0) return removed;
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue; // no such directory on this machine
    }
    for (const e of entries) {
      const path = join(dir, e);
      try {
        if (!owners.has(lstatSync(path).uid)) continue;
      } catch {
        continue; // gone meanwhile
      }
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}

/** Remove one pod: its processes, its namespace (and with it its veth), its files in the scratch dirs, its user. */
export async function removePod(stack: string, pod: string): Promise<void> {
  const netns = podNetns(stack, pod);
  const users = (await listPodUsers(stack)).filter((u) => u.comment === podUserComment(stack, pod));
  await killPodProcesses([netns], users);
  await deleteNetns(netns);
  removeScratchFiles(users.map((u) => u.uid));
  for (const u of users) await removePodUser(u);
}

/**
 * Remove every namespace, link, user and process of the stack's pods (and the files their users
 * left in the scratch dirs, {@link removeScratchFiles}), then check that nothing is
 * left (throws listing what is). Returns what it found. Stop the stack's supervisors first, or
 * they restart what this kills.
 */
export async function teardownPods(stack: string): Promise<PodLeftovers> {
  const found = await podLeftovers(stack);
  if (isClean(found)) return found; // nothing to do: no root needed either
  podPreflight();
  const users = await listPodUsers(stack);
  await killPodProcesses(found.netns, users);
  for (const n of found.netns) if (n !== bridgeNetns(stack)) await deleteNetns(n);
  await deleteRootLink(hostLink(stack));
  await deleteNetns(bridgeNetns(stack));
  removeScratchFiles(users.map((u) => u.uid));
  for (const u of users) await removePodUser(u);
  const left = await podLeftovers(stack);
  if (!isClean(left))
    throw new Error(`pods of stack ${stack} not fully removed: ${JSON.stringify(left)}`);
  return found;
}

/** What `up` calls first: remove whatever a crashed run of the stack left; returns what it found. */
export function cleanupStale(stack: string): Promise<PodLeftovers> {
  return teardownPods(stack);
}

/** One pod of the stack: its user, namespace, veth and address (the bridge must exist). */
export async function ensurePod(stack: string, subnet: PodSubnet, req: PodRequest): Promise<Pod> {
  const user = await ensurePodUser(stack, req.name);
  const address = await ensurePodNetwork(stack, subnet, req.name, req.slot);
  const netns = podNetns(stack, req.name);
  return {
    name: req.name,
    netns,
    address,
    user,
    launch: { netns, uid: user.uid, gid: user.gid },
  };
}

/**
 * Make the stack's pods exactly `spec.pods`: the bridge, each pod, and no other pod of the stack
 * (those are removed). Idempotent. When it fails on a stack that had nothing before, it removes
 * what it made, so a failed `up` leaves nothing behind.
 */
export async function createPods(spec: PodsSpec): Promise<PodStack> {
  checkSpec(spec);
  podPreflight();
  const { stack, subnet } = spec;
  const fresh = isClean(await podLeftovers(stack));
  try {
    await ensureBridge(stack, subnet);
    const pods: Record<string, Pod> = {};
    for (const req of spec.pods) pods[req.name] = await ensurePod(stack, subnet, req);
    const wanted = new Set(spec.pods.map((p) => podNetns(stack, p.name)));
    const prefix = podNetnsPrefix(stack);
    for (const n of listNetns())
      if (n.startsWith(prefix) && !wanted.has(n)) await removePod(stack, n.slice(prefix.length));
    const comments = new Set(spec.pods.map((p) => podUserComment(stack, p.name)));
    const strays = (await listPodUsers(stack)).filter((u) => !comments.has(u.comment));
    await killPodProcesses([], strays);
    removeScratchFiles(strays.map((u) => u.uid));
    for (const u of strays) await removePodUser(u);
    return { stack, subnet, bridgeNetns: bridgeNetns(stack), hostLink: hostLink(stack), pods };
  } catch (err) {
    if (fresh) await teardownPods(stack).catch(() => undefined);
    throw err;
  }
}
