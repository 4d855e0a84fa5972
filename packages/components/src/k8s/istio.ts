import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { systemNamespaces } from '@trellis/contracts';
import type { IstioExtensionProvider } from '@trellis/policy';
import { operatorRelease } from './common.ts';
import type { DataplaneMode, OperatorSource } from './common.ts';
import { charts } from './versions.ts';

const defaults = {
  namespace: systemNamespaces.istio,
  dataplane: 'sidecar' as DataplaneMode,
  istiodResources: {
    requests: { cpu: '500m', memory: '2Gi' },
    limits: { cpu: '2', memory: '4Gi' },
  },
} as const;

/** Arguments of {@link Istio}. */
export interface IstioArgs {
  /** SPIFFE trust domain (meshConfig.trustDomain); identities are spiffe://<trustDomain>/ns/<ns>/sa/<sa>. */
  trustDomain: string;
  /** Cluster name (global.multiCluster.clusterName), e.g. `prod-us`. */
  cluster: string;
  /** Mesh ID shared by every cluster of the mesh (global.meshID). */
  meshId: string;
  /** Network of this cluster (global.network). */
  network: string;
  /** The plug-in CA: keys ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem (from IntermediateCa). */
  cacerts: pulumi.Input<Record<string, string>>;
  /**
   * Default dataplane for application namespaces. The ambient components (istio-cni, ztunnel) are
   * always installed, because the gateway namespace is ambient (docs/adr/0004-sidecar-and-ambient.md).
   * @default "sidecar"
   */
  dataplane?: DataplaneMode;
  /** @default "istio-system" */
  namespace?: string;
  /** Whether the charts are installed here or Istio is preinstalled (common.ts). @default "install" */
  operators?: OperatorSource;
  /**
   * istiod's `meshConfig.extensionProviders`: the audit access log and the OpenTelemetry tracer the
   * mesh's Telemetry names (`compileIstioTelemetry`). Preinstalled, the platform team's istiod must
   * carry the same providers, since the Telemetry names them.
   * @default none
   */
  extensionProviders?: IstioExtensionProvider[];
}

/**
 * Istio from the official Helm charts (base, istiod, cni, ztunnel), with a plug-in CA from the shared
 * root. Mesh-wide STRICT mTLS is part of the compiled policy (MeshPolicy).
 * https://istio.io/latest/docs/ambient/install/helm/
 */
export class Istio extends pulumi.ComponentResource {
  /** Root namespace of the mesh (where mesh-wide policy lives). */
  public readonly rootNamespace: pulumi.Output<string>;
  /** Resources other components must wait for (CRDs and istiod up). */
  public readonly ready: pulumi.Resource[];

  constructor(name: string, args: IstioArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:Istio', name, {}, opts);
    for (const field of ['trustDomain', 'cluster', 'meshId', 'network'] as const) {
      if (!args[field] || !/^[a-z0-9][a-z0-9.-]*$/.test(args[field])) {
        throw new pulumi.ResourceError(
          `Istio ${name}: ${field} must be lowercase letters, digits, dots and dashes, got "${args[field]}"`,
          this,
        );
      }
    }
    const dataplane = args.dataplane ?? defaults.dataplane;
    if (dataplane !== 'sidecar' && dataplane !== 'ambient') {
      throw new pulumi.ResourceError(`Istio ${name}: dataplane must be sidecar or ambient`, this);
    }
    const namespace = args.namespace ?? defaults.namespace;
    const providers = args.extensionProviders ?? [];
    const names = providers.map((p) => p.name);
    names.forEach((n, i) => {
      if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(n) || names.indexOf(n) !== i) {
        throw new pulumi.ResourceError(
          `Istio ${name}: extensionProviders[${i}].name "${n}" must be a unique lowercase name`,
          this,
        );
      }
    });
    const child = { parent: this };

    const ns = new k8s.core.v1.Namespace(`${name}-ns`, { metadata: { name: namespace } }, child);
    // istiod reads the `cacerts` secret at start-up, so it must exist before istiod.
    const cacerts = new k8s.core.v1.Secret(
      `${name}-cacerts`,
      {
        metadata: { name: 'cacerts', namespace: ns.metadata.name },
        type: 'Opaque',
        stringData: pulumi.secret(args.cacerts),
      },
      child,
    );
    const base = operatorRelease(
      args.operators,
      `${name}-base`,
      charts.istioBase,
      { namespace: ns.metadata.name, releaseName: 'istio-base', values: {} },
      child,
    );
    const global = {
      meshID: args.meshId,
      network: args.network,
      multiCluster: { clusterName: args.cluster },
    };
    const istiod = operatorRelease(
      args.operators,
      `${name}-istiod`,
      charts.istiod,
      {
        namespace: ns.metadata.name,
        releaseName: 'istiod',
        values: {
          // `profile: ambient` enables ztunnel support in istiod; sidecar injection still works.
          profile: 'ambient',
          global,
          resources: defaults.istiodResources,
          meshConfig: {
            trustDomain: args.trustDomain,
            // Cassandra and Kafka open connections at start-up: hold them until Envoy is ready.
            defaultConfig: { holdApplicationUntilProxyStarts: true },
            // Named by the mesh's Telemetry (MeshTelemetry): the audit log, the tracer.
            ...(providers.length > 0 ? { extensionProviders: providers } : {}),
          },
        },
      },
      { parent: this, dependsOn: [...base, cacerts] },
    );
    const cni = operatorRelease(
      args.operators,
      `${name}-cni`,
      charts.istioCni,
      {
        namespace: ns.metadata.name,
        releaseName: 'istio-cni',
        values: { profile: 'ambient', global },
      },
      { parent: this, dependsOn: istiod },
    );
    const ztunnel = operatorRelease(
      args.operators,
      `${name}-ztunnel`,
      charts.ztunnel,
      {
        namespace: ns.metadata.name,
        releaseName: 'ztunnel',
        values: { multiCluster: { clusterName: args.cluster }, global },
      },
      { parent: this, dependsOn: cni },
    );
    // The mesh-wide STRICT PeerAuthentication is compiled from the model with the rest of the policy
    // (compileIstio) and applied by MeshPolicy, which the data components wait for.
    this.rootNamespace = ns.metadata.name;
    // Preinstalled, only the cacerts secret is ours to wait for (istiod reads it when it restarts).
    this.ready = args.operators === 'preinstalled' ? [cacerts] : [...istiod, ...ztunnel];
    this.registerOutputs({ rootNamespace: this.rootNamespace });
  }
}
