// `./trellis token` against a token endpoint with a certificate from a stack's own CA (a stand-in
// server on loopback): it trusts the stack's bundle, and nothing else.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
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
  /** How many of the next connections to 127.0.0.1 the server closes before TLS, and how many it did. */
  const drop = { next: 0, dropped: 0 };

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
      // Closes a TCP connection before the handshake, as Keycloak does while it reloads its
      // certificate (ADR 0031), when told to.
      server.on('connection', (socket: Socket) => {
        if (drop.next > 0) {
          drop.next--;
          drop.dropped++;
          socket.destroy();
        }
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

  it('tries again when the connection is closed before TLS (nothing sent), and gets the token', async () => {
    const sent = forms.length;
    Object.assign(drop, { next: 2, dropped: 0 });
    expect(await requestToken(p, 'alice', { caFile: stackRoot })).toBe('tok-123');
    expect(drop.dropped).toBe(2);
    expect(forms.length).toBe(sent + 1); // the form went once, over the third connection
  });

  it('gives up after 4 tries, naming Keycloak and the tries', async () => {
    Object.assign(drop, { next: 100, dropped: 0 });
    try {
      await expect(requestToken(p, 'alice', { caFile: stackRoot })).rejects.toThrow(
        /could not reach Keycloak at .*\(ECONNRESET: Client network socket disconnected before secure TLS connection was established, 4 tries\); is the stack up\?/,
      );
      expect(drop.dropped).toBe(4); // and no more: the waits between them are 0.1, 0.2 and 0.4 s
    } finally {
      drop.next = 0;
    }
  });
});
