/**
 * Pods on real network namespaces (needs root). Two pods A and B of a test stack; every isolation
 * claim is shown working from the right place first, then refused from the wrong one. Servers and
 * clients are Perl one-liners, because a pod user cannot reach the Node binary under /root.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/harness/ports.ts';
import { findTool } from '../src/pods/exec.ts';
import {
  assertCaKeysUnreadable,
  cleanupStale,
  createPods,
  podCommand,
  podDir,
  readableBy,
  stackSubnet,
  teardownPods,
  writePodKey,
  type Pod,
  type PodStack,
} from '../src/pods/index.ts';
import { alive, startSupervised, stopSupervised } from '../src/supervisor/index.ts';

const STACK = 'ctpods';
const subnet = stackSubnet(63_000); // 198.18.63.0/24
const PERL = findTool('perl') ?? '/usr/bin/perl';
const dir = mkdtempSync(join(tmpdir(), 'trellis-pods-'));
chmodSync(dir, 0o711); // pod users may pass through to their own podDir, not list it
const children: ChildProcess[] = [];
let stack: PodStack;

/** Accepts connections and answers `<tag> uid=<euid>`; prints `ready` once listening. */
const SERVER = `use IO::Socket::INET; $| = 1;
my $s = IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => $ARGV[1], Listen => 16, ReuseAddr => 1)
  or die "listen: $!"; print "ready\\n";
while (my $c = $s->accept) { print $c "$ARGV[2] uid=$>\\n"; close $c }`;
/** Connects once; prints the answer, or `ERR <reason>`. */
const CLIENT = `use IO::Socket::INET;
my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => 2)
  or do { print "ERR $!\\n"; exit 0 }; print scalar <$s>;`;

function pod(name: string): Pod {
  const p = stack.pods[name];
  if (!p) throw new Error(`no pod ${name}`);
  return p;
}

/** Start the server as `p`'s user in `p`; resolves once it listens (at most 10 s). */
async function serveIn(p: Pod, host: string, port: number, tag: string): Promise<ChildProcess> {
  const argv = podCommand(p.launch, PERL, ['-e', SERVER, host, String(port), tag]);
  const child = spawn(argv.command, argv.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const deadline = Date.now() + 10_000;
  while (!out.includes('ready')) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`server ${tag} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

/** Connect from inside `p` as its user: the answer line, or `ERR <reason>`. */
function connectFrom(p: Pod, host: string, port: number): string {
  const argv = podCommand(p.launch, PERL, ['-e', CLIENT, host, String(port)]);
  return execFileSync(argv.command, argv.args, { timeout: 10_000 }).toString().trim();
}

/** Connect from the host (root namespace): the answer line, or `ERR <code>`. */
function connectFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: 2_000 });
    let data = '';
    sock.on('data', (b) => (data += b.toString()));
    sock.on('end', () => resolve(data.trim()));
    sock.on('timeout', () => {
      sock.destroy();
      resolve('ERR timeout');
    });
    sock.on('error', (err: NodeJS.ErrnoException) => resolve(`ERR ${err.code ?? err.message}`));
  });
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function uidOf(pid: number): number {
  const status = sh('cat', [`/proc/${pid}/status`]);
  return Number(/^Uid:\s*(\d+)/m.exec(status)?.[1]);
}

/** What the system tools (not the code under test) still show of the stack. */
function systemTraces(): string[] {
  const traces: string[] = [];
  for (const line of sh('ip', ['netns', 'list']).split('\n'))
    if (line.startsWith(`trellis.${STACK}`)) traces.push(`netns ${line}`);
  if (sh('ip', ['-o', 'link']).includes(`trl-${STACK}`)) traces.push('link');
  if (sh('ip', ['-4', 'route', 'show', 'table', 'all']).includes('198.18.63.'))
    traces.push('route');
  for (const line of sh('getent', ['passwd']).split('\n'))
    if (line.includes(`trellis pod ${STACK}/`)) traces.push(`user ${line}`);
  return traces;
}

async function expectGone(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (pids.some((p) => alive(p)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 25));
  expect(pids.filter((p) => alive(p))).toEqual([]);
}

beforeAll(async () => {
  await cleanupStale(STACK); // an earlier run that was killed
  stack = await createPods({
    stack: STACK,
    subnet,
    pods: [
      { name: 'a', slot: 0 },
      { name: 'b', slot: 1 },
    ],
  });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await teardownPods(STACK).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('pods on network namespaces', () => {
  it('gives each pod its address, its own user, loopback, and the same result when created again', async () => {
    expect(pod('a').address).toBe('198.18.63.2');
    expect(pod('b').address).toBe('198.18.63.3');
    expect(pod('a').user.uid).not.toBe(pod('b').user.uid);
    expect(pod('a').user.uid).toBeGreaterThan(0);
    expect(sh('ip', ['-n', pod('a').netns, '-o', 'link', 'show', 'lo'])).toContain('UP');
    const again = await createPods({
      stack: STACK,
      subnet,
      pods: [
        { name: 'a', slot: 0 },
        { name: 'b', slot: 1 },
      ],
    });
    expect(again).toEqual(stack);
  });

  it('repairs a half-made pod when created again (its veth gone, as after a crash mid-create)', async () => {
    sh('ip', ['-n', `trellis.${STACK}`, 'link', 'del', 'p-a']); // takes A's eth0 with it
    expect(sh('ip', ['-n', pod('a').netns, '-o', 'link'])).not.toContain('eth0');
    const again = await createPods({
      stack: STACK,
      subnet,
      pods: [
        { name: 'a', slot: 0 },
        { name: 'b', slot: 1 },
      ],
    });
    expect(again).toEqual(stack);
    expect(sh('ip', ['-n', pod('a').netns, '-4', '-o', 'addr', 'show', 'eth0'])).toContain(
      `${pod('a').address}/24`,
    );
    // No IPv6 on the wire: neither on the pod's eth0 nor anywhere in the bridge namespace.
    expect(sh('ip', ['-n', pod('a').netns, '-6', '-o', 'addr', 'show', 'eth0'])).toBe('');
    expect(sh('ip', ['-n', `trellis.${STACK}`, '-6', '-o', 'addr'])).toBe('');
  });

  it('keeps a 127.0.0.1 listener of A inside A: reachable from A, refused from the host and B', async () => {
    const port = await freePort('127.0.0.1'); // free on the host, so a refusal there means something
    await serveIn(pod('a'), '127.0.0.1', port, 'a-private');
    expect(connectFrom(pod('a'), '127.0.0.1', port)).toBe(`a-private uid=${pod('a').user.uid}`);
    expect(await connectFromHost('127.0.0.1', port)).toBe('ERR ECONNREFUSED');
    expect(await connectFromHost(pod('a').address, port)).toBe('ERR ECONNREFUSED');
    expect(connectFrom(pod('b'), '127.0.0.1', port)).toMatch(/^ERR Connection refused/);
    expect(connectFrom(pod('b'), pod('a').address, port)).toMatch(/^ERR Connection refused/);
  });

  it("reaches a listener on A's pod address from B and from the host; it runs as A's user in A", async () => {
    const port = 9_000;
    const server = await serveIn(pod('a'), pod('a').address, port, 'a-public');
    const want = `a-public uid=${pod('a').user.uid}`;
    expect(connectFrom(pod('b'), pod('a').address, port)).toBe(want);
    expect(await connectFromHost(pod('a').address, port)).toBe(want);
    const pid = server.pid ?? 0;
    expect(uidOf(pid)).toBe(pod('a').user.uid);
    const nsInode = statSync(`/run/netns/${pod('a').netns}`).ino;
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${nsInode}]`);
    expect(sh('cat', [`/proc/${pid}/status`])).toMatch(/^CapEff:\s*0+$/m);
  });

  it('routes nothing off the pod subnet: no default route, no forwarding on the host link', () => {
    const a = pod('a').netns;
    expect(sh('ip', ['-n', a, 'route', 'get', pod('b').address])).toContain('dev eth0');
    expect(sh('ip', ['-n', a, '-4', 'route', 'show']).trim()).toBe(
      `198.18.63.0/24 dev eth0 proto kernel scope link src ${pod('a').address}`,
    );
    expect(() => sh('ip', ['-n', a, 'route', 'get', '203.0.113.1'])).toThrow(/unreachable/);
    expect(sh('cat', [`/proc/sys/net/ipv4/conf/trl-${STACK}/forwarding`]).trim()).toBe('0');
  });

  it("lets A's user read A's key and B's user not; flags a CA key a pod user could read", async () => {
    const [a, b] = [pod('a').user, pod('b').user];
    podDir(join(dir, 'a'), a);
    podDir(join(dir, 'b'), b);
    const keyA = join(dir, 'a', 'svid.key');
    const keyB = join(dir, 'b', 'svid.key');
    // A link A's user planted where its key goes must be replaced, not followed.
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'ROOT-ONLY\n', { mode: 0o600 });
    symlinkSync(victim, keyA);
    await writePodKey(keyA, 'A-SECRET\n', a);
    expect(lstatSync(keyA).isFile()).toBe(true);
    expect(statSync(victim).uid).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('ROOT-ONLY\n');
    await writePodKey(keyB, 'B-SECRET\n', b);
    expect(statSync(keyA).mode & 0o777).toBe(0o400);
    expect(statSync(keyA).uid).toBe(a.uid);
    expect(await readableBy(a, [keyA, keyB])).toEqual([keyA]);
    expect(await readableBy(b, [keyA, keyB])).toEqual([keyB]);

    const caKey = join(dir, 'ca.key');
    writeFileSync(caKey, 'CA-SECRET\n', { mode: 0o644 }); // a careless CA key: world-readable
    await expect(assertCaKeysUnreadable([caKey], [a, b])).rejects.toThrow(
      `${caKey} by ${a.name} (uid ${a.uid}); ${caKey} by ${b.name}`,
    );
    chmodSync(caKey, 0o600);
    await expect(assertCaKeysUnreadable([caKey], [a, b])).resolves.toBeUndefined();
  });

  it("runs a supervised process in A as A's user and stops it", async () => {
    const port = 9_001;
    const spec = {
      name: 'pod-server',
      command: PERL,
      args: ['-e', SERVER, pod('a').address, String(port), 'a-supervised'],
      env: { PATH: '/usr/bin:/bin' },
      cwd: dir,
      logFile: join(dir, 'pod-server.log'),
      stateFile: join(dir, 'pod-server.state.json'),
      pod: pod('a').launch,
    };
    const st = await startSupervised(spec);
    const want = `a-supervised uid=${pod('a').user.uid}`;
    const deadline = Date.now() + 10_000;
    let got = await connectFromHost(pod('a').address, port);
    while (got !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      got = await connectFromHost(pod('a').address, port);
    }
    expect(got).toBe(want);
    expect(uidOf(st.childPid ?? 0)).toBe(pod('a').user.uid);
    await stopSupervised(spec.stateFile);
    await expectGone([st.childPid ?? 0]);
    expect(await connectFromHost(pod('a').address, port)).toBe('ERR ECONNREFUSED');
  });

  it('shows the toolchain under /root to a pod user only through reveal, read-only', () => {
    const node = process.execPath; // under /root/.cache/trellis, which a pod user cannot reach
    const toolchain = node.split('/').slice(0, 4).join('/');
    const run = (launch: Pod['launch'], args: string[]) => {
      const argv = podCommand(launch, node, args);
      try {
        return execFileSync(argv.command, argv.args, { timeout: 10_000, stdio: 'pipe' })
          .toString()
          .trim();
      } catch (err) {
        return `ERR ${String((err as { stderr?: Buffer }).stderr ?? err)}`;
      }
    };
    const revealed = { ...pod('a').launch, reveal: [toolchain] };
    const script = `const fs = require('node:fs');
      let w = 'writable'; try { fs.writeFileSync(${JSON.stringify(`${toolchain}/.pod-probe`)}, 'x') } catch (e) { w = e.code }
      console.log(process.getuid(), w, fs.readdirSync('/root').join(','))`;
    // Runs as A's user; the toolchain is read-only; /root holds nothing else in the pod's view.
    expect(run(revealed, ['-e', script])).toBe(`${pod('a').user.uid} EROFS .cache`);
    // Without it, setpriv still execs the binary itself (the lookup happens before its
    // capabilities are gone), but nothing the process opens there afterwards.
    const stat = `try { require('node:fs').statSync(process.execPath); console.log('seen') } catch (e) { console.log(e.code) }`;
    expect(run(revealed, ['-e', stat])).toBe('seen');
    expect(run(pod('a').launch, ['-e', stat])).toBe('EACCES');
    expect(statSync('/root').mode & 0o777).toBe(0o700); // the host's /root is untouched
  });

  it('refuses a supervised pod spec whose namespace does not exist, naming the field', async () => {
    const spec = {
      name: 'nowhere',
      command: PERL,
      args: ['-e', '1'],
      env: {},
      cwd: dir,
      logFile: join(dir, 'nowhere.log'),
      stateFile: join(dir, 'nowhere.state.json'),
      pod: { ...pod('a').launch, netns: `trellis.${STACK}.missing` },
    };
    await expect(startSupervised(spec)).rejects.toThrow(
      `pod.netns: namespace trellis.${STACK}.missing does not exist`,
    );
  });

  it('refuses a stack whose subnet a network of the machine uses, and leaves nothing of it', async () => {
    const other = 'ctpods-other';
    const clash = createPods({ stack: other, subnet, pods: [{ name: 'a', slot: 0 }] });
    await expect(clash).rejects.toThrow(
      `pod subnet 198.18.63.0/24 of stack ${other} overlaps networks of this machine: ` +
        `198.18.63.0/24 dev trl-${STACK} (table main)`,
    );
    expect(sh('ip', ['netns', 'list'])).not.toContain(`trellis.${other}`);
    expect(sh('getent', ['passwd'])).not.toContain(`trellis pod ${other}/`);
  });

  it('tears down every namespace, link, route, user, process, and the files the users left in /tmp', async () => {
    const pids = children.map((c) => c.pid ?? 0).filter((p) => alive(p));
    expect(pids.length).toBeGreaterThan(0);
    expect(systemTraces().length).toBeGreaterThan(0);
    // What a pod's processes leave in the shared scratch dirs (a JVM's hsperfdata dir, Envoy's
    // shared memory after a SIGKILL); root's own file next to them must stay.
    const a = pod('a');
    const leave = podCommand(a.launch, '/bin/sh', [
      '-c',
      'mkdir "/tmp/hsperfdata_$1" && echo 1 > "/tmp/hsperfdata_$1/123" && echo x > "/dev/shm/ctpods-$1"',
      'sh',
      a.user.name,
    ]);
    execFileSync(leave.command, leave.args, { timeout: 10_000 });
    const left = [`/tmp/hsperfdata_${a.user.name}`, `/dev/shm/ctpods-${a.user.name}`];
    for (const f of left) expect(statSync(f).uid, f).toBe(a.user.uid);
    const rootsOwn = join(tmpdir(), `ctpods-root-${process.pid}`);
    writeFileSync(rootsOwn, 'root');
    try {
      const found = await teardownPods(STACK);
      expect(found.netns).toEqual([`trellis.${STACK}`, `trellis.${STACK}.a`, `trellis.${STACK}.b`]);
      expect(found.users).toHaveLength(2);
      await expectGone(pids);
      expect(systemTraces()).toEqual([]);
      expect(left.filter((f) => existsSync(f))).toEqual([]);
      expect(readFileSync(rootsOwn, 'utf8')).toBe('root');
    } finally {
      rmSync(rootsOwn, { force: true });
    }
  });

  it('cleans up what a crash left (pods made, handle dropped, a process still running)', async () => {
    const crashed = await createPods({ stack: STACK, subnet, pods: [{ name: 'a', slot: 0 }] });
    const a = crashed.pods.a;
    if (!a) throw new Error('pod a missing');
    const orphan = await serveIn(a, a.address, 9_002, 'orphan');
    orphan.unref(); // as if the engine died: nothing in memory refers to the pods any more
    expect(systemTraces().length).toBeGreaterThan(0);
    const found = await cleanupStale(STACK);
    expect(found.pids).toContain(orphan.pid);
    await expectGone([orphan.pid ?? 0]);
    expect(systemTraces()).toEqual([]);
  });
});
