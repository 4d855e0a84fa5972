/**
 * What a pod adds to an Envoy traversal (issue 11), measured in one run with both set-ups live:
 *
 *   A, no pod (host loopback, as root):
 *     probe L ─┬─ mTLS ─▶ sidecar Envoy 127.0.0.1 ─▶ app 127.0.0.1
 *              └──────────────────────────────────▶ app                  (the direct hop)
 *     probe C ── mTLS ─▶ sidecar Envoy 127.0.0.1 ─▶ app
 *
 *   B, pods (the project's pod code: namespaces, veths, the bridge namespace, one user per pod):
 *     pod "server" (its user):  probe L ─┬─ mTLS ─▶ sidecar Envoy <pod address> ─▶ app 127.0.0.1
 *                                        └────────────────────────────────────────▶ app
 *     pod "client" (its user):  probe C ── veth ─ bridge ─ veth ── mTLS ─▶ sidecar Envoy ─▶ app
 *
 * Both sidecars are the orders-api sidecar as the stack compiles it (`sidecarArtefacts`: inbound mTLS
 * with the callers' SANs, jwt_authn against a real Keycloak, RBAC, local rate limits, XFCC, access
 * log), one worker each, in front of the same tiny app program. Definitions, per block:
 *
 * - `traversal:local`: the median over iterations of (GET through the sidecar − GET straight to the
 *   app), the two sent back to back by probe L from inside the sidecar's network namespace. What the
 *   stack's per-hop probe reports (docs/performance.md).
 * - `traversal:cross`: median of probe C's GETs through the sidecar − median of L's direct GETs in
 *   the same block. For B that is the realistic path: another pod's request crossing the bridge.
 * - `cpu:envoy`, `cpu:app`: CPU ms (utime + stime, /proc/<pid>/stat) over the block per request.
 *
 * Only one arm is loaded at a time: blocks A and B alternate in randomized pairs (the gate's
 * `planBlocks`), L for the first half of a block and C for the second, at a fixed rate. The gate's
 * `judgeBlocks` compares the blocks (Mann–Whitney U, Hodges–Lehmann shift); the verdict against the
 * 10 % limit uses the shift's 95 % interval (pod-overhead-figures.ts). Needs root (pods).
 *
 *   node load-tests/bench/pod-overhead.ts [--pairs 10] [--block 12] [--rate 200] [--seed 1]
 *                                         [--out reports]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createTcpServer, connect as tcpConnect, type Server } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { identityHeaders } from '@trellis/contracts';
import { sidecarArtefacts } from '@trellis/components/local/sidecar';
import {
  CertificateAuthority,
  ManagedProcess,
  envoyArgs,
  freePorts,
  startKeycloak,
  waitUntil,
  writePemFiles,
  type KeycloakInstance,
  type PemFiles,
} from '@trellis/local/harness';
import {
  createPods,
  podCommand,
  stackSubnet,
  teardownPods,
  type Pod,
  type PodLaunch,
} from '@trellis/local/pods';
import { cacheRoot, envoy } from '@trellis/local/toolchain';
import {
  bindOrThrow,
  compileKeycloakRealm,
  parseModel,
  spiffeId,
  type BoundModel,
} from '@trellis/policy';
import { cpuSeconds } from '../src/cpu.ts';
import { judgeBlocks, type BlockObservation, type GateMetric } from '../src/gate/compare.ts';
import { planBlocks, type Arm } from '../src/gate/plan.ts';
import { median } from '../src/gate/stats.ts';
import {
  blockFigures,
  limitVerdict,
  shiftInterval,
  type BlockFigures,
  type ProbeBlock,
} from './pod-overhead-figures.ts';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '10' },
    block: { type: 'string', default: '12' },
    rate: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: resolve(import.meta.dirname, '..', '..', 'reports') },
  },
});
const num = (field: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= min && n <= max))
    throw new Error(`--${field}: ${v} is not a number from ${min} to ${max}`);
  return n;
};
const PAIRS = num('pairs', values.pairs, 5, 40);
const BLOCK_S = num('block', values.block, 2, 60);
const RATE = num('rate', values.rate, 10, 1000);
const SEED = num('seed', values.seed, 0, 2 ** 31);
/** The issue's limit: pods may add at most this fraction to a traversal. */
const LIMIT = 0.1;
/** The bench's own pod stack: a /24 clear of the tests' (10000–27000, 61000, 63000) and `local`. */
const STACK = 'podbench';
const SUBNET = stackSubnet(57_000); // 198.18.57.0/24
const MODEL_FILE = resolve(import.meta.dirname, '..', '..', 'trellis.yaml');

/** The app both sidecars front: answers any GET /orders/<uuid> with 200 when the payload header is there. */
const APP = String.raw`
const [host, port, header] = process.argv.slice(1);
const s = require('node:http').createServer((req, res) => {
  const ok = req.method === 'GET' && /^\/orders\/[0-9a-f-]{36}$/.test(req.url) && typeof req.headers[header] === 'string';
  const body = ok ? JSON.stringify({ id: req.url.slice(8), sku: 'bench', quantity: 1, subject: 'loader', createdAt: '2026-12-06T00:00:00.000Z' }) : '{"error":"no"}';
  res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
  res.end(body);
});
s.keepAliveTimeout = 600000; s.headersTimeout = 601000;
s.listen(Number(port), host, () => console.log('ready'));
`;

/**
 * The probe (CommonJS for `node -e`). stdin: the config as one JSON line (with the client key, which
 * a pod user may not read from disk), then `run <ms>` lines; each prints one block's samples as a
 * JSON line. One kept-alive connection per path. Each iteration is paced at the configured rate
 * and, with a direct URL, sends the two GETs back to back in random order.
 */
const PROBE = String.raw`
const http = require('node:http'), https = require('node:https');
let cfg = null, plainAgent, tlsAgent;
function get(tls) {
  const headers = tls ? { authorization: 'Bearer ' + cfg.token }
    : { [cfg.payloadHeader]: cfg.token.split('.')[1] || '', [cfg.xfccHeader]: cfg.xfcc };
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = (tls ? https : http).request(new URL(cfg.path, tls ? cfg.sidecarUrl : cfg.appUrl),
      { method: 'GET', headers, agent: tls ? tlsAgent : plainAgent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? Number(process.hrtime.bigint() - t0) / 1e6 : null));
      });
    req.on('error', () => resolve(null));
    req.end();
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function block(ms) {
  const S = { sidecar: [], direct: [], diffs: [], sidecarRequests: 0, directRequests: 0, failures: 0 };
  const period = 1000 / cfg.rate, end = performance.now() + ms;
  let next = performance.now();
  while (performance.now() < end) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    next = Math.max(next + period, performance.now() - period);
    const order = cfg.appUrl ? (Math.random() < 0.5 ? [true, false] : [false, true]) : [true];
    const took = {};
    for (const tls of order) {
      const t = await get(tls);
      took[tls ? 'sidecar' : 'direct'] = t;
      if (tls) S.sidecarRequests++; else S.directRequests++;
      if (t === null) S.failures++; else S[tls ? 'sidecar' : 'direct'].push(t);
    }
    if (cfg.appUrl && took.sidecar != null && took.direct != null) S.diffs.push(took.sidecar - took.direct);
  }
  process.stdout.write(JSON.stringify(S) + '\n');
}
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  if (cfg === null) {
    cfg = JSON.parse(l);
    plainAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // The sidecar's certificate names its SPIFFE ID only: the chain is checked, the name is not.
    tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 1, cert: cfg.cert, key: cfg.key, ca: cfg.ca, checkServerIdentity: () => undefined });
    console.log('ready');
  } else if (l.startsWith('run ')) block(Number(l.slice(4)));
  else if (l === 'end') process.exit(0);
});
`;

/** A long-running child that answers line by line (the app prints `ready`, the probe its blocks). */
class LineChild {
  private readonly lines: string[] = [];
  private waiter: ((l: string) => void) | null = null;
  private stderr = '';
  readonly pid: number;
  readonly name: string;
  private readonly child: ChildProcess;
  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    if (child.pid === undefined) throw new Error(`${name}: did not start`);
    this.pid = child.pid;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(l);
      } else this.lines.push(l);
    });
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    child.stdin?.on('error', () => undefined);
  }
  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }
  /** The next line, or an error naming the child when it exits or takes longer than `ms`. */
  next(ms: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        rej(new Error(`${this.name}: no answer in ${ms} ms. ${this.stderr.slice(-400)}`));
      }, ms);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        rej(new Error(`${this.name} exited ${code}: ${this.stderr.slice(-400)}`));
      };
      this.child.once('exit', onExit);
      this.waiter = (line) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        res(line);
      };
    });
  }
  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

function spawnLines(name: string, pod: PodLaunch | null, args: string[]): LineChild {
  const argv = pod ? podCommand(pod, process.execPath, args) : { command: process.execPath, args };
  const child = spawn(argv.command, argv.args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new LineChild(name, child);
}

/** cpuSeconds in ms, throwing when the process is gone (a restart would spoil the per-request figure). */
function cpuMs(pid: number, what: string): number {
  const s = cpuSeconds(pid);
  if (s === null) throw new Error(`${what} (pid ${pid}) is gone`);
  return s * 1000;
}

/** `comm` of a pid: checks that the pid read for CPU is the program itself, not a launcher. */
function comm(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/** Give `path` (a file or a tree) to `owner`, directories 0700. */
function giveTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  if (statSync(path).isDirectory()) {
    chmodSync(path, 0o700);
    for (const e of readdirSync(path)) giveTree(join(path, e), owner);
  }
}

/** A TCP forwarder on `host` to 127.0.0.1:`port`: how the pod's sidecar fetches Keycloak's JWKS. */
function forwarder(host: string, to: number): Promise<{ server: Server; port: number }> {
  const server = createTcpServer((c) => {
    const u = tcpConnect({ host: '127.0.0.1', port: to });
    c.pipe(u).pipe(c);
    const end = (): void => {
      c.destroy();
      u.destroy();
    };
    c.on('error', end);
    u.on('error', end);
  });
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, host, () => {
      const a = server.address();
      if (a === null || typeof a === 'string') return rej(new Error('forwarder: no port'));
      res({ server, port: a.port });
    });
  });
}

/** An access token for the bench user (the password grant of the CLI's client), trusting `ca`. */
function passwordToken(url: string, password: string, ca: string): Promise<string> {
  const body = new URLSearchParams({
    grant_type: 'password',
    client_id: 'trellis-cli',
    username: 'loader',
    password,
  }).toString();
  return new Promise((res, rej) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        ca,
        family: 4,
        timeout: 10_000,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      (r) => {
        let text = '';
        r.setEncoding('utf8').on('data', (c: string) => (text += c));
        r.on('end', () => {
          const t = (JSON.parse(text || '{}') as { access_token?: unknown }).access_token;
          if (r.statusCode !== 200 || typeof t !== 'string')
            rej(new Error(`token request answered ${r.statusCode}`));
          else res(t);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('token request: no answer in 10 s')));
    req.on('error', rej);
    req.end(body);
  });
}

/** One arm's set-up: its app, its Envoy, its two probes. */
interface ArmSetup {
  arm: Arm;
  label: string;
  app: LineChild;
  envoy: ManagedProcess;
  local: LineChild;
  cross: LineChild;
}

const stops: (() => Promise<void> | void)[] = [];
async function stopAll(): Promise<void> {
  for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => undefined);
  stops.length = 0;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => void stopAll().finally(() => process.exit(130)));

const root = mkdtempSync(join(tmpdir(), 'trellis-podbench-'));
chmodSync(root, 0o711); // pod users pass through to their own dirs and the public pki dir
stops.push(() => rmSync(root, { recursive: true, force: true }));
const loadBefore = loadavg();
const startedAt = new Date();

try {
  // ── The model, a real Keycloak (HTTPS) and the identities ────────────────────────────────────
  const text = readFileSync(MODEL_FILE, 'utf8');
  const base = parseModel(text);
  if (!base.ok) throw new Error('trellis.yaml is invalid');
  const password = randomBytes(18).toString('base64url');
  const realm = compileKeycloakRealm(
    bindOrThrow(base.model, { kind: 'example', baseDir: '/srv' }, 'example plan'),
    {
      users: [{ username: 'loader', password, roles: ['order-writer'] }],
      accessTokenLifespan: 3_600,
    },
  );
  const rootCa = await CertificateAuthority.create({ commonName: 'pod bench root', validDays: 1 });
  const ca = await rootCa.intermediate({ commonName: 'pod bench local', validDays: 1 });
  const pki = join(root, 'pki');
  mkdirSync(pki, { mode: 0o755 });
  const rootFile = join(pki, 'root.pem');
  writeFileSync(rootFile, ca.rootPem, { mode: 0o644 });
  const kcCert = writePemFiles(
    join(root, 'keycloak-pki'),
    'keycloak',
    await ca.issue({
      commonName: 'localhost',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
      validDays: 1,
    }),
    ca.rootPem,
  );
  console.error('pod-overhead: starting Keycloak…');
  const kc: KeycloakInstance = await startKeycloak({
    dir: join(root, 'keycloak'),
    realm: realm as unknown as { realm: string },
    tls: { certFile: kcCert.cert, keyFile: kcCert.key, caFile: rootFile },
    hostname: (port) => `https://localhost:${port}`,
  });
  stops.push(() => kc.stop());
  const oldIssuer = base.model.identityProviders.keycloak?.issuer ?? '';
  const parsed = parseModel(text.split(oldIssuer).join(kc.issuer));
  if (!parsed.ok) throw new Error('rewritten model is invalid');
  const model: BoundModel = bindOrThrow(
    parsed.model,
    { kind: 'example', baseDir: '/srv' },
    'example plan',
  );
  const kcPort = Number(new URL(kc.baseUrl).port);
  const token = await passwordToken(
    `${kc.issuer}/protocol/openid-connect/token`,
    password,
    ca.rootPem,
  );
  const svid = async (w: string) => await ca.issue({ uris: [spiffeId(model, w)], validDays: 1 });
  const client = await svid('ingress');
  const server = await svid('orders-api');

  // ── The pods ─────────────────────────────────────────────────────────────────────────────────
  console.error(`pod-overhead: creating pods of stack ${STACK} (${SUBNET.cidr})…`);
  await teardownPods(STACK); // what a crashed run of the bench left
  stops.push(async () => {
    await teardownPods(STACK);
  });
  const pods = await createPods({
    stack: STACK,
    subnet: SUBNET,
    pods: [
      { name: 'server', slot: 0 },
      { name: 'client', slot: 1 },
    ],
  });
  // The toolchain (node, envoy) sits under /root (0700): shown read-only, as the stack's pods do.
  const reveal = [cacheRoot()];
  const podOf = (n: string): Pod & { launch: PodLaunch } => {
    const p = pods.pods[n];
    if (!p) throw new Error(`no pod ${n}`);
    return { ...p, launch: { ...p.launch, reveal } };
  };
  const serverPod = podOf('server');
  const clientPod = podOf('client');
  const kcFwd = await forwarder(SUBNET.hostAddress, kcPort);
  stops.push(() => new Promise<void>((r) => kcFwd.server.close(() => r())));

  // ── Two identical sidecar set-ups ──────────────────────────────────────────────────────────────
  const [appA, sidecarA, appB, sidecarB, dummy] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const bin = await envoy.ensure();
  const payloadHeader = identityHeaders.jwtPayload;
  const probeInput = (sidecarUrl: string, appUrl: string | null) => ({
    rate: RATE,
    sidecarUrl,
    appUrl,
    path: '/orders/0f8fad5b-d9cb-469f-a165-70867728950e',
    token,
    payloadHeader,
    xfccHeader: identityHeaders.clientCert,
    xfcc: `URI=${spiffeId(model, 'ingress')}`,
    cert: client.chainPem,
    key: client.keyPem,
    ca: ca.rootPem,
  });

  async function setUp(
    arm: Arm,
    label: string,
    where: { server: PodLaunch | null; client: PodLaunch | null; owner: Pod | null },
    address: string,
    ports: { app: number; sidecar: number },
    jwks: { address: string; port: number },
  ): Promise<ArmSetup> {
    const dir = join(root, `arm-${arm}`);
    mkdirSync(dir, { recursive: true });
    const files: PemFiles = writePemFiles(join(dir, 'pki'), 'orders-api', server, ca.rootPem);
    const a = sidecarArtefacts(
      model,
      {
        workload: 'orders-api',
        inbound: { http: ports.sidecar },
        inboundAddress: address,
        app: { http: { address: '127.0.0.1', port: ports.app } },
        outbound: {
          cassandra: { address: '127.0.0.1', port: dummy },
          kafka: { address: '127.0.0.1', port: dummy },
        },
        jwks: { keycloak: { ...jwks, caFile: rootFile } },
        payloadHeader,
        accessLog: 'access.log',
      },
      dir,
      { cert: files.cert, key: files.key, bundle: files.truststore },
    );
    for (const [path, content] of Object.entries(a.sdsFiles)) {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, JSON.stringify(content));
    }
    const configPath = join(dir, 'envoy.json');
    writeFileSync(configPath, JSON.stringify(a.bootstrap));
    if (where.owner) giveTree(dir, where.owner.user); // the pod's files are its user's, 0700
    const app = spawnLines(`app ${label}`, where.server, [
      '-e',
      APP,
      '127.0.0.1',
      String(ports.app),
      payloadHeader,
    ]);
    stops.push(() => app.stop());
    if ((await app.next(15_000)) !== 'ready') throw new Error(`app ${label} did not start`);
    const args = [
      ...envoyArgs({ configPath, concurrency: 1, logLevel: 'warning' }),
      '--config-yaml',
      JSON.stringify({
        admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      }),
    ];
    const cmd = where.server ? podCommand(where.server, bin, args) : { command: bin, args };
    const proc = ManagedProcess.start({
      name: `envoy ${label}`,
      command: cmd.command,
      args: cmd.args,
      dir: join(root, `envoy-${arm}-run`), // root's: log and pid
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stopGraceMs: 5_000,
    });
    stops.push(() => proc.stop());
    const local = spawnLines(`probe L ${label}`, where.server, ['-e', PROBE]);
    stops.push(() => local.stop());
    const cross = spawnLines(`probe C ${label}`, where.client, ['-e', PROBE]);
    stops.push(() => cross.stop());
    const sidecarUrl = `https://${address}:${ports.sidecar}`;
    local.send(JSON.stringify(probeInput(sidecarUrl, `http://127.0.0.1:${ports.app}`)));
    cross.send(JSON.stringify(probeInput(sidecarUrl, null)));
    for (const p of [local, cross])
      if ((await p.next(15_000)) !== 'ready') throw new Error(`${p.name} did not start`);
    // Ready when a GET through the sidecar answers 200 (listeners up, SDS loaded, JWKS fetched).
    await waitUntil(
      async () => {
        local.send('run 200');
        const s = JSON.parse(await local.next(10_000)) as ProbeBlock;
        return s.diffs.length > 0 ? true : null;
      },
      {
        what: `${label}: a GET through the sidecar answers 200`,
        timeoutMs: 60_000,
        intervalMs: 500,
        proc,
      },
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${proc.tail(20)}`);
    });
    if (comm(proc.pid) !== 'envoy')
      throw new Error(`${label}: pid ${proc.pid} is ${comm(proc.pid)}, not envoy`);
    return { arm, label, app, envoy: proc, local, cross };
  }

  const host = await setUp(
    'A',
    'no pod',
    { server: null, client: null, owner: null },
    '127.0.0.1',
    { app: appA, sidecar: sidecarA },
    { address: '127.0.0.1', port: kcPort },
  );
  const pod = await setUp(
    'B',
    'pod',
    { server: serverPod.launch, client: clientPod.launch, owner: serverPod },
    serverPod.address,
    { app: appB, sidecar: sidecarB },
    { address: SUBNET.hostAddress, port: kcFwd.port },
  );
  for (const [s, uid] of [
    [pod, serverPod.user.uid],
    [host, 0],
  ] as const) {
    const owner = statSync(`/proc/${s.envoy.pid}`).uid;
    if (owner !== uid) throw new Error(`${s.label}: envoy runs as uid ${owner}, not ${uid}`);
  }

  // ── Interleaved blocks ─────────────────────────────────────────────────────────────────────────
  const plan = planBlocks({ pairs: PAIRS, blockS: BLOCK_S, warmupPairs: 1, gapS: 1, seed: SEED });
  const arms: Record<Arm, ArmSetup> = { A: host, B: pod };
  const half = Math.round((BLOCK_S * 1000) / 2);
  const observations: BlockObservation[] = [];
  const perBlock: {
    block: number;
    pair: number;
    arm: Arm;
    warmup: boolean;
    failures: number;
    figures: BlockFigures;
  }[] = [];
  console.error(
    `pod-overhead: ${plan.blocks.length} blocks of ${BLOCK_S} s (${plan.totalS} s), ${RATE} iterations/s`,
  );
  for (const b of plan.blocks) {
    const s = arms[b.arm];
    await new Promise((r) => setTimeout(r, plan.gapS * 1000));
    const cpuBefore = {
      envoy: cpuMs(s.envoy.pid, s.envoy.name),
      app: cpuMs(s.app.pid, s.app.name),
    };
    s.local.send(`run ${half}`);
    const local = JSON.parse(await s.local.next(half + 30_000)) as ProbeBlock;
    s.cross.send(`run ${half}`);
    const cross = JSON.parse(await s.cross.next(half + 30_000)) as ProbeBlock;
    const cpuAfter = { envoy: cpuMs(s.envoy.pid, s.envoy.name), app: cpuMs(s.app.pid, s.app.name) };
    const failures = local.failures + cross.failures;
    const sent = local.sidecarRequests + local.directRequests + cross.sidecarRequests;
    if (failures > sent * 0.01)
      throw new Error(`block ${b.index} (${s.label}): ${failures} of ${sent} requests failed`);
    const figures = blockFigures({ local, cross, cpuBefore, cpuAfter });
    perBlock.push({
      block: b.index,
      pair: b.pair,
      arm: b.arm,
      warmup: b.warmup,
      failures,
      figures,
    });
    observations.push({ block: b.index, values: { ...figures } });
    console.error(
      `  block ${String(b.index).padStart(2)} ${b.arm}${b.warmup ? ' (warm-up)' : '          '} ` +
        `local ${figures['traversal:local'].toFixed(3)} ms, cross ${figures['traversal:cross'].toFixed(3)} ms, ` +
        `envoy ${figures['cpu:envoy'].toFixed(3)} CPU-ms/req, ${local.sidecarRequests + cross.sidecarRequests} via Envoy`,
    );
  }

  // ── Judgement ──────────────────────────────────────────────────────────────────────────────────
  const metric = (key: string, label: string, unit: string): GateMetric => ({
    key,
    label,
    unit,
    minShift: 0,
    minRelativeShift: LIMIT,
  });
  const metrics = [
    metric('traversal:local', 'Envoy traversal, from the sidecar’s namespace', 'ms'),
    metric('traversal:cross', 'Envoy traversal, from the client’s place', 'ms'),
    metric('cpu:envoy', 'Envoy CPU per request', 'CPU-ms/req'),
    metric('cpu:app', 'app CPU per request', 'CPU-ms/req'),
  ];
  const verdict = judgeBlocks(plan, observations, metrics);
  const judged = perBlock.filter((p) => !p.warmup);
  const valuesOf = (arm: Arm, key: keyof BlockFigures) =>
    judged.filter((p) => p.arm === arm).map((p) => p.figures[key]);
  const loadAfter = loadavg();
  const rows = verdict.metrics.map((m) => {
    const key = m.metric.key as keyof BlockFigures;
    const interval = shiftInterval(valuesOf('A', key), valuesOf('B', key));
    return {
      key,
      label: m.metric.label,
      unit: m.metric.unit,
      medianA: m.medianA,
      medianB: m.medianB,
      ratio: m.ratio,
      shift: m.shift,
      interval95: interval,
      p: m.p,
      gate: m.outcome,
      limit: limitVerdict(interval, m.medianA, LIMIT),
    };
  });
  const reference = (['median:sidecar', 'median:direct', 'median:cross'] as const).map((k) => ({
    key: k,
    A: median(valuesOf('A', k)),
    B: median(valuesOf('B', k)),
  }));
  const report = {
    date: startedAt.toISOString(),
    command: `node load-tests/bench/pod-overhead.ts ${process.argv.slice(2).join(' ')}`.trim(),
    settings: {
      pairs: PAIRS,
      blockS: BLOCK_S,
      rate: RATE,
      seed: SEED,
      order: plan.order,
      alpha: plan.alpha,
      limit: LIMIT,
    },
    loadavg: { before: loadBefore, after: loadAfter },
    cpus: cpus().length,
    metrics: rows,
    reference,
    blocks: perBlock,
  };
  mkdirSync(values.out, { recursive: true });
  const file = join(
    values.out,
    `pod-overhead-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  const f = (x: number, d = 3) => x.toFixed(d);
  const lines = [
    `pod overhead, ${report.date}, ${report.cpus} CPUs, load ${loadBefore.map((x) => f(x, 2)).join(' ')} → ${loadAfter.map((x) => f(x, 2)).join(' ')}`,
    `${PAIRS} judged pairs (+1 warm-up) of ${BLOCK_S} s, ${RATE} iterations/s, seed ${SEED}, α ${plan.alpha}, limit +${LIMIT * 100} %`,
    '',
    '| metric | A no pod (median of blocks) | B pod | ratio B/A | HL shift [95 %] | p | gate | vs +10 % |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${f(r.medianA)} ${r.unit} | ${f(r.medianB)} ${r.unit} | ${r.ratio === null ? '–' : f(r.ratio)} | ` +
        `${r.shift >= 0 ? '+' : ''}${f(r.shift)} [${f(r.interval95.low)}, ${f(r.interval95.high)}] | ${r.p.toPrecision(2)} | ${r.gate} | ${r.limit} |`,
    ),
    '',
    ...reference.map((r) => `${r.key}: A ${f(r.A)} ms, B ${f(r.B)} ms`),
    `report: ${file}`,
  ];
  console.log(lines.join('\n'));
} finally {
  await stopAll();
}
