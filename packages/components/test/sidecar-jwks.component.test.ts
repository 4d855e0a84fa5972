// A sidecar compiled as the local stack compiles it fetches the realm's JWKS from a real Keycloak over
// TLS (certificate from the stack's CA, for `localhost` and 127.0.0.1) and accepts the realm's token;
// the same sidecar trusting another CA, or expecting another host name, gets no keys and refuses it.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateAuthority,
  freePorts,
  requestText,
  startEnvoy,
  startKeycloak,
  writePemFiles,
  type EnvoyInstance,
  type KeycloakInstance,
  type PemFiles,
} from '@trellis/local/harness';
import {
  bindOrThrow,
  compileKeycloakRealm,
  parseModel,
  spiffeId,
  type BoundModel,
} from '@trellis/policy';
import { sidecarArtefacts } from '../src/local/sidecar.ts';

const MODEL_TEXT = readFileSync(resolve(import.meta.dirname, '../../../trellis.yaml'), 'utf8');

/** The model with the Keycloak provider's issuer and JWKS host moved (as the local stack binds it). */
function boundModel(issuer: string, jwksHost?: string): BoundModel {
  const base = parseModel(MODEL_TEXT);
  if (!base.ok) throw new Error('trellis.yaml is invalid');
  const idp = base.model.identityProviders.keycloak;
  if (!idp) throw new Error('trellis.yaml has no keycloak provider');
  let jwksUri = `${issuer}/protocol/openid-connect/certs`;
  if (jwksHost !== undefined) {
    const u = new URL(jwksUri);
    u.hostname = jwksHost;
    jwksUri = u.toString();
  }
  const r = parseModel(MODEL_TEXT.split(idp.jwksUri).join(jwksUri).split(idp.issuer).join(issuer));
  if (!r.ok) throw new Error('bound model is invalid');
  return bindOrThrow(r.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

/** Envoy stat counter from the admin interface (-1 when absent). */
async function stat(adminUrl: string, name: string): Promise<number> {
  const text = (await requestText(`${adminUrl}/stats?filter=${encodeURIComponent(`^${name}$`)}`))
    .body;
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
  return m?.[1] === undefined ? -1 : Number(m[1]);
}

describe('sidecar JWKS over TLS from a real Keycloak', () => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-jwks-tls-'));
  const password = randomBytes(18).toString('base64url');
  let kc: KeycloakInstance;
  let stackRoot = '';
  let otherRoot = '';
  let ingressSvid: PemFiles;
  let apiSvid: PemFiles;
  let appPort = 0;
  let app: Server;
  const seen: IncomingHttpHeaders[] = [];
  const envoys: EnvoyInstance[] = [];

  /** The orders-api sidecar, compiled from `model`, trusting `caFile` for Keycloak. */
  async function sidecar(name: string, model: BoundModel, caFile: string) {
    const [inbound = 0, dummy = 0] = await freePorts(2);
    const dir = join(root, name);
    const a = sidecarArtefacts(
      model,
      {
        workload: 'orders-api',
        inbound: { http: inbound },
        app: { http: { address: '127.0.0.1', port: appPort } },
        // Not dialled here: the clusters exist, nothing uses them.
        outbound: {
          cassandra: { address: '127.0.0.1', port: dummy },
          kafka: { address: '127.0.0.1', port: dummy },
        },
        // As infra/local/src/mesh.ts: Keycloak on loopback, the roots of `caFile`.
        jwks: {
          keycloak: { address: '127.0.0.1', port: Number(new URL(kc.baseUrl).port), caFile },
        },
        payloadHeader: 'x-jwt-payload',
      },
      dir,
      { cert: apiSvid.cert, key: apiSvid.key, bundle: apiSvid.truststore },
    );
    for (const [path, content] of Object.entries(a.sdsFiles)) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, JSON.stringify(content));
    }
    const e = await startEnvoy({
      dir: join(dir, 'run'),
      name,
      config: a.bootstrap as unknown as Record<string, unknown>,
    });
    envoys.push(e);
    return { url: `https://127.0.0.1:${inbound}`, adminUrl: e.adminUrl };
  }

  /** POST /orders to a sidecar as the ingress (its SVID), with `token`. */
  function post(url: string, token: string): Promise<{ status: number; body: string }> {
    return new Promise((res, rej) => {
      const req = httpsRequest(
        `${url}/orders`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          cert: readFileSync(ingressSvid.cert),
          key: readFileSync(ingressSvid.key),
          ca: readFileSync(ingressSvid.truststore),
          // The sidecar's SVID names its SPIFFE ID only (the e2e suite checks it).
          checkServerIdentity: () => undefined,
          agent: false,
          timeout: 10_000,
        },
        (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (body += c));
          r.on('end', () => res({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', rej);
      req.end(JSON.stringify({ sku: 'jwks-tls', quantity: 1 }));
    });
  }

  async function userToken(): Promise<string> {
    const res = await requestText(`${kc.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: 'trellis-cli',
        username: 'loader',
        password,
      }).toString(),
      ca: readFileSync(stackRoot),
    });
    expect(res.status).toBe(200);
    return (JSON.parse(res.body) as { access_token: string }).access_token;
  }

  beforeAll(async () => {
    const ca = await (
      await CertificateAuthority.create({ commonName: 'jwks test root' })
    ).intermediate({ commonName: 'jwks test intermediate' });
    const pki = join(root, 'pki');
    const base = parseModel(MODEL_TEXT);
    if (!base.ok) throw new Error('trellis.yaml is invalid');
    const svid = async (w: string) =>
      writePemFiles(
        join(pki, w),
        w,
        await ca.issue({ uris: [spiffeId(base.model, w)], validDays: 1 }),
        ca.rootPem,
      );
    ingressSvid = await svid('ingress');
    apiSvid = await svid('orders-api');
    const kcFiles = writePemFiles(
      join(pki, 'keycloak'),
      'keycloak',
      await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'], validDays: 1 }),
      ca.rootPem,
    );
    stackRoot = kcFiles.truststore;
    otherRoot = join(pki, 'other-root.pem');
    writeFileSync(
      otherRoot,
      (await CertificateAuthority.create({ commonName: 'another root' })).rootPem,
    );

    kc = await startKeycloak({
      dir: join(root, 'keycloak'),
      realm: compileKeycloakRealm(
        bindOrThrow(base.model, { kind: 'example', baseDir: '/srv' }, 'example plan'),
        {
          users: [{ username: 'loader', password, roles: ['order-writer'] }],
        },
      ) as unknown as { realm: string },
      tls: { certFile: kcFiles.cert, keyFile: kcFiles.key, caFile: kcFiles.truststore },
      hostname: (port) => `https://localhost:${port}`,
    });
    console.info(`keycloak ready in ${kc.startupMs} ms at ${kc.issuer}`);

    app = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"x"}');
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appPort = (app.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await kc?.stop();
    await new Promise<void>((r) => (app ? app.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  it('fetches the JWKS over TLS verified by the stack CA and localhost, and accepts the token', async () => {
    const model = boundModel(kc.issuer);
    expect(model.identityProviders.keycloak?.jwksUri).toMatch(/^https:\/\/localhost:\d+\//);
    const s = await sidecar('good', model, stackRoot);
    const token = await userToken();
    const res = await post(s.url, token);
    expect(res.status, res.body).toBe(201);
    const payload = JSON.parse(
      Buffer.from(String(seen.at(-1)?.['x-jwt-payload']), 'base64url').toString(),
    ) as { iss: string; azp: string; scope: string };
    expect(payload.iss).toBe(kc.issuer);
    expect(payload.azp).toBe('trellis-cli');
    expect(payload.scope.split(' ')).toContain('orders:write');
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.handshake')).toBeGreaterThan(0);
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.fail_verify_error')).toBe(0);
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.fail_verify_san')).toBe(0);
  });

  it('gets no keys, and refuses the same token, when it trusts another CA', async () => {
    const s = await sidecar('other-ca', boundModel(kc.issuer), otherRoot);
    const before = seen.length;
    const res = await post(s.url, await userToken());
    expect(res.status).toBe(401);
    expect(seen.length).toBe(before);
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.fail_verify_error')).toBeGreaterThan(
      0,
    );
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.handshake')).toBe(0);
  });

  it('gets no keys, and refuses the same token, when the certificate does not name the JWKS host', async () => {
    // Same CA, same server: only the name the sidecar expects differs (kc.invalid is not on the cert).
    const s = await sidecar('other-name', boundModel(kc.issuer, 'kc.invalid'), stackRoot);
    const before = seen.length;
    const res = await post(s.url, await userToken());
    expect(res.status).toBe(401);
    expect(seen.length).toBe(before);
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.fail_verify_san')).toBeGreaterThan(0);
    expect(await stat(s.adminUrl, 'cluster.jwks_keycloak.ssl.handshake')).toBe(0);
  });
});
