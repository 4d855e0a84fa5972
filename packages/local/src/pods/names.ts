/**
 * Names and addresses of a stack's pods: pure functions, so that `up`, `down` and the crash cleanup
 * derive exactly the same namespace, link and user names from the stack name alone.
 */
import { createHash } from 'node:crypto';

/** Stack and pod names: lowercase, a letter first, no dots (dots separate them in namespace names). */
const NAME = /^[a-z][a-z0-9-]{0,30}$/;

/** Linux refuses interface names longer than this (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;
/** shadow's useradd refuses longer user names on most distributions. */
export const MAX_USERNAME = 32;

/**
 * The block every Trellis stack takes its pod subnet from: the first half of 198.18.0.0/15 (RFC 2544,
 * reserved for benchmarking, never routed on the internet and rarely used on a LAN, unlike 10/8 and
 * 192.168/16, which corporate VPNs, Docker and Kubernetes take).
 */
export const DEFAULT_POD_RANGE = '198.18.0.0/17';

/** Addresses per stack subnet; .0 network, .1 the host's end, .255 broadcast. */
const SUBNET_PREFIX = 24;
/** Highest pod slot: pod slot s gets host number s + 2, at most 254. */
export const MAX_POD_SLOT = 252;

/** Throw unless `value` is a valid stack or pod name; the message names `field`. */
export function checkName(field: string, value: string): void {
  if (!NAME.test(value))
    throw new Error(
      `${field}: "${value}" is not a valid name (a lowercase letter, then up to 30 of a-z, 0-9, "-")`,
    );
}

function shortHash(s: string, chars: number): string {
  return createHash('sha256').update(s).digest('hex').slice(0, chars);
}

/** The stack's bridge namespace (holds only the bridge and the veth ends; no address, no route). */
export function bridgeNetns(stack: string): string {
  checkName('stack', stack);
  return `trellis.${stack}`;
}

/** The prefix of every pod namespace of the stack; stack names have no dot, so it is unambiguous. */
export function podNetnsPrefix(stack: string): string {
  return `${bridgeNetns(stack)}.`;
}

/** The network namespace of one pod. */
export function podNetns(stack: string, pod: string): string {
  checkName('pod', pod);
  return `${podNetnsPrefix(stack)}${pod}`;
}

/** Path of a named namespace as `ip netns add` mounts it. */
export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/** Fit `prefix + name` into `max` chars: as is when it fits, else truncated with a hash of the name. */
function fit(prefix: string, name: string, max: number): string {
  const whole = `${prefix}${name}`;
  if (whole.length <= max) return whole;
  const hash = shortHash(name, 4);
  return `${prefix}${name.slice(0, max - prefix.length - hash.length - 1)}-${hash}`;
}

/** The host's end of the stack's root veth, in the root namespace (`trl-local`, `trl-e2e`). */
export function hostLink(stack: string): string {
  checkName('stack', stack);
  return fit('trl-', stack, MAX_IFNAME);
}

/** Names inside the bridge namespace: the bridge, the host veth's end there, each pod's end. */
export const BRIDGE_IF = 'br0';
export const BRIDGE_HOST_PORT = 'host';
/** Inside a pod the veth is always `eth0`, as in a Kubernetes pod. */
export const POD_IF = 'eth0';

/** The bridge port (veth end in the bridge namespace) of a pod. */
export function bridgePort(pod: string): string {
  checkName('pod', pod);
  return fit('p-', pod, MAX_IFNAME);
}

/** The pod's system user: `trellis-<stack>-<pod>`, or a hashed name when that is too long. */
export function podUserName(stack: string, pod: string): string {
  checkName('stack', stack);
  checkName('pod', pod);
  const whole = `trellis-${stack}-${pod}`;
  return whole.length <= MAX_USERNAME ? whole : `trellis-${shortHash(`${stack}/${pod}`, 16)}`;
}

/** The GECOS field of a pod user: how cleanup recognises the stack's users, never by name alone. */
export function podUserComment(stack: string, pod: string): string {
  return `trellis pod ${stack}/${pod}`;
}

/** The GECOS prefix shared by every pod user of the stack (`/` cannot occur in a stack name). */
export function podUserCommentPrefix(stack: string): string {
  checkName('stack', stack);
  return `trellis pod ${stack}/`;
}

/** An IPv4 /24 a stack owns. */
export interface PodSubnet {
  /** `198.18.8.0/24` */
  cidr: string;
  /** The host's address on the stack's root veth (`.1`). */
  hostAddress: string;
  prefixLength: number;
}

/** Parse dotted-quad IPv4 into an unsigned 32-bit number; throws naming `field`. */
export function ipv4ToInt(field: string, ip: string): number {
  const parts = ip.split('.');
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255)))
    throw new Error(`${field}: "${ip}" is not an IPv4 address`);
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

/** Format an unsigned 32-bit number as dotted-quad IPv4. */
export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parse `a.b.c.d/n` into its network number and prefix length; throws naming `field`. */
export function parseCidr(field: string, cidr: string): { base: number; prefix: number } {
  const [ip = '', len = '', ...rest] = cidr.split('/');
  const prefix = /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (rest.length > 0 || !(prefix >= 0 && prefix <= 32))
    throw new Error(`${field}: "${cidr}" is not an IPv4 CIDR (a.b.c.d/n)`);
  const addr = ipv4ToInt(field, ip);
  const size = 2 ** (32 - prefix);
  if (addr % size !== 0) throw new Error(`${field}: "${cidr}" has host bits set`);
  return { base: addr, prefix };
}

/** First address and size of `a.b.c.d[/n]` (a bare address is a /32); host bits are ignored. */
function block(cidr: string): { start: number; size: number } {
  const [ip = '', len = '32'] = cidr.split('/');
  const prefix = Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32)
    throw new Error(`cidr: "${cidr}" has no valid prefix length`);
  const size = 2 ** (32 - prefix);
  const addr = ipv4ToInt('cidr', ip);
  return { start: addr - (addr % size), size };
}

/** True when two CIDRs (or bare addresses) share at least one address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = block(a);
  const y = block(b);
  return x.start < y.start + y.size && y.start < x.start + x.size;
}

/**
 * The stack's /24: the `floor(basePort / 1000)`-th /24 of `range` (base 8000 → 198.18.8.0/24,
 * 28000 → 198.18.28.0/24). Two stacks that can run side by side already have base ports at least
 * 1000 apart (their port offsets span 0–999), so they never share a subnet.
 */
export function stackSubnet(basePort: number, range = DEFAULT_POD_RANGE): PodSubnet {
  if (!Number.isInteger(basePort) || basePort < 1000 || basePort > 65535)
    throw new Error(`basePort: ${basePort} is not an integer port from 1000 to 65535`);
  const { base, prefix } = parseCidr('podRange', range);
  if (prefix > SUBNET_PREFIX)
    throw new Error(`podRange: "${range}" is smaller than one /${SUBNET_PREFIX}`);
  const index = Math.floor(basePort / 1000);
  const count = 2 ** (SUBNET_PREFIX - prefix);
  if (index >= count)
    throw new Error(
      `podRange: "${range}" holds ${count} stack subnets; basePort ${basePort} needs index ${index}`,
    );
  const net = base + index * 256;
  return {
    cidr: `${intToIpv4(net)}/${SUBNET_PREFIX}`,
    hostAddress: intToIpv4(net + 1),
    prefixLength: SUBNET_PREFIX,
  };
}

/** The address of pod slot `slot` (0-based) in the subnet: `.2` for slot 0. */
export function podAddress(subnet: PodSubnet, slot: number): string {
  if (!Number.isInteger(slot) || slot < 0 || slot > MAX_POD_SLOT)
    throw new Error(`slot: ${slot} is not an integer from 0 to ${MAX_POD_SLOT}`);
  const { base } = parseCidr('subnet', subnet.cidr);
  return intToIpv4(base + 2 + slot);
}
