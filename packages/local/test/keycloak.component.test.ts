import { randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestText } from '../src/harness/https.ts';
import {
  clientCredentialsRealm,
  startKeycloak,
  type KeycloakInstance,
  type KeycloakServerTls,
  type RealmRepresentation,
} from '../src/harness/keycloak.ts';
import { CertificateAuthority, writePemFiles } from '../src/harness/tls.ts';
import { keycloak } from '../src/toolchain/keycloak.ts';

const CLIENT_ID = 'orders-agent';

/** A realm with one confidential client that may use the client-credentials grant. */
const realm = (secret: string): RealmRepresentation =>
  clientCredentialsRealm('trellis-test', CLIENT_ID, secret);

/** The addresses a TCP port is listening on, from /proc/net/tcp and tcp6 (this network namespace). */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      // State 0A is LISTEN.
      if (state === '0A' && local?.endsWith(`:${hexPort}`)) out.push(local.split(':')[0] ?? '');
    }
  }
  return out;
}

/** 127.0.0.1 as /proc/net/tcp writes it, and as an IPv4-mapped address in tcp6. */
const LOOPBACK_V4 = ['0100007F', '0000000000000000FFFF00000100007F'];

describe('keycloak over TLS (real server, start --optimized)', () => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-keycloak-test-'));
  const secret = randomBytes(24).toString('base64url');
  let kc: KeycloakInstance | undefined;
  let tls: KeycloakServerTls;
  /** The root the server certificate chains to: what a client of the stack trusts. */
  let stackRoot = '';
  /** A root of another CA, with a certificate for the same names. */
  let otherRoot = '';
  /** Write a new certificate (same CA and names) over the server's files; resolves its PEM. */
  let renew: () => Promise<string>;
  /** The renewed certificate's serial and the server's pid when it was written. */
  let renewal: { serial: string; started: string; at: number } | undefined;
  /** The server process's start time (/proc/<pid>/stat field 22): changes only with a new process. */
  const startTime = (): string =>
    readFileSync(`/proc/${running().process.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ??
    '';

  /** The serial number of the certificate the server presents now. */
  const servedSerial = (baseUrl: string): Promise<string> =>
    new Promise((res, rej) => {
      const s = connect(
        {
          host: '127.0.0.1',
          port: Number(new URL(baseUrl).port),
          ca: stackRoot,
          servername: 'localhost',
        },
        () => {
          res(s.getPeerCertificate().serialNumber);
          s.end();
        },
      );
      s.on('error', rej);
    });

  const running = (): KeycloakInstance => {
    if (!kc) throw new Error('keycloak did not start');
    return kc;
  };
  const start = () =>
    startKeycloak({
      dir: join(root, 'kc'),
      realm: realm(secret),
      tls,
      hostname: (port) => `https://localhost:${port}`,
    });

  /** The client-credentials grant, over TLS with `ca` as the only trusted root. */
  const clientCredentials = (base: string, clientSecret: string, ca = stackRoot) =>
    requestText(`${base}/realms/trellis-test/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: CLIENT_ID,
        client_secret: clientSecret,
      }).toString(),
      ca,
    });

  const jwks = async (k: KeycloakInstance) =>
    createLocalJWKSet(
      JSON.parse(
        (await requestText(`${k.issuer}/protocol/openid-connect/certs`, { ca: stackRoot })).body,
      ) as JSONWebKeySet,
    );

  beforeAll(async () => {
    const t0 = Date.now();
    await keycloak.ensure();
    console.info(`keycloak.ensure(): ${Date.now() - t0} ms`);
    const names = { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] };
    const ca = await (
      await CertificateAuthority.create({ commonName: 'kc test root' })
    ).intermediate({ commonName: 'kc test intermediate' });
    const files = writePemFiles(join(root, 'pki'), 'keycloak', await ca.issue(names), ca.rootPem);
    tls = {
      certFile: files.cert,
      keyFile: files.key,
      caFile: files.truststore,
      // Keycloak's floor is over 30 s; the renewal test below overlaps its wait with the others.
      reloadPeriod: '31s',
    };
    renew = async () => {
      const issued = await ca.issue(names);
      writePemFiles(join(root, 'pki'), 'keycloak', issued, ca.rootPem);
      return issued.certPem;
    };
    stackRoot = ca.rootPem;
    otherRoot = (await CertificateAuthority.create({ commonName: 'kc test other root' })).rootPem;
    kc = await start();
    console.info(`keycloak ready in ${kc.startupMs} ms at ${kc.baseUrl}`);
  });

  afterAll(async () => {
    await kc?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves its first certificate; a renewed one is written over the files (checked below)', async () => {
    const first = await servedSerial(running().baseUrl);
    const pem = await renew();
    const { X509Certificate } = await import('node:crypto');
    const serial = new X509Certificate(pem).serialNumber;
    expect(serial).not.toBe(first);
    // Not yet: the server read its files at start and re-reads them on its reload period.
    expect(await servedSerial(running().baseUrl)).toBe(first);
    renewal = { serial, started: startTime(), at: Date.now() };
  });

  it('issues a token over TLS whose signature verifies against the JWKS, with an https issuer', async () => {
    const k = running();
    expect(k.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = new URL(k.baseUrl).port;
    expect(k.issuer).toBe(`https://localhost:${port}/realms/trellis-test`);
    // Dialled by the issuer's name (SNI and DNS SAN localhost) and by the loopback address (IP SAN).
    for (const base of [new URL(k.issuer).origin, k.baseUrl]) {
      const res = await clientCredentials(base, secret);
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as {
        access_token: string;
        token_type: string;
        expires_in: number;
      };
      expect(body.token_type).toBe('Bearer');
      expect(body.expires_in).toBeGreaterThan(0);
      const { payload, protectedHeader } = await jwtVerify(body.access_token, await jwks(k), {
        issuer: k.issuer,
        algorithms: ['RS256'],
      });
      expect(protectedHeader.kid).toBeTruthy();
      expect(payload.iss).toBe(k.issuer);
      expect(payload.azp).toBe(CLIENT_ID);
      expect(typeof payload.exp).toBe('number');
    }
  });

  it('refuses a client that does not trust the stack CA (after the same call worked with it)', async () => {
    const k = running();
    expect((await clientCredentials(k.baseUrl, secret, stackRoot)).status).toBe(200);
    // The system roots, and another CA's root: neither vouches for the server certificate.
    await expect(requestText(`${k.issuer}/.well-known/openid-configuration`)).rejects.toMatchObject(
      { code: expect.stringMatching(/CERT|SIGNATURE|ISSUER/) as unknown },
    );
    await expect(clientCredentials(k.baseUrl, secret, otherRoot)).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|SIGNATURE|ISSUER/) as unknown,
    });
  });

  it('speaks no plaintext HTTP, on the main port or the management port', async () => {
    const k = running();
    for (const url of [k.baseUrl, k.managementUrl]) {
      const ok = await requestText(`${url}/realms/trellis-test`, { ca: stackRoot }).catch(
        (err: Error) => err,
      );
      expect(ok).not.toBeInstanceOf(Error);
      const plain = await requestText(`${url.replace('https:', 'http:')}/realms/trellis-test`, {
        timeoutMs: 5_000,
      }).catch((err: Error) => err);
      // A TLS server answers a plaintext request with a TLS alert or by closing: never an HTTP status.
      expect(plain).toBeInstanceOf(Error);
    }
  });

  it('serves health on the management port only, over TLS, and listens on loopback only', async () => {
    const k = running();
    expect(k.managementUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(k.managementUrl).not.toBe(k.baseUrl);
    const ready = await requestText(`${k.managementUrl}/health/ready`, { ca: stackRoot });
    expect(ready.status).toBe(200);
    expect((JSON.parse(ready.body) as { status: string }).status).toBe('UP');
    const onMain = await requestText(`${k.baseUrl}/health/ready`, { ca: stackRoot });
    expect(onMain.status).toBe(404);
    for (const url of [k.baseUrl, k.managementUrl]) {
      const bound = listeningAddresses(Number(new URL(url).port));
      expect(bound.length).toBeGreaterThan(0);
      expect(bound.filter((a) => !LOOPBACK_V4.includes(a))).toEqual([]);
    }
  });

  it('rejects a token whose signature was tampered with', async () => {
    const k = running();
    const token = (
      JSON.parse((await clientCredentials(k.baseUrl, secret)).body) as {
        access_token: string;
      }
    ).access_token;
    const [h, p, s = ''] = token.split('.');
    const flipped = `${h}.${p}.${s.slice(0, -4)}${s.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect(decodeProtectedHeader(flipped).alg).toBe('RS256');
    await expect(jwtVerify(flipped, await jwks(k), { issuer: k.issuer })).rejects.toThrow(
      /signature/,
    );
  });

  it('refuses a wrong client secret with 401', async () => {
    const res = await clientCredentials(running().baseUrl, `${secret}x`);
    expect(res.status).toBe(401);
    const body = JSON.parse(res.body) as { error: string };
    expect(body.error).toMatch(/^(unauthorized_client|invalid_client)$/);
  });

  it('has a working bootstrap admin whose password never reaches the log', async () => {
    const k = running();
    const res = await requestText(`${k.baseUrl}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: 'admin-cli',
        username: k.admin.username,
        password: k.admin.password,
      }).toString(),
      ca: stackRoot,
    });
    expect(res.status).toBe(200);
    expect(k.admin.password.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(k.process.logFile, 'utf8')).not.toContain(k.admin.password);
    expect(JSON.stringify(k.admin)).not.toContain(k.admin.password);
  });

  it('serves the renewed certificate without a restart (https-certificates-reload-period)', async () => {
    const r = renewal;
    if (!r) throw new Error('the renewal step did not run');
    const deadline = r.at + 90_000;
    let served = '';
    // Keycloak closes new connections before the handshake for about 0.1 s while it reloads (ADR
    // 0031), and this loop polls through the reload: such a close is "not yet", anything else fails.
    let closedBeforeTls = 0;
    while (Date.now() < deadline) {
      try {
        served = await servedSerial(running().baseUrl);
      } catch (err) {
        if (!/before secure TLS connection was established/.test((err as Error).message)) throw err;
        closedBeforeTls++;
      }
      if (served === r.serial) break;
      await new Promise((res) => setTimeout(res, 1_000));
    }
    expect(served).toBe(r.serial);
    expect(startTime()).toBe(r.started);
    expect(r.started).not.toBe('');
    console.info(
      `keycloak served the renewed certificate ${Date.now() - r.at} ms after it was written ` +
        `(${closedBeforeTls} poll(s) closed before TLS during its reload)`,
    );
    // A new client, trusting only the stack root, still gets a token.
    expect((await clientCredentials(running().baseUrl, secret)).status).toBe(200);
  });

  it('restarts on the same dir keeping its database, admin and client', async () => {
    const before = running().admin.password;
    await running().stop();
    kc = await start();
    console.info(`keycloak restart (database kept) ready in ${kc.startupMs} ms`);
    expect(kc.admin.password).toBe(before);
    expect(readFileSync(kc.process.logFile, 'utf8')).toMatch(/Realm 'trellis-test' already exists/);
    expect((await clientCredentials(kc.baseUrl, secret)).status).toBe(200);
  });

  it('rejects a realm named master', async () => {
    await expect(
      startKeycloak({ dir: join(root, 'bad'), realm: { realm: 'master' } }),
    ).rejects.toThrow(/master/);
  });
});
