/**
 * The shared root CA as cluster stacks see it in tests: a real self-signed root, returned by the
 * StackReference to the PKI stack (infra/k8s/pki) with the key as a secret output.
 */
import type { StateFn } from './mocks.ts';
import { privateKeyState, selfSignedCertState } from './tlsMock.ts';

/** A root CA in PEM: what the PKI stack exports as `rootCertPem` and (secret) `rootKeyPem`. */
export interface PemRoot {
  certPem: string;
  keyPem: string;
}

/** A fresh root CA made like `RootCa` (ECDSA P-256, cert and CRL signing, 10 years), real X.509. */
export async function testRootCa(): Promise<PemRoot> {
  const key = privateKeyState();
  const cert = await selfSignedCertState({
    privateKeyPem: key.privateKeyPem,
    isCaCertificate: true,
    allowedUses: ['cert_signing', 'crl_signing'],
    subject: { commonName: 'trellis.local root CA', organization: 'Trellis' },
    validityPeriodHours: 87600,
  });
  return { certPem: cert.certPem as string, keyPem: key.privateKeyPem as string };
}

/** Mock state of `pulumi:pulumi:StackReference`: the PKI stack's outputs for `root`. */
export function pkiStackReference(root: PemRoot): StateFn {
  return (_name, inputs) => ({
    name: inputs.name,
    outputs: { rootCertPem: root.certPem, rootKeyPem: root.keyPem },
    secretOutputNames: ['rootKeyPem'],
  });
}
