import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { missingCaps } from '../src/pods/exec.ts';
import { hasIpcLock, podArgvPrefix } from '../src/pods/launch.ts';
import { createPods, removeScratchFiles } from '../src/pods/lifecycle.ts';
import {
  MAX_IFNAME,
  MAX_USERNAME,
  bridgePort,
  cidrsOverlap,
  hostLink,
  podAddress,
  podNetns,
  podUserName,
  stackSubnet,
} from '../src/pods/names.ts';
import { routeCollisions } from '../src/pods/network.ts';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/);

describe('pod names', () => {
  it('fit Linux limits for any valid stack and pod name, and stay distinct', () => {
    fc.assert(
      fc.property(name, name, name, (stack, a, b) => {
        expect(hostLink(stack).length).toBeLessThanOrEqual(MAX_IFNAME);
        expect(bridgePort(a).length).toBeLessThanOrEqual(MAX_IFNAME);
        expect(podUserName(stack, a).length).toBeLessThanOrEqual(MAX_USERNAME);
        if (a !== b) {
          expect(bridgePort(a)).not.toBe(bridgePort(b));
          expect(podUserName(stack, a)).not.toBe(podUserName(stack, b));
          expect(podNetns(stack, a)).not.toBe(podNetns(stack, b));
        }
      }),
    );
  });

  it('keep short names readable and hash long ones', () => {
    expect(hostLink('local')).toBe('trl-local');
    expect(podNetns('e2e', 'orders-api')).toBe('trellis.e2e.orders-api');
    expect(podUserName('local', 'orders-api')).toBe('trellis-local-orders-api');
    expect(bridgePort('orders-api')).toBe('p-orders-api');
    expect(bridgePort('cassandra-node-12')).toMatch(/^p-cassandr-[0-9a-f]{4}$/);
    expect(hostLink('integration-tests')).toMatch(/^trl-integr-[0-9a-f]{4}$/);
  });

  it('refuse names that would break the namespace prefix, naming the field', () => {
    expect(() => podNetns('a.b', 'x')).toThrow('stack: "a.b" is not a valid name');
    expect(() => podNetns('local', 'Orders')).toThrow('pod: "Orders" is not a valid name');
    expect(() => hostLink('')).toThrow('stack: "" is not a valid name');
  });
});

describe('stack subnets', () => {
  it('derive a /24 from the base port: local 8000 and e2e 28000', () => {
    expect(stackSubnet(8000)).toEqual({
      cidr: '198.18.8.0/24',
      hostAddress: '198.18.8.1',
      prefixLength: 24,
    });
    expect(stackSubnet(28000).cidr).toBe('198.18.28.0/24');
    expect(stackSubnet(8000, '10.99.0.0/16').cidr).toBe('10.99.8.0/24');
    expect(podAddress(stackSubnet(8000), 0)).toBe('198.18.8.2');
    expect(podAddress(stackSubnet(8000), 252)).toBe('198.18.8.254');
  });

  it('give base ports 1000 apart disjoint subnets inside the range', () => {
    const port = fc.integer({ min: 1000, max: 64999 });
    fc.assert(
      fc.property(port, port, (a, b) => {
        const x = stackSubnet(a).cidr;
        expect(cidrsOverlap(x, '198.18.0.0/17')).toBe(true);
        if (Math.abs(a - b) >= 1000) expect(cidrsOverlap(x, stackSubnet(b).cidr)).toBe(false);
      }),
    );
  });

  it('refuse bad input with the field name', () => {
    expect(() => stackSubnet(80)).toThrow('basePort: 80 is not an integer port');
    expect(() => stackSubnet(8000, '198.18.0.0/25')).toThrow(
      'podRange: "198.18.0.0/25" is smaller',
    );
    expect(() => stackSubnet(8000, '198.18.0.1/16')).toThrow(
      'podRange: "198.18.0.1/16" has host bits',
    );
    expect(() => stackSubnet(30000, '198.18.0.0/20')).toThrow('holds 16 stack subnets');
    expect(() => podAddress(stackSubnet(8000), 253)).toThrow('slot: 253 is not an integer');
  });
});

describe('route collisions', () => {
  const subnet = stackSubnet(8000);
  const routes = [
    { dst: 'default', dev: 'eth0' },
    { dst: '192.0.2.0/24', dev: 'eth0' },
    { dst: '198.18.8.0/24', dev: 'trl-local' },
    { dst: '198.18.8.1', dev: 'trl-local', table: 'local', type: 'local' },
  ];

  it('ignore the default route and the stack own link', () => {
    expect(routeCollisions(routes, subnet, 'trl-local')).toEqual([]);
  });

  it('name a wider, a narrower or an equal route of another device', () => {
    const clash = [
      ...routes,
      { dst: '198.16.0.0/12', dev: 'tun0' },
      { dst: '198.18.8.77', dev: 'wg0', table: 'local', type: 'local' },
    ];
    expect(routeCollisions(clash, subnet, 'trl-local')).toEqual([
      '198.16.0.0/12 dev tun0 (table main)',
      'local 198.18.8.77 dev wg0 (table local)',
    ]);
    // Another stack's link on the same subnet is a collision too.
    expect(routeCollisions(routes, subnet, 'trl-other')).toHaveLength(2);
  });
});

describe('preflight capabilities', () => {
  it('name exactly the missing capabilities', () => {
    expect(missingCaps('000001ffffffffff')).toEqual([]);
    // CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21) cleared.
    const mask = (0x1ffffffffffn & ~(1n << 12n) & ~(1n << 21n)).toString(16);
    expect(missingCaps(mask)).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
    expect(missingCaps('0')).toHaveLength(8);
  });
});

describe('createPods input', () => {
  const subnet = stackSubnet(8000);
  // Checked before the preflight and before anything is created, so these run anywhere.
  it('names the field of a duplicate, a bad slot or a bad stack', async () => {
    const two = (a: string, sa: number, b: string, sb: number) =>
      createPods({
        stack: 'unit',
        subnet,
        pods: [
          { name: a, slot: sa },
          { name: b, slot: sb },
        ],
      });
    await expect(two('a', 0, 'a', 1)).rejects.toThrow('pods[1].name: "a" appears twice');
    await expect(two('a', 0, 'b', 0)).rejects.toThrow('pods[1].slot: 0 is taken by another pod');
    await expect(two('a', 0, 'b', 253)).rejects.toThrow('pods[1].slot: 253 is not an integer');
    await expect(two('a', 0, 'B', 1)).rejects.toThrow('pods[1].name: "B" is not a valid name');
    await expect(createPods({ stack: 'Local', subnet, pods: [] })).rejects.toThrow(
      'stack: "Local" is not a valid name',
    );
  });
});

describe('pod launch with reveal', () => {
  const launch = { netns: 'trellis.unit.a', uid: 1234, gid: 1234 };
  it('enters a private mount namespace first, passing the paths as arguments', () => {
    const argv = podArgvPrefix({ ...launch, reveal: ['/root/.cache/trellis'] });
    expect(argv[0]).toMatch(/\/unshare$/);
    expect(argv.slice(1, 5)).toEqual(['--mount', '--propagation', 'private', '--']);
    const script = argv[7] ?? '';
    expect(script).not.toContain('/root'); // paths never become shell text
    expect(argv.slice(8, 12)).toEqual([
      'trellis-pod-reveal',
      '/root',
      '/root/.cache/trellis',
      '--',
    ]);
    expect(argv[12]).toMatch(/\/nsenter$/);
    expect(podArgvPrefix(launch)[0]).toMatch(/\/nsenter$/); // no reveal, no mount namespace
  });

  it('keeps CAP_IPC_LOCK alone for lockMemory, when the launcher has it', () => {
    const withLock = () => '000001fffeffffff'; // root in a container without CAP_SYS_RESOURCE
    const without = () => '000001fffeffbfff'; // the same without CAP_IPC_LOCK (bit 14)
    const caps = (argv: string[]) =>
      argv.filter((a) => /^--(inh|ambient)-caps|^--bounding/.test(a));
    expect(caps(podArgvPrefix({ ...launch, lockMemory: true }, withLock))).toEqual([
      '--inh-caps=-all,+ipc_lock',
      '--ambient-caps=-all,+ipc_lock',
      '--bounding-set=-all,+ipc_lock',
    ]);
    const none = ['--inh-caps=-all', '--bounding-set=-all'];
    expect(caps(podArgvPrefix(launch, withLock))).toEqual(none);
    expect(caps(podArgvPrefix({ ...launch, lockMemory: false }, withLock))).toEqual(none);
    expect(caps(podArgvPrefix({ ...launch, lockMemory: true }, without))).toEqual(none);
    expect(hasIpcLock('4000')).toBe(true);
    expect(hasIpcLock('3fff')).toBe(false);
  });

  it("never sweeps root's files from the scratch dirs", () => {
    expect(() => removeScratchFiles([1234, 0], ['/nonexistent'])).toThrow(
      "uids: 0 is not a pod user's id",
    );
    expect(removeScratchFiles([1234], ['/nonexistent'])).toEqual([]);
  });

  it('refuses a relative path, a top-level dir or two tops, naming the field', () => {
    const check = (reveal: string[]) => () => podArgvPrefix({ ...launch, reveal });
    expect(check(['root/x'])).toThrow('pod.reveal[0]: "root/x" must be an absolute path');
    expect(check(['/root'])).toThrow('pod.reveal[0]: "/root" must be an absolute path below');
    expect(check(['/root/a', '/opt/b'])).toThrow('pod.reveal[1]: "/opt/b" is not under /root');
    expect(check(['/root/a/../b'])).toThrow('pod.reveal[0]');
    expect(check(['/root/a b'])).toThrow('pod.reveal[0]');
  });
});
