/**
 * The pod network of a stack, made of plain network namespaces:
 *
 *   root namespace            bridge namespace trellis.<stack>       pod namespace trellis.<stack>.<pod>
 *   trl-<stack> 198.18.k.1 ══ host ─┐                                 lo 127.0.0.1
 *                                   br0 (no address, no route) ─ p-<pod> ══ eth0 198.18.k.(2+slot)/24
 *
 * Every step checks before it acts, so `ensure*` can run again on a half-built network. Nothing here
 * routes off the machine: pods get only their /24 (no default route), the bridge namespace has no
 * address at all, and the host's end does not forward.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { attempt, run } from './exec.ts';
import {
  BRIDGE_HOST_PORT,
  BRIDGE_IF,
  POD_IF,
  bridgeNetns,
  bridgePort,
  cidrsOverlap,
  hostLink,
  netnsPath,
  podAddress,
  podNetns,
  type PodSubnet,
} from './names.ts';

/** One entry of `ip -j route show`. */
export interface IpRoute {
  dst: string;
  dev?: string;
  table?: string;
  type?: string;
}

/**
 * The routes on this machine that overlap `subnet`, other than those on the stack's own host link
 * (present when the network already exists) and the default route (which overlaps everything).
 */
export function routeCollisions(
  routes: readonly IpRoute[],
  subnet: PodSubnet,
  own: string,
): string[] {
  return routes
    .filter((r) => r.dst !== 'default' && r.dev !== own && cidrsOverlap(r.dst, subnet.cidr))
    .map(
      (r) =>
        `${r.type ? `${r.type} ` : ''}${r.dst} dev ${r.dev ?? '?'} (table ${r.table ?? 'main'})`,
    );
}

/** Throw unless no network of this machine uses the stack's subnet; the message says what to change. */
export async function assertSubnetFree(stack: string, subnet: PodSubnet): Promise<void> {
  const out = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], 'list routes');
  const clash = routeCollisions(JSON.parse(out || '[]') as IpRoute[], subnet, hostLink(stack));
  if (clash.length > 0)
    throw new Error(
      `pod subnet ${subnet.cidr} of stack ${stack} overlaps networks of this machine: ` +
        `${clash.join('; ')}. Give the stack another basePort or pod range, or take that network down.`,
    );
}

/** The named network namespaces (`ip netns list` reads the same directory). */
export function listNetns(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').sort() : [];
}

/** Interface names in `netns` (the root namespace when null). */
export async function linkNames(netns: string | null): Promise<string[]> {
  const ns = netns ? ['-n', netns] : [];
  const out = await run('ip', [...ns, '-j', 'link', 'show'], `list links in ${netns ?? 'root'}`);
  return (JSON.parse(out || '[]') as { ifname: string }[]).map((l) => l.ifname);
}

/** IPv4 addresses (`a.b.c.d/n`) on `dev` in `netns` (the root namespace when null). */
export async function addressesOf(netns: string | null, dev: string): Promise<string[]> {
  const ns = netns ? ['-n', netns] : [];
  const out = await run(
    'ip',
    [...ns, '-j', '-4', 'addr', 'show', 'dev', dev],
    `addresses of ${dev}`,
  );
  const links = JSON.parse(out || '[]') as { addr_info?: { local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

/** Set a /proc/sys/net key in `netns` (root namespace when null): /proc/sys/net is per namespace. */
async function sysctl(netns: string | null, key: string, value: string): Promise<void> {
  const file = `/proc/sys/${key}`;
  if (!netns) {
    writeFileSync(file, value);
    return;
  }
  const script = 'printf %s "$2" > "$1"';
  const args = [`--net=${netnsPath(netns)}`, '--', 'sh', '-c', script, 'sh', file, value];
  await run('nsenter', args, `set ${key} in ${netns}`);
}

/** Create the named namespace unless it exists, with its loopback up. */
export async function ensureNetns(netns: string): Promise<void> {
  if (!existsSync(netnsPath(netns))) await run('ip', ['netns', 'add', netns], `create ${netns}`);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up'], `loopback up in ${netns}`);
}

/** Exactly `want` on `dev`: any other address (a pod that changed slot) is flushed first. */
async function ensureAddress(netns: string | null, dev: string, want: string): Promise<void> {
  const have = await addressesOf(netns, dev);
  if (have.length === 1 && have[0] === want) return;
  const ns = netns ? ['-n', netns] : [];
  if (have.length > 0) await run('ip', [...ns, 'addr', 'flush', 'dev', dev], `flush ${dev}`);
  await run('ip', [...ns, 'addr', 'add', want, 'dev', dev], `address ${want} on ${dev}`);
}

/**
 * A veth pair `a` (in `nsA`, root when null) ══ `b` (in `nsB`): kept when both ends exist, else
 * whichever end a crash left is deleted and the pair is made again, the peer directly in `nsB`.
 */
async function ensureVeth(nsA: string | null, a: string, nsB: string, b: string): Promise<void> {
  const hasA = (await linkNames(nsA)).includes(a);
  const hasB = (await linkNames(nsB)).includes(b);
  if (hasA && hasB) return;
  const inA = nsA ? ['-n', nsA] : [];
  if (hasA) await run('ip', [...inA, 'link', 'del', a], `delete half veth ${a}`);
  if (hasB) await run('ip', ['-n', nsB, 'link', 'del', b], `delete half veth ${b}`);
  const add = [...inA, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', nsB];
  await run('ip', add, `veth ${a} to ${nsB}`);
}

/**
 * The stack's bridge namespace, its bridge, and the host's veth to it with the subnet's `.1`.
 * Checks first that no network of the machine uses the subnet.
 */
export async function ensureBridge(stack: string, subnet: PodSubnet): Promise<void> {
  await assertSubnetFree(stack, subnet);
  const ns = bridgeNetns(stack);
  await ensureNetns(ns);
  // The bridge namespace carries frames only: no IPv6 (no link-local chatter), no IPv4 forwarding.
  await sysctl(ns, 'net/ipv6/conf/default/disable_ipv6', '1');
  await sysctl(ns, 'net/ipv4/ip_forward', '0');
  if (!(await linkNames(ns)).includes(BRIDGE_IF))
    await run('ip', ['-n', ns, 'link', 'add', BRIDGE_IF, 'type', 'bridge'], `bridge in ${ns}`);
  await run('ip', ['-n', ns, 'link', 'set', BRIDGE_IF, 'up'], `bridge up in ${ns}`);
  const host = hostLink(stack);
  await ensureVeth(null, host, ns, BRIDGE_HOST_PORT);
  await sysctl(ns, 'net/ipv6/conf/all/disable_ipv6', '1');
  await run(
    'ip',
    ['-n', ns, 'link', 'set', BRIDGE_HOST_PORT, 'master', BRIDGE_IF, 'up'],
    'attach host',
  );
  // Even on a machine that routes (ip_forward=1, Docker), nothing arriving here is forwarded on.
  await sysctl(null, `net/ipv4/conf/${host}/forwarding`, '0');
  await sysctl(null, `net/ipv6/conf/${host}/disable_ipv6`, '1');
  await ensureAddress(null, host, `${subnet.hostAddress}/${subnet.prefixLength}`);
  await run('ip', ['link', 'set', host, 'up'], `${host} up`);
}

/** The pod's namespace and its veth to the bridge, with the address of `slot`; returns it. */
export async function ensurePodNetwork(
  stack: string,
  subnet: PodSubnet,
  pod: string,
  slot: number,
): Promise<string> {
  const address = podAddress(subnet, slot);
  const br = bridgeNetns(stack);
  if (!existsSync(netnsPath(br))) throw new Error(`pod ${pod}: the bridge ${br} does not exist`);
  const ns = podNetns(stack, pod);
  await ensureNetns(ns);
  const port = bridgePort(pod);
  await ensureVeth(br, port, ns, POD_IF);
  await sysctl(br, 'net/ipv6/conf/all/disable_ipv6', '1');
  await run('ip', ['-n', br, 'link', 'set', port, 'master', BRIDGE_IF, 'up'], `attach ${pod}`);
  // IPv6 stays on the pod's loopback (::1 for `localhost`), not on its wire.
  await sysctl(ns, `net/ipv6/conf/${POD_IF}/disable_ipv6`, '1');
  await ensureAddress(ns, POD_IF, `${address}/${subnet.prefixLength}`);
  await run('ip', ['-n', ns, 'link', 'set', POD_IF, 'up'], `${POD_IF} up in ${ns}`);
  return address;
}

/** Delete a link in the root namespace if it exists (its veth peer goes with it). */
export async function deleteRootLink(name: string): Promise<void> {
  if ((await linkNames(null)).includes(name))
    await run('ip', ['link', 'del', name], `delete link ${name}`);
}

/** Delete a named namespace if it exists. */
export async function deleteNetns(netns: string): Promise<void> {
  if (!existsSync(netnsPath(netns))) return;
  const r = await attempt('ip', ['netns', 'del', netns]);
  if (r.code !== 0 && existsSync(netnsPath(netns)))
    throw new Error(`delete namespace ${netns}: ${r.stderr.trim()}`);
}
