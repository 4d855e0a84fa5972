/**
 * A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok (fake nodes and kubelets), with their own CA, data dir and kubeconfig. Nothing
 * listens beyond 127.0.0.1, and the API server's cluster egress goes to a proxy that refuses it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcd } from '../../toolchain/etcd.ts';
import { kubeBinary, kubernetes } from '../../toolchain/kubernetes.ts';
import { KWOK_STAGE_FILES, kwok, kwokStagesDir } from '../../toolchain/kwok.ts';
import { freePorts } from '../ports.ts';
import { ManagedProcess } from '../process.ts';
import { waitUntil } from '../wait.ts';
import { KubeClient } from './client.ts';
import {
  apiserverArgs,
  controllerManagerArgs,
  egressSelectorConfig,
  etcdArgs,
  fakeNode,
  kubeconfig,
  kwokArgs,
  schedulerArgs,
} from './config.ts';
import { startEgressTrap, type EgressTrap } from './egress.ts';
import { writeControlPlanePki, type ClientFiles } from './pki.ts';

/** Options for {@link startKubeControlPlane}. */
export interface KubeControlPlaneOptions {
  /**
   * Where data, certificates, kubeconfigs and logs go; removed by `stop()`. Keep it short: the egress
   * socket lives in it. @default a new `trellis-kube-*` dir under the OS temp dir
   */
  dir?: string;
  /** Fake nodes kwok runs. @default ['kwok-node-0'] */
  nodes?: readonly string[];
  /** Bound on each readiness wait. @default 120_000 */
  readyTimeoutMs?: number;
  /** @default DISABLED_ADMISSION_PLUGINS (the webhook admission plugins) */
  disableAdmissionPlugins?: readonly string[];
}

/** A running control plane. */
export interface KubeControlPlane {
  /** `https://127.0.0.1:<port>`. */
  server: string;
  /** A kubeconfig for a `system:masters` client. */
  kubeconfig: string;
  caPem: string;
  /** A client with the same identity as {@link kubeconfig}. */
  client: KubeClient;
  dir: string;
  /** Every process of the control plane (for leak checks after `stop()`). */
  processes: readonly ManagedProcess[];
  /** Where the API server tried to tunnel into the cluster (`host:port`), all refused. */
  egressAttempts: readonly string[];
  /** Milliseconds from the first process start until nodes were Ready. */
  startupMs: number;
  /** Stop every process (kwok first, etcd last), close the egress proxy and remove the dir. */
  stop(): Promise<void>;
}

/** Start etcd, the API server, the controller manager, the scheduler and kwok, and wait for each. */
export async function startKubeControlPlane(
  opts: KubeControlPlaneOptions = {},
): Promise<KubeControlPlane> {
  const nodes = opts.nodes ?? ['kwok-node-0'];
  if (nodes.length === 0) throw new Error('nodes must name at least one fake node');
  const nodeObjects = nodes.map(fakeNode);
  const timeoutMs = opts.readyTimeoutMs ?? 120_000;
  // One after another: on a fresh machine each is a Go build, and two cores cannot take three at once.
  const etcdBin = await etcd.ensure();
  await kubernetes.ensure();
  const kwokBin = await kwok.ensure();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'trellis-kube-'));
  const procs: ManagedProcess[] = [];
  let trap: EgressTrap | undefined;
  let client: KubeClient | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      client?.close();
      for (const p of [...procs].reverse()) await p.stop();
      await trap?.close();
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    const t0 = Date.now();
    const pki = await writeControlPlanePki(join(dir, 'pki'));
    trap = await startEgressTrap(join(dir, 'egress.sock'));
    const egressConfig = join(dir, 'egress-selector.json');
    writeFileSync(egressConfig, egressSelectorConfig(trap.socket));
    const files = { ...pki.files, egressConfig };
    const [etcdPort, peerPort, apiPort] = await freePorts(3);
    const start = (name: string, command: string, args: string[]): ManagedProcess => {
      const p = ManagedProcess.start({
        name,
        command,
        args,
        dir: join(dir, name),
        stopGraceMs: 10_000,
      });
      procs.push(p);
      return p;
    };

    const etcdProc = start(
      'etcd',
      etcdBin,
      etcdArgs({
        dataDir: join(dir, 'etcd', 'data'),
        clientPort: etcdPort!,
        peerPort: peerPort!,
        files,
      }),
    );
    const etcdClient = {
      ca: pki.caPem,
      cert: read(files.etcdClientCert),
      key: read(files.etcdClientKey),
    };
    await waitUntil(() => etcdHealthy(etcdPort!, etcdClient), {
      what: `etcd /health on 127.0.0.1:${etcdPort}`,
      timeoutMs,
      proc: etcdProc,
    });

    const apiserver = start(
      'kube-apiserver',
      kubeBinary('kube-apiserver'),
      apiserverArgs({
        port: apiPort!,
        etcdPort: etcdPort!,
        files,
        ...(opts.disableAdmissionPlugins
          ? { disableAdmissionPlugins: opts.disableAdmissionPlugins }
          : {}),
      }),
    );
    const server = `https://127.0.0.1:${apiPort}`;
    client = new KubeClient({
      server,
      caPem: pki.caPem,
      certPem: read(pki.admin.cert),
      keyPem: read(pki.admin.key),
      timeoutMs: 10_000,
    });
    const api = client;
    await waitUntil(
      async () => {
        const res = await api.raw('GET', '/readyz');
        if (res.status !== 200)
          throw new Error(`/readyz said ${res.status}: ${res.body.slice(-400)}`);
        return true;
      },
      { what: `kube-apiserver /readyz on ${server}`, timeoutMs, proc: apiserver },
    );

    const writeKubeconfig = (name: string, user: string, id: ClientFiles): string => {
      const path = join(dir, `${name}.kubeconfig`);
      writeFileSync(
        path,
        kubeconfig({ server, caCert: files.caCert, clientCert: id.cert, clientKey: id.key, user }),
        { mode: 0o600 },
      );
      return path;
    };
    const admin = writeKubeconfig('admin', 'trellis-admin', pki.admin);
    const kcm = start(
      'kube-controller-manager',
      kubeBinary('kube-controller-manager'),
      controllerManagerArgs({
        kubeconfig: writeKubeconfig(
          'controller-manager',
          'system:kube-controller-manager',
          pki.controllerManager,
        ),
        files,
      }),
    );
    start(
      'kube-scheduler',
      kubeBinary('kube-scheduler'),
      schedulerArgs({
        kubeconfig: writeKubeconfig('scheduler', 'system:kube-scheduler', pki.scheduler),
      }),
    );
    const kwokConfig = join(dir, 'kwok.yaml');
    writeFileSync(
      kwokConfig,
      KWOK_STAGE_FILES.map((f) => read(join(kwokStagesDir(), f.split('/').pop()!))).join('\n---\n'),
    );
    const kwokProc = start('kwok', kwokBin, kwokArgs({ kubeconfig: admin, config: kwokConfig }));

    for (const node of nodeObjects) await api.create('/api/v1/nodes', node);
    await waitUntil(
      async () => {
        for (const name of nodes) {
          const n = await api.get<NodeStatus>(`/api/v1/nodes/${name}`);
          if (!n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
            throw new Error(`node ${name} is not Ready yet`);
        }
        return true;
      },
      { what: `kwok to make ${nodes.join(', ')} Ready`, timeoutMs, proc: kwokProc },
    );
    // The controller manager's service-account controller creates `default` in each namespace; pods
    // are refused until it exists.
    await waitUntil(() => api.get('/api/v1/namespaces/default/serviceaccounts/default'), {
      what: 'the default ServiceAccount (kube-controller-manager running)',
      timeoutMs,
      proc: kcm,
    });
    const egress = trap;
    return {
      server,
      kubeconfig: admin,
      caPem: pki.caPem,
      client: api,
      dir,
      processes: procs,
      get egressAttempts() {
        return egress.attempts;
      },
      startupMs: Date.now() - t0,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

interface NodeStatus {
  status?: { conditions?: { type: string; status: string }[] };
}

function read(path: string): string {
  return readFileSync(path, 'utf8');
}

/** etcd's /health over client TLS: true when it answers `"health":"true"`. */
function etcdHealthy(
  port: number,
  tls: { ca: string; cert: string; key: string },
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/health', ...tls, agent: false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          /"health":\s*"true"/.test(body)
            ? resolve(true)
            : reject(new Error(`/health said ${body.trim()}`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}
