import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, validateEnvoyConfig, type EnvoyInstance } from '../src/harness/envoy.ts';
import { freePort } from '../src/harness/ports.ts';
import { envoy } from '../src/toolchain/envoy.ts';

/** A minimal HTTP proxy bootstrap: one listener, one route, one STATIC cluster (envoy v3 API). */
function proxyBootstrap(listenPort: number, upstreamPort: number): Record<string, unknown> {
  return {
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: { socket_address: { address: '127.0.0.1', port_value: listenPort } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'ingress',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream' } }],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: {
                          '@type':
                            'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                        },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'upstream',
            endpoints: [
              {
                lb_endpoints: [
                  {
                    endpoint: {
                      address: {
                        socket_address: { address: '127.0.0.1', port_value: upstreamPort },
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      ],
    },
  };
}

describe('envoy (real binary)', () => {
  const root = mkdtempSync(join(tmpdir(), 'trellis-envoy-test-'));
  let upstream: Server;
  let upstreamPort = 0;
  let seen: IncomingHttpHeaders | null = null;
  const instances: EnvoyInstance[] = [];
  const ports: number[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    await envoy.ensure();
    console.info(`envoy.ensure(): ${Date.now() - t0} ms`);
    upstream = createServer((req, res) => {
      seen = req.headers;
      res.setHeader('x-upstream', 'node');
      res.end(`hello from upstream ${req.url ?? ''}`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
    // Two Envoys side by side (hot restart is off, so they need no base id of their own).
    for (const name of ['envoy-a', 'envoy-b']) {
      const port = await freePort();
      ports.push(port);
      const inst = await startEnvoy({
        dir: join(root, name),
        name,
        config: proxyBootstrap(port, upstreamPort),
      });
      console.info(`${name} ready in ${inst.startupMs} ms (admin ${inst.adminUrl})`);
      instances.push(inst);
    }
  });

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.stop()));
    await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  it('proxies to a loopback upstream and adds its own headers', async () => {
    const res = await fetch(`http://127.0.0.1:${ports[0]}/orders/42`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from upstream /orders/42');
    expect(res.headers.get('x-upstream')).toBe('node');
    expect(res.headers.get('x-envoy-upstream-service-time')).toMatch(/^\d+$/);
    expect(res.headers.get('server')).toBe('envoy');
    // Envoy stamps a request id on the way in (http_connection_manager generate_request_id default).
    expect(seen?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('runs two instances side by side, each with its own admin', async () => {
    expect(instances).toHaveLength(2);
    const [a, b] = instances;
    expect(a?.adminUrl).not.toBe(b?.adminUrl);
    for (const inst of instances) {
      const ready = await fetch(`${inst.adminUrl}/ready`);
      expect(await ready.text()).toBe('LIVE\n');
      expect(inst.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    }
    const res = await fetch(`http://127.0.0.1:${ports[1]}/b`);
    expect(await res.text()).toBe('hello from upstream /b');
  });

  it('runs with hot restart off: no shared memory segment in /dev/shm, before or after stop', async () => {
    const segments = (): string[] =>
      readdirSync('/dev/shm').filter((f) => f.startsWith('envoy_shared_memory_'));
    const before = segments();
    const port = await freePort();
    const inst = await startEnvoy({
      dir: join(root, 'envoy-shm'),
      name: 'envoy-shm',
      config: proxyBootstrap(port, upstreamPort),
    });
    const res = await fetch(`http://127.0.0.1:${port}/shm`);
    expect(await res.text()).toBe('hello from upstream /shm');
    expect(segments()).toEqual(before);
    await inst.stop();
    expect(segments()).toEqual(before);
  });

  it('reports the pinned version through check()', async () => {
    const c = await envoy.check();
    expect(c.found).toBe('1.40.0');
    expect(c.runs).toBe(true);
    expect(c.problem).toBeUndefined();
  });

  it('validate mode accepts a good bootstrap', async () => {
    expect(await validateEnvoyConfig(proxyBootstrap(10_000, 10_001))).toEqual({ ok: true });
    // Compiled sidecar configs carry their own admin section; validation accepts it.
    const withAdmin = {
      ...proxyBootstrap(10_000, 10_001),
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    };
    expect(await validateEnvoyConfig(withAdmin)).toEqual({ ok: true });
  });

  it('validate mode rejects a broken bootstrap and names the bad field', async () => {
    const bad = proxyBootstrap(10_000, 10_001);
    const clusters = (bad.static_resources as { clusters: Record<string, unknown>[] }).clusters;
    clusters[0] = { ...clusters[0], conect_timeout: '1s' };
    const res = await validateEnvoyConfig(bad);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error).toContain("no such field: 'conect_timeout'");
  });

  it('validate mode rejects a route to an unknown cluster (YAML input)', async () => {
    // Static route tables are checked against the clusters (RouteConfiguration.validate_clusters).
    const yaml = JSON.stringify(proxyBootstrap(10_000, 10_001)).replace(
      '"cluster":"upstream"',
      '"cluster":"nowhere"',
    );
    const res = await validateEnvoyConfig(yaml);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error).toContain("unknown cluster 'nowhere'");
  });

  it('refuses a bootstrap that sets its own admin', async () => {
    await expect(startEnvoy({ dir: join(root, 'bad'), config: { admin: {} } })).rejects.toThrow(
      /config\.admin/,
    );
  });
});
