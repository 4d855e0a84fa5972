import * as pulumi from '@pulumi/pulumi';
import type { CertInputs, CertOutputs, MeshCaInputs, MeshCaOutputs } from './pki-impl.ts';

// Captured by the serialized providers instead of module objects (see process.ts).
const IMPL = new URL('./pki-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./pki-impl.ts');
const PROCESS_IMPL = new URL('./process-impl.ts', import.meta.url).pathname;
type ProcessImpl = typeof import('./process-impl.ts');

const caProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: MeshCaOutputs, news: MeshCaInputs) {
    const replaces = (['trustDomain', 'region', 'dir'] as const).filter((k) => olds[k] !== news[k]);
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
  },
  async create(inputs: MeshCaInputs) {
    const impl = (await import(IMPL)) as Impl;
    const outs = await impl.createMeshCa(inputs);
    return { id: `${inputs.trustDomain}/${inputs.region}`, outs };
  },
  async delete(_id: string, props: MeshCaOutputs) {
    const impl = (await import(IMPL)) as Impl;
    const { removeWithEmptyParents } = (await import(PROCESS_IMPL)) as ProcessImpl;
    impl.deleteMeshCaFiles(props, (dir) => removeWithEmptyParents(dir, 1));
  },
};

/** Inputs of a {@link LocalMeshCa}. */
export interface LocalMeshCaArgs {
  trustDomain: pulumi.Input<string>;
  region: pulumi.Input<string>;
  /** Where the trust bundle `root.pem` is written. */
  dir: pulumi.Input<string>;
  /** @default 3650 */
  rootValidDays?: number;
  /** @default 365 */
  intermediateValidDays?: number;
}

/**
 * The local Mesh CA: a root and one intermediate for the region, created once and kept in state with
 * both keys as Pulumi secrets. Only the intermediate signs workload certificates.
 */
export class LocalMeshCa extends pulumi.dynamic.Resource {
  declare public readonly rootCertPem: pulumi.Output<string>;
  declare public readonly rootKeyPem: pulumi.Output<string>;
  declare public readonly intermediateCertPem: pulumi.Output<string>;
  declare public readonly intermediateKeyPem: pulumi.Output<string>;
  declare public readonly bundleFile: pulumi.Output<string>;

  constructor(name: string, args: LocalMeshCaArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      caProvider,
      name,
      {
        trustDomain: args.trustDomain,
        region: args.region,
        dir: args.dir,
        rootValidDays: args.rootValidDays ?? 3650,
        intermediateValidDays: args.intermediateValidDays ?? 365,
        rootCertPem: undefined,
        rootKeyPem: undefined,
        intermediateCertPem: undefined,
        intermediateKeyPem: undefined,
        bundleFile: undefined,
      },
      { ...opts, additionalSecretOutputs: ['rootKeyPem', 'intermediateKeyPem'] },
      'trellis-local',
      'MeshCa',
    );
  }
}

const certProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: CertOutputs, news: CertInputs) {
    const impl = (await import(IMPL)) as Impl;
    // Expiry is part of the diff: an `up` inside the renewal window rotates the certificate in place.
    const changes =
      olds.inputsDigest !== impl.certInputsDigest(news) ||
      impl.needsRenewal(olds, news.renewBeforeHours);
    return { changes, replaces: [] };
  },
  async create(inputs: CertInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.name, outs: await impl.issueCert(inputs) };
  },
  async update(_id: string, _olds: CertOutputs, news: CertInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.issueCert(news) };
  },
  async delete(_id: string, props: CertOutputs) {
    const impl = (await import(IMPL)) as Impl;
    const { removeWithEmptyParents } = (await import(PROCESS_IMPL)) as ProcessImpl;
    impl.deleteCertFiles(props, (dir) => removeWithEmptyParents(dir));
  },
};

/** Inputs of a {@link WorkloadCertificate}. */
export interface WorkloadCertificateArgs {
  /** The issuing Mesh CA. */
  ca: LocalMeshCa;
  /** The SPIFFE ID, for an X.509-SVID. */
  spiffeId?: pulumi.Input<string>;
  dns?: pulumi.Input<string>[];
  ips?: pulumi.Input<string>[];
  dir: pulumi.Input<string>;
  /** @default 24 */
  validHours?: number;
  /** @default validHours / 2 */
  renewBeforeHours?: number;
  /** Bump to re-issue now. @default 0 */
  rotation?: pulumi.Input<number>;
  /** The pod user that alone may read the files (its key among them). @default the engine's user */
  owner?: pulumi.Input<{ uid: number; gid: number }>;
}

/**
 * A short-lived certificate from the Mesh CA, written as PEM files that Envoy (file SDS with a watched
 * directory), Cassandra and Kafka read. `pulumi up` re-issues it inside its renewal window, and the
 * files are swapped atomically so that nothing restarts.
 */
export class WorkloadCertificate extends pulumi.dynamic.Resource {
  declare public readonly certPem: pulumi.Output<string>;
  declare public readonly keyPem: pulumi.Output<string>;
  declare public readonly notAfter: pulumi.Output<string>;
  declare public readonly files: pulumi.Output<CertOutputs['files']>;

  constructor(name: string, args: WorkloadCertificateArgs, opts?: pulumi.CustomResourceOptions) {
    const validHours = args.validHours ?? 24;
    if (!(validHours > 0))
      throw new pulumi.ResourceError(`${name}: validHours must be > 0`, opts?.parent);
    super(
      certProvider,
      name,
      {
        name,
        spiffeId: args.spiffeId,
        dns: args.dns ?? [],
        ips: args.ips ?? [],
        validHours,
        renewBeforeHours: args.renewBeforeHours ?? validHours / 2,
        rotation: args.rotation ?? 0,
        issuerCertPem: args.ca.intermediateCertPem,
        issuerKeyPem: args.ca.intermediateKeyPem,
        rootCertPem: args.ca.rootCertPem,
        dir: args.dir,
        ...(args.owner !== undefined ? { owner: args.owner } : {}),
        certPem: undefined,
        keyPem: undefined,
        notAfter: undefined,
        files: undefined,
      },
      { ...opts, additionalSecretOutputs: ['keyPem'] },
      'trellis-local',
      'Certificate',
    );
  }
}
