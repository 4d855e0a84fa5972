import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, testNginxConfig, type NginxInstance } from '../src/harness/nginx.ts';
import { freePort } from '../src/harness/ports.ts';
import { CertificateAuthority, writePemFiles } from '../src/harness/tls.ts';
import { nginx } from '../src/toolchain/nginx.ts';

describe('nginx (real binary)', () => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-nginx-test-'));
  let upstream: Server;
  let seen: IncomingHttpHeaders | null = null;
  let server: NginxInstance | undefined;
  let httpPort = 0;
  let tlsPort = 0;
  let caPem = '';

  beforeAll(async () => {
    const t0 = Date.now();
    await nginx.ensure();
    console.info(`nginx.ensure(): ${Date.now() - t0} ms`);
    upstream = createServer((req, res) => {
      seen = req.headers;
      res.setHeader('x-upstream', 'node');
      res.end(`proxied ${req.method ?? ''} ${req.url ?? ''}`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const ca = await CertificateAuthority.create({ commonName: 'trellis nginx test CA' });
    caPem = ca.rootPem;
    const pem = writePemFiles(
      join(root, 'tls'),
      'ingress',
      await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'], usages: ['server'] }),
      ca.rootPem,
    );
    httpPort = await freePort();
    tlsPort = await freePort();
    // nginx 1.22: HTTP/2 is a `listen` parameter (the `http2 on;` directive arrived in 1.25.1).
    const config = `
upstream app { server 127.0.0.1:${upstreamPort}; }
server {
  listen 127.0.0.1:${httpPort};
  location = /static { default_type text/plain; return 200 'static ok'; }
  location / {
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_pass http://app;
  }
}
server {
  listen 127.0.0.1:${tlsPort} ssl http2;
  ssl_certificate ${pem.cert};
  ssl_certificate_key ${pem.key};
  ssl_protocols TLSv1.2 TLSv1.3;
  location / { proxy_set_header X-Forwarded-Proto $scheme; proxy_pass http://app; }
}
`;
    server = await startNginx({ dir: join(root, 'nginx'), config });
    console.info(`nginx ready in ${server.startupMs} ms`);
  });

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  it('serves a static response', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/static`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('static ok');
    expect(res.headers.get('server')).toMatch(/^nginx\/1\.22\.1/);
  });

  it('proxies to a loopback upstream', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/orders/7`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('proxied POST /orders/7');
    expect(res.headers.get('x-upstream')).toBe('node');
    expect(seen?.['x-forwarded-proto']).toBe('http');
  });

  it('terminates TLS and speaks HTTP/2 (ALPN h2)', async () => {
    const session: ClientHttp2Session = connect(`https://127.0.0.1:${tlsPort}`, { ca: caPem });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>(
        (resolve, reject) => {
          const req = session.request({ ':path': '/h2', ':method': 'GET' });
          let status = 0;
          let body = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
          req.end();
        },
      );
      expect(session.alpnProtocol).toBe('h2');
      expect(status).toBe(200);
      expect(body).toBe('proxied GET /h2');
      expect(seen?.['x-forwarded-proto']).toBe('https');
    } finally {
      session.close();
    }
  });

  it('keeps its pid, temp dirs and logs inside its own prefix', () => {
    const dir = join(root, 'nginx');
    expect(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim()).toMatch(/^\d+$/);
    expect(existsSync(join(dir, 'tmp', 'proxy'))).toBe(true);
    expect(readFileSync(join(dir, 'access.log'), 'utf8')).toContain('GET /static');
  });

  it('check() reports a Debian 1.22.1 build that runs', async () => {
    const c = await nginx.check();
    expect(c.found).toMatch(/^1\.22\.1-/);
    expect(c.runs).toBe(true);
    expect(c.problem).toBeUndefined();
  });

  it('nginx -t accepts a good config', async () => {
    expect(await testNginxConfig('server { listen 127.0.0.1:1; return 204; }')).toEqual({
      ok: true,
    });
  });

  it('nginx -t rejects a broken config and says why', async () => {
    const res = await testNginxConfig(
      'server {\n  listen 127.0.0.1:1;\n  proxy_passs http://x;\n}',
    );
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error).toBe('[emerg] unknown directive "proxy_passs" in config line 3');
  });

  it('nginx -t rejects a missing certificate file', async () => {
    const res = await testNginxConfig(
      `server { listen 127.0.0.1:1 ssl; ssl_certificate ${join(root, 'nope.crt')}; ssl_certificate_key ${join(root, 'nope.key')}; }`,
    );
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error).toContain('nope.crt');
  });
});
