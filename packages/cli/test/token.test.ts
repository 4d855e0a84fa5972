// `./trellis token` against a token endpoint with a certificate from a stack's own CA (a stand-in
// server on loopback): it trusts the stack's bundle, and nothing else.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '@trellis/local/harness';
import { requestToken, type Principals } from '../src/verbs/token.ts';

describe('requestToken over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-token-test-'));
  const stackRoot = join(dir, 'root.pem');
  const otherRoot = join(dir, 'other.pem');
  const servers: Server[] = [];
  let p: Principals;
  /** The same endpoint on 127.0.0.2, which its certificate does not name. */
  let elsewhere = '';
  const forms: string[] = [];

  beforeAll(async () => {
    const ca = await (
      await CertificateAuthority.create({ commonName: 'stack root' })
    ).intermediate({
      commonName: 'stack intermediate',
    });
    const leaf = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(stackRoot, ca.rootPem);
    writeFileSync(
      otherRoot,
      (await CertificateAuthority.create({ commonName: 'another root' })).rootPem,
    );
    const serve = async (host: string): Promise<number> => {
      const server = createServer({ cert: leaf.chainPem, key: leaf.keyPem }, (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          forms.push(body);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: 'tok-123', token_type: 'Bearer' }));
        });
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, host, r));
      return (server.address() as AddressInfo).port;
    };
    const path = '/realms/trellis/protocol/openid-connect/token';
    elsewhere = `https://127.0.0.2:${await serve('127.0.0.2')}${path}`;
    p = {
      tokenUrl: `https://localhost:${await serve('127.0.0.1')}${path}`,
      cliClientId: 'trellis-cli',
      users: { alice: 'pw-alice' },
      agents: {},
    };
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    rmSync(dir, { recursive: true, force: true });
  });

  it("gets a token when it trusts the stack's bundle", async () => {
    expect(await requestToken(p, 'alice', { caFile: stackRoot })).toBe('tok-123');
    expect(new URLSearchParams(forms.at(-1))).toEqual(
      new URLSearchParams({
        grant_type: 'password',
        client_id: 'trellis-cli',
        username: 'alice',
        password: 'pw-alice',
      }),
    );
  });

  it("is refused by a client that does not trust the stack's CA, and sends it nothing", async () => {
    const sent = forms.length;
    await expect(requestToken(p, 'alice')).rejects.toThrow(
      /could not reach Keycloak at https:\/\/localhost:\d+\/realms\/trellis\/protocol\/openid-connect\/token \(UNABLE_TO_GET_ISSUER_CERT_LOCALLY: .*\); its certificate is not trusted by the system's roots/,
    );
    await expect(requestToken(p, 'alice', { caFile: otherRoot })).rejects.toThrow(
      `its certificate is not trusted by ${otherRoot}`,
    );
    // The form carries the password: it must never leave over an unverified connection.
    expect(forms.length).toBe(sent);
  });

  it('refuses a certificate for another name, even from the trusted CA', async () => {
    const sent = forms.length;
    await expect(
      requestToken({ ...p, tokenUrl: elsewhere }, 'alice', { caFile: stackRoot }),
    ).rejects.toThrow(/ERR_TLS_CERT_ALTNAME_INVALID: .*; its certificate is not trusted by/);
    expect(forms.length).toBe(sent);
  });
});
