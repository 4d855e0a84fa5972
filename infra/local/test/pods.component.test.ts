// orders-api as a pod, for real: `pulumi up` of a test program (infra/local's data, identity and mesh
// modules with `pods` on; see fixtures/pods) puts orders-api and its sidecar in a network namespace
// of their own, as their own user. Every refusal below first shows the same path working from the
// right place. Needs root (namespaces, veths, users).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isClean, podCommand, podLeftovers, type PodLaunch } from '@trellis/local/pods';
import { localPortsAt, type WorkloadBinding } from '@trellis/policy';
import { percentile, podProbePlan, startPodProbe } from '@trellis/load-tests';
import { requestToken, type Principals } from '../../../packages/cli/src/verbs/token.ts';
import { pickBase, TestStack } from './support/test-stack.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/pods/', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));
const STACK = 'pods-test';

interface Outputs {
  caFile: string;
  ingressUrl: string;
  services: Record<string, { url: string }>;
  principals: Principals;
  ordersApi: WorkloadBinding;
  pods: Record<string, { address: string; user: string; launch: PodLaunch }>;
}

let out: Outputs;
let token = '';
let destroyed = false;

const ts = new TestStack({
  fixture: FIXTURE,
  stack: STACK,
  tmpPrefix: 'trellis-pods-',
  timeoutMs: 480_000,
});

/** Forged identity headers: what the app trusts from its sidecar, and nobody else may send. */
const forged = {
  'content-type': 'application/json',
  'x-jwt-payload': Buffer.from(JSON.stringify({ sub: 'forged', scope: 'orders:write' })).toString(
    'base64url',
  ),
  'x-forwarded-client-cert': 'URI=spiffe://trellis.local/ns/trellis/sa/ingress',
};
const orderBody = JSON.stringify({ sku: 'pod-1', quantity: 1 });

function launch(): PodLaunch {
  const p = out.pods['orders-api'];
  if (!p) throw new Error('no orders-api pod in the outputs');
  return p.launch;
}

/**
 * Run a Node script inside orders-api's pod as its user (at most 20 s); resolves to its stdout.
 * The script gets `args` as `process.argv[1..]`.
 */
function inPod(script: string, args: string[]): Promise<string> {
  const argv = podCommand(launch(), process.execPath, ['-e', script, ...args]);
  return new Promise((resolve, reject) =>
    execFile(argv.command, argv.args, { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

/** POST the forged order to `host:port` from here; the status, or the error code. */
function postFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host, port, path: '/orders', method: 'POST', headers: forged, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end(orderBody);
  });
}

const POST_SCRIPT = `const [host, port, headers, body] = process.argv.slice(1);
const req = require('node:http').request({ host, port: Number(port), path: '/orders', method: 'POST',
  headers: JSON.parse(headers), timeout: 10000 }, (res) => { res.resume(); res.on('end', () => console.log(res.statusCode)); });
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
req.on('error', (e) => console.log(e.code ?? e.message)); req.end(body);`;

/** A CQL v4 OPTIONS frame; Cassandra answers SUPPORTED (opcode 0x06). */
const CQL_SCRIPT = `const [host, port] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port) });
let buf = Buffer.alloc(0); s.setTimeout(10000);
s.on('connect', () => s.write(Buffer.from([4, 0, 0, 1, 5, 0, 0, 0, 0])));
s.on('data', (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 9) { console.log('opcode ' + buf[4]); s.destroy(); } });
s.on('timeout', () => { console.log('timeout'); s.destroy(); });
s.on('error', (e) => console.log(e.code));`;

/** Open a TCP connection from here; 'connected' or the error code. */
function connectFromHost(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 5_000 });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('timeout', () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function postThroughIngress(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${out.ingressUrl}/orders`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        ca: readFileSync(out.caFile),
        agent: false,
        timeout: 15_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(orderBody);
  });
}

beforeAll(async () => {
  await ts.init();
  const base = await pickBase((b) => {
    const p = localPortsAt(b);
    return [p.ingressHttps, p.keycloakHttp, p.keycloakManagement, p.cassandraNative]
      .concat(
        [p.kafkaClientsFrom, p.envoyAdminFrom, p.sidecarInboundFrom, p.appFrom].flatMap((s) =>
          Array.from({ length: 30 }, (_, i) => s + i),
        ),
      )
      .concat(Array.from({ length: 30 }, (_, i) => p.sidecarOutboundFrom + i));
  }, 'pods test stack');
  await ts.ok(['config', 'set', 'trellis-pods-test:stackDir', ts.stackDir]);
  await ts.ok(['config', 'set', 'trellis-pods-test:basePort', String(base)]);
  await ts.ok(['config', 'set', 'trellis-pods-test:model', MODEL]);
  await ts.ok(['up', '--yes', '--skip-preview']);
  out = JSON.parse(
    await ts.ok(['stack', 'output', '--json', '--show-secrets'], 60_000, false),
  ) as Outputs;
  token = await requestToken(out.principals, 'alice', { caFile: out.caFile });
}, 600_000);

afterAll(async () => {
  await ts.cleanup(!destroyed);
}, 300_000);

describe('orders-api as a pod', () => {
  it('takes alice’s POST through nginx and the ingress sidecar to the pod address: 201', async () => {
    const inbound = out.ordersApi.inbound.http;
    expect(inbound?.address).toBe(out.pods['orders-api']?.address);
    expect(inbound?.address).toMatch(/^198\.18\.\d+\.\d+$/);
    const r = await postThroughIngress();
    expect(r.status, r.body).toBe(201);
  });

  it('lets the forged POST reach the app from inside the pod only', async () => {
    const app = out.ordersApi.app.http;
    if (!app) throw new Error('orders-api has no app endpoint');
    expect(app.address).toBe('127.0.0.1');
    // The positive control: inside the pod, the app answers (it trusts its sidecar's headers).
    const inside = await inPod(POST_SCRIPT, [
      app.address,
      String(app.port),
      JSON.stringify(forged),
      orderBody,
    ]);
    expect(inside).toBe('201');
    // From the host nothing listens there any more.
    expect(await postFromHost(app.address, app.port)).toBe('ECONNREFUSED');
  });

  it('keeps the Cassandra egress listener inside the pod', async () => {
    const egress = out.ordersApi.egress.cassandra?.listen;
    if (!egress) throw new Error('orders-api has no Cassandra egress listener');
    // Inside: a plaintext CQL OPTIONS through the sidecar (mTLS as orders-api) gets SUPPORTED.
    expect(await inPod(CQL_SCRIPT, [egress.address, String(egress.port)])).toBe('opcode 6');
    expect(await connectFromHost(egress.address, egress.port)).toBe('ECONNREFUSED');
  });

  it("runs the per-hop probe's inner paths (sidecar, direct) from inside the pod", async () => {
    const b = out.ordersApi;
    const inbound = b.inbound.http;
    const app = b.app.http;
    if (!inbound || !app) throw new Error('orders-api has no inbound or app endpoint');
    const created = await postThroughIngress();
    expect(created.status, created.body).toBe(201);
    const id = (JSON.parse(created.body) as { id: string }).id;
    const ingressPki = join(dirname(out.caFile), 'ingress');
    const plan = podProbePlan(
      {
        ingressUrl: out.ingressUrl,
        tokenUrl: out.principals.tokenUrl,
        tokenForm: { grant_type: 'password' },
        mesh: {
          sidecarUrl: `https://${inbound.address}:${inbound.port}`,
          appUrl: `http://${app.address}:${app.port}`,
          clientCert: {
            certFile: join(ingressPki, 'cert.pem'),
            keyFile: join(ingressPki, 'key.pem'),
          },
          xfcc: 'URI=spiffe://trellis.local/ns/trellis/sa/ingress',
          pod: launch(),
        },
      },
      { name: 'get-order', recipe: 'get-order', method: 'GET', path: '/orders/{id}' },
    );
    if (!plan) throw new Error('no in-pod probe planned');
    const probe = startPodProbe(plan, {
      rate: 20,
      sidecarUrl: plan.sidecarUrl,
      appUrl: plan.appUrl,
      path: `/orders/${id}`,
      token,
      payloadHeader: plan.payloadHeader,
      ...(plan.xfcc ? { xfcc: plan.xfcc } : {}),
      // The ingress key is the ingress's own file: the probe, as orders-api's user, gets it on stdin.
      cert: readFileSync(join(ingressPki, 'cert.pem'), 'utf8'),
      key: readFileSync(join(ingressPki, 'key.pem'), 'utf8'),
      ca: readFileSync(out.caFile, 'utf8'),
    });
    await new Promise((r) => setTimeout(r, 1_000)); // warm-up
    probe.measure();
    await new Promise((r) => setTimeout(r, 3_000));
    const s = await probe.finish();
    expect(s.failures).toBe(0);
    expect(s.diffs.length).toBeGreaterThan(10);
    expect(s.sidecar.length).toBe(s.diffs.length);
    // Through the sidecar (mTLS, JWT, RBAC) costs more than straight to the app, on the median.
    expect(percentile(s.diffs, 50)).toBeGreaterThan(0);
    // And the app itself stays unreachable from the host meanwhile.
    expect(await postFromHost(app.address, app.port)).toBe('ECONNREFUSED');
  });

  it('leaves no namespace, link or pod user after destroy', async () => {
    expect(isClean(await podLeftovers(STACK))).toBe(false); // the pods exist before
    await ts.ok(['destroy', '--yes', '--skip-preview']);
    destroyed = true;
    const left = await podLeftovers(STACK);
    expect(left).toEqual({ netns: [], links: [], users: [], pids: [] });
  });
});
