// A real control plane on loopback: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.
// A Deployment becomes Ready on a fake node, a CRD's schema is enforced, RBAC refuses a stranger, a
// conversion webhook's call never leaves the machine, and stop() leaves no process and no data behind.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiError, KubeClient } from '../src/harness/kube/client.ts';
import { startKubeControlPlane, type KubeControlPlane } from '../src/harness/kube/cluster.ts';
import { CertificateAuthority } from '../src/harness/tls.ts';
import { waitUntil } from '../src/harness/wait.ts';

let cp: KubeControlPlane;
const NS = 'trellis-test';

beforeAll(async () => {
  cp = await startKubeControlPlane({ readyTimeoutMs: 180_000 });
  process.stderr.write(
    `control plane ready in ${(cp.startupMs / 1000).toFixed(1)} s at ${cp.server}\n`,
  );
});
afterAll(async () => {
  await cp?.stop();
});

interface Meta {
  metadata: { name: string; uid: string };
}

/** `ip:port` of every TCP socket the process listens on, from its fds and /proc/net/tcp{,6}. */
function listeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // the fd closed while we looked
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local address, f[3] state (0A = LISTEN), f[9] inode
      if (f[3] !== '0A' || !inodes.has(f[9] ?? '')) continue;
      out.push(decodeAddress(f[1] ?? ''));
    }
  }
  return out;
}

function decodeAddress(hex: string): string {
  const [ip = '', port = ''] = hex.split(':');
  const p = Number.parseInt(port, 16);
  if (ip.length === 8) {
    const bytes = (ip.match(/../g) ?? []).map((b) => Number.parseInt(b, 16)).reverse();
    return `${bytes.join('.')}:${p}`;
  }
  if (ip === '00000000000000000000000001000000') return `[::1]:${p}`;
  if (ip.startsWith('0000000000000000FFFF0000'))
    return `${decodeAddress(`${ip.slice(24)}:${port}`)}`;
  return `[${ip}]:${p}`;
}

describe('loopback Kubernetes control plane', () => {
  it('serves v1.37.2 on 127.0.0.1, and no component listens anywhere else', async () => {
    const version = await cp.client.get<{ gitVersion: string }>('/version');
    expect(version.gitVersion).toBe('v1.37.2');
    expect(new URL(cp.server).hostname).toBe('127.0.0.1');
    const all = cp.processes.flatMap((p) => listeners(p.pid).map((a) => `${p.name} ${a}`));
    expect(all.some((l) => l.startsWith('kube-apiserver 127.0.0.1:'))).toBe(true);
    expect(all.some((l) => l.startsWith('etcd 127.0.0.1:'))).toBe(true);
    for (const l of all) expect(l).toMatch(/ 127\.0\.0\.1:\d+$/);
  });

  it('authorises with RBAC: the admin may list namespaces, a stranger from the same CA may not', async () => {
    const list = await cp.client.get<{ items: Meta[] }>('/api/v1/namespaces');
    expect(list.items.map((n) => n.metadata.name)).toContain('kube-system');
    const ca = await CertificateAuthority.fromPem({
      certPem: cp.caPem,
      keyPem: readFileSync(join(cp.dir, 'pki', 'ca.key'), 'utf8'),
      rootPem: cp.caPem,
    });
    const stranger = await ca.issue({ commonName: 'stranger', usages: ['client'] });
    const client = new KubeClient({
      server: cp.server,
      caPem: cp.caPem,
      certPem: stranger.certPem,
      keyPem: stranger.keyPem,
    });
    try {
      const res = await client.raw('GET', '/api/v1/namespaces');
      expect(res.status).toBe(403);
      expect(res.body).toContain('User \\"stranger\\" cannot list resource \\"namespaces\\"');
    } finally {
      client.close();
    }
  });

  it('runs a Deployment to Ready on a kwok node', async () => {
    await cp.client.create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS },
    });
    await waitUntil(() => cp.client.get(`/api/v1/namespaces/${NS}/serviceaccounts/default`), {
      what: `the default ServiceAccount in ${NS}`,
      timeoutMs: 60_000,
    });
    await cp.client.create(`/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          // Never pulled: kwok only pretends to run containers.
          spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
        },
      },
    });
    const status = await waitUntil(
      async () => {
        const d = await cp.client.get<{
          status?: { readyReplicas?: number; availableReplicas?: number };
        }>(`/apis/apps/v1/namespaces/${NS}/deployments/web`);
        if (d.status?.readyReplicas !== 1) throw new Error(`status ${JSON.stringify(d.status)}`);
        return d.status;
      },
      { what: 'Deployment web to have 1 ready replica', timeoutMs: 120_000 },
    );
    expect(status.availableReplicas).toBe(1);
    const pods = await cp.client.get<{
      items: { spec: { nodeName?: string }; status: { phase?: string; podIP?: string } }[];
    }>(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dweb`);
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]?.spec.nodeName).toBe('kwok-node-0');
    expect(pods.items[0]?.status.phase).toBe('Running');
    expect(pods.items[0]?.status.podIP).toMatch(/^198\.18\.1\.\d+$/);
  });

  it('serves a CustomResourceDefinition and enforces its schema', async () => {
    await cp.client.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgetCrd());
    await waitUntil(
      async () => {
        const crd = await cp.client.get<{
          status?: { conditions?: { type: string; status: string }[] };
        }>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.trellis.dev');
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { what: 'CRD widgets.trellis.dev Established', timeoutMs: 60_000 },
    );
    const path = `/apis/trellis.dev/v1/namespaces/${NS}/widgets`;
    const widget = { apiVersion: 'trellis.dev/v1', kind: 'Widget', metadata: { name: 'w1' } };
    await cp.client.create(path, { ...widget, spec: { size: 3 } });
    const back = await cp.client.get<{ spec: { size: number } }>(`${path}/w1`);
    expect(back.spec.size).toBe(3);
    const bad = cp.client.create(path, { ...widget, metadata: { name: 'w2' }, spec: { size: 0 } });
    await expect(bad).rejects.toThrow(KubeApiError);
    await expect(bad).rejects.toThrow(/HTTP 422 Invalid.*spec\.size/);
  });

  it('sends a conversion webhook call to the refusing egress proxy, not to the network', async () => {
    const svc = await cp.client.create<{ spec: { clusterIP: string } }>(
      `/api/v1/namespaces/${NS}/services`,
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'converter' },
        spec: { ports: [{ port: 443 }] },
      },
    );
    await cp.client.create(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      gadgetCrd(NS),
    );
    const v1 = `/apis/trellis.dev/v1/namespaces/${NS}/gadgets`;
    const created = await waitUntil(
      () =>
        cp.client.create(v1, {
          apiVersion: 'trellis.dev/v1',
          kind: 'Gadget',
          metadata: { name: 'g1' },
        }),
      { what: 'the gadgets API to be served', timeoutMs: 60_000 },
    );
    expect(created).toBeTruthy();
    // Reading at v2 needs the webhook; the API server's only route to it is the proxy, which refuses.
    const res = await cp.client.raw('GET', `/apis/trellis.dev/v2/namespaces/${NS}/gadgets/g1`);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.body).toMatch(/conversion webhook/i);
    expect(cp.egressAttempts).toContain(`${svc.spec.clusterIP}:443`);
    expect(svc.spec.clusterIP).toMatch(/^198\.18\.0\.\d+$/);
  });

  it('stops every process and removes its data dir', async () => {
    const procs = [...cp.processes];
    expect(procs.map((p) => p.name)).toEqual([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
    ]);
    await cp.stop();
    for (const p of procs) {
      expect(p.running, p.name).toBe(false);
      // Signal 0 probes the whole process group: ESRCH means nothing of it is left.
      expect(() => process.kill(-p.pid, 0), p.name).toThrow(/ESRCH/);
    }
    expect(existsSync(cp.dir)).toBe(false);
  });
});

function widgetCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.trellis.dev' },
    spec: {
      group: 'trellis.dev',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  required: ['size'],
                  properties: { size: { type: 'integer', minimum: 1 } },
                },
              },
            },
          },
        },
      ],
    },
  };
}

function gadgetCrd(namespace: string): Record<string, unknown> {
  const schema = {
    openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'gadgets.trellis.dev' },
    spec: {
      group: 'trellis.dev',
      scope: 'Namespaced',
      names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' },
      versions: [
        { name: 'v1', served: true, storage: true, schema },
        { name: 'v2', served: true, storage: false, schema },
      ],
      conversion: {
        strategy: 'Webhook',
        webhook: {
          conversionReviewVersions: ['v1'],
          clientConfig: { service: { namespace, name: 'converter', port: 443, path: '/convert' } },
        },
      },
    },
  };
}
