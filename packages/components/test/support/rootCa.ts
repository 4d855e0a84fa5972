/**
 * The shared root CA as cluster stacks see it in tests: a real self-signed root, returned by the
 * StackReference to the PKI stack (infra/k8s/pki) with the key as a secret output.
 */
import { createRoot } from '../../src/pki/ca-impl.ts';
import type { StateFn } from './mocks.ts';

/** A root CA in PEM: what the PKI stack exports as `rootCertPem` and (secret) `rootKeyPem`. */
export interface PemRoot {
  certPem: string;
  keyPem: string;
}

/** A fresh root CA made by the same code as `RootCa` (ECDSA P-256, cert and CRL signing, 10 years). */
export async function testRootCa(): Promise<PemRoot> {
  const root = await createRoot({
    commonName: 'trellis.local root CA',
    organization: 'Trellis',
    organizationalUnit: 'trellis.local',
    validityHours: 87_600,
  });
  return { certPem: root.certPem, keyPem: root.keyPem };
}

/** Mock state of `pulumi:pulumi:StackReference`: the PKI stack's outputs for `root`. */
export function pkiStackReference(root: PemRoot): StateFn {
  return (_name, inputs) => ({
    name: inputs.name,
    outputs: { rootCertPem: root.certPem, rootKeyPem: root.keyPem },
    secretOutputNames: ['rootKeyPem'],
  });
}
