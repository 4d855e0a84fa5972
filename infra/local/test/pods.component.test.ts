// Every workload as a pod, for real: `pulumi up` of a test program (infra/local's data, identity and
// mesh modules with `pods` on; see fixtures/pods) puts orders-api, orders-writer, ledger and the
// ingress (edge sidecar and nginx) each in a network namespace of their own, as their own user. Every refusal
// below first shows the same path working from the right place. Needs root (namespaces, veths,
// users).
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isClean, netnsPids, podCommand, podLeftovers, type PodLaunch } from '@trellis/local/pods';
import { localPortsAt, type Endpoint, type WorkloadBinding } from '@trellis/policy';
import { percentile, podProbePlan, startPodProbe } from '@trellis/load-tests';
import { requestToken, type Principals } from '../../../packages/cli/src/verbs/token.ts';
import { pickBase, TestStack } from './support/test-stack.ts';
import { connectFromHost, CONNECT_SCRIPT } from './support/net.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/pods/', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));
const STACK = 'pods-test';

interface Outputs {
  caFile: string;
  ingressUrl: string;
  services: Record<string, { url: string }>;
  principals: Principals;
  workloads: Record<string, WorkloadBinding>;
  edgeListen: Endpoint;
  sidecars: Record<string, { spiffeId: string }>;
  pods: Record<string, { address: string; user: string; launch: PodLaunch }>;
  dataMetrics: {
    service: 'cassandra' | 'kafka';
    listen: Endpoint;
    adminPort: number;
    exporterPort: number;
  }[];
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

function pod(w: string): { address: string; launch: PodLaunch } {
  const p = out.pods[w];
  if (!p) throw new Error(`no ${w} pod in the outputs`);
  return p;
}

function bound(w: string): WorkloadBinding {
  const b = out.workloads[w];
  if (!b) throw new Error(`no ${w} in the binding`);
  return b;
}

/**
 * Run a Node script inside `w`'s pod as its user (at most 20 s); resolves to its stdout. The
 * script gets `args` as `process.argv[1..]`.
 */
function inPod(script: string, args: string[], w = 'orders-api'): Promise<string> {
  const argv = podCommand(pod(w).launch, process.execPath, ['-e', script, ...args]);
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

/**
 * A TLS handshake from here without a client certificate: the SPIFFE ID the server presents (an
 * mTLS listener shows its certificate before it refuses the missing one), or the error code.
 */
function serverIdentity(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port, rejectUnauthorized: false, timeout: 5_000 });
    s.on('secureConnect', () => {
      const san = s.getPeerCertificate().subjectaltname ?? '';
      s.destroy();
      resolve(/URI:(spiffe:\/\/[^,]+)/.exec(san)?.[1] ?? san);
    });
    s.on('timeout', () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/**
 * GET `path` from a data node's metrics front over TLS, checking the front's certificate for
 * `<service>.trellis.svc` as Prometheus does, presenting the SVID in `svidDir` (or none): the
 * status and body, or the error code when the handshake is refused.
 */
function scrapeFront(
  e: Endpoint,
  service: string,
  svidDir: string | undefined,
  opts: { method?: string; path?: string } = {},
): Promise<{ status: number | string; body: string }> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: e.address,
        port: e.port,
        path: opts.path ?? '/metrics',
        method: opts.method ?? 'GET',
        servername: `${service}.trellis.svc`,
        ca: readFileSync(out.caFile),
        ...(svidDir !== undefined
          ? {
              cert: readFileSync(join(svidDir, 'cert.pem')),
              key: readFileSync(join(svidDir, 'key.pem')),
            }
          : {}),
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ status: e.code ?? e.message, body: '' }),
    );
    req.end();
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

/**
 * GET an order through the ingress until the batch writer has stored it (ADR 0022: 404 before, 200
 * once written), at most 30 s; the last status.
 */
async function statusOnceWritten(id: string): Promise<number> {
  let status = 0;
  for (let i = 0; i < 60; i++) {
    status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(
        `${out.ingressUrl}/orders/${id}`,
        {
          headers: { authorization: `Bearer ${token}` },
          ca: readFileSync(out.caFile),
          agent: false,
          timeout: 15_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
    if (status !== 404) return status;
    await new Promise((r) => setTimeout(r, 500));
  }
  return status;
}

beforeAll(async () => {
  await ts.init();
  const base = await pickBase((b) => {
    const p = localPortsAt(b);
    return [p.ingressHttps, p.keycloakHttp, p.keycloakManagement, p.cassandraNative]
      .concat(
        [p.kafkaClientsFrom, p.envoyAdminFrom, p.sidecarInboundFrom, p.appFrom].flatMap((s) =>
          Array.from({ length: 40 }, (_, i) => s + i),
        ),
      )
      .concat(Array.from({ length: 40 }, (_, i) => p.sidecarOutboundFrom + i));
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

/**
 * A pod's private listener: reachable from inside its pod (the positive control), refused from the
 * host at 127.0.0.1 and at the pod's address.
 */
async function privateToPod(w: string, e: Endpoint): Promise<void> {
  expect(e.address).toBe('127.0.0.1');
  expect(await inPod(CONNECT_SCRIPT, [e.address, String(e.port)], w)).toBe('connected');
  expect(await connectFromHost('127.0.0.1', e.port)).toBe('ECONNREFUSED');
  expect(await connectFromHost(pod(w).address, e.port)).toBe('ECONNREFUSED');
}

describe('every workload as a pod', () => {
  it('takes alice’s POST through https://localhost and nginx in the ingress pod: 202, then stored', async () => {
    expect(out.ingressUrl).toMatch(/^https:\/\/localhost:\d+$/);
    // nginx listens on the ingress pod's address, as the binding says; the host's port is a relay.
    expect(out.edgeListen.address).toBe(pod('ingress').address);
    expect(String(out.edgeListen.port)).toBe(new URL(out.ingressUrl).port);
    expect(await connectFromHost(out.edgeListen.address, out.edgeListen.port)).toBe('connected');
    const inbound = bound('orders-api').inbound.http;
    expect(inbound?.address).toBe(pod('orders-api').address);
    expect(inbound?.address).toMatch(/^198\.18\.\d+\.\d+$/);
    const r = await postThroughIngress();
    // Queue-first (ADR 0022): accepted once on orders.intake.v1; orders-writer (its own pod) stores it.
    expect(r.status, r.body).toBe(202);
    expect(await statusOnceWritten((JSON.parse(r.body) as { id: string }).id)).toBe(200);
  });

  it('lets the forged POST reach the app from inside the pod only', async () => {
    const app = bound('orders-api').app.http;
    if (!app) throw new Error('orders-api has no app endpoint');
    expect(app.address).toBe('127.0.0.1');
    // The positive control: inside the pod, the app answers (it trusts its sidecar's headers).
    const inside = await inPod(POST_SCRIPT, [
      app.address,
      String(app.port),
      JSON.stringify(forged),
      orderBody,
    ]);
    expect(inside).toBe('202');
    // From the host nothing listens there any more, on loopback or on the pod's address.
    expect(await postFromHost(app.address, app.port)).toBe('ECONNREFUSED');
    expect(await postFromHost(pod('orders-api').address, app.port)).toBe('ECONNREFUSED');
  });

  it('keeps the Cassandra egress listener inside the pod', async () => {
    const egress = bound('orders-api').egress.cassandra?.listen;
    if (!egress) throw new Error('orders-api has no Cassandra egress listener');
    // The sidecar dials Cassandra's own pod, pod to pod over the bridge.
    expect(out.workloads['orders-api']?.egress.cassandra?.upstream.address).toBe(
      out.pods.cassandra?.address,
    );
    // Inside: a plaintext CQL OPTIONS through the sidecar (mTLS as orders-api) gets SUPPORTED.
    expect(await inPod(CQL_SCRIPT, [egress.address, String(egress.port)])).toBe('opcode 6');
    expect(await connectFromHost(egress.address, egress.port)).toBe('ECONNREFUSED');
    expect(await connectFromHost(pod('orders-api').address, egress.port)).toBe('ECONNREFUSED');
  });

  it.each(['ledger', 'orders-api', 'orders-writer'])(
    'keeps %s’s app, egress and admin in its pod; only its mTLS inbound is reachable',
    async (w) => {
      const b = bound(w);
      const app = b.app.http;
      if (!app || !b.admin) throw new Error(`${w} has no app or admin endpoint`);
      await privateToPod(w, app);
      await privateToPod(w, b.admin);
      for (const svc of ['cassandra', 'kafka'] as const) {
        const l = b.egress[svc]?.listen;
        if (!l) throw new Error(`${w} has no ${svc} egress listener`);
        await privateToPod(w, l);
      }
      // The one way in: the sidecar's inbound, on the pod's address, presenting the workload's SVID.
      const inbound = b.inbound.http;
      expect(inbound?.address).toBe(pod(w).address);
      if (!inbound) throw new Error(`${w} has no inbound`);
      expect(await serverIdentity(inbound.address, inbound.port)).toBe(out.sidecars[w]?.spiffeId);
    },
  );

  it('keeps the edge sidecar’s plaintext inbound and its admin inside the ingress pod', async () => {
    const b = bound('ingress');
    const inbound = b.inbound.http;
    if (!inbound || !b.admin) throw new Error('the ingress has no inbound or admin');
    // nginx reaches the edge sidecar on the pod's own loopback; nobody outside the pod can.
    await privateToPod('ingress', inbound);
    await privateToPod('ingress', b.admin);
  });

  it('runs nginx as the ingress pod’s user, which owns its prefix, certificate and key', async () => {
    const { launch } = pod('ingress');
    // Every nginx (master and worker) in the ingress pod's namespace is the pod's user.
    const procs = await Promise.all(
      (await netnsPids(launch.netns)).map((pid) => {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        return {
          name: /^Name:\s*(\S+)/m.exec(status)?.[1],
          uid: Number(/^Uid:\s*(\d+)/m.exec(status)?.[1]),
        };
      }),
    );
    const nginx = procs.filter((p) => p.name === 'nginx');
    expect(nginx.length).toBeGreaterThanOrEqual(2); // master and one worker
    expect(nginx.map((p) => p.uid)).toEqual(nginx.map(() => launch.uid));
    expect(procs.some((p) => p.name === 'envoy' && p.uid === launch.uid)).toBe(true);
    const ownedByPod = (path: string, mode?: number) => {
      const st = statSync(path);
      expect({ path, uid: st.uid, mode: mode === undefined ? mode : st.mode & 0o777 }).toEqual({
        path,
        uid: launch.uid,
        mode,
      });
    };
    ownedByPod(join(ts.stackDir, 'run/nginx/pod'), 0o700);
    ownedByPod(join(ts.stackDir, 'run/nginx/pod/nginx.pid')); // written by nginx itself
    ownedByPod(join(ts.stackDir, 'pki/ingress-edge/key.pem'), 0o600);
    ownedByPod(join(ts.stackDir, 'pki/ingress-edge/cert.pem'), 0o600);
    // Started unprivileged, nginx had no `user` directive to ignore (it warns when it does).
    const log = readFileSync(join(ts.stackDir, 'run/nginx/process.log'), 'utf8');
    expect(log).not.toContain('"user" directive');
  });

  it('serves a re-issued certificate to new connections with no reload, keeping keep-alive connections open', async () => {
    const master = () =>
      (
        JSON.parse(readFileSync(join(ts.stackDir, 'run/nginx/supervisor.json'), 'utf8')) as {
          childPid: number;
        }
      ).childPid;
    const workers = (pid: number) =>
      readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).sort();
    /** One request on `agent` (a new connection when it is absent); what it was served and on what. */
    const served = (agent: Agent | false) =>
      new Promise<{ serial: string; reused: boolean; localPort: number; status: number }>(
        (resolve, reject) => {
          const req = httpsRequest(
            `${out.ingressUrl}/`,
            { agent, ca: readFileSync(out.caFile), timeout: 10_000 },
            (res) => {
              const socket = res.socket as TLSSocket;
              const peer = socket.getPeerCertificate();
              res.resume();
              resolve({
                serial: peer.serialNumber,
                reused: req.reusedSocket,
                localPort: socket.localPort ?? 0,
                status: res.statusCode ?? 0,
              });
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
    const pid = master();
    const workersBefore = workers(pid);
    const before = await served(false);
    // A keep-alive connection opened before the renewal, kept busy through it (a request every 2 s,
    // well inside nginx's 65 s keepalive_timeout, however long the `up` takes).
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(out.caFile) });
    const first = await served(keepAlive);
    expect(first.serial).toBe(before.serial);
    const onKept: { serial: string; reused: boolean; localPort: number; status: number }[] = [];
    const keptErrors: string[] = [];
    let upDone = false;
    const poll = (async () => {
      while (!upDone) {
        await new Promise((r) => setTimeout(r, 2_000));
        try {
          onKept.push(await served(keepAlive));
        } catch (err) {
          keptErrors.push((err as Error).message);
        }
      }
    })();
    try {
      await ts.ok(['config', 'set', 'trellis-pods-test:edgeRotation', '1']);
      await ts.ok(['up', '--yes', '--skip-preview']);
    } finally {
      upDone = true;
      await poll;
    }
    const onDisk = new X509Certificate(readFileSync(join(ts.stackDir, 'pki/ingress-edge/cert.pem')))
      .serialNumber;
    expect(onDisk).not.toBe(before.serial);
    // A new connection gets the new certificate at once: nginx read the files at its handshake.
    expect((await served(false)).serial).toBe(onDisk);
    // The connection opened before kept answering on the same socket, with the certificate it was
    // opened with, through the whole `up`, and after it.
    onKept.push(await served(keepAlive));
    expect(keptErrors).toEqual([]);
    expect(onKept.length).toBeGreaterThan(1);
    for (const r of onKept) {
      expect(r).toMatchObject({ reused: true, localPort: first.localPort, serial: before.serial });
      expect(r.status).toBeGreaterThan(0);
    }
    keepAlive.destroy();
    // No restart and no reload: the same master and the same workers, still the pod's user.
    expect(master()).toBe(pid);
    expect(workers(pid)).toEqual(workersBefore);
    const uid = /^Uid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    expect(Number(uid)).toBe(pod('ingress').launch.uid);
    token = await requestToken(out.principals, 'alice', { caFile: out.caFile }); // 300 s tokens
    expect((await postThroughIngress()).status).toBe(202);
  });

  it("runs the per-hop probe's inner paths (sidecar, direct) from inside the pod", async () => {
    const b = out.workloads['orders-api'];
    const inbound = b?.inbound.http;
    const app = b?.app.http;
    if (!inbound || !app) throw new Error('orders-api has no inbound or app endpoint');
    const created = await postThroughIngress();
    expect(created.status, created.body).toBe(202);
    const id = (JSON.parse(created.body) as { id: string }).id;
    // The probe GETs it: wait until the writer has stored it, so every GET is a 200.
    expect(await statusOnceWritten(id)).toBe(200);
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
          pod: pod('orders-api').launch,
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

  it('serves each data node’s JMX metrics to the scraper only, through the mTLS front in its pod', async () => {
    const scraper = join(ts.stackDir, 'svid', 'prometheus');
    const series = {
      cassandra: 'cassandra_client_requests_total',
      kafka: 'kafka_server_under_replicated_partitions',
    };
    expect(out.dataMetrics.map((m) => m.service)).toEqual(['cassandra', 'kafka']);
    for (const m of out.dataMetrics) {
      // The front listens on the node's pod address; the agent on the pod's own loopback.
      expect(m.listen.address).toBe(pod(m.service).address);
      // The scraper's SVID: 200 with the node's own series (their rules) and the agent's JVM's.
      const ok = await scrapeFront(m.listen, m.service, scraper);
      expect(ok.status, ok.body.slice(0, 200)).toBe(200);
      expect(ok.body).toContain(series[m.service]);
      expect(ok.body).toMatch(/^jvm_\w+/m);
      // Another path or method of the same caller: RBAC's 403.
      expect((await scrapeFront(m.listen, m.service, scraper, { path: '/' })).status).toBe(403);
      expect((await scrapeFront(m.listen, m.service, scraper, { method: 'POST' })).status).toBe(
        403,
      );
      // A workload's SVID from the same CA, and no certificate: refused at the handshake.
      const ledger = await scrapeFront(m.listen, m.service, join(ts.stackDir, 'pki', 'ledger'));
      expect(ledger.status).not.toBe(200);
      expect(typeof ledger.status).toBe('string');
      expect(typeof (await scrapeFront(m.listen, m.service, undefined)).status).toBe('string');
      // The agent and the front's admin: reachable inside the node's pod only.
      await privateToPod(m.service, { address: '127.0.0.1', port: m.exporterPort });
      await privateToPod(m.service, { address: '127.0.0.1', port: m.adminPort });
    }
  });

  it('leaves no namespace, link or pod user after destroy', async () => {
    expect(isClean(await podLeftovers(STACK))).toBe(false); // the pods exist before
    await ts.ok(['destroy', '--yes', '--skip-preview']);
    destroyed = true;
    const left = await podLeftovers(STACK);
    expect(left).toEqual({ netns: [], links: [], users: [], pids: [] });
  });
});
