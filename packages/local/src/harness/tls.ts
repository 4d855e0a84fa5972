// tsyringe, which @peculiar/x509 uses inside, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type KeyPair = webcrypto.CryptoKeyPair;

// ECDSA P-256: accepted by Java's PEM readers (Cassandra's PEMReader: RSA, DSA, EC; Kafka's PemStore),
// Envoy and Node, and fast to generate.
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** What a certificate says about its subject. */
export interface IssueOptions {
  /** Subject CN. Optional for SPIFFE SVIDs, whose identity is the URI SAN. */
  commonName?: string;
  /**
   * Subject O values; Kubernetes reads them as the client's groups (`system:masters`). Needs a commonName.
   * @default []
   */
  organization?: readonly string[];
  /** DNS SANs, e.g. `localhost`. */
  dns?: readonly string[];
  /** IP SANs, e.g. `127.0.0.1` (Kafka verifies the host of every broker it dials against these). */
  ips?: readonly string[];
  /** URI SANs, e.g. `spiffe://trellis.local/ns/orders/sa/orders-api`. */
  uris?: readonly string[];
  /** @default 7 */
  validDays?: number;
  /** Extended key usages. Servers here also dial each other, so the default is both. @default ['server','client'] */
  usages?: readonly ('server' | 'client')[];
}

/** A key pair and its certificate, as PEM (the key is unencrypted PKCS#8). */
export interface IssuedCert {
  /** The leaf certificate alone. */
  certPem: string;
  /** The leaf followed by the intermediates up to (not including) the root. */
  chainPem: string;
  keyPem: string;
}

/** Paths of one identity's key material, as Cassandra's PEM factory and Kafka's `PEM` store type read it. */
export interface PemFiles {
  /** PKCS#8 private key followed by the certificate chain (one file). */
  keystore: string;
  /** Trusted CA certificates. */
  truststore: string;
  /** The certificate chain alone and the key alone, for clients (Node, Envoy) that want them apart. */
  cert: string;
  key: string;
}

/** Optional subject attributes of a CA certificate besides its CN (e.g. `O=Trellis, OU=<trust domain>`). */
export interface CaSubject {
  organization?: string;
  organizationalUnit?: string;
}

/** The subject of a CA certificate: O and OU when given, then CN. */
function caName(s: CaSubject & { commonName: string }): x509.JsonName {
  if (s.organization !== undefined) checkName('organization', s.organization);
  if (s.organizationalUnit !== undefined) checkName('organizationalUnit', s.organizationalUnit);
  return [
    ...(s.organization !== undefined ? [{ O: [s.organization] }] : []),
    ...(s.organizationalUnit !== undefined ? [{ OU: [s.organizationalUnit] }] : []),
    { CN: [s.commonName] },
  ];
}

/** A certificate authority held in memory: a throwaway test CA, or a Mesh CA's root or intermediate. */
export class CertificateAuthority {
  readonly certPem: string;
  /** The chain a leaf of this CA sends after itself: this CA's certificate and its parents below the root ('' for a root). */
  readonly chainPem: string;
  /** The root's certificate: what every party trusts. */
  readonly rootPem: string;
  private readonly cert: x509.X509Certificate;
  private readonly keys: KeyPair;

  private constructor(
    cert: x509.X509Certificate,
    keys: KeyPair,
    chainPem: string,
    rootPem: string,
  ) {
    this.cert = cert;
    this.keys = keys;
    this.certPem = cert.toString('pem') + '\n';
    this.chainPem = chainPem;
    this.rootPem = rootPem;
  }

  /**
   * Load a CA persisted as PEM (its certificate, PKCS#8 key, any intermediates between it and the root,
   * and the root), e.g. a Mesh CA kept as a Pulumi secret between runs.
   */
  static async fromPem(p: {
    certPem: string;
    keyPem: string;
    parentsPem?: string;
    rootPem: string;
  }): Promise<CertificateAuthority> {
    const cert = new x509.X509Certificate(p.certPem);
    const der = Buffer.from(
      p.keyPem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, ''),
      'base64',
    );
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
    const publicKey = await cert.publicKey.export(ALG, ['verify']);
    return new CertificateAuthority(
      cert,
      { privateKey, publicKey } as KeyPair,
      (await cert.isSelfSigned()) ? '' : cert.toString('pem') + '\n' + (p.parentsPem ?? ''),
      p.rootPem,
    );
  }

  /** A new self-signed root CA. */
  static async create(
    opts: {
      commonName: string;
      validDays?: number;
      pathLength?: number;
    } & CaSubject,
  ): Promise<CertificateAuthority> {
    checkName('commonName', opts.commonName);
    const keys = await newKeys();
    const days = checkDays(opts.validDays ?? 30);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: caName(opts),
      notBefore: backdate(),
      notAfter: new Date(Date.now() + days * 86_400_000),
      signingAlgorithm: ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, opts.pathLength ?? 1, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pem = cert.toString('pem') + '\n';
    return new CertificateAuthority(cert, keys, '', pem);
  }

  /** The private key as PKCS#8 PEM (e.g. for Istio's `cacerts` or a Mesh CA on disk). */
  async keyPem(): Promise<string> {
    return pkcs8Pem(this.keys.privateKey);
  }

  /** A subordinate CA signed by this one (one per region or cluster in the Mesh CA design). */
  async intermediate(
    opts: {
      commonName: string;
      validDays?: number;
      /**
       * CAs allowed below this one (basicConstraints pathLenConstraint). 1 lets a SPIFFE server (SPIRE's
       * UpstreamAuthority) mint its own signing CA under it; the parent needs a larger path length. @default 0
       */
      pathLength?: number;
    } & CaSubject,
  ): Promise<CertificateAuthority> {
    checkName('commonName', opts.commonName);
    const pathLength = opts.pathLength ?? 0;
    if (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > 4)
      throw new Error(`pathLength must be an integer in [0, 4], got ${pathLength}`);
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: caName(opts),
      issuer: this.cert.subjectName,
      notBefore: backdate(),
      notAfter: new Date(Date.now() + checkDays(opts.validDays ?? 30) * 86_400_000),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, pathLength, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
      ],
    });
    return new CertificateAuthority(
      cert,
      keys,
      cert.toString('pem') + '\n' + this.chainPem,
      this.rootPem,
    );
  }

  /** Issue a leaf certificate (server, client or SPIFFE SVID) with a fresh key. */
  async issue(opts: IssueOptions): Promise<IssuedCert> {
    const names = sans(opts);
    if (names.length === 0 && !opts.commonName) {
      throw new Error('issue: give a commonName or at least one of dns, ips, uris');
    }
    if (opts.commonName !== undefined) checkName('commonName', opts.commonName);
    const organization = opts.organization ?? [];
    if (organization.length > 0 && !opts.commonName)
      throw new Error('issue: organization needs a commonName');
    for (const o of organization) checkName('organization', o);
    const usages = opts.usages ?? ['server', 'client'];
    if (usages.length === 0) throw new Error('issue: usages must name server, client or both');
    const keys = await newKeys();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        usages.map((u) =>
          u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ),
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
    ];
    // SPIFFE X.509-SVID §4: the SAN is critical when the subject is empty.
    if (names.length > 0)
      extensions.push(new x509.SubjectAlternativeNameExtension(names, !opts.commonName));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: opts.commonName
        ? [...organization.map((o) => ({ O: [o] })), { CN: [opts.commonName] }]
        : [],
      issuer: this.cert.subjectName,
      notBefore: backdate(),
      notAfter: new Date(Date.now() + checkDays(opts.validDays ?? 7) * 86_400_000),
      signingAlgorithm: ALG,
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      extensions,
    });
    const certPem = cert.toString('pem') + '\n';
    return { certPem, chainPem: certPem + this.chainPem, keyPem: await pkcs8Pem(keys.privateKey) };
  }
}

/**
 * Write one identity's key material under `dir` as `<name>.keystore.pem` (key + chain),
 * `<name>.crt`, `<name>.key` and `<name>.truststore.pem` (the CA), private files mode 0600.
 */
export function writePemFiles(
  dir: string,
  name: string,
  issued: IssuedCert,
  trustedPem: string,
): PemFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    throw new Error(`writePemFiles: bad name ${JSON.stringify(name)}`);
  mkdirSync(dir, { recursive: true });
  const files: PemFiles = {
    keystore: join(dir, `${name}.keystore.pem`),
    truststore: join(dir, `${name}.truststore.pem`),
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  };
  writePrivate(files.keystore, issued.keyPem + issued.chainPem);
  writePrivate(files.key, issued.keyPem);
  writeFileSync(files.cert, issued.chainPem);
  writeFileSync(files.truststore, trustedPem);
  return files;
}

/**
 * Issue a client certificate per entry of `clients` (name → SPIFFE ID) from `ca` and write it under
 * `dir` ({@link writePemFiles}), into `certs` beside what it holds already. Returns a lookup by name
 * that names a missing one.
 */
export async function issueClientCerts(
  ca: CertificateAuthority,
  dir: string,
  clients: Readonly<Record<string, string>>,
  certs = new Map<string, PemFiles>(),
): Promise<(name: string) => PemFiles> {
  for (const [name, spiffeId] of Object.entries(clients)) {
    const issued = await ca.issue({ uris: [spiffeId], usages: ['client'] });
    certs.set(name, writePemFiles(dir, name, issued, ca.rootPem));
  }
  return (name) => {
    const c = certs.get(name);
    if (!c) throw new Error(`no certificate named ${name}`);
    return c;
  };
}

/** Split a PEM bundle into its private key blocks and certificate blocks. */
export function splitPem(text: string): { keys: string[]; certs: string[] } {
  const blocks = text.match(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
  return {
    keys: blocks
      .filter((b) => /^-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----/.test(b))
      .map((b) => `${b}\n`),
    certs: blocks.filter((b) => b.startsWith('-----BEGIN CERTIFICATE-----')).map((b) => `${b}\n`),
  };
}

/** The SANs of a PEM certificate, for assertions (`uri:spiffe://…`, `dns:localhost`, `ip:127.0.0.1`). */
export function certificateSans(certPem: string): string[] {
  const cert = new x509.X509Certificate(certPem);
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!ext) return [];
  return ext.names.toJSON().map((n) => `${n.type === 'url' ? 'uri' : n.type}:${n.value}`);
}

function sans(opts: IssueOptions): x509.JsonGeneralName[] {
  const out: x509.JsonGeneralName[] = [];
  for (const d of opts.dns ?? []) {
    if (
      !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(
        d,
      )
    )
      throw new Error(`issue: dns SAN ${JSON.stringify(d)} is not a host name`);
    out.push({ type: 'dns', value: d });
  }
  for (const ip of opts.ips ?? []) {
    if (isIP(ip) === 0)
      throw new Error(`issue: ips SAN ${JSON.stringify(ip)} is not an IP address`);
    out.push({ type: 'ip', value: ip });
  }
  for (const u of opts.uris ?? []) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`issue: uris SAN ${JSON.stringify(u)} is not a URI`);
    }
    if (
      parsed.protocol === 'spiffe:' &&
      (!parsed.host || parsed.search || parsed.hash || parsed.port)
    )
      throw new Error(
        `issue: uris SAN ${JSON.stringify(u)} is not a SPIFFE ID (spiffe://<trust-domain>/<path>)`,
      );
    out.push({ type: 'url', value: u });
  }
  return out;
}

async function newKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as KeyPair;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // positive, as RFC 5280 §4.1.2.2 requires
  return b.toString('hex');
}

/** Tolerate a little clock skew between issuer and verifier. */
function backdate(): Date {
  return new Date(Date.now() - 5 * 60_000);
}

function checkName(field: string, v: string): void {
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > 64)
    throw new Error(`${field} must be 1–64 characters, got ${JSON.stringify(v)}`);
}

function checkDays(d: number): number {
  if (!Number.isFinite(d) || d <= 0 || d > 3650)
    throw new Error(`validDays must be in (0, 3650], got ${d}`);
  return d;
}

function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}
