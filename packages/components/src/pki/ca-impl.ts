/**
 * The bodies of the mesh PKI's dynamic providers (meshCa.ts): make a root CA, and issue an intermediate
 * signed by it. Imported by absolute path inside Pulumi's dynamic-provider host, only from `create` and
 * `update` (see meshCa.ts for why), and by the unit-test mocks, so tests check real X.509.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '@trellis/local/harness';

/** Inputs of a root CA. */
export interface RootInputs {
  commonName: string;
  organization: string;
  organizationalUnit: string;
  validityHours: number;
}

/** State of a root CA; `keyPem` is marked secret by the resource. */
export interface RootOutputs extends RootInputs {
  certPem: string;
  keyPem: string;
  /** ISO 8601 end of validity. */
  notAfter: string;
}

/** Inputs of an intermediate CA: its subject, its lifetime and the root that signs it. */
export interface IntermediateInputs {
  commonName: string;
  organization: string;
  organizationalUnit: string;
  validityHours: number;
  /** Re-issued by `pulumi up` once less than this much lifetime is left. */
  earlyRenewalHours: number;
  rootCertPem: string;
  /** A Pulumi secret; never copied into the outputs. */
  rootKeyPem: string;
}

/** State of an intermediate CA; `keyPem` is marked secret by the resource. */
export interface IntermediateOutputs extends Omit<IntermediateInputs, 'rootKeyPem'> {
  certPem: string;
  keyPem: string;
  notAfter: string;
}

function notAfter(certPem: string): string {
  return new Date(new X509Certificate(certPem).validTo).toISOString();
}

type CaName = Pick<RootInputs, 'commonName' | 'organization' | 'organizationalUnit'>;

/** The distinguished name fields of a CA, as the inputs and outputs carry them. */
function nameOf(i: CaName): CaName {
  return {
    commonName: i.commonName,
    organization: i.organization,
    organizationalUnit: i.organizationalUnit,
  };
}

/** What the CA library takes for a new CA certificate: its name and validity in days. */
function subjectOf(i: CaName & { validityHours: number }): CaName & { validDays: number } {
  return { ...nameOf(i), validDays: i.validityHours / 24 };
}

/** A new self-signed root CA (ECDSA P-256, key usages cert and CRL signing, path length 1). */
export async function createRoot(i: RootInputs): Promise<RootOutputs> {
  const ca = await CertificateAuthority.create(subjectOf(i));
  return {
    ...nameOf(i),
    validityHours: i.validityHours,
    certPem: ca.certPem,
    keyPem: await ca.keyPem(),
    notAfter: notAfter(ca.certPem),
  };
}

/** A new intermediate CA (fresh ECDSA P-256 key, path length 0) signed by the given root. */
export async function issueIntermediate(i: IntermediateInputs): Promise<IntermediateOutputs> {
  const root = await CertificateAuthority.fromPem({
    certPem: i.rootCertPem,
    // Any PEM key form (PKCS#8, or SEC1 from another tool) as the PKCS#8 the CA loader reads.
    keyPem: createPrivateKey(i.rootKeyPem).export({ type: 'pkcs8', format: 'pem' }).toString(),
    rootPem: i.rootCertPem,
  });
  const inter = await root.intermediate(subjectOf(i));
  return {
    ...nameOf(i),
    validityHours: i.validityHours,
    earlyRenewalHours: i.earlyRenewalHours,
    rootCertPem: i.rootCertPem,
    certPem: inter.certPem,
    keyPem: await inter.keyPem(),
    notAfter: notAfter(inter.certPem),
  };
}
