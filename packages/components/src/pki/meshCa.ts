import * as pulumi from '@pulumi/pulumi';
import type {
  IntermediateInputs,
  IntermediateOutputs,
  RootInputs,
  RootOutputs,
} from './ca-impl.ts';

// The providers below are serialized into each resource's state. They capture only this path and
// import the X.509 code from it in `create` and `update`, which always run the provider of the program
// being deployed; `diff` is self-contained and there is no `delete` (nothing lives outside the state),
// so a state written from another checkout never needs the path to exist. This replaces @pulumi/tls,
// whose plugin no reachable registry serves (docs/adr/0010-local-runtime.md).
const IMPL = new URL('./ca-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./ca-impl.ts');
// `import()` made from text: vitest rewrites the `import()` syntax into a call to its own module loader,
// which Pulumi's closure serializer cannot capture, so the stack tests could not construct these
// resources. Node runs this one natively, in the program and in the dynamic-provider host.
const importImpl = new Function('path', 'return import(path)') as (path: string) => Promise<Impl>;

/** The root CA's dynamic provider (exported for its unit tests). */
export const rootProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: RootOutputs, news: RootInputs) {
    // A different subject or lifetime is a different root: a new key, so every intermediate follows.
    const replaces = (
      ['commonName', 'organization', 'organizationalUnit', 'validityHours'] as const
    ).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0, replaces };
  },
  async create(inputs: RootInputs) {
    const impl = await importImpl(IMPL);
    const outs = await impl.createRoot(inputs);
    return { id: `root:${inputs.organizationalUnit}`, outs };
  },
};

/** An intermediate CA's dynamic provider (exported for its unit tests). */
export const intermediateProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: IntermediateOutputs, news: IntermediateInputs) {
    const changed = (
      [
        'commonName',
        'organization',
        'organizationalUnit',
        'validityHours',
        'earlyRenewalHours',
        'rootCertPem',
      ] as const
    ).filter((k) => olds[k] !== news[k]);
    // Inside the renewal window `up` re-issues in place, as tls.LocallySignedCert's early renewal did.
    const renew = Date.parse(olds.notAfter) - Date.now() < news.earlyRenewalHours * 3_600_000;
    return { changes: changed.length > 0 || renew, replaces: [] };
  },
  async create(inputs: IntermediateInputs) {
    const impl = await importImpl(IMPL);
    return { id: `intermediate:${inputs.commonName}`, outs: await impl.issueIntermediate(inputs) };
  },
  async update(_id: string, _olds: IntermediateOutputs, news: IntermediateInputs) {
    const impl = await importImpl(IMPL);
    return { outs: await impl.issueIntermediate(news) };
  },
};

/** The type token of the root CA's dynamic resource (for tests that look for it). */
export const rootCaType = 'pulumi-nodejs:dynamic/trellis-pki:RootCa';
/** The type token of an intermediate CA's dynamic resource. */
export const intermediateCaType = 'pulumi-nodejs:dynamic/trellis-pki:IntermediateCa';

/** A root key and self-signed certificate, made once and kept in state with the key as a secret. */
class RootCaKeyPair extends pulumi.dynamic.Resource {
  declare public readonly certPem: pulumi.Output<string>;
  declare public readonly keyPem: pulumi.Output<string>;

  constructor(name: string, args: RootInputs, opts: pulumi.CustomResourceOptions) {
    super(
      rootProvider,
      name,
      { ...args, certPem: undefined, keyPem: undefined, notAfter: undefined },
      { ...opts, additionalSecretOutputs: ['keyPem'] },
      'trellis-pki',
      'RootCa',
    );
  }
}

/** An intermediate key and certificate signed by a root; re-issued inside its renewal window. */
class IntermediateCaKeyPair extends pulumi.dynamic.Resource {
  declare public readonly certPem: pulumi.Output<string>;
  declare public readonly keyPem: pulumi.Output<string>;

  constructor(
    name: string,
    args: { [K in keyof IntermediateInputs]: pulumi.Input<IntermediateInputs[K]> },
    opts: pulumi.CustomResourceOptions,
  ) {
    super(
      intermediateProvider,
      name,
      { ...args, certPem: undefined, keyPem: undefined, notAfter: undefined },
      { ...opts, additionalSecretOutputs: ['keyPem'] },
      'trellis-pki',
      'IntermediateCa',
    );
  }
}

/** Key algorithm for CA keys. ECDSA P-256 is what Istio's own self-signed CA uses for workload certs. */
const defaults = {
  /** The root outlives every intermediate: 10 years. */
  rootValidityHours: 87_600,
  /** Each cluster's intermediate: 2 years, renewed by `pulumi up` 30 days before expiry. */
  intermediateValidityHours: 17_520,
  earlyRenewalHours: 720,
  organization: 'Trellis',
} as const;

/** Ten years: the longest lifetime the CA code issues (packages/local/src/harness/tls.ts). */
const maxValidityHours = 87_600;

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
    if (
      !Number.isInteger(validityHours) ||
      validityHours <= 0 ||
      validityHours > maxValidityHours
    ) {
      throw new pulumi.ResourceError(
        `RootCa ${name}: validityHours must be a positive integer of at most ${maxValidityHours}`,
        this,
      );
    }
    const ca = new RootCaKeyPair(
      `${name}-keypair`,
      {
        commonName: `${args.trustDomain} root CA`,
        organization: args.organization ?? defaults.organization,
        organizationalUnit: args.trustDomain,
        validityHours,
      },
      { parent: this },
    );
    this.certPem = ca.certPem;
    this.keyPem = pulumi.secret(ca.keyPem);
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
    if (
      !Number.isInteger(validityHours) ||
      validityHours <= 0 ||
      validityHours > maxValidityHours
    ) {
      throw new pulumi.ResourceError(
        `IntermediateCa ${name}: validityHours must be a positive integer of at most ${maxValidityHours}`,
        this,
      );
    }
    const commonName = `${args.trustDomain} ${args.cluster} ${args.purpose} intermediate`;
    if (commonName.length > 64) {
      // X.509 upper bound for a CN (RFC 5280 ub-common-name).
      throw new pulumi.ResourceError(
        `IntermediateCa ${name}: trustDomain, cluster and purpose make a CN of ${commonName.length} characters; at most 64`,
        this,
      );
    }
    const cert = new IntermediateCaKeyPair(
      `${name}-keypair`,
      {
        commonName,
        organization: defaults.organization,
        organizationalUnit: args.trustDomain,
        validityHours,
        earlyRenewalHours: defaults.earlyRenewalHours,
        rootCertPem: args.root.certPem,
        rootKeyPem: pulumi.secret(args.root.keyPem),
      },
      { parent: this },
    );
    this.certPem = cert.certPem;
    this.keyPem = pulumi.secret(cert.keyPem);
    this.rootCertPem = pulumi.output(args.root.certPem);
    this.chainPem = pulumi.interpolate`${cert.certPem.apply(ensureNewline)}${this.rootCertPem.apply(ensureNewline)}`;
    this.cacerts = pulumi.secret(
      pulumi
        .all([cert.certPem, cert.keyPem, this.rootCertPem, this.chainPem])
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
