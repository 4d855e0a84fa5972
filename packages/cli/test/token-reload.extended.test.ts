/**
 * The real Keycloak while it reloads a renewed certificate (`https-certificates-reload-period`): new
 * TLS connections are closed before the handshake for a moment (ADR 0031). `requestToken` rides through
 * that by trying a connection closed before TLS again, and so does every client of the stack's relay in
 * front of Keycloak's pod, which dials again for them (`RELAY_SCRIPT --replay-unanswered`). Opt-in (`--project extended`): it waits
 * for two reloads of Keycloak's 31 s period, about 2.5 min in all.
 *
 * Both loops run side by side against the same server: bare TLS handshakes every 20 ms (what any client
 * sees), and logins through `requestToken` every 100 ms. The certificate files are swapped the way the
 * stack swaps them (`writeCertFiles`: one rename of `..data`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeCertFiles } from '@trellis/components/local/pki-impl';
import { RELAY_SCRIPT } from '@trellis/components/local/relay';
import {
  CertificateAuthority,
  clientCredentialsRealm,
  startKeycloak,
  type KeycloakInstance,
} from '@trellis/local/harness';
import { keycloak } from '@trellis/local/toolchain';
import { requestToken } from '../src/verbs/token.ts';

const root = mkdtempSync(join(tmpdir(), 'trellis-token-reload-'));
let kc: KeycloakInstance | undefined;
let relay: ChildProcess | undefined;

afterAll(async () => {
  relay?.kill('SIGTERM');
  await kc?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('logins while Keycloak reloads a renewed certificate', () => {
  it('bare handshakes may be closed for a moment; none through the relay, and no login through requestToken, fails', async () => {
    await keycloak.ensure();
    const names = { commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] };
    const ca = await (
      await CertificateAuthority.create({ commonName: 'reload test root' })
    ).intermediate({ commonName: 'reload test intermediate' });
    const rootFile = join(root, 'root.pem');
    writeFileSync(rootFile, ca.rootPem);
    const renew = async () => {
      const c = await ca.issue(names);
      return writeCertFiles(join(root, 'pki'), {
        'cert.pem': c.chainPem,
        'key.pem': c.keyPem,
        'ca.pem': ca.rootPem,
      });
    };
    const files = await renew();
    const secret = randomBytes(24).toString('base64url');
    kc = await startKeycloak({
      dir: join(root, 'kc'),
      realm: clientCredentialsRealm('trellis-test', 'reload-agent', secret),
      tls: {
        certFile: files['cert.pem'] ?? '',
        keyFile: files['key.pem'] ?? '',
        caFile: files['ca.pem'] ?? '',
        reloadPeriod: '31s',
      },
      hostname: (port) => `https://localhost:${port}`,
    });
    const port = Number(new URL(kc.baseUrl).port);
    const principals = {
      tokenUrl: `https://localhost:${port}/realms/trellis-test/protocol/openid-connect/token`,
      cliClientId: 'unused',
      users: {},
      agents: { 'reload-agent': secret },
    };

    // The stack's relay, as `up` runs it in front of Keycloak's pod: here on 127.0.0.2, to 127.0.0.1.
    const relayScript = join(root, 'relay.mjs');
    writeFileSync(relayScript, RELAY_SCRIPT);
    const child = spawn(
      process.execPath,
      [relayScript, '127.0.0.2', '127.0.0.1', '--replay-unanswered', String(port)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    relay = child;
    let replays = 0;
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (b: Buffer) => {
        replays += b
          .toString()
          .split('\n')
          .filter((l) => l.startsWith('replay ')).length;
        resolve();
      });
      child.on('exit', (code) => reject(new Error(`the relay exited (${code})`)));
    });

    /** One bare handshake, to Keycloak or through the relay: the serial served, or the error. */
    const handshake = (host = '127.0.0.1'): Promise<{ serial?: string; error?: string }> =>
      new Promise((res) => {
        const s = connect({ host, port, ca: ca.rootPem, servername: 'localhost' }, () => {
          res({ serial: s.getPeerCertificate().serialNumber });
          s.end();
        });
        s.setTimeout(5_000, () => {
          s.destroy();
          res({ error: 'timeout' });
        });
        s.on('error', (e) => res({ error: e.message }));
      });

    const first = (await handshake()).serial;
    expect(first).toBeDefined();
    expect(await requestToken(principals, 'reload-agent', { caFile: rootFile })).toMatch(/^ey/);

    const serials = [first];
    const handshakeErrors: string[] = [];
    const relayedErrors: string[] = [];
    let relayed = 0;
    const loginErrors: string[] = [];
    let logins = 0;
    let handshakes = 0;
    // Two renewals, each waited out until served (at most 75 s each: the period is 31 s); bounded.
    for (let r = 0; r < 2; r++) {
      const pem = (await renew())['cert.pem'];
      expect(pem).toBeDefined();
      const t0 = Date.now();
      let served = serials.at(-1);
      const stop = { now: false };
      const loginLoop = (async () => {
        while (!stop.now) {
          logins++;
          await requestToken(principals, 'reload-agent', { caFile: rootFile }).catch((e: unknown) =>
            loginErrors.push((e as Error).message),
          );
          await new Promise((x) => setTimeout(x, 100));
        }
      })();
      while (served === serials.at(-1) && Date.now() - t0 < 75_000) {
        handshakes++;
        const h = await handshake();
        if (h.error !== undefined) handshakeErrors.push(h.error);
        else served = h.serial;
        relayed++;
        const r = await handshake('127.0.0.2');
        if (r.error !== undefined) relayedErrors.push(r.error);
        await new Promise((x) => setTimeout(x, 20));
      }
      // Logins go on for 2 s after the new certificate is first served.
      await new Promise((x) => setTimeout(x, 2_000));
      stop.now = true;
      await loginLoop;
      expect(served).not.toBe(serials.at(-1));
      serials.push(served);
    }
    process.stdout.write(
      `Keycloak reloads: ${handshakes} bare handshakes, ${handshakeErrors.length} closed before TLS ` +
        `(${[...new Set(handshakeErrors)].join('; ') || 'none'}); ${relayed} through the relay ` +
        `(which dialled again ${replays} times), ` +
        `${relayedErrors.length} failed; ${logins} logins, ${loginErrors.length} failed\n`,
    );
    expect(new Set(serials).size).toBe(3);
    expect(loginErrors).toEqual([]);
    expect(relayedErrors).toEqual([]);
    expect(logins).toBeGreaterThan(20);
  });
});
