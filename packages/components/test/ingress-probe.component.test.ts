/**
 * The local ingress's readiness probe (`ingress-impl.ts`) against a real nginx that reads its
 * certificate at each handshake (ADR 0032): ready with the right files; a clear error, not a silent
 * "ready", when the key on disk no longer matches the certificate; ready again once it does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateAuthority,
  freePort,
  startNginx,
  type NginxInstance,
} from '@trellis/local/harness';
import { probe, type EdgeProbe } from '../src/local/ingress-impl.ts';
import { writeCertFiles } from '../src/local/pki-impl.ts';

const root = mkdtempSync(join(tmpdir(), 'trellis-ingress-probe-'));
const tlsDir = join(root, 'tls');
let nginx: NginxInstance | undefined;
let ca: CertificateAuthority;
let target: EdgeProbe;
let good: { certPem: string; keyPem: string };

beforeAll(async () => {
  ca = await CertificateAuthority.create({ commonName: 'Trellis ingress probe test root' });
  good = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'], usages: ['server'] });
  const files = writeCertFiles(tlsDir, {
    'cert.pem': good.certPem,
    'key.pem': good.keyPem,
    'root.pem': ca.rootPem,
  });
  const [tls, plain] = [await freePort(), await freePort()];
  // The directives compileNginxHttp writes with tls.perHandshake (packages/policy/test/nginx-cert.test.ts).
  nginx = await startNginx({
    dir: join(root, 'nginx'),
    readyUrl: `http://127.0.0.1:${plain}/`,
    config: `
map $ssl_server_name $trellis_edge_certificate { default "${files['cert.pem']}"; }
map $ssl_server_name $trellis_edge_certificate_key { default "${files['key.pem']}"; }
server { listen 127.0.0.1:${plain}; location / { return 200 'ok'; } }
server {
  listen 127.0.0.1:${tls} ssl;
  ssl_certificate $trellis_edge_certificate;
  ssl_certificate_key $trellis_edge_certificate_key;
  location / { return 200 'edge'; }
}
`,
  });
  target = {
    host: '127.0.0.1',
    port: tls,
    servername: 'localhost',
    caFile: files['root.pem'] ?? '',
  };
}, 60_000);

afterAll(async () => {
  await nginx?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('the ingress readiness probe', () => {
  it('is ready once nginx completes a handshake with the edge certificate', async () => {
    expect(await probe(target)).toBe(true);
  });

  it('is not ready, without an error, while nothing listens', async () => {
    expect(await probe({ ...target, port: await freePort() })).toBe(false);
  });

  it('names the cause when nginx cannot load the files at a handshake, and is ready again once it can', async () => {
    const other = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'], usages: ['server'] });
    // The certificate with another certificate's key: nginx (still running) fails every handshake.
    writeCertFiles(tlsDir, {
      'cert.pem': good.certPem,
      'key.pem': other.keyPem,
      'root.pem': ca.rootPem,
    });
    await expect(probe(target)).rejects.toThrow(
      /^nginx at 127\.0\.0\.1:\d+ did not complete a TLS handshake with the edge certificate \(.+\)\. nginx reads the certificate and key at each handshake \(ADR 0032\)/,
    );
    expect(nginx?.process.running).toBe(true);
    writeCertFiles(tlsDir, {
      'cert.pem': other.certPem,
      'key.pem': other.keyPem,
      'root.pem': ca.rootPem,
    });
    expect(await probe(target)).toBe(true);
  });

  it('refuses an edge certificate from another root', async () => {
    const stranger = await CertificateAuthority.create({ commonName: 'Someone else' });
    const theirs = await stranger.issue({ dns: ['localhost'], ips: ['127.0.0.1'] });
    writeCertFiles(tlsDir, {
      'cert.pem': theirs.certPem,
      'key.pem': theirs.keyPem,
      'root.pem': ca.rootPem,
    });
    await expect(probe(target)).rejects.toThrow(/self-signed|unable to verify|unable to get/);
  });
});
