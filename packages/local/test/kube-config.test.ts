// The loopback control plane's command lines and config files, checked without starting anything: every
// listener is on 127.0.0.1, the API server authorises with RBAC, webhooks cannot be called, and cluster
// egress goes to the refusing proxy.
import { X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  apiserverArgs,
  controllerManagerArgs,
  egressSelectorConfig,
  etcdArgs,
  fakeNode,
  kubeconfig,
  kwokArgs,
  schedulerArgs,
  SERVICE_CIDR,
  type ControlPlaneFiles,
} from '../src/harness/kube/config.ts';
import { startEgressTrap } from '../src/harness/kube/egress.ts';
import { CertificateAuthority } from '../src/harness/tls.ts';
import { parseEtcdVersion } from '../src/toolchain/etcd.ts';
import { kubeLdflags, parseKubeVersion } from '../src/toolchain/kubernetes.ts';
import { parseKwokVersion } from '../src/toolchain/kwok.ts';

const files: ControlPlaneFiles = {
  caCert: '/p/ca.crt',
  caKey: '/p/ca.key',
  etcdCert: '/p/etcd.crt',
  etcdKey: '/p/etcd.key',
  etcdClientCert: '/p/ec.crt',
  etcdClientKey: '/p/ec.key',
  apiserverCert: '/p/api.crt',
  apiserverKey: '/p/api.key',
  saKey: '/p/sa.key',
  saPub: '/p/sa.pub',
  egressConfig: '/p/egress.json',
};
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Every host named in a URL-valued or address-valued flag. The service-account issuer is a name written
 * into tokens, never dialled, so it is left out.
 */
function hostsIn(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a.startsWith('--service-account-issuer=')) continue;
    const value = a.split('=').slice(1).join('=');
    for (const part of value.split(',')) {
      const url = /^[a-z]+:\/\/([^/:]+)/.exec(part.replace(/^[a-z0-9-]+=/, ''));
      if (url?.[1]) out.push(url[1]);
    }
    if (/^--(bind|advertise)-address=/.test(a)) out.push(value);
  }
  return out;
}

describe('etcdArgs', () => {
  const args = etcdArgs({ dataDir: '/d', clientPort: 2379, peerPort: 2380, files });
  it('listens only on loopback, clients over TLS with certificates', () => {
    expect(hostsIn(args).length).toBeGreaterThanOrEqual(5);
    expect(new Set(hostsIn(args))).toEqual(new Set(['127.0.0.1']));
    expect(args).toContain('--listen-client-urls=https://127.0.0.1:2379');
    expect(args).toContain('--client-cert-auth=true');
    expect(args).toContain('--trusted-ca-file=/p/ca.crt');
    expect(args).toContain('--data-dir=/d');
  });
  it('names the field of a bad port', () => {
    expect(() => etcdArgs({ dataDir: '/d', clientPort: 0, peerPort: 2380, files })).toThrow(
      'clientPort must be a TCP port (1-65535), got 0',
    );
  });
});

describe('apiserverArgs', () => {
  const args = apiserverArgs({ port: 6443, etcdPort: 2379, files });
  it('binds and advertises 127.0.0.1 and talks to etcd over loopback TLS', () => {
    expect(new Set(hostsIn(args))).toEqual(new Set(['127.0.0.1']));
    expect(args).toContain('--bind-address=127.0.0.1');
    expect(args).toContain('--advertise-address=127.0.0.1');
    expect(args).toContain('--etcd-servers=https://127.0.0.1:2379');
    expect(args).toContain('--etcd-certfile=/p/ec.crt');
  });
  it('authorises with RBAC only, and never calls admission webhooks', () => {
    expect(args).toContain('--authorization-mode=RBAC');
    expect(args).toContain(
      '--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
    );
    expect(args).toContain('--egress-selector-config-file=/p/egress.json');
    expect(args).toContain(`--service-cluster-ip-range=${SERVICE_CIDR}`);
    expect(args.some((a) => a.startsWith('--cloud-provider'))).toBe(false);
  });
  it('lets a caller keep the webhook plugins', () => {
    const kept = apiserverArgs({ port: 6443, etcdPort: 2379, files, disableAdmissionPlugins: [] });
    expect(kept.some((a) => a.startsWith('--disable-admission-plugins'))).toBe(false);
  });
});

describe('controller manager, scheduler and kwok', () => {
  it('serve no port of their own', () => {
    const kcm = controllerManagerArgs({ kubeconfig: '/k', files });
    const sched = schedulerArgs({ kubeconfig: '/k' });
    expect(kcm).toContain('--secure-port=0');
    expect(kcm).toContain('--use-service-account-credentials=true');
    expect(kcm).toContain('--service-account-private-key-file=/p/sa.key');
    expect(sched).toContain('--secure-port=0');
    const kwok = kwokArgs({ kubeconfig: '/k', config: '/c' });
    expect(kwok.some((a) => /^--(server-address|node-port)/.test(a))).toBe(false);
    expect(kwok).toContain('--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake');
  });
  it('fake nodes carry the kwok annotation and DNS-label names', () => {
    const node = fakeNode('kwok-node-0') as { metadata: { annotations: Record<string, string> } };
    expect(node.metadata.annotations['kwok.x-k8s.io/node']).toBe('fake');
    expect(() => fakeNode('Bad_Name')).toThrow('fakeNode: name "Bad_Name" is not a DNS label');
  });
});

describe('egressSelectorConfig', () => {
  it('sends cluster egress by HTTP CONNECT over the unix socket', () => {
    const cfg = JSON.parse(egressSelectorConfig('/tmp/x/egress.sock')) as {
      kind: string;
      egressSelections: { name: string; connection: unknown }[];
    };
    expect(cfg.kind).toBe('EgressSelectorConfiguration');
    expect(cfg.egressSelections).toEqual([
      {
        name: 'cluster',
        connection: {
          proxyProtocol: 'HTTPConnect',
          transport: { uds: { udsName: '/tmp/x/egress.sock' } },
        },
      },
    ]);
  });
  it('refuses a socket path the kernel cannot bind', () => {
    expect(() => egressSelectorConfig(`/${'x'.repeat(120)}`)).toThrow(/longer than 107 bytes/);
  });
});

describe('startEgressTrap', () => {
  it('refuses a CONNECT with 403 and records its target', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-egress-'));
    dirs.push(dir);
    const trap = await startEgressTrap(join(dir, 'egress.sock'));
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({
          socketPath: trap.socket,
          method: 'CONNECT',
          path: '198.18.0.10:443',
        });
        req.on('connect', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(403);
      expect(trap.attempts).toEqual(['198.18.0.10:443']);
    } finally {
      await trap.close();
    }
  });
});

describe('kubeconfig', () => {
  it('points at loopback over https with the identity files', () => {
    const cfg = JSON.parse(
      kubeconfig({
        server: 'https://127.0.0.1:6443',
        caCert: '/p/ca.crt',
        clientCert: '/p/a.crt',
        clientKey: '/p/a.key',
        user: 'admin',
      }),
    ) as { clusters: { cluster: { server: string } }[]; 'current-context': string };
    expect(cfg.clusters[0]?.cluster.server).toBe('https://127.0.0.1:6443');
    expect(cfg['current-context']).toBe('trellis');
  });
  it('refuses a server off loopback', () => {
    expect(() =>
      kubeconfig({
        server: 'https://10.0.0.1:6443',
        caCert: '',
        clientCert: '',
        clientKey: '',
        user: 'u',
      }),
    ).toThrow('kubeconfig: server must be https on 127.0.0.0/8, got https://10.0.0.1:6443');
  });
});

describe('client certificate groups', () => {
  it('puts organization in the subject, where Kubernetes reads groups', async () => {
    const ca = await CertificateAuthority.create({ commonName: 'kube-ca' });
    const admin = await ca.issue({
      commonName: 'trellis-admin',
      organization: ['system:masters'],
      usages: ['client'],
    });
    const subject = new X509Certificate(admin.certPem).subject.split('\n');
    expect(subject).toEqual(expect.arrayContaining(['O=system:masters', 'CN=trellis-admin']));
    await expect(ca.issue({ organization: ['x'], dns: ['a'] })).rejects.toThrow(
      'issue: organization needs a commonName',
    );
  });
});

describe('version parsers', () => {
  it('read what the built binaries print', () => {
    expect(parseEtcdVersion('etcd Version: 3.7.4\nGit SHA: Not provided\n')).toBe('3.7.4');
    expect(parseKubeVersion('Kubernetes v1.37.2\n')).toBe('1.37.2');
    expect(parseKubeVersion('Kubernetes v0.0.0-master+$Format:%H$\n')).toBeNull();
    expect(parseKwokVersion('kwok version v0.8.0 go1.26.8 (linux/amd64)\n')).toBe('0.8.0');
  });
  it('stamp the Kubernetes version the way release builds do', () => {
    expect(kubeLdflags('1.37.2')).toContain('-X k8s.io/component-base/version.gitVersion=v1.37.2');
    expect(kubeLdflags('1.37.2')).toContain('-X k8s.io/component-base/version.gitMinor=37');
  });
});
