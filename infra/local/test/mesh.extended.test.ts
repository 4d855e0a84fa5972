// The request path for real: `pulumi up` of a test program (Mesh CA + infra/local's data, identity
// and mesh modules; see fixtures/mesh) brings up Cassandra, Kafka, Keycloak, one Envoy sidecar per
// workload, orders-api, orders-writer, ledger and nginx as supervised processes, then real clients go
// through it. The ports checked free cover the blocks of four workloads.
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { basename, dirname, join, relative } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, servedCertificate } from '@trellis/local/harness';
import { readState } from '@trellis/local/supervisor';
import { requestToken, type Principals } from '../../../packages/cli/src/verbs/token.ts';
import { localPortsAt } from '@trellis/policy';
import { pickBase, TestStack } from './support/test-stack.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/mesh/', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));
const STACK = 'mesh-test';

interface SidecarOut {
  spiffeId: string;
  adminUrl: string;
  inbound: Record<string, number>;
  certDir: string;
  logFile: string;
}

interface Outputs {
  caFile: string;
  ingressUrl: string;
  issuer: string;
  sidecars: Record<string, SidecarOut>;
  services: Record<string, { url: string; logFile: string }>;
  principals: Principals;
  keycloakAdmin: { username: string; password: string };
  prometheus: { url: string; consolesUrl: string; jobs: string[] };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let stackDir = '';
let basePort = 0;
let out: Outputs;
let upMs = 0;
let destroyed = false;
const tokens: Record<string, string> = {};

const ts = new TestStack({
  fixture: FIXTURE,
  stack: STACK,
  tmpPrefix: 'trellis-mesh-',
  timeoutMs: 480_000,
});
const pulumi = ts.pulumi.bind(ts);
const ok = ts.ok.bind(ts);

/** A base port whose whole range (every offset the stack uses, +100) is free. */
function pickMeshBase(): Promise<number> {
  return pickBase((base) => {
    const p = localPortsAt(base);
    return [
      p.ingressHttps,
      p.keycloakHttp,
      p.keycloakManagement,
      p.cassandraNative,
      p.cassandraStorage,
      p.cassandraJmx,
      p.kafkaController,
      p.kafkaInterBroker,
      ...[p.kafkaClientsFrom, p.envoyAdminFrom, p.sidecarInboundFrom, p.appFrom].flatMap((s) =>
        Array.from({ length: 40 }, (_, i) => s + i),
      ),
      ...Array.from({ length: 40 }, (_, i) => p.sidecarOutboundFrom + i),
      p.prometheus,
      ...Array.from({ length: 10 }, (_, i) => p.sidecarMetricsFrom + i),
      // The data nodes' metrics fronts, their admins and JMX exporters (Cassandra, Kafka).
      ...[p.serverMetricsFrom, p.serverMetricsAdminFrom, p.jmxExporterFrom].flatMap((s) => [
        s,
        s + 1,
      ]),
      // The broken sidecar of the last test.
      p.envoyAdminFrom + 90,
      p.sidecarInboundFrom + 90,
    ];
  }, 'mesh test stack');
}

/** One HTTPS request with explicit TLS material; rejects on any transport error. */
function https(
  url: string,
  o: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    tls?: Pick<RequestOptions, 'cert' | 'key' | 'checkServerIdentity'>;
    agent?: Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: o.method ?? 'GET',
        headers: o.headers,
        agent: o.agent ?? false,
        timeout: 15_000,
        ca: readFileSync(out.caFile),
        ...o.tls,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Plain HTTP on loopback. */
function http(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const bearer = (who: string): Record<string, string> => ({
  authorization: `Bearer ${tokens[who] ?? ''}`,
});

function postOrder(who: string | null, sku = 'mesh-1', agent?: Agent): Promise<Reply> {
  return https(`${out.ingressUrl}/orders`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(who ? bearer(who) : {}),
    },
    body: JSON.stringify({ sku, quantity: 2 }),
    ...(agent ? { agent } : {}),
  });
}

/**
 * GET an order as `who` until the batch writer has stored it (ADR 0022: 404 before, 200 once written),
 * at most 30 s; the last reply.
 */
async function readOnceWritten(id: string, who = 'alice'): Promise<Reply> {
  let r: Reply = { status: 0, headers: {}, body: '' };
  for (let i = 0; i < 60; i++) {
    r = await https(`${out.ingressUrl}/orders/${id}`, { headers: bearer(who) });
    if (r.status !== 404) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
  return r;
}

/** The SVID files of an identity, as the stack wrote them. */
function svid(dirOf: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(join(dirOf, 'cert.pem')), key: readFileSync(join(dirOf, 'key.pem')) };
}

/** A request straight to orders-api's sidecar (mTLS), as `who` presents itself. */
function toSidecar(
  tls: { cert?: Buffer; key?: Buffer },
  path = '/orders/00000000-0000-4000-8000-000000000000',
) {
  const port = out.sidecars['orders-api']?.inbound.http ?? 0;
  return https(`https://127.0.0.1:${port}${path}`, {
    headers: bearer('alice'),
    tls: {
      ...tls,
      // A sidecar's SVID names it by one SPIFFE ID (and, for Prometheus, a DNS name; ADR 0020):
      // check the SPIFFE ID instead of a host name.
      checkServerIdentity: (_host, cert) => {
        const uris = (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:'));
        return uris.length === 1 && uris[0] === `URI:${out.sidecars['orders-api']?.spiffeId ?? ''}`
          ? undefined
          : new Error(`unexpected server identity ${cert.subjectaltname}`);
      },
    },
  });
}

function childPid(component: string): number | null {
  return readState(join(stackDir, 'run', component, 'supervisor.json'))?.childPid ?? null;
}

/** Processes that belong to this test's stack: their command line or working dir is under it. */
function processesOfThisTest(): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${p}/cwd`);
      } catch {
        // not ours to read
      }
      if (cmd.includes(stackDir) || cwd.startsWith(stackDir))
        found.push(`${p} ${cmd.slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

function filesUnder(d: string): string[] {
  if (!existsSync(d)) return [];
  const found: string[] = [];
  for (const e of readdirSync(d)) {
    const p = join(d, e);
    if (lstatSync(p).isDirectory()) found.push(...filesUnder(p));
    else found.push(p);
  }
  return found;
}

async function stat(adminUrl: string, name: string): Promise<number> {
  const text = await (
    await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(`^${name}$`)}`)
  ).text();
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
  return m?.[1] === undefined ? -1 : Number(m[1]);
}

beforeAll(async () => {
  await ts.init();
  stackDir = ts.stackDir;
  const base = await pickMeshBase();
  basePort = base;
  await ok(['config', 'set', 'trellis-mesh-test:stackDir', stackDir]);
  await ok(['config', 'set', 'trellis-mesh-test:basePort', String(base)]);
  await ok(['config', 'set', 'trellis-mesh-test:model', MODEL]);
  const t0 = Date.now();
  await ok(['up', '--yes', '--skip-preview']);
  upMs = Date.now() - t0;
  out = JSON.parse(
    await ok(['stack', 'output', '--json', '--show-secrets'], 60_000, false),
  ) as Outputs;
  for (const who of ['alice', 'bob', 'reporting-bot'])
    tokens[who] = await requestToken(out.principals, who, { caFile: out.caFile });
  console.info(`request path up in ${(upMs / 1000).toFixed(1)} s on base port ${base}`);
}, 600_000);

afterAll(async () => {
  await ts.cleanup(!destroyed);
}, 300_000);

describe('a request through nginx, the sidecars and orders-api', () => {
  it('accepts an order with a real Keycloak token, reads it back once written, and ledger projects it', async () => {
    // Queue-first (ADR 0022): 202 once orders.intake.v1 has it; orders-writer stores it.
    const created = await postOrder('alice');
    expect(created.status, created.body).toBe(202);
    const order = JSON.parse(created.body) as { id: string; subject: string };
    expect(created.headers.location).toBe(`/orders/${order.id}`);
    const claims = JSON.parse(
      Buffer.from(tokens.alice?.split('.')[1] ?? '', 'base64url').toString(),
    ) as { sub: string; iss: string };
    expect(claims.iss).toBe(out.issuer);
    expect(order.subject).toBe(claims.sub);

    const read = await readOnceWritten(order.id);
    expect(read.status, read.body).toBe(200);
    expect(JSON.parse(read.body)).toMatchObject({ id: order.id, sku: 'mesh-1', quantity: 2 });

    // ledger's HTTP port has no caller in the model: ask the app itself, as its sidecar would.
    const ledger = out.services.ledger?.url ?? '';
    const headers = {
      'x-jwt-payload': Buffer.from(JSON.stringify({ sub: 'test' })).toString('base64url'),
      'x-forwarded-client-cert': `URI=${out.sidecars.ingress?.spiffeId ?? ''}`,
    };
    let entry: Reply = { status: 0, headers: {}, body: '' };
    for (let i = 0; i < 60 && entry.status !== 200; i++) {
      entry = await http(`${ledger}/entries/${order.id}`, headers);
      if (entry.status !== 200) await new Promise((r) => setTimeout(r, 500));
    }
    expect(entry.status, entry.body).toBe(200);
    expect(JSON.parse(entry.body)).toMatchObject({ orderId: order.id, subject: claims.sub });
  });

  it('enforces tokens and scopes at the orders-api sidecar', async () => {
    expect((await postOrder(null)).status).toBe(401);
    const [h, p] = (tokens.alice ?? '').split('.');
    tokens.tampered = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    expect((await postOrder('tampered')).status).toBe(401);
    expect((await postOrder('bob')).status).toBe(403);
    expect((await postOrder('reporting-bot')).status).toBe(403);
    const created = JSON.parse((await postOrder('alice', 'mesh-2')).body) as { id: string };
    for (const who of ['bob', 'reporting-bot'])
      expect((await readOnceWritten(created.id, who)).status).toBe(200);
  });

  it('lets only the ingress identity through to the orders-api sidecar', async () => {
    const pki = (w: string) => out.sidecars[w]?.certDir ?? '';
    // The positive control: the ingress SVID gets an answer from the app (404: no such order).
    expect((await toSidecar(svid(pki('ingress')))).status).toBe(404);
    await expect(toSidecar({})).rejects.toThrow();
    await expect(toSidecar(svid(pki('ledger')))).rejects.toThrow();
    await expect(toSidecar(svid(join(stackDir, 'svid', 'stranger')))).rejects.toThrow();
    // The ingress's own identity, from a CA the mesh does not trust.
    const other = await CertificateAuthority.create({
      commonName: 'not the mesh CA',
      validDays: 1,
    });
    const forged = await other.issue({
      uris: [out.sidecars.ingress?.spiffeId ?? ''],
      validDays: 1,
    });
    await expect(
      toSidecar({ cert: Buffer.from(forged.chainPem), key: Buffer.from(forged.keyPem) }),
    ).rejects.toThrow();
    // Plaintext HTTP on the mTLS port.
    await expect(
      http(`http://127.0.0.1:${out.sidecars['orders-api']?.inbound.http ?? 0}/orders`),
    ).rejects.toThrow();
  });

  it('limits the body at nginx and carries one request id from nginx to the app log', async () => {
    const big = await https(`${out.ingressUrl}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer('alice') },
      body: Buffer.alloc(2 << 20, 'a'),
    });
    expect(big.status).toBe(413);
    const created = await postOrder('alice', 'mesh-rid');
    // nginx sets it, the app echoes it, and nginx hides the app's copy: one header, nginx's id.
    const id = String(created.headers['x-request-id']);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const appLog = readFileSync(out.services['orders-api']?.logFile ?? '', 'utf8');
    expect(appLog).toContain(`"requestId":"${id}"`);
    // nginx writes the access line once the response is sent.
    const accessLog = join(stackDir, 'run', 'nginx', 'access.json');
    let access = '';
    for (let i = 0; i < 20 && !access.includes(`"request_id":"${id}"`); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      access = readFileSync(accessLog, 'utf8');
    }
    expect(access).toContain(`"request_id":"${id}"`);
  });

  it('serves Envoy admin on loopback only, and nginx the edge certificate for localhost', async () => {
    for (const s of Object.values(out.sidecars)) {
      expect(s.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await (await fetch(`${s.adminUrl}/ready`)).text()).trim()).toBe('LIVE');
      const dump = (await (await fetch(`${s.adminUrl}/config_dump`)).json()) as {
        configs: { bootstrap?: { admin: { address: { socket_address: { address: string } } } } }[];
      };
      const boot = dump.configs.find((c) => c.bootstrap)?.bootstrap;
      expect(boot?.admin.address.socket_address.address).toBe('127.0.0.1');
    }
    const edge = new X509Certificate(
      readFileSync(join(stackDir, 'pki', 'ingress-edge', 'cert.pem')),
    );
    expect(edge.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
  });

  it('runs Prometheus with its own SVID: every sidecar, the three apps’ metrics and the data nodes’ JMX exporters scraped over mTLS, all up', async () => {
    const { url, jobs } = out.prometheus;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    type Target = { labels: Record<string, string>; health: string; scrapeUrl: string };
    // Scrapes start within one interval (2 s in this test stack) of Prometheus's start.
    const deadline = Date.now() + 40_000;
    let targets: Target[] = [];
    while (Date.now() < deadline) {
      const r = (await (await fetch(`${url}/api/v1/targets?state=active`)).json()) as {
        data: { activeTargets: Target[] };
      };
      targets = r.data.activeTargets;
      if (targets.length === jobs.length && targets.every((t) => t.health === 'up')) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(targets.map((t) => [t.labels['job'], t.health]).sort()).toEqual([
      ['app-ledger', 'up'],
      ['app-orders-api', 'up'],
      ['app-orders-writer', 'up'],
      ['envoy-ingress', 'up'],
      ['envoy-ledger', 'up'],
      ['envoy-orders-api', 'up'],
      ['envoy-orders-writer', 'up'],
      ['jmx-cassandra', 'up'],
      ['jmx-kafka', 'up'],
      ['keycloak', 'up'],
      ['nginx', 'up'],
      ['prometheus', 'up'],
    ]);
    for (const t of targets)
      if (t.labels['job'] !== 'prometheus') expect(t.scrapeUrl).toMatch(/^https:\/\//);
    // The apps' own counters, scraped through their sidecars: the order accepted in the test above
    // was written by orders-writer and projected by ledger.
    const value = async (query: string): Promise<number> => {
      const r = (await (
        await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`)
      ).json()) as { data: { result: { value: [number, string] }[] } };
      return Number(r.data.result[0]?.value[1] ?? 0);
    };
    const counters = [
      'orders_writer_orders_written_total{job="app-orders-writer"}',
      'ledger_events_projected_total{job="app-ledger"}',
    ];
    let seen: number[] = [];
    for (let i = 0; i < 40; i++) {
      seen = await Promise.all(counters.map(value));
      if (seen.every((v) => v >= 1)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(Object.fromEntries(counters.map((c, i) => [c, (seen[i] ?? 0) >= 1]))).toEqual(
      Object.fromEntries(counters.map((c) => [c, true])),
    );
    const svidSans = new X509Certificate(
      readFileSync(join(stackDir, 'pki', 'prometheus', 'cert.pem')),
    ).subjectAltName;
    expect(svidSans).toBe('URI:spiffe://trellis.local/ns/trellis/sa/prometheus');
    // The dashboards compiled from the model (ADR 0024): the index renders with every route and hop.
    expect(out.prometheus.consolesUrl).toBe(`${url}/consoles/index.html`);
    const index = await fetch(out.prometheus.consolesUrl);
    const html = await index.text();
    expect(index.status, html.slice(0, 300)).toBe(200);
    for (const file of ['route-create-order', 'route-get-order', 'hop-ingress', 'hop-keycloak'])
      expect(html).toContain(`<a href="${file}.html">`);
    const hop = await (await fetch(`${url}/consoles/hop-keycloak.html`)).text();
    expect(/<th>scrape up<\/th><td>\s*<a[^>]*>1<\/a>/.test(hop)).toBe(true);
  });

  it("serves nginx's metrics to the scraper only, through the front in the edge's pod", async () => {
    const r = (await (await fetch(`${out.prometheus.url}/api/v1/targets?state=active`)).json()) as {
      data: { activeTargets: { labels: Record<string, string>; scrapeUrl: string }[] };
    };
    const target = r.data.activeTargets.find((t) => t.labels['job'] === 'nginx')?.scrapeUrl ?? '';
    expect(target).toMatch(/^https:\/\/[\d.]+:\d+\/metrics$/);
    // The front's SVID: its own SPIFFE ID and the DNS name Prometheus checks.
    const front = (tls: { cert?: Buffer; key?: Buffer }, method = 'GET') =>
      https(target, {
        method,
        tls: {
          ...tls,
          checkServerIdentity: (_host, cert) =>
            (cert.subjectaltname ?? '').split(', ').sort().join(', ') ===
            'DNS:nginx.trellis.svc, URI:spiffe://trellis.local/ns/trellis/sa/nginx'
              ? undefined
              : new Error(`unexpected server identity ${cert.subjectaltname}`),
        },
      });
    const scraper = svid(join(stackDir, 'pki', 'prometheus'));
    const ok = await front(scraper);
    expect(ok.status, ok.body.slice(0, 300)).toBe(200);
    expect(ok.body).toMatch(/^nginx_connections_active \d+$/m);
    expect(ok.body).toMatch(/^nginx_connections_waiting \d+$/m);
    // The scraper on another method: RBAC's 403. Another workload's SVID (the ingress sidecar's)
    // and no certificate: the handshake fails (the listener accepts the scraper's SAN only).
    expect((await front(scraper, 'POST')).status).toBe(403);
    await expect(front(svid(out.sidecars['ingress']?.certDir ?? ''))).rejects.toThrow();
    await expect(front({})).rejects.toThrow();
  });

  it('serves Keycloak over TLS only, and the sidecars fetch its JWKS over TLS', async () => {
    expect(out.principals.tokenUrl).toMatch(/^https:\/\/localhost:\d+\//);
    expect(out.issuer).toMatch(/^https:\/\/localhost:\d+\/realms\/trellis$/);
    const kcCert = new X509Certificate(readFileSync(join(stackDir, 'pki', 'keycloak', 'cert.pem')));
    expect(kcCert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    // The token in beforeAll came over TLS verified by the stack's bundle; the JWKS that verified it
    // reached the sidecar over TLS too (handshakes on its JWKS cluster, none failed).
    const admin = out.sidecars['orders-api']?.adminUrl ?? '';
    expect(await stat(admin, 'cluster.jwks_keycloak.ssl.handshake')).toBeGreaterThan(0);
    expect(await stat(admin, 'cluster.jwks_keycloak.ssl.fail_verify_san')).toBe(0);
    expect(await stat(admin, 'cluster.jwks_keycloak.ssl.fail_verify_error')).toBe(0);
    // A client that trusts only the system's roots is refused (after the same call worked above).
    await expect(requestToken(out.principals, 'alice')).rejects.toThrow(
      /its certificate is not trusted by the system's roots/,
    );
  });

  it('keeps passwords, client secrets and keys out of the state in plain text', async () => {
    const state = await ok(['stack', 'export'], 60_000, false);
    const secrets = [
      ...Object.values(out.principals.users),
      ...Object.values(out.principals.agents),
      out.keycloakAdmin.password,
    ];
    expect(secrets.length).toBe(4);
    for (const s of secrets) {
      expect(s.length).toBeGreaterThanOrEqual(32);
      expect(state).not.toContain(s);
    }
    expect(state).not.toContain('BEGIN PRIVATE KEY');
    // The realm file holds them on disk, readable by the owner only.
    const realm = join(stackDir, 'run', 'keycloak', 'realm', 'trellis.json');
    expect(statSync(realm).mode & 0o777).toBe(0o600);
  });
});

/** Every log file under the stack's run/: process logs, access logs, audit and authorizer logs. */
function logFiles(): string[] {
  return filesUnder(join(stackDir, 'run')).filter((f) =>
    /(\.log(\.\d+)?|^access\.json)$/.test(basename(f)),
  );
}

/** The JSON lines of `file` (others skipped), once `until` holds for them or after 10 s. */
async function jsonLines(
  file: string,
  until: (lines: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  let lines: Record<string, unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 250));
    if (!existsSync(file)) continue;
    lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    if (until(lines)) break;
  }
  return lines;
}

describe('the audit trail', () => {
  it('logs who called and what was decided at every hop, and no token, key or password anywhere', async () => {
    const allowed = await postOrder('alice', 'mesh-audit');
    expect(allowed.status, allowed.body).toBe(202);
    const refused = await postOrder('bob', 'mesh-audit');
    expect(refused.status).toBe(403);
    const okId = String(allowed.headers['x-request-id']);
    const denyId = String(refused.headers['x-request-id']);
    const sub = (who: string) =>
      (
        JSON.parse(Buffer.from(tokens[who]?.split('.')[1] ?? '', 'base64url').toString()) as {
          sub: string;
        }
      ).sub;

    // The orders-api sidecar: the ingress's SPIFFE ID, alice's subject and client, RBAC's verdict.
    const ordersLog = join(stackDir, 'run', 'orders-api-sidecar', 'access.log');
    const byId = (lines: Record<string, unknown>[], id: string) =>
      lines.find((l) => l.requestId === id);
    const orders = await jsonLines(
      ordersLog,
      (ls) => byId(ls, okId) !== undefined && byId(ls, denyId) !== undefined,
    );
    const ingressId = out.sidecars.ingress?.spiffeId;
    expect(byId(orders, okId)).toMatchObject({
      source: 'envoy',
      workload: 'orders-api',
      peer: ingressId,
      status: 202,
      rbac: 'allowed',
      jwt: { keycloak: { sub: sub('alice'), azp: out.principals.cliClientId } },
    });
    expect(byId(orders, denyId)).toMatchObject({
      peer: ingressId,
      status: 403,
      rbac: 'denied',
      details: 'rbac_access_denied_matched_policy[none]',
      jwt: { keycloak: { sub: sub('bob') } },
    });
    // The edge sidecar names the route; nginx logs the same id.
    const edge = await jsonLines(join(stackDir, 'run', 'ingress-sidecar', 'access.log'), (ls) =>
      Boolean(byId(ls, okId)),
    );
    expect(byId(edge, okId)).toMatchObject({ workload: 'ingress', method: 'POST', status: 202 });
    expect(byId(edge, okId)?.route).toEqual(expect.any(String));
    const nginx = await jsonLines(join(stackDir, 'run', 'nginx', 'access.json'), (ls) =>
      ls.some((l) => l.request_id === denyId),
    );
    expect(nginx.find((l) => l.request_id === okId)).toMatchObject({
      source: 'nginx',
      uri: '/orders',
    });

    // The data stores and the identity provider, each naming the identity it acted for.
    const cassandraAudit = join(stackDir, 'run', 'cassandra', 'logs', 'audit.log');
    const kafkaAudit = join(stackDir, 'run', 'kafka', 'logs', 'kafka-authorizer.log');
    const ordersId = out.sidecars['orders-api']?.spiffeId ?? '';
    let cql = '';
    let acl = '';
    for (let i = 0; i < 40 && !(cql.includes('user:ledger|') && acl.includes(ordersId)); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      cql = existsSync(cassandraAudit) ? readFileSync(cassandraAudit, 'utf8') : '';
      acl = existsSync(kafkaAudit) ? readFileSync(kafkaAudit, 'utf8') : '';
    }
    const files = logFiles();
    // Real lines for the audit reader's fixtures and docs, when asked.
    const keep = process.env.TRELLIS_AUDIT_SAMPLE;
    if (keep !== undefined)
      for (const f of files) {
        const to = join(keep, relative(stackDir, f));
        mkdirSync(dirname(to), { recursive: true });
        cpSync(f, to);
      }
    // The write as the role orders-writer's SPIFFE ID maps to (Cassandra logs an INSERT in its
    // UNLOGGED BATCH as UPDATE, with the batch id), ledger's projection as ledger's, and the logins.
    // orders-api writes nothing (its role may only SELECT; reads are not audited, QUERY is not a
    // category of the stack's audit log).
    expect
      .soft(cql)
      .toMatch(/^user:orders-writer\|.*\|type:UPDATE\|category:DML\|.*\|ks:orders\|/m);
    expect.soft(cql).not.toMatch(/^user:orders-api\|.*\|category:DML\|/m);
    expect.soft(cql).toMatch(/^user:ledger\|.*\|category:DML\|ks:ledger\|/m);
    expect.soft(cql).toMatch(/^user:orders-api\|.*\|type:LOGIN_SUCCESS\|category:AUTH/m);
    // orders-api produces the order queue, orders-writer orders.v1.
    expect.soft(acl).toContain(`Principal = User:${ordersId} is Allowed operation = WRITE`);
    const writerId = out.sidecars['orders-writer']?.spiffeId ?? '';
    expect.soft(acl).toContain(`Principal = User:${writerId} is Allowed operation = WRITE`);
    const keycloakLog = readFileSync(join(stackDir, 'run', 'keycloak', 'process.log'), 'utf8');
    expect.soft(keycloakLog).toMatch(/\[org\.keycloak\.events\].*type="?CLIENT_LOGIN"?/);
    expect.soft(keycloakLog).toMatch(/\[org\.keycloak\.events\].*type="?LOGIN"?/);

    // No token (nor its signature), private key or password in any log.
    const secrets = [
      ...Object.entries(tokens).flatMap(([who, t]) => [
        [`${who}'s token`, t],
        [`${who}'s token signature`, t.split('.')[2] ?? t],
      ]),
      ...Object.entries(out.principals.users).map(([u, p]) => [`${u}'s password`, p]),
      ...Object.entries(out.principals.agents).map(([a, p]) => [`${a}'s client secret`, p]),
      ['the Keycloak admin password', out.keycloakAdmin.password],
      ['a PEM block', '-----BEGIN'],
    ] as [string, string][];
    expect(files.length).toBeGreaterThan(8);
    const leaks = files.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      return secrets.filter(([, v]) => text.includes(v)).map(([what]) => `${what} in ${f}`);
    });
    expect(leaks).toEqual([]);
  });
});

describe('the request path as Pulumi resources', () => {
  it('reports no changes on a second run', async () => {
    const r = await pulumi(['preview', '--expect-no-changes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('rotates every SVID while requests flow, restarting nothing', async () => {
    const components = [
      'ingress-sidecar',
      'orders-api-sidecar',
      'orders-writer-sidecar',
      'ledger-sidecar',
      'nginx',
      'orders-api',
      'orders-writer',
      'ledger',
      'keycloak',
      'prometheus',
      'cassandra',
      'kafka',
    ];
    const before = Object.fromEntries(components.map((c) => [c, childPid(c)]));
    // The data servers' own certificates (ADR 0029): what each presents, before and after.
    const ports = localPortsAt(basePort);
    const adminPki = join(stackDir, 'pki', 'platform-admin');
    const asAdmin = {
      cert: join(adminPki, 'cert.pem'),
      key: join(adminPki, 'key.pem'),
      ca: join(adminPki, 'bundle.pem'),
    };
    const dataServers = {
      kafka: { host: '127.0.0.1', port: ports.kafkaClientsFrom },
      cassandra: { host: '127.0.0.1', port: ports.cassandraNative },
    };
    const fileSerial = (who: string): string =>
      new X509Certificate(readFileSync(join(stackDir, 'pki', who, 'cert.pem'))).serialNumber
        .toUpperCase()
        .replace(/^0+/, '');
    for (const [who, ep] of Object.entries(dataServers))
      expect((await servedCertificate(ep, asAdmin)).serial, who).toBe(fileSerial(who));
    const dataSerialsBefore = Object.keys(dataServers).map(fileSerial);
    const admin = out.sidecars['orders-api']?.adminUrl ?? '';
    const port = out.sidecars['orders-api']?.inbound.http ?? 0;
    // Counted each time the listener's TLS context is rebuilt from SDS (a new SVID or bundle).
    const sdsStat = `listener.127.0.0.1_${port}.server_ssl_socket_factory.ssl_context_update_by_sds`;
    const sdsBefore = await stat(admin, sdsStat);
    expect(sdsBefore).toBeGreaterThan(0);
    const serialBefore = new X509Certificate(
      readFileSync(join(out.sidecars['orders-api']?.certDir ?? '', 'cert.pem')),
    ).serialNumber;
    const created = JSON.parse((await postOrder('alice', 'mesh-rot')).body) as { id: string };
    // Every GET during the rotation must be a 200: wait until the writer has stored the order.
    expect((await readOnceWritten(created.id)).status).toBe(200);

    // Keep-alive GETs through the whole path during the rotation.
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    let running = true;
    const outcomes: string[] = [];
    const load = (async () => {
      while (running) {
        try {
          const r = await https(`${out.ingressUrl}/orders/${created.id}`, {
            headers: bearer('alice'),
            agent,
          });
          outcomes.push(String(r.status));
        } catch (err) {
          outcomes.push((err as Error).message);
        }
      }
    })();
    try {
      await ok(['config', 'set', 'trellis-mesh-test:rotation', '1']);
      await ok(['up', '--yes', '--skip-preview']);
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      running = false;
      await load;
      agent.destroy();
    }
    const failed = outcomes.filter((o) => o !== '200');
    expect(outcomes.length).toBeGreaterThan(20);
    expect(failed).toEqual([]);
    expect(Object.fromEntries(components.map((c) => [c, childPid(c)]))).toEqual(before);
    const serialAfter = new X509Certificate(
      readFileSync(join(out.sidecars['orders-api']?.certDir ?? '', 'cert.pem')),
    ).serialNumber;
    expect(serialAfter).not.toBe(serialBefore);
    expect(await stat(admin, sdsStat)).toBeGreaterThan(sdsBefore);
    // Kafka and Cassandra present their renewed certificates too, without a restart (pids above).
    const dataSerialsAfter = Object.keys(dataServers).map(fileSerial);
    dataSerialsAfter.forEach((serial, i) => expect(serial).not.toBe(dataSerialsBefore[i]));
    for (const [who, ep] of Object.entries(dataServers))
      expect((await servedCertificate(ep, asAdmin)).serial, who).toBe(fileSerial(who));
    // Envoy serves the new SVID: the ingress's next handshake sees it.
    const certs = (await (await fetch(`${admin}/certs`)).json()) as {
      certificates: { cert_chain: { serial_number: string }[] }[];
    };
    expect(
      certs.certificates.flatMap((c) => c.cert_chain.map((x) => x.serial_number.toUpperCase())),
    ).toContain(serialAfter);
  });

  it('re-issues the edge certificate with a graceful nginx reload, not a restart', async () => {
    const nginx = childPid('nginx');
    const served = async () =>
      new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          `${out.ingressUrl}/`,
          { agent: false, ca: readFileSync(out.caFile), timeout: 10_000 },
          (res) => {
            const peer = (res.socket as TLSSocket).getPeerCertificate();
            res.resume();
            resolve(peer.serialNumber);
          },
        );
        req.on('error', reject);
        req.end();
      });
    const before = await served();
    await ok(['config', 'set', 'trellis-mesh-test:edgeRotation', '1']);
    await ok(['up', '--yes', '--skip-preview']);
    const onDisk = new X509Certificate(
      readFileSync(join(stackDir, 'pki', 'ingress-edge', 'cert.pem')),
    ).serialNumber;
    let after = before;
    for (let i = 0; i < 40 && after !== onDisk; i++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await served();
    }
    expect(after).not.toBe(before);
    expect(after).toBe(onDisk);
    expect(childPid('nginx')).toBe(nginx);
    expect((await postOrder('alice', 'mesh-edge')).status).toBe(202);
  });

  it("fails up with Envoy's own message when a bootstrap is bad, before starting it", async () => {
    await ok(['config', 'set', 'trellis-mesh-test:breakEnvoy', 'true']);
    try {
      const r = await pulumi(['up', '--yes', '--skip-preview']);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain(
        "broken-sidecar: envoy --mode validate refused the bootstrap of 'ledger':",
      );
      expect(r.stdout + r.stderr).toContain("no such field: 'not_an_envoy_field'");
      expect(existsSync(join(stackDir, 'run', 'broken-sidecar', 'supervisor.json'))).toBe(false);
    } finally {
      await ok(['config', 'rm', 'trellis-mesh-test:breakEnvoy']);
    }
  });

  it('destroy leaves no process of this stack and no file', async () => {
    expect(processesOfThisTest().length).toBeGreaterThan(8);
    const r = await pulumi(['destroy', '--yes', '--skip-preview']);
    destroyed = r.code === 0;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(processesOfThisTest()).toEqual([]);
    expect(filesUnder(stackDir)).toEqual([]);
    expect(upMs).toBeGreaterThan(0);
  });
});
