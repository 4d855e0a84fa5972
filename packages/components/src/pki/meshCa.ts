import * as pulumi from '@pulumi/pulumi';
import * as tls from '@pulumi/tls';

/** Key algorithm for CA keys. ECDSA P-256 is what Istio's own self-signed CA uses for workload certs. */
const defaults = {
  /** The root outlives every intermediate: 10 years. */
  rootValidityHours: 87_600,
  /** Each cluster's intermediate: 2 years, renewed by `pulumi up` 30 days before expiry. */
  intermediateValidityHours: 17_520,
  earlyRenewalHours: 720,
  organization: 'Trellis',
} as const;

/** PEM material of a CA, as produced by {@link RootCa} or read from a shared stack. */
export interface CaMaterial {
  /** The CA certificate, PEM. Public. */
  certPem: pulumi.Input<string>;
  /** The CA private key, PEM. Always a secret. */
  keyPem: pulumi.Input<string>;
}

/** Arguments of {@link RootCa}. */
export interface RootCaArgs {
  /** SPIFFE trust domain the root anchors; becomes part of the subject (`O=<org>, OU=<trustDomain>`). */
  trustDomain: string;
  /** Validity of the root certificate. @default 87600 (10 years) */
  validityHours?: number;
  /** Subject organization. @default "Trellis" */
  organization?: string;
}

/**
 * The one shared root CA of a Trellis mesh. Its key is a Pulumi secret; keep the stack that owns it
 * apart from the cluster stacks (see docs/adr/0003-shared-root-ca.md).
 */
export class RootCa extends pulumi.ComponentResource {
  /** Root certificate, PEM (public). */
  public readonly certPem: pulumi.Output<string>;
  /** Root private key, PEM (secret). */
  public readonly keyPem: pulumi.Output<string>;

  constructor(name: string, args: RootCaArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:pki:RootCa', name, {}, opts);
    if (!args.trustDomain || /[/\s]/.test(args.trustDomain)) {
      throw new pulumi.ResourceError(
        `RootCa ${name}: trustDomain must be a DNS-like name, got "${args.trustDomain}"`,
        this,
      );
    }
    const validityHours = args.validityHours ?? defaults.rootValidityHours;
    if (!Number.isInteger(validityHours) || validityHours <= 0) {
      throw new pulumi.ResourceError(
        `RootCa ${name}: validityHours must be a positive integer`,
        this,
      );
    }
    const key = new tls.PrivateKey(
      `${name}-key`,
      { algorithm: 'ECDSA', ecdsaCurve: 'P256' },
      { parent: this },
    );
    const cert = new tls.SelfSignedCert(
      `${name}-cert`,
      {
        privateKeyPem: key.privateKeyPem,
        isCaCertificate: true,
        validityPeriodHours: validityHours,
        setSubjectKeyId: true,
        allowedUses: ['cert_signing', 'crl_signing'],
        subject: {
          commonName: `${args.trustDomain} root CA`,
          organization: args.organization ?? defaults.organization,
          organizationalUnit: args.trustDomain,
        },
      },
      { parent: this },
    );
    this.certPem = cert.certPem;
    this.keyPem = pulumi.secret(key.privateKeyPem);
    this.registerOutputs({ certPem: this.certPem, keyPem: this.keyPem });
  }
}

/** Arguments of {@link IntermediateCa}. */
export interface IntermediateCaArgs {
  /** The shared root that signs this intermediate. */
  root: CaMaterial;
  /** SPIFFE trust domain. Must match the root's. */
  trustDomain: string;
  /** Cluster (and region) the intermediate is for, e.g. `prod-us`; goes into the subject CN. */
  cluster: string;
  /** What the intermediate signs, e.g. `mesh` (Istio workload certs) or `data` (Cassandra/Kafka). */
  purpose: string;
  /** @default 17520 (2 years) */
  validityHours?: number;
}

/**
 * One intermediate CA per cluster and purpose, signed by the shared root. For `purpose: "mesh"` its
 * {@link IntermediateCa.cacerts} map is exactly the Istio plug-in CA secret layout
 * (https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/).
 */
export class IntermediateCa extends pulumi.ComponentResource {
  /** Intermediate certificate, PEM. */
  public readonly certPem: pulumi.Output<string>;
  /** Intermediate key, PEM (secret). */
  public readonly keyPem: pulumi.Output<string>;
  /** Root certificate, PEM, as given. */
  public readonly rootCertPem: pulumi.Output<string>;
  /** Chain from this intermediate up to (and including) the root, PEM. */
  public readonly chainPem: pulumi.Output<string>;
  /** The Istio `cacerts` secret data: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem (secret). */
  public readonly cacerts: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: IntermediateCaArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:pki:IntermediateCa', name, {}, opts);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(args.cluster)) {
      throw new pulumi.ResourceError(
        `IntermediateCa ${name}: cluster must be lowercase letters, digits and dashes, got "${args.cluster}"`,
        this,
      );
    }
    if (!/^[a-z]+$/.test(args.purpose)) {
      throw new pulumi.ResourceError(
        `IntermediateCa ${name}: purpose must be a lowercase word`,
        this,
      );
    }
    const validityHours = args.validityHours ?? defaults.intermediateValidityHours;
    if (!Number.isInteger(validityHours) || validityHours <= 0) {
      throw new pulumi.ResourceError(
        `IntermediateCa ${name}: validityHours must be a positive integer`,
        this,
      );
    }
    const key = new tls.PrivateKey(
      `${name}-key`,
      { algorithm: 'ECDSA', ecdsaCurve: 'P256' },
      { parent: this },
    );
    const csr = new tls.CertRequest(
      `${name}-csr`,
      {
        privateKeyPem: key.privateKeyPem,
        subject: {
          commonName: `${args.trustDomain} ${args.cluster} ${args.purpose} intermediate`,
          organization: defaults.organization,
          organizationalUnit: args.trustDomain,
        },
      },
      { parent: this },
    );
    const cert = new tls.LocallySignedCert(
      `${name}-cert`,
      {
        certRequestPem: csr.certRequestPem,
        caCertPem: args.root.certPem,
        caPrivateKeyPem: pulumi.secret(args.root.keyPem),
        isCaCertificate: true,
        setSubjectKeyId: true,
        validityPeriodHours: validityHours,
        earlyRenewalHours: defaults.earlyRenewalHours,
        allowedUses: ['cert_signing', 'crl_signing', 'digital_signature'],
      },
      { parent: this },
    );
    this.certPem = cert.certPem;
    this.keyPem = pulumi.secret(key.privateKeyPem);
    this.rootCertPem = pulumi.output(args.root.certPem);
    this.chainPem = pulumi.interpolate`${cert.certPem.apply(ensureNewline)}${this.rootCertPem.apply(ensureNewline)}`;
    this.cacerts = pulumi.secret(
      pulumi
        .all([cert.certPem, key.privateKeyPem, this.rootCertPem, this.chainPem])
        .apply(([caCert, caKey, rootCert, chain]): Record<string, string> => ({
          'ca-cert.pem': caCert,
          'ca-key.pem': caKey,
          'root-cert.pem': rootCert,
          'cert-chain.pem': chain,
        })),
    );
    this.registerOutputs({
      certPem: this.certPem,
      keyPem: this.keyPem,
      rootCertPem: this.rootCertPem,
      chainPem: this.chainPem,
      cacerts: this.cacerts,
    });
  }
}

function ensureNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
