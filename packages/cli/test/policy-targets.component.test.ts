/**
 * The policy compilers against the real binaries: every sidecar bootstrap passes `envoy --mode
 * validate`; the orders-api sidecar, started for real in front of a tiny app, decides the reference
 * scenarios as the oracle does (mTLS peers, tokens, scopes); the ingress config passes `nginx -t`; and
 * the Keycloak realm imports and issues exactly the scopes each role and agent may have.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CertificateAuthority,
  freePorts,
  startEnvoy,
  startKeycloak,
  testNginxConfig,
  validateEnvoyConfig,
  writePemFiles,
} from '@trellis/local/harness';
import type { EnvoyInstance, KeycloakInstance } from '@trellis/local/harness';
import {
  allowed,
  bindOrThrow,
  compileEnvoy,
  compileKeycloakRealm,
  compileNginxHttp,
  parseModel,
  spiffeId,
} from '@trellis/policy';
import type { BoundModel, EnvoyOptions, JsonValue, Peer, ValidModel } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const modelFile = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));
const parsed = parseModel(readFileSync(modelFile, 'utf8'));
if (!parsed.ok) throw new Error(`trellis.yaml is invalid: ${JSON.stringify(parsed.errors)}`);
const base: BoundModel = bindOrThrow(
  parsed.model,
  { kind: 'example', baseDir: '/srv' },
  'example plan',
);
const root = mkdtempSync(join(tmpdir(), 'trellis-policy-targets-'));

// The test's own token issuer: a local JWKS file stands in for Keycloak in the Envoy part.
const issuer = base.identityProviders['keycloak']?.issuer ?? '';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = 'test-key';

function jwt(claims: Record<string, unknown>, key: KeyObject = privateKey, alg = 'RS256'): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64({ alg, typ: 'JWT', kid })}.${b64(claims)}`;
  if (alg === 'none') return `${head}.`;
  return `${head}.${sign('RSA-SHA256', Buffer.from(head), key).toString('base64url')}`;
}

interface Identity {
  cert: string;
  key: string;
}

async function issueAll(
  ca: CertificateAuthority,
  dir: string,
  model: ValidModel,
): Promise<Record<string, Identity & { files: ReturnType<typeof writePemFiles> }>> {
  const out: Record<string, Identity & { files: ReturnType<typeof writePemFiles> }> = {};
  for (const w of [...Object.keys(model.workloads), 'cassandra', 'kafka']) {
    const id =
      w === 'cassandra' || w === 'kafka'
        ? `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/${w}`
        : spiffeId(model, w);
    const issued = await ca.issue({ commonName: w, uris: [id], validDays: 1 });
    const files = writePemFiles(join(dir, w), w, issued, ca.rootPem);
    out[w] = { cert: issued.chainPem, key: issued.keyPem, files };
  }
  return out;
}

function sidecarOptions(
  w: string,
  files: ReturnType<typeof writePemFiles>,
  ports: Record<string, number>,
  dir: string,
): EnvoyOptions {
  const model = base;
  const wl = model.workloads[w];
  if (!wl) throw new Error(w);
  return {
    workload: w,
    inbound: Object.fromEntries(wl.ports.map((p) => [p.name, ports[`${w}.in.${p.name}`] ?? 0])),
    app: Object.fromEntries(
      wl.ports.map((p) => [
        p.name,
        { address: '127.0.0.1', port: ports[`${w}.app.${p.name}`] ?? 0 },
      ]),
    ),
    outbound: Object.fromEntries(
      wl.calls.map((c) => [
        c,
        {
          address: '127.0.0.1',
          port: ports[`${c}.in.http`] ?? ports[`${c}.tls`] ?? 0,
          listenPort: ports[`${w}.out.${c}`] ?? 0,
        },
      ]),
    ),
    sds: {
      dir: join(dir, w, 'sds'),
      certChain: files.cert,
      privateKey: files.key,
      trustBundle: files.truststore,
    },
    jwks: { keycloak: { file: join(root, 'jwks.json') } },
  };
}

function writeSds(sdsFiles: Record<string, unknown>): void {
  for (const [path, content] of Object.entries(sdsFiles)) {
    mkdirSync(join(path, '..'), { recursive: true });
    // JSON is YAML: Envoy reads the .yaml SDS files either way.
    writeFileSync(path, JSON.stringify(content));
  }
}

/** One HTTPS request with an optional client certificate; resolves the status, or 'tls' when the handshake fails. */
function call(
  port: number,
  ca: string,
  client: Identity | undefined,
  method: string,
  path: string,
  token?: string,
  headers?: Record<string, unknown>,
): Promise<number | 'tls'> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        ...(client ? { cert: client.cert, key: client.key } : {}),
        // SVIDs carry a SPIFFE URI SAN, not a host name; the chain is still verified against the CA.
        checkServerIdentity: () => undefined,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeout: 10_000,
        agent: false,
      },
      (res) => {
        if (headers) Object.assign(headers, res.headers);
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve('tls'));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('policy compilers against the real binaries', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let ids: Awaited<ReturnType<typeof issueAll>>;
  let ports: Record<string, number> = {};
  let envoy: EnvoyInstance | undefined;
  let app: HttpServer | undefined;

  beforeAll(async () => {
    ca = await CertificateAuthority.create({ commonName: 'trellis test root', validDays: 1 });
    otherCa = await CertificateAuthority.create({ commonName: 'not the mesh', validDays: 1 });
    ids = await issueAll(ca, join(root, 'certs'), base);
    const names = [
      'ingress.in.http',
      'orders-api.in.http',
      'orders-api.app.http',
      'ledger.in.http',
      'ledger.app.http',
      'orders-writer.in.http',
      'orders-writer.app.http',
      'cassandra.tls',
      'kafka.tls',
      'ingress.out.orders-api',
      'orders-api.out.cassandra',
      'orders-api.out.kafka',
      'ledger.out.cassandra',
      'ledger.out.kafka',
      'orders-writer.out.cassandra',
      'orders-writer.out.kafka',
    ];
    const free = await freePorts(names.length);
    ports = Object.fromEntries(names.map((n, i) => [n, free[i] ?? 0]));
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
    writeFileSync(join(root, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  });

  afterAll(async () => {
    await envoy?.stop();
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  it('every sidecar bootstrap passes envoy --mode validate', async () => {
    for (const w of Object.keys(base.workloads)) {
      const id = ids[w];
      if (!id) throw new Error(w);
      const a = compileEnvoy(base, sidecarOptions(w, id.files, ports, join(root, 'envoy')));
      writeSds(a.sdsFiles);
      expect(
        await validateEnvoyConfig(a.bootstrap as unknown as Record<string, unknown>),
        w,
      ).toEqual({ ok: true });
    }
  }, 180_000);

  it('the orders-api sidecar decides the reference scenarios like the oracle', async () => {
    const api = ids['orders-api'];
    if (!api) throw new Error('orders-api');
    const opts = sidecarOptions('orders-api', api.files, ports, join(root, 'run'));
    const a = compileEnvoy(base, opts);
    writeSds(a.sdsFiles);
    app = createHttpServer((req, res) => {
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain' });
      res.end(String(req.headers['x-forwarded-client-cert'] ?? ''));
    });
    await new Promise<void>((r) =>
      app?.listen(ports['orders-api.app.http'], '127.0.0.1', () => r()),
    );
    envoy = await startEnvoy({
      dir: join(root, 'run', 'envoy'),
      config: a.bootstrap as unknown as Record<string, unknown>,
      name: 'orders-api-sidecar',
    });

    const port = ports['orders-api.in.http'] ?? 0;
    const now = Math.floor(Date.now() / 1000);
    const claims = (extra: Record<string, unknown>) => ({
      iss: issuer,
      aud: 'trellis-api',
      sub: 'alice',
      exp: now + 300,
      ...extra,
    });
    const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const tokens: Record<string, string | undefined> = {
      writer: jwt(claims({ scope: 'openid orders:write orders:read' })),
      reader: jwt(claims({ scope: 'orders:read' })),
      none: undefined,
      expired: jwt(claims({ scope: 'orders:write', exp: now - 600 })),
      wrongAudience: jwt(claims({ scope: 'orders:write', aud: 'account' })),
      wrongIssuer: jwt(
        claims({ scope: 'orders:write', iss: 'http://localhost:8180/realms/other' }),
      ),
      algNone: jwt(claims({ scope: 'orders:write' }), privateKey, 'none'),
      tampered: jwt(
        claims({ scope: 'orders:write' }),
        createPrivateKey(wrongKey.export({ format: 'pem', type: 'pkcs8' })),
      ),
      noExp: jwt({ iss: issuer, aud: 'trellis-api', sub: 'alice', scope: 'orders:write' }),
    };
    const stranger = await otherCa.issue({ uris: [spiffeId(base, 'ingress')], validDays: 1 });
    const peers: Record<string, { id: Identity | undefined; peer: Peer }> = {
      ingress: {
        id: ids['ingress'],
        peer: { kind: 'cert', spiffeId: spiffeId(base, 'ingress'), trusted: true },
      },
      ledger: {
        id: ids['ledger'],
        peer: { kind: 'cert', spiffeId: spiffeId(base, 'ledger'), trusted: true },
      },
      'orders-writer': {
        id: ids['orders-writer'],
        peer: { kind: 'cert', spiffeId: spiffeId(base, 'orders-writer'), trusted: true },
      },
      otherCa: {
        id: { cert: stranger.chainPem, key: stranger.keyPem },
        peer: { kind: 'cert', spiffeId: spiffeId(base, 'ingress'), trusted: false },
      },
      plaintext: { id: undefined, peer: { kind: 'none' } },
    };
    const requests: [string, string, string, string][] = [
      ['ingress', 'POST', '/orders', 'writer'],
      ['ingress', 'GET', '/orders/42', 'writer'],
      ['ingress', 'GET', '/orders/42', 'reader'],
      ['ingress', 'POST', '/orders', 'reader'],
      ['ingress', 'POST', '/orders', 'none'],
      ['ingress', 'POST', '/orders', 'expired'],
      ['ingress', 'POST', '/orders', 'wrongAudience'],
      ['ingress', 'POST', '/orders', 'wrongIssuer'],
      ['ingress', 'POST', '/orders', 'algNone'],
      ['ingress', 'POST', '/orders', 'tampered'],
      ['ingress', 'POST', '/orders', 'noExp'],
      ['ingress', 'GET', '/orders', 'writer'],
      ['ingress', 'GET', '/orders/42/items', 'writer'],
      ['ingress', 'GET', '/orders/%2F..%2Fadmin', 'writer'],
      ['ledger', 'POST', '/orders', 'writer'],
      // The batch writer has a mesh identity, but orders-api does not list it as a caller.
      ['orders-writer', 'POST', '/orders', 'writer'],
      ['otherCa', 'POST', '/orders', 'writer'],
      ['plaintext', 'POST', '/orders', 'writer'],
    ];
    const rows: string[] = [];
    for (const [who, method, path, tok] of requests) {
      const p = peers[who];
      if (!p) throw new Error(who);
      const status = await call(port, ca.rootPem, p.id, method, path, tokens[tok]);
      // The oracle sees the decoded token; signatures it takes from the test's own knowledge.
      const raw = tokens[tok];
      const payload = raw
        ? (JSON.parse(Buffer.from(raw.split('.')[1] ?? '', 'base64url').toString()) as Record<
            string,
            JsonValue
          >)
        : undefined;
      const oracle = allowed(base, {
        kind: 'http',
        to: 'orders-api',
        port: 'http',
        peer: p.peer,
        method,
        path: decodeURIComponent(path).includes('/../') ? '/admin' : path,
        now,
        ...(payload
          ? {
              token: {
                alg: tok === 'algNone' ? 'none' : 'RS256',
                signatureValid: tok !== 'tampered',
                claims: payload,
              },
            }
          : {}),
      });
      const ok = status === 200 || status === 201;
      rows.push(
        `${who} ${method} ${path} ${tok}: envoy ${status}, oracle ${oracle.allowed ? 'allow' : 'deny'}`,
      );
      expect(ok, rows.at(-1)).toBe(oracle.allowed);
    }
    console.info(rows.join('\n'));
    // Denials by token are 401, by policy 403, by mTLS a failed handshake.
    expect(await call(port, ca.rootPem, ids['ingress'], 'POST', '/orders')).toBe(401);
    expect(await call(port, ca.rootPem, ids['ingress'], 'POST', '/orders', tokens['reader'])).toBe(
      403,
    );
    expect(await call(port, ca.rootPem, undefined, 'POST', '/orders', tokens['writer'])).toBe(
      'tls',
    );
    // The batch writer's own SVID, from the mesh CA, with a valid token: not a caller of orders-api.
    expect(
      await call(port, ca.rootPem, ids['orders-writer'], 'POST', '/orders', tokens['writer']),
    ).toBe('tls');
    // A correctly signed token for another audience is an invalid token (RFC 6750 §3.1): 401 with
    // the challenge, although jwt_authn alone answers 403; a missing scope stays RBAC's 403.
    const seen: Record<string, unknown> = {};
    expect(
      await call(
        port,
        ca.rootPem,
        ids['ingress'],
        'POST',
        '/orders',
        tokens['wrongAudience'],
        seen,
      ),
    ).toBe(401);
    expect(seen['www-authenticate']).toBe('Bearer error="invalid_token"');
    const denied: Record<string, unknown> = {};
    expect(
      await call(port, ca.rootPem, ids['ingress'], 'POST', '/orders', tokens['reader'], denied),
    ).toBe(403);
    expect(denied['www-authenticate']).toBeUndefined();
  }, 180_000);

  it('the ingress config passes nginx -t', async () => {
    const tls = await ca.issue({ commonName: 'localhost', dns: ['localhost'], validDays: 1 });
    const dir = join(root, 'nginx');
    const files = writePemFiles(dir, 'edge', tls, ca.rootPem);
    const http = compileNginxHttp(base, {
      listen: { address: '127.0.0.1', port: ports['ingress.in.http'] ?? 0 },
      tls: { certificate: files.cert, key: files.key },
      upstream: { address: '127.0.0.1', port: ports['ingress.out.orders-api'] ?? 0 },
      accessLog: join(dir, 'trellis-access.log'),
    });
    expect(await testNginxConfig(http)).toEqual({ ok: true });
  }, 120_000);
});

describe('the Keycloak realm in Keycloak 26', () => {
  let kc: KeycloakInstance | undefined;
  const botSecret = randomBytes(18).toString('base64url');
  const passwords = {
    alice: randomBytes(12).toString('base64url'),
    bob: randomBytes(12).toString('base64url'),
  };

  beforeAll(async () => {
    const realm = compileKeycloakRealm(base, {
      agentSecrets: { 'reporting-bot': botSecret },
      users: [
        { username: 'alice', password: passwords.alice, roles: ['order-writer'] },
        { username: 'bob', password: passwords.bob, roles: ['order-reader'] },
      ],
    });
    kc = await startKeycloak({
      dir: join(root, 'keycloak'),
      realm: realm as unknown as { realm: string; [k: string]: unknown },
      name: 'policy-realm',
    });
  }, 600_000);

  afterAll(async () => {
    await kc?.stop();
    // The Envoy block above removed root before this block's Keycloak wrote into it.
    rmSync(root, { recursive: true, force: true });
  });

  async function token(
    form: Record<string, string>,
  ): Promise<{ status: number; scope?: string; aud?: unknown }> {
    if (!kc) throw new Error('keycloak did not start');
    const res = await fetch(`${kc.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams(form),
    });
    const body = (await res.json()) as { access_token?: string };
    if (!body.access_token) return { status: res.status };
    const claims = JSON.parse(
      Buffer.from(body.access_token.split('.')[1] ?? '', 'base64url').toString(),
    ) as { scope?: string; aud?: unknown };
    return { status: res.status, ...claims };
  }

  const scopes = (s?: string) =>
    (s ?? '')
      .split(' ')
      .filter((x) => x.startsWith('orders:'))
      .sort();

  it('gives each user the scopes of their role, and no more', async () => {
    const alice = await token({
      grant_type: 'password',
      client_id: 'trellis-cli',
      username: 'alice',
      password: passwords.alice,
    });
    expect(scopes(alice.scope)).toEqual(['orders:read', 'orders:write']);
    expect(alice.aud).toBe('trellis-api');
    const bob = await token({
      grant_type: 'password',
      client_id: 'trellis-cli',
      username: 'bob',
      password: passwords.bob,
      scope: 'openid orders:write',
    });
    expect(scopes(bob.scope)).toEqual(['orders:read']);
  });

  it('keeps the agent in its lane', async () => {
    const bot = await token({
      grant_type: 'client_credentials',
      client_id: 'reporting-bot',
      client_secret: botSecret,
    });
    expect(bot.status).toBe(200);
    expect(scopes(bot.scope)).toEqual(['orders:read']);
    const greedy = await token({
      grant_type: 'client_credentials',
      client_id: 'reporting-bot',
      client_secret: botSecret,
      scope: 'orders:write',
    });
    expect(greedy.status).toBe(400);
    const wrong = await token({
      grant_type: 'client_credentials',
      client_id: 'reporting-bot',
      client_secret: 'wrong',
    });
    expect(wrong.status).toBe(401);
  });
});
