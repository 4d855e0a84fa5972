import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CertificateAuthority,
  certificateSans,
  splitPem,
  writePemFiles,
} from '../src/harness/tls.ts';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('CertificateAuthority', () => {
  it('intermediates allow no CA below them unless a pathLength is given (SPIRE needs 1)', async () => {
    const { X509Certificate: PeculiarCert, BasicConstraintsExtension } =
      await import('@peculiar/x509');
    const pathLen = (pem: string): number | undefined =>
      new PeculiarCert(pem).getExtension(BasicConstraintsExtension)?.pathLength;
    const root = await CertificateAuthority.create({ commonName: 'Mesh root', pathLength: 2 });
    expect(pathLen((await root.intermediate({ commonName: 'Default' })).certPem)).toBe(0);
    expect(pathLen((await root.intermediate({ commonName: 'Spire', pathLength: 1 })).certPem)).toBe(
      1,
    );
    await expect(root.intermediate({ commonName: 'Bad', pathLength: -1 })).rejects.toThrow(
      'pathLength must be an integer in [0, 4], got -1',
    );
  });

  it('issues a SPIFFE SVID with a URI SAN, signed by the root, with a matching PKCS#8 key', async () => {
    const ca = await CertificateAuthority.create({ commonName: 'Mesh root' });
    const svid = await ca.issue({ uris: ['spiffe://trellis.local/ns/orders/sa/orders-api'] });
    const leaf = new X509Certificate(svid.certPem);
    const root = new X509Certificate(ca.rootPem);
    expect(leaf.subjectAltName).toBe('URI:spiffe://trellis.local/ns/orders/sa/orders-api');
    expect(leaf.subject ?? '').toBe('');
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(root.ca).toBe(true);
    expect(leaf.keyUsage).toEqual(expect.arrayContaining([SERVER_AUTH, CLIENT_AUTH]));
    expect(svid.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(leaf.checkPrivateKey(createPrivateKey(svid.keyPem))).toBe(true);
    expect(certificateSans(svid.certPem)).toEqual([
      'uri:spiffe://trellis.local/ns/orders/sa/orders-api',
    ]);
  });

  it('chains leaf → intermediate → root and sends the intermediate with the leaf', async () => {
    const root = await CertificateAuthority.create({ commonName: 'Root' });
    const region = await root.intermediate({ commonName: 'us-east' });
    const leaf = await region.issue({
      commonName: 'kafka',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    const chain = splitPem(leaf.chainPem).certs.map((p) => new X509Certificate(p));
    expect(chain).toHaveLength(2);
    const [l, i] = chain as [X509Certificate, X509Certificate];
    expect(l.verify(i.publicKey)).toBe(true);
    expect(i.verify(new X509Certificate(root.rootPem).publicKey)).toBe(true);
    expect(i.ca).toBe(true);
    expect(region.rootPem).toBe(root.rootPem);
    expect(certificateSans(leaf.certPem)).toEqual(['dns:localhost', 'ip:127.0.0.1']);
  });

  it('limits extended key usage when asked', async () => {
    const ca = await CertificateAuthority.create({ commonName: 'CA' });
    const c = await ca.issue({ commonName: 'client', usages: ['client'] });
    expect(new X509Certificate(c.certPem).keyUsage).toEqual([CLIENT_AUTH]);
  });

  it('rejects bad names with the field at fault', async () => {
    const ca = await CertificateAuthority.create({ commonName: 'CA' });
    await expect(ca.issue({ ips: ['300.1.1.1'] })).rejects.toThrow(/ips SAN "300.1.1.1"/);
    await expect(ca.issue({ dns: ['bad host'] })).rejects.toThrow(/dns SAN "bad host"/);
    await expect(ca.issue({ uris: ['not a uri'] })).rejects.toThrow(
      /uris SAN "not a uri" is not a URI/,
    );
    await expect(ca.issue({ uris: ['spiffe://td:8080/x'] })).rejects.toThrow(/not a SPIFFE ID/);
    await expect(ca.issue({})).rejects.toThrow(/commonName or at least one of dns, ips, uris/);
    await expect(ca.issue({ commonName: 'x', usages: [] })).rejects.toThrow(/usages/);
    await expect(CertificateAuthority.create({ commonName: '' })).rejects.toThrow(/commonName/);
    await expect(ca.issue({ commonName: 'x', validDays: 0 })).rejects.toThrow(/validDays/);
  });
});

describe('writePemFiles', () => {
  it('writes a private keystore (key then chain), the parts, and the truststore', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-pem-'));
    dirs.push(dir);
    const ca = await CertificateAuthority.create({ commonName: 'CA' });
    const issued = await ca.issue({ commonName: 'node', ips: ['127.0.0.1'] });
    const f = writePemFiles(dir, 'node', issued, ca.rootPem);
    const ks = readFileSync(f.keystore, 'utf8');
    expect(ks.indexOf('PRIVATE KEY')).toBeLessThan(ks.indexOf('CERTIFICATE'));
    expect(splitPem(ks)).toEqual({ keys: [issued.keyPem], certs: splitPem(issued.chainPem).certs });
    expect(statSync(f.keystore).mode & 0o777).toBe(0o600);
    expect(statSync(f.key).mode & 0o777).toBe(0o600);
    expect(readFileSync(f.truststore, 'utf8')).toBe(ca.rootPem);
    expect(() => writePemFiles(dir, '../x', issued, ca.rootPem)).toThrow(/bad name/);
  });
});

describe('path length in a real TLS handshake (why SPIRE needs an intermediate with pathLength 1)', () => {
  /** Whether a client trusting only `rootPem` accepts a server whose chain is `chainPem`. */
  async function accepted(rootPem: string, leaf: { keyPem: string; chainPem: string }) {
    const server = createServer({ key: leaf.keyPem, cert: leaf.chainPem }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port, ca: rootPem, servername: 'localhost' });
        s.on('secureConnect', () => {
          resolve('accepted');
          s.destroy();
        });
        s.on('error', (e) => resolve(e.message));
      });
    } finally {
      server.close();
    }
  }

  it('accepts a leaf of a CA below a pathLength-1 intermediate and refuses one below pathLength 0', async () => {
    const root = await CertificateAuthority.create({ commonName: 'Root', pathLength: 2 });
    const allowing = await root.intermediate({ commonName: 'Allowing', pathLength: 1 });
    const leafBelow = async (inter: CertificateAuthority) =>
      (await inter.intermediate({ commonName: 'Signing CA' })).issue({ dns: ['localhost'] });
    expect(await accepted(root.rootPem, await leafBelow(allowing))).toBe('accepted');
    const closed = await root.intermediate({ commonName: 'Closed' });
    expect(await accepted(root.rootPem, await leafBelow(closed))).toMatch(/path length/i);
  });
});

describe('issued certificates in a real mutual-TLS handshake', () => {
  it('lets a trusted client in and keeps an untrusted one out', async () => {
    const ca = await CertificateAuthority.create({ commonName: 'CA' });
    const other = await CertificateAuthority.create({ commonName: 'Other' });
    const srv = await ca.issue({ commonName: 'server', ips: ['127.0.0.1'] });
    const good = await ca.issue({ uris: ['spiffe://t/ns/a/sa/good'], usages: ['client'] });
    const bad = await other.issue({ uris: ['spiffe://t/ns/a/sa/bad'], usages: ['client'] });
    const seen: string[] = [];
    const server = createServer(
      {
        key: srv.keyPem,
        cert: srv.chainPem,
        ca: ca.rootPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s: TLSSocket) => {
        seen.push(s.getPeerCertificate().subjectaltname ?? '');
        s.end('ok');
      },
    );
    const refused: string[] = [];
    server.on('tlsClientError', (e: Error) => refused.push(e.message));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const dial = (c: { keyPem: string; chainPem: string }): Promise<string> =>
      new Promise((resolve) => {
        const s = connect({
          host: '127.0.0.1',
          port,
          ca: ca.rootPem,
          key: c.keyPem,
          cert: c.chainPem,
        });
        let data = '';
        let error = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('error', (e) => (error = e.message));
        // TLS 1.3: the server judges the client certificate after the client's handshake is done,
        // so a refused client sees its connection closed (or an alert), never the 'ok'.
        s.on('close', () => resolve(error ? `error: ${error}` : data));
      });
    try {
      expect(await dial(good)).toBe('ok');
      expect(await dial(bad)).not.toBe('ok');
      expect(seen).toEqual(['URI:spiffe://t/ns/a/sa/good']);
      // The server turned the untrusted client away during the handshake.
      expect(refused.length).toBeGreaterThan(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
