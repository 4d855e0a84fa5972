// Keycloak as a pod, for real: `pulumi up` of a test program (infra/local's identity module with
// `pods` on, and orders-api's sidecar in its pod; see fixtures/idp-pod) runs Keycloak in its own
// network namespace as its own user. Host clients keep https://localhost:<port> through the relay;
// the pod's sidecar fetches the JWKS from Keycloak's pod address over TLS; the management port is
// reachable from inside Keycloak's pod only. Every refusal first shows the path working from the
// right place. Needs root (namespaces, veths, users).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestText } from '@trellis/local/harness';
import {
  isClean,
  podLeftovers,
  readableBy,
  teardownPods,
  type PodLaunch,
} from '@trellis/local/pods';
import { localPortsAt, type WorkloadBinding } from '@trellis/policy';
import { requestToken, type Principals } from '../../../packages/cli/src/verbs/token.ts';
import { pickBase, TestStack } from './support/test-stack.ts';
import { connectFromHost } from './support/net.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/idp-pod/', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));
const STACK = 'idp-pod-test';

interface PodMember {
  address: string;
  user: string;
  launch: PodLaunch;
}

interface Outputs {
  caFile: string;
  principals: Principals;
  issuer: string;
  keycloak: { listenUrl: string; managementUrl: string; keyFile: string };
  ordersApi: WorkloadBinding;
  sidecarAdminPort: number;
  callerFiles: { cert: string; key: string; bundle: string };
  scraperFiles: { cert: string; key: string; bundle: string };
  keycloakMetrics: { target: { address: string; port: number }; serverName: string };
  podMembers: Record<string, PodMember>;
}

let out: Outputs;
let base = 0;
let token = '';
let destroyed = false;

const ts = new TestStack({
  fixture: FIXTURE,
  stack: STACK,
  tmpPrefix: 'trellis-idp-pod-',
  timeoutMs: 480_000,
});

function member(pod: string): PodMember {
  const p = out.podMembers[pod];
  if (!p) throw new Error(`no ${pod} pod in the outputs`);
  return p;
}

/**
 * Run a Node script inside `pod`'s network namespace (as root: only the network is the pod's),
 * at most 20 s; resolves to its stdout. The script gets `args` as `process.argv[1..]`.
 */
function inPodNet(pod: string, script: string, args: string[]): Promise<string> {
  const netns = `/run/netns/${member(pod).launch.netns}`;
  return new Promise((resolve, reject) =>
    execFile(
      'nsenter',
      [`--net=${netns}`, '--', process.execPath, '-e', script, ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

/** GET `url` over TLS trusting `ca`; prints `<status> <body>` or the error code. */
const GET_SCRIPT = `const [url, ca] = process.argv.slice(1);
const req = require('node:https').get(url, { ca: require('node:fs').readFileSync(ca), timeout: 10000 }, (res) => {
  let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => console.log(res.statusCode + ' ' + b));
});
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
req.on('error', (e) => console.log(e.code ?? e.message));`;

/** POST /orders to orders-api's sidecar (its pod address) as the ingress, with `bearer` if given. */
function postToSidecar(bearer?: string): Promise<{ status: number; body: string }> {
  const inbound = Object.values(out.ordersApi.inbound)[0];
  if (!inbound) throw new Error('orders-api has no inbound endpoint');
  const f = out.callerFiles;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: inbound.address,
        port: inbound.port,
        path: '/orders',
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}),
        },
        cert: readFileSync(f.cert),
        key: readFileSync(f.key),
        ca: readFileSync(f.bundle),
        // The sidecar's SVID names its SPIFFE ID only (the e2e suite checks it).
        checkServerIdentity: () => undefined,
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
    req.end(JSON.stringify({ sku: 'idp-pod-1', quantity: 1 }));
  });
}

/**
 * GET `path` from Keycloak's metrics front with the client certificate `files` (none: no
 * certificate), checking the front's certificate (Mesh CA, `keycloak.<ns>.svc`) as Prometheus does;
 * resolves to the status and body, or the error's code when the handshake fails.
 */
function scrapeKeycloak(
  files: { cert: string; key: string } | undefined,
  method = 'GET',
  path = '/metrics',
): Promise<{ status: number; body: string } | string> {
  const { target, serverName } = out.keycloakMetrics;
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: target.address,
        port: target.port,
        path,
        method,
        servername: serverName,
        ca: readFileSync(out.caFile),
        ...(files !== undefined
          ? { cert: readFileSync(files.cert), key: readFileSync(files.key) }
          : {}),
        agent: false,
        timeout: 15_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

/** An Envoy admin path of orders-api's sidecar, read from inside its pod (admin on its loopback). */
async function sidecarAdmin(path: string): Promise<string> {
  const script = `fetch(process.argv[1]).then((r) => r.text()).then((t) => console.log(t), (e) => console.log('ERR ' + e.message));`;
  return inPodNet('orders-api', script, [`http://127.0.0.1:${out.sidecarAdminPort}${path}`]);
}

beforeAll(async () => {
  await ts.init();
  base = await pickBase((b) => {
    const p = localPortsAt(b);
    return [
      p.keycloakHttp,
      p.keycloakManagement,
      p.serverMetricsFrom + 2,
      p.serverMetricsAdminFrom + 2,
    ].concat(
      [p.envoyAdminFrom, p.sidecarInboundFrom, p.appFrom, p.sidecarOutboundFrom].flatMap((s) =>
        Array.from({ length: 30 }, (_, i) => s + i),
      ),
    );
  }, 'Keycloak pod test stack');
  await ts.ok(['config', 'set', 'trellis-idp-pod-test:stackDir', ts.stackDir]);
  await ts.ok(['config', 'set', 'trellis-idp-pod-test:basePort', String(base)]);
  await ts.ok(['config', 'set', 'trellis-idp-pod-test:model', MODEL]);
  const t0 = Date.now();
  await ts.ok(['up', '--yes', '--skip-preview']);
  console.info(`up with Keycloak in its pod: ${Math.round((Date.now() - t0) / 1000)} s`);
  out = JSON.parse(
    await ts.ok(['stack', 'output', '--json', '--show-secrets'], 60_000, false),
  ) as Outputs;
  token = await requestToken(out.principals, 'alice', { caFile: out.caFile });
}, 600_000);

afterAll(async () => {
  await ts.cleanup(!destroyed);
  // The safety net for a failed run: the pods go by name (namespaces, links, users, processes).
  if (!destroyed) await teardownPods(STACK).catch(() => undefined);
}, 300_000);

describe('Keycloak as a pod', () => {
  it('listens on its pod address and keeps the issuer at https://localhost through the relay', async () => {
    const kc = member('keycloak');
    const port = localPortsAt(base).keycloakHttp;
    expect(out.keycloak.listenUrl).toBe(`https://${kc.address}:${port}`);
    expect(kc.address).toMatch(/^198\.18\.\d+\.24$/);
    expect(out.issuer).toBe(`https://localhost:${port}/realms/trellis`);
    // The token came from https://localhost:<port> (the relay, TLS end to end): its issuer is that.
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      iss: string;
    };
    expect(claims.iss).toBe(out.issuer);
    // The certificate names the pod address too: Node checks the IP against it.
    const disc = await requestText(
      `${out.keycloak.listenUrl}/realms/trellis/.well-known/openid-configuration`,
      { ca: readFileSync(out.caFile), timeoutMs: 10_000 },
    );
    expect(disc.status).toBe(200);
    expect((JSON.parse(disc.body) as { issuer: string }).issuer).toBe(out.issuer);
  });

  it('has orders-api’s pod sidecar fetch the JWKS from Keycloak’s pod address and accept the token', async () => {
    // The negative first would pass on a dead path: show the token accepted, then one refused.
    const r = await postToSidecar(token);
    expect(r.status, r.body).toBe(201);
    const seen = JSON.parse(r.body) as { payload: string | null };
    const payload = JSON.parse(Buffer.from(seen.payload ?? '', 'base64url').toString()) as {
      iss: string;
      sub: string;
    };
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      sub: string;
    };
    expect(payload.iss).toBe(out.issuer);
    expect(payload.sub).toBe(claims.sub);
    expect((await postToSidecar()).status).toBe(401);

    const kc = member('keycloak');
    const port = localPortsAt(base).keycloakHttp;
    const clusters = await sidecarAdmin('/clusters');
    // The JWKS cluster's one host is Keycloak's pod, and it was connected to.
    const hosts = [...clusters.matchAll(/^jwks_keycloak::([\d.]+:\d+)::cx_total::(\d+)$/gm)];
    expect(hosts.map((m) => m[1])).toEqual([`${kc.address}:${port}`]);
    expect(Number(hosts[0]?.[2])).toBeGreaterThan(0);
    const stats = await sidecarAdmin('/stats?filter=^cluster\\.jwks_keycloak\\.ssl\\.');
    const stat = (n: string) =>
      Number(new RegExp(`^cluster\\.jwks_keycloak\\.ssl\\.${n}: (\\d+)$`, 'm').exec(stats)?.[1]);
    expect(stat('handshake')).toBeGreaterThan(0);
    expect(stat('fail_verify_san')).toBe(0);
    expect(stat('fail_verify_error')).toBe(0);
  });

  it('answers health on the management port inside its pod only', async () => {
    const mgmt = localPortsAt(base).keycloakManagement;
    expect(out.keycloak.managementUrl).toBe(`https://127.0.0.1:${mgmt}`);
    const inside = await inPodNet('keycloak', GET_SCRIPT, [
      `${out.keycloak.managementUrl}/health/ready`,
      out.caFile,
    ]);
    expect(inside).toMatch(/^200 /);
    expect((JSON.parse(inside.slice(4)) as { status: string }).status).toBe('UP');
    // From the host: nothing on the host's loopback, nothing on the pod's address.
    expect(await connectFromHost('127.0.0.1', mgmt)).toBe('ECONNREFUSED');
    expect(await connectFromHost(member('keycloak').address, mgmt)).toBe('ECONNREFUSED');
    // From another pod: nothing either (its loopback is its own).
    expect(
      await inPodNet('orders-api', GET_SCRIPT, [`https://127.0.0.1:${mgmt}/health`, out.caFile]),
    ).toBe('ECONNREFUSED');
  });

  it('serves its metrics to the scraper only, through the mTLS front in its pod (ADR 0024)', async () => {
    const t0 = Date.now();
    const kc = member('keycloak');
    expect(out.keycloakMetrics.target).toEqual({
      address: kc.address,
      port: localPortsAt(base).serverMetricsFrom + 2,
    });
    // The scraper first: 200 with Keycloak's own series (alice's login, from beforeAll) and the JVM's.
    const ok = await scrapeKeycloak(out.scraperFiles);
    if (typeof ok === 'string') throw new Error(`the scraper was refused: ${ok}`);
    expect(ok.status, ok.body.slice(0, 200)).toBe(200);
    expect(ok.body).toMatch(/^keycloak_user_events_total\{[^}]*event="login"[^}]*\} [1-9]/m);
    // And the series the Keycloak console reads (ADR 0024).
    expect(ok.body).toMatch(/^jvm_memory_used_bytes\{[^}]*area="heap"/m);
    expect(ok.body).toMatch(/^http_server_requests_seconds_count\{/m);
    // Only GET /metrics: the management interface's health is not passed on.
    for (const [method, path] of [
      ['GET', '/health/ready'],
      ['POST', '/metrics'],
    ])
      expect(
        (await scrapeKeycloak(out.scraperFiles, method, path)) as { status: number },
      ).toMatchObject({
        status: 403,
      });
    // Another SVID of the mesh (the ingress's), and no certificate: refused at the handshake.
    for (const files of [out.callerFiles, undefined]) {
      const r = await scrapeKeycloak(files);
      expect(typeof r, JSON.stringify(r).slice(0, 200)).toBe('string');
      expect(r).not.toBe('TIMEOUT');
    }
    console.info(`Keycloak metrics checks: ${Date.now() - t0} ms`);
  });

  it('runs as the keycloak pod user, who alone reads its key and leaves nothing in /tmp', async () => {
    const kc = member('keycloak');
    const other = member('orders-api');
    const key = out.keycloak.keyFile;
    const st = statSync(key);
    expect(st.uid).toBe(kc.launch.uid);
    expect(st.mode & 0o077).toBe(0);
    const owner = (m: PodMember) => ({ name: m.user, uid: m.launch.uid, gid: m.launch.gid });
    expect(await readableBy(owner(kc), [key])).toEqual([key]);
    expect(await readableBy(owner(other), [key])).toEqual([]);
    // What it writes (home, H2 database, temporary files) is the pod user's, in its run dir; the
    // JVM leaves no hsperfdata for its user in /tmp; no home of a host run is left beside it.
    const run = join(ts.stackDir, 'run', 'keycloak');
    for (const d of ['pod/home/data/h2', 'pod/home/data/tmp'])
      expect(statSync(join(run, d)).uid, d).toBe(kc.launch.uid);
    expect(statSync(join(run, 'pod')).mode & 0o777).toBe(0o700);
    expect(existsSync(join(run, 'home'))).toBe(false);
    expect(existsSync(`/tmp/hsperfdata_${kc.user}`)).toBe(false);
    const java = await new Promise<string>((resolve) =>
      execFile('ps', ['-o', 'user:32=,comm=', '-u', String(kc.launch.uid)], (_e, stdout) =>
        resolve(stdout),
      ),
    );
    expect(java).toMatch(/\bjava\b/);
  });

  it('leaves no namespace, link or pod user after destroy', async () => {
    expect(isClean(await podLeftovers(STACK))).toBe(false); // the pods exist before
    await ts.ok(['destroy', '--yes', '--skip-preview']);
    destroyed = true;
    expect(await podLeftovers(STACK)).toEqual({ netns: [], links: [], users: [], pids: [] });
    expect(await connectFromHost('127.0.0.1', localPortsAt(base).keycloakHttp)).toBe(
      'ECONNREFUSED',
    );
  });
});
