/** Certificates and keys for a loopback control plane, from one throwaway CA (harness/tls.ts). */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, type IssuedCert } from '../tls.ts';
import type { ControlPlaneFiles } from './config.ts';

/** A client identity's certificate and key files. */
export interface ClientFiles {
  cert: string;
  key: string;
}

/** Everything {@link writeControlPlanePki} wrote. */
export interface ControlPlanePki {
  files: Omit<ControlPlaneFiles, 'egressConfig'>;
  /** The CA certificate (PEM) clients trust. */
  caPem: string;
  /** `system:masters`: the test's own identity, and kwok's (it patches nodes and pods of any namespace). */
  admin: ClientFiles & { pem: IssuedCert };
  controllerManager: ClientFiles;
  scheduler: ClientFiles;
}

/**
 * The names the API server answers to: loopback, and the in-cluster names of the `kubernetes` Service, so a
 * client that follows the service-account convention still verifies it.
 */
export const APISERVER_SANS = {
  ips: ['127.0.0.1'],
  dns: [
    'localhost',
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster.local',
  ],
} as const;

/** Write the CA, the server and client certificates and the service-account key pair under `dir`. */
export async function writeControlPlanePki(dir: string): Promise<ControlPlanePki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await CertificateAuthority.create({ commonName: 'trellis-kube-ca', validDays: 2 });
  const write = (name: string, text: string, secret = false): string => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: secret ? 0o600 : 0o644 });
    if (secret) chmodSync(path, 0o600);
    return path;
  };
  const pair = (name: string, issued: IssuedCert): ClientFiles => ({
    cert: write(`${name}.crt`, issued.chainPem),
    key: write(`${name}.key`, issued.keyPem, true),
  });
  const server = await ca.issue({
    commonName: 'kube-apiserver',
    ...APISERVER_SANS,
    usages: ['server'],
  });
  const etcdServer = await ca.issue({
    commonName: 'etcd',
    ips: ['127.0.0.1'],
    dns: ['localhost'],
    usages: ['server'],
  });
  const etcdClient = await ca.issue({
    commonName: 'kube-apiserver-etcd-client',
    usages: ['client'],
  });
  const adminPem = await ca.issue({
    commonName: 'trellis-admin',
    organization: ['system:masters'],
    usages: ['client'],
  });
  // The names the default RBAC policy binds the controller manager's and the scheduler's roles to.
  const kcm = await ca.issue({ commonName: 'system:kube-controller-manager', usages: ['client'] });
  const scheduler = await ca.issue({ commonName: 'system:kube-scheduler', usages: ['client'] });
  const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const apiserverFiles = pair('apiserver', server);
  const etcdFiles = pair('etcd', etcdServer);
  const etcdClientFiles = pair('apiserver-etcd-client', etcdClient);
  return {
    files: {
      caCert: write('ca.crt', ca.certPem),
      caKey: write('ca.key', await ca.keyPem(), true),
      etcdCert: etcdFiles.cert,
      etcdKey: etcdFiles.key,
      etcdClientCert: etcdClientFiles.cert,
      etcdClientKey: etcdClientFiles.key,
      apiserverCert: apiserverFiles.cert,
      apiserverKey: apiserverFiles.key,
      saKey: write(
        'sa.key',
        sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        true,
      ),
      saPub: write('sa.pub', sa.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    },
    caPem: ca.certPem,
    admin: { ...pair('admin', adminPem), pem: adminPem },
    controllerManager: pair('kube-controller-manager', kcm),
    scheduler: pair('kube-scheduler', scheduler),
  };
}
