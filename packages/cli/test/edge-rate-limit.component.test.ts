/**
 * Route rate limits on both hops, against the real binaries: nginx compiled by `compileNginxHttp`, the
 * ingress Envoy and the orders-api sidecar compiled by `compileEnvoy`, and a tiny app:
 *
 *   client ─TLS─▶ nginx ─▶ ingress Envoy ═mTLS═▶ orders-api sidecar ─▶ app
 *
 * With one model on both hops the edge is the binding limit: 2xx below the rate, then nginx's 429,
 * and the sidecar refuses nothing. With an edge looser than the sidecar, or calling the sidecar
 * directly, the sidecar's own local rate limit answers 429. Loopback only; every loop is bounded.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CertificateAuthority,
  freePorts,
  startEnvoy,
  startNginx,
  writePemFiles,
} from '@trellis/local/harness';
import {
  bindOrThrow,
  compileEnvoy,
  compileNginxHttp,
  spiffeId,
  validateModel,
} from '@trellis/policy';
import type { BoundModel, EnvoyOptions } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const modelText = readFileSync(
  fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)),
  'utf8',
);
const root = mkdtempSync(join(tmpdir(), 'trellis-edge-rate-'));

type Rate = { requestsPerSecond: number; burst: number };

/** trellis.yaml with the two routes' rate limits replaced. */
function modelWith(rates: { 'create-order': Rate; 'get-order': Rate }): BoundModel {
  const data = parse(modelText) as { routes: Record<string, { rateLimit?: Rate }> };
  for (const [name, rate] of Object.entries(rates)) {
    const r = data.routes[name];
    if (!r) throw new Error(`trellis.yaml has no route ${name}`);
    r.rateLimit = rate;
  }
  const v = validateModel(data);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return bindOrThrow(v.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

// Small numbers, so that a short bounded burst of requests crosses them.
const tight = modelWith({
  'create-order': { requestsPerSecond: 1, burst: 3 },
  'get-order': { requestsPerSecond: 4, burst: 4 },
});
const loose = modelWith({
  'create-order': { requestsPerSecond: 100, burst: 300 },
  'get-order': { requestsPerSecond: 100, burst: 300 },
});

// The test's own token issuer: a local JWKS file stands in for Keycloak.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
writeFileSync(
  join(root, 'jwks.json'),
  JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k', alg: 'RS256' }] }),
);
function token(): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = {
    iss: tight.identityProviders['keycloak']?.issuer,
    aud: 'trellis-api',
    sub: 'alice',
    scope: 'orders:write orders:read',
    exp: Math.floor(Date.now() / 1000) + 600,
  };
  const head = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k' })}.${b64(claims)}`;
  return `${head}.${sign('RSA-SHA256', Buffer.from(head), privateKey).toString('base64url')}`;
}

/** One request path, started under `dir`: nginx from `edgeModel`, both Envoys from `meshModel`. */
interface RequestPath {
  nginxPort: number;
  sidecarPort: number;
  sidecarAdmin: string;
  /** PEM trust bundle, and the ingress SVID for calling the sidecar directly. */
  ca: string;
  ingress: { cert: string; key: string };
  served(): number;
  stop(): Promise<void>;
}

function app(count: { n: number }): Server {
  return createServer((req, res) => {
    count.n++;
    req.resume();
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
}

function writeSds(files: Record<string, unknown>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, JSON.stringify(content));
  }
}

async function startPath(
  dir: string,
  edgeModel: BoundModel,
  meshModel: BoundModel,
): Promise<RequestPath> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const ca = await CertificateAuthority.create({ commonName: 'edge rate test', validDays: 1 });
    const svid = async (w: string) => {
      const issued = await ca.issue({ uris: [spiffeId(meshModel, w)], validDays: 1 });
      return { issued, files: writePemFiles(join(dir, 'pki', w), w, issued, ca.rootPem) };
    };
    const api = await svid('orders-api');
    const ingress = await svid('ingress');
    const tls = await ca.issue({ commonName: 'localhost', dns: ['localhost'], validDays: 1 });
    const edgeTls = writePemFiles(join(dir, 'pki', 'nginx'), 'nginx', tls, ca.rootPem);
    const [appPort, sidecarPort, ingressPort, nginxPort, unused] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const count = { n: 0 };
    const server = app(count);
    await new Promise<void>((r) => server.listen(appPort, '127.0.0.1', () => r()));
    stops.push(() => new Promise<void>((r) => server.close(() => r())));

    const sds = (w: string, f: typeof api.files): EnvoyOptions['sds'] => ({
      dir: join(dir, w, 'sds'),
      certChain: f.cert,
      privateKey: f.key,
      trustBundle: f.truststore,
    });
    const sidecar = compileEnvoy(meshModel, {
      workload: 'orders-api',
      inbound: { http: sidecarPort },
      app: { http: { address: '127.0.0.1', port: appPort } },
      // No data stores here: the clusters exist, nothing dials them.
      outbound: {
        cassandra: { address: '127.0.0.1', port: unused },
        kafka: { address: '127.0.0.1', port: unused },
      },
      sds: sds('orders-api', api.files),
      jwks: { keycloak: { file: join(root, 'jwks.json') } },
    });
    const edge = compileEnvoy(meshModel, {
      workload: 'ingress',
      inbound: { http: ingressPort },
      outbound: { 'orders-api': { address: '127.0.0.1', port: sidecarPort } },
      sds: sds('ingress', ingress.files),
    });
    const admins: string[] = [];
    for (const [name, a] of [
      ['orders-api', sidecar],
      ['ingress', edge],
    ] as const) {
      writeSds(a.sdsFiles);
      const e = await startEnvoy({
        dir: join(dir, name, 'run'),
        name: `${name}-envoy`,
        config: a.bootstrap as unknown as Record<string, unknown>,
      });
      stops.push(() => e.stop());
      admins.push(e.adminUrl);
    }
    const nginx = await startNginx({
      dir: join(dir, 'nginx'),
      config: compileNginxHttp(edgeModel, {
        listen: { address: '127.0.0.1', port: nginxPort },
        tls: { certificate: edgeTls.cert, key: edgeTls.key },
        upstream: { address: '127.0.0.1', port: ingressPort },
      }),
    });
    stops.push(() => nginx.stop());
    return {
      nginxPort,
      sidecarPort,
      sidecarAdmin: admins[0] ?? '',
      ca: ca.rootPem,
      ingress: { cert: ingress.issued.chainPem, key: ingress.issued.keyPem },
      served: () => count.n,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface Reply {
  status: number;
  body: string;
}

/** One HTTPS request (TLS verified against `ca`), on a kept-alive connection of `agent`. */
function send(port: number, agent: Agent, method: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        method,
        path,
        agent,
        // The sidecar's SVID names a SPIFFE ID, not a host; the chain is still verified.
        checkServerIdentity: () => undefined,
        headers: {
          host: 'localhost',
          authorization: `Bearer ${token()}`,
          ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(method === 'POST' ? '{"sku":"x","quantity":1}' : undefined);
  });
}

/** `n` requests, each sent when the previous one is answered, `gapMs` apart. */
async function burst(
  n: number,
  gapMs: number,
  call: () => Promise<Reply>,
): Promise<{ replies: Reply[]; elapsedMs: number }> {
  const replies: Reply[] = [];
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    replies.push(await call());
  }
  return { replies, elapsedMs: Date.now() - start };
}

// nginx's own error page versus the body of Envoy's local rate limit, passed through nginx as is.
const fromEdge = (r: Reply) => r.status === 429 && r.body.includes('<center>nginx</center>');
const fromSidecar = (r: Reply) => r.status === 429 && r.body === 'local_rate_limited';

/** Requests the sidecar's local rate limit refused on `route`, from its admin stats. */
async function sidecarRefused(admin: string, route: string): Promise<number> {
  const text = await (await fetch(`${admin}/stats?filter=http_local_rate_limit`)).text();
  const m = new RegExp(`^route_${route}\\.http_local_rate_limit\\.rate_limited: (\\d+)$`, 'm').exec(
    text,
  );
  if (!m) throw new Error(`no rate_limited stat for ${route} in:\n${text}`);
  return Number(m[1]);
}

describe('one model on both hops: the edge limits', () => {
  let path: RequestPath;
  let agent: Agent;

  beforeAll(async () => {
    path = await startPath(join(root, 'same'), tight, tight);
    agent = new Agent({ keepAlive: true, maxSockets: 1, ca: path.ca });
  }, 120_000);
  afterAll(async () => {
    agent?.destroy();
    await path?.stop();
  });

  it('answers 2xx below the rate, beyond the burst', async () => {
    // get-order: 4/s, burst 4. Ten requests at ~2.5/s (the gap plus the request's own time).
    const { replies } = await burst(10, 400, () => send(path.nginxPort, agent, 'GET', '/orders/1'));
    expect(replies.map((r) => r.status)).toEqual(Array<number>(10).fill(200));
    expect(await sidecarRefused(path.sidecarAdmin, 'get-order')).toBe(0);
  }, 60_000);

  it('answers 429 from the edge over the rate, and the sidecar refuses nothing', async () => {
    const before = path.served();
    // create-order: 1/s, burst 3. Eight back to back.
    const { replies, elapsedMs } = await burst(8, 0, () =>
      send(path.nginxPort, agent, 'POST', '/orders'),
    );
    const statuses = replies.map((r) => r.status);
    expect(statuses.slice(0, 3), statuses.join(' ')).toEqual([201, 201, 201]);
    const admitted = replies.filter((r) => r.status === 201).length;
    // Never more than the burst plus what refilled meanwhile.
    expect(admitted).toBeLessThanOrEqual(3 + Math.floor(elapsedMs / 1000));
    expect(replies.filter(fromEdge).length).toBe(8 - admitted);
    expect(replies.filter(fromEdge).length).toBeGreaterThan(0);
    expect(path.served() - before).toBe(admitted);
    expect(await sidecarRefused(path.sidecarAdmin, 'create-order')).toBe(0);
  }, 60_000);
});

describe('an edge looser than the sidecar, or no edge: the sidecar limits', () => {
  let path: RequestPath;
  let agent: Agent;

  beforeAll(async () => {
    path = await startPath(join(root, 'loose-edge'), loose, tight);
    agent = new Agent({ keepAlive: true, maxSockets: 1, ca: path.ca });
  }, 120_000);
  afterAll(async () => {
    agent?.destroy();
    await path?.stop();
  });

  it("passes the sidecar's 429 through the edge", async () => {
    const { replies } = await burst(8, 0, () => send(path.nginxPort, agent, 'POST', '/orders'));
    const statuses = replies.map((r) => r.status);
    expect(statuses.slice(0, 3), statuses.join(' ')).toEqual([201, 201, 201]);
    const refused = replies.filter(fromSidecar).length;
    expect(refused).toBeGreaterThan(0);
    expect(replies.filter((r) => r.status === 201).length + refused).toBe(8);
    expect(replies.some(fromEdge)).toBe(false);
    expect(await sidecarRefused(path.sidecarAdmin, 'create-order')).toBe(refused);
  }, 60_000);

  it('answers 429 when called directly over the rate (mTLS as the ingress)', async () => {
    const direct = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: path.ca,
      cert: path.ingress.cert,
      key: path.ingress.key,
    });
    try {
      // get-order: 4/s, burst 4. Ten back to back.
      const { replies } = await burst(10, 0, () =>
        send(path.sidecarPort, direct, 'GET', '/orders/1'),
      );
      const statuses = replies.map((r) => r.status);
      expect(statuses.slice(0, 4), statuses.join(' ')).toEqual([200, 200, 200, 200]);
      const refused = replies.filter(fromSidecar).length;
      expect(refused).toBeGreaterThan(0);
      expect(replies.filter((r) => r.status === 200).length + refused).toBe(10);
      expect(await sidecarRefused(path.sidecarAdmin, 'get-order')).toBe(refused);
    } finally {
      direct.destroy();
    }
  }, 60_000);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
