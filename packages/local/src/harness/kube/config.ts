/**
 * The command lines and config files of a loopback Kubernetes control plane: pure functions, so a unit test
 * can assert that nothing listens beyond 127.0.0.1 and nothing is dialled beyond it.
 */
import { isIPv4 } from 'node:net';

/**
 * Service ClusterIPs come from here. No kube-proxy or CNI runs, so nothing ever routes to them; 198.18.0.0/15
 * (RFC 2544, benchmarking) is reserved and never on a real network either. Whatever the API server would dial
 * in the cluster goes through the egress proxy ({@link egressSelectorConfig}), which refuses it.
 */
export const SERVICE_CIDR = '198.18.0.0/24';
/** Pod IPs kwok writes into pod status (fake data, never dialled; same reserved range as above). */
export const POD_CIDR = '198.18.1.0/24';
/** The issuer of service-account tokens (the in-cluster name the API server is known by). */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/**
 * Admission plugins turned off by default: they call webhook servers in the cluster, which here would be
 * fake pods. The webhook configurations are still stored and validated, so charts install unchanged.
 */
export const DISABLED_ADMISSION_PLUGINS = [
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionWebhook',
] as const;

/** Files the control plane reads; all absolute paths. */
export interface ControlPlaneFiles {
  caCert: string;
  caKey: string;
  etcdCert: string;
  etcdKey: string;
  /** The API server's client certificate for etcd. */
  etcdClientCert: string;
  etcdClientKey: string;
  apiserverCert: string;
  apiserverKey: string;
  /** Service-account token signing key (PKCS#8) and its public key (SPKI). */
  saKey: string;
  saPub: string;
  egressConfig: string;
}

/** etcd on loopback: client TLS with client certificates, a single member, its own data dir. */
export function etcdArgs(p: {
  dataDir: string;
  clientPort: number;
  peerPort: number;
  files: Pick<ControlPlaneFiles, 'caCert' | 'etcdCert' | 'etcdKey'>;
}): string[] {
  checkPort('clientPort', p.clientPort);
  checkPort('peerPort', p.peerPort);
  const client = `https://127.0.0.1:${p.clientPort}`;
  // A single member never dials its peer URL; it still has to be set and stays on loopback.
  const peer = `http://127.0.0.1:${p.peerPort}`;
  return [
    '--name=trellis',
    `--data-dir=${p.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=trellis=${peer}`,
    '--initial-cluster-state=new',
    `--cert-file=${p.files.etcdCert}`,
    `--key-file=${p.files.etcdKey}`,
    `--trusted-ca-file=${p.files.caCert}`,
    '--client-cert-auth=true',
    // Throwaway test data on a shared two-core box: fsync would only add latency.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

/** kube-apiserver on 127.0.0.1 with RBAC, its own certificates, and cluster egress through the proxy. */
export function apiserverArgs(p: {
  port: number;
  etcdPort: number;
  files: ControlPlaneFiles;
  /** @default DISABLED_ADMISSION_PLUGINS */
  disableAdmissionPlugins?: readonly string[];
}): string[] {
  checkPort('port', p.port);
  checkPort('etcdPort', p.etcdPort);
  const f = p.files;
  const disabled = p.disableAdmissionPlugins ?? DISABLED_ADMISSION_PLUGINS;
  return [
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${p.port}`,
    `--etcd-servers=https://127.0.0.1:${p.etcdPort}`,
    `--etcd-cafile=${f.caCert}`,
    `--etcd-certfile=${f.etcdClientCert}`,
    `--etcd-keyfile=${f.etcdClientKey}`,
    `--tls-cert-file=${f.apiserverCert}`,
    `--tls-private-key-file=${f.apiserverKey}`,
    `--client-ca-file=${f.caCert}`,
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${f.saPub}`,
    `--service-account-signing-key-file=${f.saKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--authorization-mode=RBAC',
    ...(disabled.length > 0 ? [`--disable-admission-plugins=${disabled.join(',')}`] : []),
    `--egress-selector-config-file=${f.egressConfig}`,
    // The `kubernetes` Service would point at 127.0.0.1, which Endpoints validation refuses; nothing in
    // this cluster dials it anyway.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    '--profiling=false',
  ];
}

/** kube-controller-manager: every default controller, each with its own service account, no serving port. */
export function controllerManagerArgs(p: {
  kubeconfig: string;
  files: Pick<ControlPlaneFiles, 'caCert' | 'caKey' | 'saKey'>;
}): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    '--leader-elect=false',
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${p.files.saKey}`,
    `--root-ca-file=${p.files.caCert}`,
    `--cluster-signing-cert-file=${p.files.caCert}`,
    `--cluster-signing-key-file=${p.files.caKey}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    // 0: no HTTPS endpoint at all (nothing scrapes it, and it would need a port).
    '--secure-port=0',
    '--profiling=false',
  ];
}

/** kube-scheduler: schedules pods onto kwok's nodes; no serving port. */
export function schedulerArgs(p: { kubeconfig: string }): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--profiling=false',
  ];
}

/** kwok: fakes the kubelet of every node that carries {@link KWOK_NODE_ANNOTATION}; serves nothing. */
export function kwokArgs(p: { kubeconfig: string; config: string }): string[] {
  return [
    `--kubeconfig=${p.kubeconfig}`,
    `--config=${p.config}`,
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
    `--cidr=${POD_CIDR}`,
    '--node-ip=198.18.2.1',
    // No --server-address or --node-port: kwok's own HTTPS server (logs, exec) stays off.
  ];
}

/** The annotation that hands a Node to kwok (the one kwokctl uses). */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** A Node object kwok will fake: Ready, schedulable, with room for any test workload. */
export function fakeNode(name: string): Record<string, unknown> {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63)
    throw new Error(`fakeNode: name ${JSON.stringify(name)} is not a DNS label`);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    spec: {},
  };
}

/**
 * The API server's egress selection: whatever it would dial in the cluster (webhooks, aggregated APIs, CRD
 * conversion, kubelets) goes by HTTP CONNECT to a unix socket the harness serves, which refuses and counts it.
 */
export function egressSelectorConfig(socket: string): string {
  // Linux's sun_path holds 108 bytes including the terminating NUL.
  if (Buffer.byteLength(socket) > 107)
    throw new Error(`egress socket path is longer than 107 bytes: ${socket}`);
  return JSON.stringify({
    apiVersion: 'apiserver.k8s.io/v1beta1',
    kind: 'EgressSelectorConfiguration',
    egressSelections: [
      {
        name: 'cluster',
        connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: socket } } },
      },
    ],
  });
}

/** A kubeconfig (JSON, which client-go and every YAML reader accept) for one client identity. */
export function kubeconfig(p: {
  server: string;
  caCert: string;
  clientCert: string;
  clientKey: string;
  user: string;
}): string {
  const url = new URL(p.server);
  if (url.protocol !== 'https:' || !isIPv4(url.hostname) || !url.hostname.startsWith('127.'))
    throw new Error(`kubeconfig: server must be https on 127.0.0.0/8, got ${p.server}`);
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'trellis', cluster: { server: p.server, 'certificate-authority': p.caCert } },
      ],
      users: [
        { name: p.user, user: { 'client-certificate': p.clientCert, 'client-key': p.clientKey } },
      ],
      contexts: [{ name: 'trellis', context: { cluster: 'trellis', user: p.user } }],
      'current-context': 'trellis',
    },
    null,
    2,
  );
}

function checkPort(field: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new Error(`${field} must be a TCP port (1-65535), got ${port}`);
}
