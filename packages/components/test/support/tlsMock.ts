/**
 * Real X.509 for `@pulumi/tls` under `pulumi.runtime.setMocks`: the mock makes keys with node:crypto and
 * certificates, CSRs and signatures with @peculiar/x509, following the resource inputs (subject, CA flag,
 * key usages, the CA key and cert given to LocallySignedCert). A chain check in a test is therefore a real
 * check of how the program wired the CA, not of fixed fixtures.
 */
import 'reflect-metadata';
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto);

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

type Inputs = Record<string, unknown>;

interface Subject {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
}

function dn(subject: unknown): string {
  const s = (subject ?? {}) as Subject;
  const parts: string[] = [];
  if (s.commonName) parts.push(`CN=${s.commonName}`);
  if (s.organizationalUnit) parts.push(`OU=${s.organizationalUnit}`);
  if (s.organization) parts.push(`O=${s.organization}`);
  return parts.length > 0 ? parts.join(', ') : 'CN=unnamed';
}

async function importPrivate(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return (await webcrypto.subtle.importKey('pkcs8', der, ecdsa, true, [
    'sign',
  ])) as unknown as CryptoKey;
}

async function importPublicFromPrivate(pem: string): Promise<CryptoKey> {
  const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  return (await webcrypto.subtle.importKey('spki', der, ecdsa, true, [
    'verify',
  ])) as unknown as CryptoKey;
}

function keyUsages(allowed: unknown): number {
  const uses = Array.isArray(allowed) ? (allowed as string[]) : [];
  let flags = 0;
  if (uses.includes('cert_signing')) flags |= x509.KeyUsageFlags.keyCertSign;
  if (uses.includes('crl_signing')) flags |= x509.KeyUsageFlags.cRLSign;
  if (uses.includes('digital_signature')) flags |= x509.KeyUsageFlags.digitalSignature;
  if (uses.includes('key_encipherment')) flags |= x509.KeyUsageFlags.keyEncipherment;
  return flags;
}

async function extensions(inputs: Inputs, publicKey: CryptoKey): Promise<x509.Extension[]> {
  const ext: x509.Extension[] = [
    new x509.BasicConstraintsExtension(inputs.isCaCertificate === true, undefined, true),
  ];
  const usages = keyUsages(inputs.allowedUses);
  if (usages !== 0) ext.push(new x509.KeyUsagesExtension(usages, true));
  ext.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
  return ext;
}

function validity(inputs: Inputs): { notBefore: Date; notAfter: Date } {
  const hours = typeof inputs.validityPeriodHours === 'number' ? inputs.validityPeriodHours : 24;
  const notBefore = new Date(Date.now() - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + hours * 3_600_000) };
}

/** A fresh ECDSA P-256 key in the shapes `tls.PrivateKey` outputs. */
export function privateKeyState(): Inputs {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'sec1', format: 'pem' }),
    privateKeyPemPkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
  };
}

/** A self-signed certificate from `tls.SelfSignedCert` inputs. */
export async function selfSignedCertState(inputs: Inputs): Promise<Inputs> {
  const keyPem = String(inputs.privateKeyPem);
  const publicKey = await importPublicFromPrivate(keyPem);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: dn(inputs.subject),
    ...validity(inputs),
    keys: { privateKey: await importPrivate(keyPem), publicKey } as CryptoKeyPair,
    signingAlgorithm: ecdsa,
    extensions: await extensions(inputs, publicKey),
  });
  return { certPem: cert.toString('pem') };
}

/** A PKCS#10 request from `tls.CertRequest` inputs. */
export async function certRequestState(inputs: Inputs): Promise<Inputs> {
  const keyPem = String(inputs.privateKeyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: dn(inputs.subject),
    keys: {
      privateKey: await importPrivate(keyPem),
      publicKey: await importPublicFromPrivate(keyPem),
    } as CryptoKeyPair,
    signingAlgorithm: ecdsa,
  });
  return { certRequestPem: csr.toString('pem') };
}

/** A certificate signed by the CA given in `tls.LocallySignedCert` inputs. */
export async function locallySignedCertState(inputs: Inputs): Promise<Inputs> {
  const csr = new x509.Pkcs10CertificateRequest(String(inputs.certRequestPem));
  const ca = new x509.X509Certificate(String(inputs.caCertPem));
  const publicKey = await csr.publicKey.export(ecdsa, ['verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex'),
    subject: csr.subject,
    issuer: ca.subject,
    ...validity(inputs),
    publicKey,
    signingKey: await importPrivate(String(inputs.caPrivateKeyPem)),
    signingAlgorithm: ecdsa,
    extensions: await extensions(inputs, publicKey),
  });
  return { certPem: cert.toString('pem') };
}

/** State for a `@pulumi/tls` resource type, or undefined when the type is not one of them. */
export async function tlsState(type: string, inputs: Inputs): Promise<Inputs | undefined> {
  switch (type) {
    case 'tls:index/privateKey:PrivateKey':
      return privateKeyState();
    case 'tls:index/selfSignedCert:SelfSignedCert':
      return selfSignedCertState(inputs);
    case 'tls:index/certRequest:CertRequest':
      return certRequestState(inputs);
    case 'tls:index/locallySignedCert:LocallySignedCert':
      return locallySignedCertState(inputs);
    default:
      return undefined;
  }
}
