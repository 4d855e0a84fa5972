import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKeycloak, type KeycloakInstance } from '../src/harness/keycloak.ts';
import { keycloak } from '../src/toolchain/keycloak.ts';

const CLIENT_ID = 'orders-agent';

/** A realm with one confidential client that may use the client-credentials grant. */
function realm(secret: string): { realm: string; [k: string]: unknown } {
  return {
    realm: 'trellis-test',
    enabled: true,
    clients: [
      {
        clientId: CLIENT_ID,
        enabled: true,
        protocol: 'openid-connect',
        publicClient: false,
        clientAuthenticatorType: 'client-secret',
        secret,
        serviceAccountsEnabled: true,
        standardFlowEnabled: false,
        directAccessGrantsEnabled: false,
      },
    ],
  };
}

async function clientCredentials(kc: KeycloakInstance, secret: string): Promise<Response> {
  return fetch(`${kc.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: CLIENT_ID,
      client_secret: secret,
    }),
  });
}

describe('keycloak (real server, start --optimized)', () => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-keycloak-test-'));
  const secret = randomBytes(24).toString('base64url');
  let kc: KeycloakInstance | undefined;

  beforeAll(async () => {
    const t0 = Date.now();
    await keycloak.ensure();
    console.info(`keycloak.ensure(): ${Date.now() - t0} ms`);
    kc = await startKeycloak({ dir: join(root, 'kc'), realm: realm(secret) });
    console.info(`keycloak ready in ${kc.startupMs} ms at ${kc.baseUrl}`);
  });

  afterAll(async () => {
    await kc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('issues a client-credentials token whose signature verifies against the realm JWKS', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const res = await clientCredentials(kc, secret);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      access_token: string;
      token_type: string;
      expires_in: number;
    };
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBeGreaterThan(0);
    const jwks = createRemoteJWKSet(new URL(`${kc.issuer}/protocol/openid-connect/certs`));
    const { payload, protectedHeader } = await jwtVerify(body.access_token, jwks, {
      issuer: kc.issuer,
      algorithms: ['RS256'],
    });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload.iss).toBe(`${kc.baseUrl}/realms/trellis-test`);
    expect(payload.azp).toBe(CLIENT_ID);
    expect(typeof payload.exp).toBe('number');
  });

  it('rejects a token whose signature was tampered with', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const token = ((await (await clientCredentials(kc, secret)).json()) as { access_token: string })
      .access_token;
    const [h, p, s = ''] = token.split('.');
    const flipped = `${h}.${p}.${s.slice(0, -4)}${s.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect(decodeProtectedHeader(flipped).alg).toBe('RS256');
    const jwks = createRemoteJWKSet(new URL(`${kc.issuer}/protocol/openid-connect/certs`));
    await expect(jwtVerify(flipped, jwks, { issuer: kc.issuer })).rejects.toThrow(/signature/);
  });

  it('refuses a wrong client secret with 401', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const res = await clientCredentials(kc, `${secret}x`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: string };
    expect(body.error).toMatch(/^(unauthorized_client|invalid_client)$/);
  });

  it('has a working bootstrap admin whose password never reaches the log', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const res = await fetch(`${kc.baseUrl}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: 'admin-cli',
        username: kc.admin.username,
        password: kc.admin.password,
      }),
    });
    expect(res.status).toBe(200);
    expect(kc.admin.password.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(kc.process.logFile, 'utf8')).not.toContain(kc.admin.password);
    expect(JSON.stringify(kc.admin)).not.toContain(kc.admin.password);
  });

  it('serves health on the management port only', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const ready = await fetch(`${kc.managementUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe('UP');
    expect(kc.managementUrl).not.toBe(kc.baseUrl);
    const onMain = await fetch(`${kc.baseUrl}/health/ready`);
    expect(onMain.status).toBe(404);
  });

  it('restarts on the same dir keeping its database, admin and client', async () => {
    if (!kc) throw new Error('keycloak did not start');
    const before = kc.admin.password;
    await kc.stop();
    kc = await startKeycloak({ dir: join(root, 'kc'), realm: realm(secret) });
    console.info(`keycloak restart (database kept) ready in ${kc.startupMs} ms`);
    expect(kc.admin.password).toBe(before);
    expect(readFileSync(kc.process.logFile, 'utf8')).toMatch(/Realm 'trellis-test' already exists/);
    expect((await clientCredentials(kc, secret)).status).toBe(200);
  });

  it('rejects a realm named master', async () => {
    await expect(
      startKeycloak({ dir: join(root, 'bad'), realm: { realm: 'master' } }),
    ).rejects.toThrow(/master/);
  });
});
